"""Parent -> child fan-out: which streams run, in what order, for which ad account.

Root streams (``parent is None``) run first, once; the ad-account root's records are
stored, and the accounts enabled for sync (``cmis accounts enable|disable``) are read back
from the database. Every other stream then runs once per account, as a *unit* (stream x
account). A stream whose parent is not the root (campaigns -> ad groups -> ads) runs for
an account after its parent has finished for that account, and receives the same account
record: the platform call it makes for its partitions is per account, not per parent row
(``GET /act_1/ads``, not one call per ad group), which is what keeps calls few.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from cmis_core.contract import Stream
from cmis_core.errors import PluginError, UsageError
from cmis_core.types import EntityKind


def ordered(streams: Mapping[str, Stream]) -> list[Stream]:
    """Every stream after its parent (by name within a level); a cycle is a plugin error."""
    order: list[Stream] = []
    placed: set[str] = set()
    pending = dict(streams)
    while pending:
        ready = [s for s in pending.values() if s.parent is None or s.parent in placed]
        if not ready:
            names = ", ".join(f"{s.name} (parent {s.parent})" for s in pending.values())
            raise PluginError(f"streams with an unknown or cyclic parent: {names}")
        for stream in sorted(ready, key=lambda s: s.name):
            order.append(stream)
            placed.add(stream.name)
            del pending[stream.name]
    return order


def account_root(streams: Iterable[Stream]) -> Stream | None:
    """The root stream that reads ad accounts, if the platform has one."""
    for stream in streams:
        if stream.parent is None and EntityKind(stream.entity) is EntityKind.AD_ACCOUNT:
            return stream
    return None


def select(streams: Mapping[str, Stream], names: Iterable[str] | None) -> list[Stream]:
    """The streams to run, in order: ``names`` (with their ancestors) or all of them."""
    everything = ordered(streams)
    if names is None:
        return everything
    wanted = set(names)
    unknown = sorted(wanted - set(streams))
    if unknown:
        raise UsageError(f"no stream {unknown[0]!r}; streams are: {', '.join(sorted(streams))}")
    keep = set()
    for name in wanted:
        current: str | None = name
        while current is not None and current not in keep:
            keep.add(current)
            current = streams[current].parent
    return [s for s in everything if s.name in keep]


@attrs.define(eq=False)
class Unit:
    """One stream for one account (``account`` None for a root stream)."""

    stream: Stream
    account: Mapping[str, Any] | None
    done: asyncio.Event = attrs.field(factory=asyncio.Event)
    failed: bool = False

    @property
    def account_id(self) -> str | None:
        return None if self.account is None else str(self.account["external_id"])

    @property
    def label(self) -> str:
        return f"{self.stream.name}:{self.account_id}" if self.account_id else self.stream.name


def units(
    streams: list[Stream], accounts: list[Mapping[str, Any]], *, root: str | None
) -> list[Unit]:
    """The units of the non-root streams, account by account, parents before children."""
    children = [s for s in streams if s.parent is not None]
    out: list[Unit] = []
    for account in accounts:
        for stream in children:
            out.append(Unit(stream=stream, account=account))
    return out


def parent_unit(
    unit: Unit, by_key: Mapping[tuple[str, str | None], Unit], root: str | None
) -> Unit | None:
    """The unit ``unit`` waits for: its parent stream for the same account (not the root)."""
    parent = unit.stream.parent
    if parent is None or parent == root:
        return None
    return by_key.get((parent, unit.account_id))
