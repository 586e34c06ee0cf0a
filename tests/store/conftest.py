pytest_plugins = ["cmis_core.testing.databases"]
