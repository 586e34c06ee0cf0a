"""OAuth states: single use, expiring, bound to org, platform and redirect URI; redirect URIs.

A state is 32 random bytes (256 bits) sent to the platform; only its SHA-256 is stored.
What the callback needs back (the PKCE verifier or the OAuth 1.0a request-token secret,
the scopes asked for) is sealed by the vault, bound to the state's hash. The callback
consumes a state with a compare-and-set on ``used_at``: of two callbacks racing with the
same state, one wins.

Redirect URIs are those built from ``CMIS_PUBLIC_URL`` (``/oauth/callback/<platform>``) or
listed in ``CMIS_OAUTH_REDIRECT_URIS``, compared as exact strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence

import attrs
from sqlalchemy import Connection, delete, insert, select, update

from cmis_core.errors import OAuthFlowError, UsageError
from cmis_core.settings import Settings
from cmis_core.store import tables
from cmis_core.types import AuthorizationRequest, utcnow
from cmis_core.vault import Sealed, Vault

_S = tables.oauth_states
STATE_BYTES = 32
CALLBACK_PATH = "/oauth/callback/{platform}"
_PURGE_AFTER = dt.timedelta(days=1)


def callback_uri(settings: Settings, platform: str) -> str:
    """The redirect URI of ``platform`` under ``CMIS_PUBLIC_URL``."""
    return settings.public_url + CALLBACK_PATH.format(platform=platform)


def allowed_redirect_uris(settings: Settings, platform: str) -> tuple[str, ...]:
    """Every redirect URI a connect flow for ``platform`` may use, the default first."""
    extra = tuple(u for u in settings.oauth_redirect_uris if u != callback_uri(settings, platform))
    return (callback_uri(settings, platform), *extra)


def check_redirect_uri(settings: Settings, platform: str, redirect_uri: str | None) -> str:
    """``redirect_uri`` if it is allowed (exact match); the default one when ``None``."""
    allowed = allowed_redirect_uris(settings, platform)
    if redirect_uri is None:
        return allowed[0]
    if redirect_uri not in allowed:
        raise UsageError(
            "that redirect URI is not allowed",
            hint="use one built from CMIS_PUBLIC_URL (/oauth/callback/<platform>) "
            "or list it in CMIS_OAUTH_REDIRECT_URIS",
        )
    return redirect_uri


def new_state() -> str:
    """A fresh state: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(STATE_BYTES)


def state_hash(state: str) -> str:
    """The hex SHA-256 stored in place of the state."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _context(hashed: str) -> tuple[str, ...]:
    return ("oauth_state", hashed)


@attrs.frozen(kw_only=True)
class PendingConnect:
    """A consumed state: who is connecting what, and what the callback needs to complete."""

    org_id: int
    platform: str
    redirect_uri: str
    request: AuthorizationRequest = attrs.field(repr=False)
    scopes: tuple[str, ...] = ()


def save_state(
    conn: Connection,
    vault: Vault,
    *,
    key: str,
    org_id: int,
    platform: str,
    redirect_uri: str,
    request: AuthorizationRequest,
    scopes: Sequence[str],
    ttl: int,
    now: dt.datetime | None = None,
) -> dt.datetime:
    """Store the state ``key`` (hashed) for a flow just begun; returns when it expires.

    Also deletes states that expired more than a day ago. ``conn`` is a system transaction.
    """
    now = now or utcnow()
    hashed = state_hash(key)
    blob = json.dumps(
        {"verifier": request.verifier, "extra": dict(request.extra), "scopes": list(scopes)}
    ).encode("utf-8")
    sealed = vault.encrypt(blob, context=_context(hashed))
    expires_at = now + dt.timedelta(seconds=ttl)
    conn.execute(delete(_S).where(_S.c.expires_at < now - _PURGE_AFTER))
    conn.execute(
        insert(_S).values(
            state_hash=hashed,
            org_id=org_id,
            platform=platform,
            redirect_uri=redirect_uri,
            key_id=sealed.key_id,
            verifier_ciphertext=sealed.ciphertext,
            expires_at=expires_at,
        )
    )
    return expires_at


def consume_state(
    conn: Connection,
    vault: Vault,
    *,
    key: str | None,
    platform: str,
    now: dt.datetime | None = None,
) -> PendingConnect:
    """Take the state ``key`` for a callback of ``platform``, once; raises OAuthFlowError.

    Refused: a missing or unknown state, one for another platform, one already used, one
    expired. A state for another platform is left unused (it may still complete its own
    flow); every other refusal leaves nothing to reuse. ``conn`` is a system transaction.
    """
    if not key:
        raise OAuthFlowError(
            "the callback carries no state; start again with connect",
        )
    now = now or utcnow()
    hashed = state_hash(key)
    row = conn.execute(select(_S).where(_S.c.state_hash == hashed)).first()
    if row is None:
        raise OAuthFlowError("unknown state: this connect link is not one cmis issued")
    if row.platform != platform:
        raise OAuthFlowError(
            f"this state was issued for {row.platform}, not {platform}; start again with connect"
        )
    if row.used_at is not None:
        raise OAuthFlowError("this connect link was already used; start again with connect")
    if row.expires_at <= now:
        raise OAuthFlowError("this connect link has expired; start again with connect")
    taken = conn.execute(
        update(_S).where(_S.c.id == row.id, _S.c.used_at.is_(None)).values(used_at=now)
    )
    if taken.rowcount != 1:
        raise OAuthFlowError("this connect link was already used; start again with connect")
    data: dict[str, object] = {}
    if row.verifier_ciphertext is not None and row.key_id is not None:
        plain = vault.decrypt(
            Sealed(key_id=row.key_id, ciphertext=bytes(row.verifier_ciphertext)),
            context=_context(hashed),
        )
        data = json.loads(plain)
    verifier = data.get("verifier")
    extra = data.get("extra") or {}
    scopes = data.get("scopes") or ()
    return PendingConnect(
        org_id=int(row.org_id),
        platform=row.platform,
        redirect_uri=row.redirect_uri,
        request=AuthorizationRequest(
            url="",
            verifier=verifier if isinstance(verifier, str) else None,
            extra={str(k): str(v) for k, v in dict(extra).items()},  # type: ignore[call-overload]
        ),
        scopes=tuple(str(s) for s in scopes),  # type: ignore[attr-defined]
    )
