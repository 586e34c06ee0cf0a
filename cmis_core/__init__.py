"""cmis core: the plugin contract, storage, auth, webhooks and sync for ad platforms.

Public names are exported lazily, so ``import cmis_core`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cmis_core.markers import hookimpl

__all__ = [
    "AuthProvider",
    "AuthorizationRequest",
    "Capability",
    "EntityKind",
    "EntityStatus",
    "Identity",
    "IntegrationEvent",
    "IntegrationStatus",
    "Page",
    "Partition",
    "Platform",
    "PlatformContext",
    "RateLimitPolicy",
    "Sandbox",
    "SandboxOptions",
    "Stream",
    "SyncFinishedEvent",
    "TokenSet",
    "UsageReading",
    "WebhookEvent",
    "WebhookExpander",
    "WebhookProcessedEvent",
    "WebhookRequest",
    "WebhookResponse",
    "WebhookVerifier",
    "errors",
    "hookimpl",
]

_WHERE = {
    "AuthProvider": "cmis_core.contract",
    "Page": "cmis_core.contract",
    "Partition": "cmis_core.contract",
    "Sandbox": "cmis_core.contract",
    "SandboxOptions": "cmis_core.contract",
    "Stream": "cmis_core.contract",
    "WebhookExpander": "cmis_core.contract",
    "WebhookVerifier": "cmis_core.contract",
    "errors": "cmis_core",
}

if TYPE_CHECKING:
    from cmis_core import errors
    from cmis_core.contract import (
        AuthProvider,
        Page,
        Partition,
        Sandbox,
        SandboxOptions,
        Stream,
        WebhookExpander,
        WebhookVerifier,
    )
    from cmis_core.types import (
        AuthorizationRequest,
        Capability,
        EntityKind,
        EntityStatus,
        Identity,
        IntegrationEvent,
        IntegrationStatus,
        Platform,
        PlatformContext,
        RateLimitPolicy,
        SyncFinishedEvent,
        TokenSet,
        UsageReading,
        WebhookEvent,
        WebhookProcessedEvent,
        WebhookRequest,
        WebhookResponse,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'cmis_core' has no attribute {name!r}")
    if name == "errors":
        return importlib.import_module("cmis_core.errors")
    module = importlib.import_module(_WHERE.get(name, "cmis_core.types"))
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
