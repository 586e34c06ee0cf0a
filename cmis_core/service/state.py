"""What every route of the service shares: settings, the store, the plugin registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def state_of(request: Request) -> ServiceState:
    """The :class:`ServiceState` of the app serving ``request``."""
    state: ServiceState = request.app.state.cmis
    return state


__all__ = ["ServiceState", "run_in_threadpool", "state_of"]
