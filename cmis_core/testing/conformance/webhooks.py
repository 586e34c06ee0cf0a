""":class:`WebhookSection`: the verifier's handshake and signatures, and deliveries through
`cmis serve`'s app (:class:`WebhookService`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from cmis_core.contract import WebhookVerifier
from cmis_core.errors import SignatureInvalid
from cmis_core.factory import Registry
from cmis_core.settings import PlatformSettings, Settings
from cmis_core.testing.conformance.harness import KitHarness
from cmis_core.testing.control import SandboxControl
from cmis_core.testing.serve import RunningSandbox
from cmis_core.types import WebhookRequest


def _flip_middle(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


class WebhookSection(KitHarness):
    """Genuine deliveries are accepted; anything else is SignatureInvalid."""

    @pytest.fixture
    def cmis_verifier(self, cmis_registry: Registry) -> WebhookVerifier:
        if self.platform not in cmis_registry.webhook_verifiers:
            pytest.skip("the plugin offers no webhooks")
        return cmis_registry.webhook_verifier(self.platform)

    @pytest.mark.asyncio
    async def test_webhooks_handshake(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        shake = await cmis_control.webhook_handshake()
        if shake is None:
            pytest.skip("the platform has no handshake")
        request, status, body = shake
        answer = cmis_verifier.handshake(request, cmis_platform_settings)
        assert answer is not None, "the handshake was not recognised"
        assert (answer.status, answer.body) == (status, body)

    @pytest.mark.asyncio
    async def test_webhooks_sample_delivery_accepted(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, _ = await cmis_control.webhook_sample()
        assert cmis_verifier.handshake(request, cmis_platform_settings) is None
        cmis_verifier.verify(request, cmis_platform_settings)
        events = cmis_verifier.parse(cmis_verifier.mask(request.body))
        assert events, "a genuine delivery parsed into no events"
        assert {e.platform for e in events} == {self.platform}
        again = attrs.evolve(request)
        assert cmis_verifier.dedupe_key(again) == cmis_verifier.dedupe_key(request)
        other, _ = await cmis_control.webhook_sample()
        assert cmis_verifier.dedupe_key(other) != cmis_verifier.dedupe_key(request)

    @pytest.mark.asyncio
    async def test_webhooks_tampered_body_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        if not self.webhook_body_signed:
            pytest.skip("the platform authenticates deliveries with a key, not a body signature")
        request, _ = await cmis_control.webhook_sample()
        for body in (_flip_middle(request.body), request.body + b" "):
            with pytest.raises(SignatureInvalid):
                cmis_verifier.verify(attrs.evolve(request, body=body), cmis_platform_settings)

    @pytest.mark.asyncio
    async def test_webhooks_wrong_signature_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, _ = await cmis_control.webhook_sample(signature="wrong")
        with pytest.raises(SignatureInvalid):
            cmis_verifier.verify(request, cmis_platform_settings)

    @pytest.mark.asyncio
    async def test_webhooks_missing_signature_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, _ = await cmis_control.webhook_sample(signature="none")
        with pytest.raises(SignatureInvalid):
            cmis_verifier.verify(request, cmis_platform_settings)

    @pytest.mark.asyncio
    async def test_webhooks_stale_timestamp_rejected(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_platform_settings: PlatformSettings,
    ) -> None:
        request, timestamped = await cmis_control.webhook_sample(timestamp_offset=-3600)
        if not timestamped:
            pytest.skip("the platform signs no timestamp")
        with pytest.raises(SignatureInvalid):
            cmis_verifier.verify(request, cmis_platform_settings)

    # ---------------------------------------------------------------- through the service
    @pytest.fixture
    def cmis_webhook_service(
        self, cmis_registry: Registry, cmis_sandbox: RunningSandbox, tmp_path: Path
    ) -> Iterator[WebhookService]:
        """`cmis serve`'s app on a fresh SQLite inbox, with the sandbox's settings."""
        from starlette.testclient import TestClient

        from cmis_core.service.app import create_app
        from cmis_core.store import open_store

        settings = Settings.from_env(
            {
                **cmis_sandbox.env,
                "CMIS_HOME": str(tmp_path),
                "CMIS_DATABASE_URL": f"sqlite:///{tmp_path / 'kit.db'}",
            }
        )
        store = open_store(settings)
        try:
            app = create_app(settings, store=store, registry=cmis_registry)
            with TestClient(app) as client:
                yield WebhookService(client=client, store=store, settings=settings)
        finally:
            store.close()

    @pytest.mark.asyncio
    async def test_webhooks_service_answers_the_handshake(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        shake = await cmis_control.webhook_handshake()
        if shake is None:
            pytest.skip("the platform has no handshake")
        request, status, body = shake
        answer = cmis_webhook_service.send(request)
        assert (answer.status_code, answer.content) == (status, body)
        assert cmis_webhook_service.rows() == [], "a handshake is not a delivery"

    @pytest.mark.asyncio
    async def test_webhooks_service_stores_a_genuine_delivery_once(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        request, _ = await cmis_control.webhook_sample()
        first = cmis_webhook_service.send(request)
        assert first.status_code == 200, f"a genuine delivery was answered {first.status_code}"
        assert first.json() == {"status": "stored"}
        again = cmis_webhook_service.send(request)
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
        (row,) = cmis_webhook_service.rows()
        assert row["body"] == cmis_verifier.mask(request.body), "the stored body is the masked one"
        assert row["dedupe_key"]

    @pytest.mark.asyncio
    async def test_webhooks_service_refuses_a_forged_delivery(
        self,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        request, _ = await cmis_control.webhook_sample(signature="wrong")
        answer = cmis_webhook_service.send(request)
        assert answer.status_code == 401, f"a forged delivery was answered {answer.status_code}"
        assert cmis_webhook_service.rows() == []

    @pytest.mark.asyncio
    async def test_webhooks_stored_delivery_is_processable(
        self,
        cmis_registry: Registry,
        cmis_verifier: WebhookVerifier,
        cmis_control: SandboxControl,
        cmis_webhook_service: WebhookService,
    ) -> None:
        from cmis_core.webhooks.process import InboxProcessor

        request, _ = await cmis_control.webhook_sample()
        assert cmis_webhook_service.send(request).status_code == 200
        processor = InboxProcessor(
            cmis_webhook_service.store, cmis_registry, cmis_webhook_service.settings
        )
        report = await processor.run()
        (row,) = cmis_webhook_service.rows()
        # no organisation routes the sandbox's accounts here: unroutable (or processed,
        # for events that need no route); never failed
        assert row["status"] in ("unroutable", "processed"), (
            f"the stored delivery could not be processed: {row['error']}"
        )
        assert report.failed == 0


@attrs.frozen(kw_only=True)
class WebhookService:
    """The service app under test, its store and settings (for :class:`WebhookSection`)."""

    client: Any
    store: Any
    settings: Settings

    def send(self, request: WebhookRequest) -> Any:
        """Send ``request`` to the app as the platform would."""
        return self.client.request(
            request.method,
            request.path,
            params=dict(request.query),
            headers=dict(request.headers),
            content=request.body,
        )

    def rows(self) -> list[dict[str, Any]]:
        """The inbox rows (body as bytes)."""
        from sqlalchemy import select

        from cmis_core.store.tables import webhook_events

        with self.store.system(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(webhook_events))]
        for row in rows:
            row["body"] = None if row["body"] is None else bytes(row["body"])
        return rows
