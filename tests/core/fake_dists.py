"""Fake installed distributions (``*.dist-info`` folders) with ``cmis`` entry points."""

from __future__ import annotations

import importlib.metadata as md
import textwrap
from pathlib import Path

GOOD_PLUGIN = """
from cmis_core import hookimpl


@hookimpl
def cmis_platforms():
    from cmis_core.types import Capability, Platform

    return [Platform(name="{slug}", display_name="{title}", api_version="v1",
                     base_url="https://api.{slug}.example",
                     capabilities={{Capability.OAUTH2}})]
"""

RAISING_PLUGIN = """
raise RuntimeError("boom at import")
"""


def make_dist(root: Path, dist: str, version: str, entry: str, module: str, source: str) -> None:
    """Write ``module.py`` and a ``dist-version.dist-info`` declaring ``entry = module``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[cmis]\n{entry} = {module}\n")
    (info / "RECORD").write_text("")


def entry_points_in(root: Path) -> list[md.EntryPoint]:
    """The ``cmis`` entry points of the distributions under ``root``."""
    eps: list[md.EntryPoint] = []
    for dist in md.distributions(path=[str(root)]):
        eps.extend(ep for ep in dist.entry_points if ep.group == "cmis")
    return eps
