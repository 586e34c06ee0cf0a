"""Grants and the tokens issued on them, as a fake authorization server keeps them.

A :class:`Grant` is one user's consent to one client: it owns the current refresh token
and every access token issued from it. Revoking the grant (or using a rotated refresh
token again, when ``revoke_on_reuse``) kills them all. Tokens are opaque random strings.
"""

from __future__ import annotations

import enum
import secrets

import attrs

from cmis_core.testing.sandbox.clock import Clock


class TokenProblem(enum.StrEnum):
    """Why a presented access token is refused."""

    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@attrs.define
class Grant:
    """One user's consent: scopes, and whether it still stands."""

    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@attrs.define
class AccessToken:
    """An issued access token (the token string is the key it is stored under)."""

    grant_id: str
    expires_at: float | None
    revoked: bool = False


@attrs.define
class RefreshToken:
    """An issued refresh token; ``used`` once it has been rotated away."""

    grant_id: str
    expires_at: float | None
    used: bool = False


class TokenRefused(Exception):
    """An access token check failed; ``problem`` says why."""

    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(f"access token {problem}")
        self.problem = problem


def new_token(prefix: str) -> str:
    """An opaque, unguessable token string."""
    return f"{prefix}{secrets.token_urlsafe(24)}"


@attrs.define
class TokenStore:
    """Every grant, access token and refresh token a sandbox has issued."""

    clock: Clock = attrs.field(factory=Clock)
    grants: dict[str, Grant] = attrs.field(factory=dict)
    access: dict[str, AccessToken] = attrs.field(factory=dict)
    refresh: dict[str, RefreshToken] = attrs.field(factory=dict)

    def new_grant(self, *, client_id: str, user_id: str, scopes: tuple[str, ...]) -> Grant:
        grant = Grant(new_token("g_"), client_id, user_id, scopes)
        self.grants[grant.grant_id] = grant
        return grant

    def issue_access(self, grant: Grant, ttl: int | None) -> str:
        token = new_token("sbx_at_")
        expires = None if ttl is None else self.clock.now() + ttl
        self.access[token] = AccessToken(grant.grant_id, expires)
        return token

    def issue_refresh(self, grant: Grant, ttl: int | None) -> str:
        token = new_token("sbx_rt_")
        expires = None if ttl is None else self.clock.now() + ttl
        self.refresh[token] = RefreshToken(grant.grant_id, expires)
        return token

    def check(self, token: str | None) -> Grant:
        """The grant behind a presented access token; raises :class:`TokenRefused`."""
        if not token:
            raise TokenRefused(TokenProblem.MISSING)
        record = self.access.get(token)
        if record is None:
            raise TokenRefused(TokenProblem.INVALID)
        grant = self.grants[record.grant_id]
        if record.revoked or grant.revoked:
            raise TokenRefused(TokenProblem.REVOKED)
        if record.expires_at is not None and record.expires_at <= self.clock.now():
            raise TokenRefused(TokenProblem.EXPIRED)
        return grant

    def expire(self, token: str | None = None) -> int:
        """Expire one access token (or all of them); returns how many were live."""
        count = 0
        now = self.clock.now()
        for key, record in self.access.items():
            if token is not None and key != token:
                continue
            if record.expires_at is None or record.expires_at > now:
                count += 1
            record.expires_at = now - 1
        return count

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke a grant: its refresh token and every access token die with it."""
        grant = self.grants.get(grant_id)
        if grant is not None:
            grant.revoked = True

    def revoke(self, token: str | None = None) -> int:
        """Revoke the grant behind ``token`` (access or refresh), or every grant."""
        if token is None:
            live = [g for g in self.grants.values() if not g.revoked]
            for grant in live:
                grant.revoked = True
            return len(live)
        record = self.access.get(token) or self.refresh.get(token)
        if record is None or self.grants[record.grant_id].revoked:
            return 0
        self.revoke_grant(record.grant_id)
        return 1

    def live_grants(self) -> int:
        return sum(1 for g in self.grants.values() if not g.revoked)
