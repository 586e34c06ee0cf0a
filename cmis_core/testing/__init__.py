"""Testing support for cmis and its plugins.

- :mod:`cmis_core.testing.sandbox`: the toolkit for writing a platform's sandbox (a fake
  of its API as an ASGI app), with the ``/_sandbox/`` control API.
- :mod:`cmis_core.testing.serve`: serve an ASGI app on a loopback port (``serve``,
  ``serve_sandbox``).
- :mod:`cmis_core.testing.control`: ``SandboxControl``, a client for the control API.
- :mod:`cmis_core.testing.conformance`: ``PluginConformance``, the base test class every
  plugin's tests subclass (a package: the shared harness, then one module per section).
- :mod:`cmis_core.testing.databases`: fresh SQLite and PostgreSQL databases (fixtures
  ``sqlite_database``, ``postgres_database``, ``database`` over both, ``store``).
- :mod:`cmis_core.testing.plugin_fixtures`: pytest fixtures (opt in with
  ``pytest_plugins = ["cmis_core.testing.plugin_fixtures"]``).

Importing this package imports nothing else; the toolkit needs the ``server`` extra and
the kit needs pytest (the ``testing`` extra).
"""
