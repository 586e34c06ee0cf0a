"""Google Ads passes the conformance kit (with small pages, so paging is exercised)."""

from cmis_core.contract import SandboxOptions
from cmis_core.testing.conformance import PluginConformance


class TestGoogleConformance(PluginConformance):
    platform = "google"
    sandbox_options = SandboxOptions(seed=7, size="small", rate_limit=False, extra={"page_size": 7})
    webhook_body_signed = False  # the key is in the body; there is no signature over it
