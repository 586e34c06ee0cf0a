"""The conformance kit passes the example plugin and fails each broken variant on the right test.

Each run is a real pytest session (in process, through pytester) of a module subclassing
``PluginConformance`` against the example's sandbox on loopback; the inner session uses
pytest-asyncio's strict mode, as a plugin without any asyncio configuration would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Loaded here, once: pytester unloads the modules an inner run imports first, and reloading
# SQLAlchemy's PostgreSQL dialect warns (the kit's webhook section opens a store).
import cmis_core.service.app
import cmis_core.store
import cmis_core.webhooks.process  # noqa: F401

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent

SECTION_TESTS = {
    "test_contract_platform_record",
    "test_contract_capability_records",
    "test_contract_streams",
    "test_auth_connect_flow",
    "test_auth_denied_consent_is_an_oauth_flow_error",
    "test_auth_expired_access_token_is_token_rejected",
    "test_auth_refresh_gives_new_working_tokens",
    "test_auth_revoked_grant_on_refresh_is_reauth_required",
    "test_auth_revoke_ends_the_grant",
    "test_auth_connect_is_stored_sealed",
    "test_auth_refresh_is_single_flight",
    "test_webhooks_handshake",
    "test_webhooks_sample_delivery_accepted",
    "test_webhooks_tampered_body_rejected",
    "test_webhooks_wrong_signature_rejected",
    "test_webhooks_missing_signature_rejected",
    "test_webhooks_stale_timestamp_rejected",
    "test_webhooks_service_answers_the_handshake",
    "test_webhooks_service_stores_a_genuine_delivery_once",
    "test_webhooks_service_refuses_a_forged_delivery",
    "test_webhooks_stored_delivery_is_processable",
    "test_sync_streams_match_the_ground_truth",
    "test_sync_every_record_arrives_once",
    "test_sync_records_are_valid",
    "test_sync_children_belong_to_read_accounts",
    "test_sync_engine_full_then_incremental",
    "test_sync_engine_resumes_a_run_cut_short",
}


def run_kit(pytester: pytest.Pytester, variant: str | None) -> tuple[set[str], set[str]]:
    """Run the whole kit against the example (or a variant); the passed and failed tests."""
    plugin = f"    plugin = 'kit_variants:{variant}'\n" if variant else ""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_kit=(
            "import sys\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            "from cmis_core.contract import SandboxOptions\n"
            "from cmis_core.testing.conformance import PluginConformance\n\n"
            "class TestKit(PluginConformance):\n"
            "    platform = 'example'\n"
            # three days of metrics instead of 28: the same paging, a quarter of the rows
            "    sandbox_options = SandboxOptions(seed=3, rate_limit=False, extra={'days': 3})\n"
            + plugin
        )
    )
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly")
    reports = recorder.getreports("pytest_runtest_logreport")
    name = lambda r: r.nodeid.rsplit("::", 1)[-1]  # noqa: E731
    failed = {name(r) for r in reports if r.failed}
    passed = {name(r) for r in reports if r.passed and r.when == "call"} - failed
    return passed, failed


def test_the_example_plugin_passes_every_section(pytester: pytest.Pytester) -> None:
    passed, failed = run_kit(pytester, None)
    assert failed == set()
    assert passed == SECTION_TESTS


@pytest.mark.parametrize(
    ("variant", "caught_by"),
    [
        (
            "BAD_SIGNATURE",
            {
                "test_webhooks_wrong_signature_rejected",
                "test_webhooks_tampered_body_rejected",
                "test_webhooks_service_refuses_a_forged_delivery",
            },
        ),
        (
            "FIRST_PAGE_ONLY",
            {
                "test_sync_every_record_arrives_once",
                "test_sync_engine_full_then_incremental",
                "test_sync_engine_resumes_a_run_cut_short",
            },
        ),
        ("EXPIRED_IS_TRANSIENT", {"test_auth_expired_access_token_is_token_rejected"}),
    ],
)
def test_a_broken_plugin_fails_the_kit_on_the_test_that_should_catch_it(
    pytester: pytest.Pytester, variant: str, caught_by: set[str]
) -> None:
    passed, failed = run_kit(pytester, variant)
    assert failed == caught_by
    assert passed == SECTION_TESTS - caught_by
