"""What every route of the service shares: settings, the store, the plugin registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

if TYPE_CHECKING:
    from cmis_core.factory import Registry
    from cmis_core.settings import Settings
    from cmis_core.store import Store


@attrs.frozen(kw_only=True)
class ServiceState:
    """Built once per app by :func:`cmis_core.service.app.create_app`."""

    settings: Settings
    store: Store = attrs.field(repr=False)
    registry: Registry = attrs.field(repr=False)
    # what route modules share (the webhook receiver, its metrics), by name
    shared: dict[str, Any] = attrs.field(factory=dict, repr=False)
    # awaited when the app shuts down (close writers and pools), in order
    on_shutdown: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list, repr=False)


def state_of(request: Request) -> ServiceState:
    """The :class:`ServiceState` of the app serving ``request``."""
    state: ServiceState = request.app.state.cmis
    return state


__all__ = ["ServiceState", "run_in_threadpool", "state_of"]
