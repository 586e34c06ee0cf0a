"""Auth flows plugins build on, and the flows the core runs with them.

- :class:`OAuth2Provider` (``cmis_core.auth.oauth2``) and :class:`OAuth1Provider`
  (``cmis_core.auth.oauth1``): base classes for platform auth providers.
- ``cmis_core.auth.connect``: connect (OAuth consent or an existing token) and disconnect.
- ``cmis_core.auth.tokens``: fresh tokens for the work, single-flight refresh, the runner's
  ``refresh_due``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["OAuth1Provider", "OAuth2Provider"]

if TYPE_CHECKING:
    from cmis_core.auth.oauth1 import OAuth1Provider
    from cmis_core.auth.oauth2 import OAuth2Provider


def __getattr__(name: str) -> Any:
    if name == "OAuth2Provider":
        from cmis_core.auth.oauth2 import OAuth2Provider

        return OAuth2Provider
    if name == "OAuth1Provider":
        from cmis_core.auth.oauth1 import OAuth1Provider

        return OAuth1Provider
    raise AttributeError(f"module 'cmis_core.auth' has no attribute {name!r}")
