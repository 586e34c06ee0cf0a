""":class:`ContractSection`: the records the hooks return are valid and consistent."""

from __future__ import annotations

from urllib.parse import urlsplit

from cmis_core.contract import AuthProvider, Stream, WebhookVerifier
from cmis_core.factory import Registry
from cmis_core.testing.conformance.harness import KitHarness, stream_order
from cmis_core.types import EntityKind


class ContractSection(KitHarness):
    """The records the hooks return are valid and consistent."""

    def test_contract_platform_record(self, cmis_registry: Registry) -> None:
        record = cmis_registry.platform(self.platform)
        assert record.name == self.platform
        assert record.display_name.strip(), "a platform needs a display name"
        assert record.classify is not None, "a platform must classify its error answers"
        assert urlsplit(record.base_url).scheme == "https"
        assert record.lookback_days >= 1

    def test_contract_capability_records(self, cmis_registry: Registry) -> None:
        provider = cmis_registry.auth_provider(self.platform)
        assert isinstance(provider, AuthProvider)
        assert provider.platform == self.platform
        assert provider.flow in ("oauth2", "oauth1")
        if self.platform in cmis_registry.webhook_verifiers:
            verifier = cmis_registry.webhook_verifier(self.platform)
            assert isinstance(verifier, WebhookVerifier)
            assert verifier.platform == self.platform
        sandbox = cmis_registry.sandbox(self.platform)
        env = sandbox.env("http://127.0.0.1:9")
        prefix = f"CMIS_{self.platform.upper()}_"
        assert all(k.startswith(prefix) for k in env), f"sandbox settings must be {prefix}*"
        assert env.get(prefix + "API_URL") == "http://127.0.0.1:9"

    def test_contract_streams(self, cmis_registry: Registry) -> None:
        streams = cmis_registry.streams_of(self.platform)
        assert streams, "a plugin offering sync must offer streams"
        for name, stream in streams.items():
            assert isinstance(stream, Stream)
            assert stream.name == name
            assert stream.platform == self.platform
            assert EntityKind(stream.entity) in EntityKind
        stream_order(streams)  # parents exist and form no cycle
        roots = [s for s in streams.values() if s.parent is None]
        assert any(s.entity == EntityKind.AD_ACCOUNT for s in roots), (
            "ad accounts must be read first: a root stream fills ad_account"
        )
