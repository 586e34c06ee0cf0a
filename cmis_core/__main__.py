"""``python -m cmis_core`` runs the ``cmis`` command line."""

from cmis_core.cli import main

main()
