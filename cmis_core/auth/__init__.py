"""Auth flows plugins build on. ``OAuth2Provider`` (``cmis_core.auth.oauth2``) is the first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["OAuth2Provider"]

if TYPE_CHECKING:
    from cmis_core.auth.oauth2 import OAuth2Provider


def __getattr__(name: str) -> Any:
    if name == "OAuth2Provider":
        from cmis_core.auth.oauth2 import OAuth2Provider

        return OAuth2Provider
    raise AttributeError(f"module 'cmis_core.auth' has no attribute {name!r}")
