"""Fixtures every test suite in this repository shares (databases, sandboxes on loopback)."""

pytest_plugins = ["cmis_core.testing.databases"]
