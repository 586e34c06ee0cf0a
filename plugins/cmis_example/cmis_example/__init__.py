"""Example Ads for cmis: a small, complete plugin that passes the conformance kit."""
