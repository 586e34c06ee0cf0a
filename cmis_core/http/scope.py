"""Who a request is for: the ad account it counts against, and how to refresh its token.

The sync engine sets the scope around a unit of work with :func:`http_scope`; plugin call
sites stay plain httpx2 calls. A single request can name its account itself with the
``cmis.account`` request extension::

    await ctx.http.get(url, params=params, extensions={ACCOUNT: "act_1"})

and ask for a long answer's body as it arrives with ``cmis.stream`` (:data:`STREAM`).
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Literal

import attrs
import httpx2

if TYPE_CHECKING:
    from cmis_core.http.counters import Counters

ACCOUNT = "cmis.account"
"""Request extension naming the ad account a call counts against (overrides the scope)."""

STREAM = "cmis.stream"
"""Request extension asking for a successful answer's body as it arrives (with
``ctx.http.stream(...)``) instead of read whole. An error answer is still read whole and
classified; a 2xx answer is not classified (its body is not read yet) and is not retried
once handed over: a failure while its body is read raises
:class:`~cmis_core.errors.Transient` from the body's iterator."""

TokenRefresher = Callable[[httpx2.Request], Awaitable[httpx2.Request | None]]
"""Called once when a request's token is rejected: the request re-signed with fresh
credentials, or ``None`` when there are none (the TokenRejected then propagates)."""


@attrs.frozen(kw_only=True)
class HttpScope:
    """The scope requests run in: account, token refresher, and a run's own counters."""

    account: str | None = None
    on_token_rejected: TokenRefresher | None = attrs.field(default=None, repr=False)
    counters: Counters | None = attrs.field(default=None, repr=False)


_EMPTY = HttpScope()
_SCOPE: contextvars.ContextVar[HttpScope | None] = contextvars.ContextVar(
    "cmis_http_scope", default=None
)


class _Keep(enum.Enum):
    KEEP = enum.auto()


_KEEP = _Keep.KEEP


def current_scope() -> HttpScope:
    """The scope of the running task."""
    return _SCOPE.get() or _EMPTY


@contextlib.contextmanager
def http_scope(
    *,
    account: str | Literal[_Keep.KEEP] | None = _KEEP,
    on_token_rejected: TokenRefresher | Literal[_Keep.KEEP] | None = _KEEP,
    counters: Counters | Literal[_Keep.KEEP] | None = _KEEP,
) -> Iterator[HttpScope]:
    """Run the block's requests in a scope; unnamed fields keep the enclosing scope's value.

    Tasks started inside the block inherit it (contextvars).
    """
    outer = current_scope()
    scope = HttpScope(
        account=outer.account if account is _KEEP else account,
        on_token_rejected=(
            outer.on_token_rejected if on_token_rejected is _KEEP else on_token_rejected
        ),
        counters=outer.counters if counters is _KEEP else counters,
    )
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def replace_token(request: httpx2.Request, old: str, new: str) -> httpx2.Request:
    """A copy of ``request`` with the access token ``old`` replaced by ``new``.

    Replaces it in the ``Authorization`` header and in any query parameter whose value is
    ``old`` (Meta's ``access_token``). Signatures derived from the token (Meta's
    ``appsecret_proof``) are the caller's to recompute.
    """
    headers = httpx2.Headers(request.headers)
    auth = headers.get("authorization")
    if auth is not None and old in auth:
        headers["authorization"] = auth.replace(old, new)
    params = [(k, new if v == old else v) for k, v in request.url.params.multi_items()]
    url = request.url.copy_with(params=params) if params else request.url
    return httpx2.Request(
        request.method,
        url,
        headers=headers,
        content=request.read(),
        extensions=dict(request.extensions),
    )
