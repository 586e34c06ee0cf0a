"""Example Ads passes the conformance kit."""

from cmis_core.testing.conformance import PluginConformance


class TestExampleConformance(PluginConformance):
    platform = "example"
