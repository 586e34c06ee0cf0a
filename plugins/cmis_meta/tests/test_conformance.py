"""Meta passes the conformance kit against its own sandbox."""

from cmis_core.testing.conformance import PluginConformance


class TestMetaConformance(PluginConformance):
    platform = "meta"
