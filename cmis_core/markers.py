"""The pluggy markers of the ``cmis`` project. Imports only pluggy.

Plugins write ``from cmis_core import hookimpl`` (or ``from cmis_core.markers import
hookimpl``) and decorate their hook functions with it.
"""

import pluggy

PROJECT = "cmis"
"""Project name, hook marker name and entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
