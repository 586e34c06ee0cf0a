"""The shapes of the objects plugins return from the capability hooks.

The hooks (``hookspecs.py``) only say *which* objects a plugin offers; these protocols say
what those objects do. The core calls them directly, never through pluggy, so a call's
signature can grow keyword arguments without touching the hooks. I/O methods are async and
receive a :class:`~cmis_core.types.PlatformContext` carrying the shared HTTP client:
plugins never build their own client.

Base classes that implement most of a protocol for the common cases live in
``cmis_core.auth`` (OAuth 2, OAuth 1.0a), ``cmis_core.webhooks`` (HMAC verifiers) and
``cmis_core.sync`` (paged streams).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from cmis_core.types import (
    AuthorizationRequest,
    EntityKind,
    Identity,
    PlatformContext,
    TokenSet,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)

if TYPE_CHECKING:
    import httpx2

    from cmis_core.settings import PlatformSettings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@runtime_checkable
class AuthProvider(Protocol):
    """Connects an organisation to a platform and keeps its tokens fresh.

    ``flow`` is ``"oauth2"`` or ``"oauth1"``. OAuth 2 with PKCE keeps the code verifier in
    :attr:`AuthorizationRequest.verifier`; OAuth 1.0a keeps the request-token secret there.
    Meta's long-lived exchange happens inside ``complete`` (and ``refresh`` re-exchanges).

    Errors: a grant the platform refuses (``invalid_grant``, revoked, expired beyond
    exchange) raises :class:`~cmis_core.errors.ReauthRequired`; a failure that may pass
    (5xx, 429, timeout) raises :class:`~cmis_core.errors.Transient` or
    :class:`~cmis_core.errors.RateLimited`. Nothing else is retried.
    """

    @property
    def platform(self) -> str:
        """The platform slug."""
        ...

    @property
    def flow(self) -> str:
        """``"oauth2"`` or ``"oauth1"``."""
        ...

    async def begin(
        self,
        ctx: PlatformContext,
        *,
        redirect_uri: str,
        state: str,
        scopes: tuple[str, ...],
    ) -> AuthorizationRequest:
        """Build the URL to send the user to (fetching a request token first for OAuth 1.0a)."""
        ...

    async def complete(
        self,
        ctx: PlatformContext,
        *,
        params: Mapping[str, str],
        request: AuthorizationRequest,
        redirect_uri: str,
    ) -> TokenSet:
        """Exchange the callback's ``params`` (code, oauth_verifier, ...) for tokens."""
        ...

    async def refresh(self, ctx: PlatformContext, tokens: TokenSet) -> TokenSet:
        """New tokens from ``tokens``; keep a rotated refresh token if the platform sends one."""
        ...

    async def identify(self, ctx: PlatformContext, tokens: TokenSet) -> Identity:
        """Who the tokens belong to, their scopes and expiry; validates a pasted token."""
        ...

    async def revoke(self, ctx: PlatformContext, tokens: TokenSet) -> bool:
        """Revoke at the platform; ``False`` when the platform offers no revocation."""
        ...

    def http_auth(self, tokens: TokenSet) -> httpx2.Auth:
        """How API calls present ``tokens`` (a bearer header, an OAuth 1.0a signature, ...)."""
        ...


@runtime_checkable
class WebhookVerifier(Protocol):
    """Accepts a platform's webhook deliveries: handshake, signature, parsing.

    ``verify`` runs over the raw bytes with a constant-time compare and raises
    :class:`~cmis_core.errors.SignatureInvalid` (or another
    :class:`~cmis_core.errors.WebhookRejected`) when the delivery is not genuine.
    """

    @property
    def platform(self) -> str:
        """The platform slug."""
        ...

    def handshake(
        self, request: WebhookRequest, settings: PlatformSettings
    ) -> WebhookResponse | None:
        """Answer a subscription handshake (challenge, CRC), or ``None`` if this is none."""
        ...

    def verify(self, request: WebhookRequest, settings: PlatformSettings) -> None:
        """Raise unless ``request`` was signed by the platform."""
        ...

    def dedupe_key(self, request: WebhookRequest) -> str:
        """A key equal for redeliveries of the same delivery (an id, else a body hash)."""
        ...

    def parse(self, body: bytes) -> list[WebhookEvent]:
        """The events in a stored delivery; raise ``WebhookRejected`` if it is malformed."""
        ...

    def mask(self, body: bytes) -> bytes:
        """The body to store: secrets the platform puts in it (``google_key``) masked."""
        ...


@runtime_checkable
class WebhookExpander(Protocol):
    """Optional, on a :class:`WebhookVerifier`: fetch what an event only names.

    .. versionadded:: 0.1

    The inbox processor applies each parsed :class:`~cmis_core.types.WebhookEvent` of kind
    ``lead`` by storing the lead records it stands for. It finds them, in this order:

    1. ``expand(ctx, event)`` when the verifier has it: the records, fetched with ``ctx``
       (the shared client, authorised for the organisation and integration the event was
       routed to);
    2. ``event.payload["lead"]``: one record carried by the delivery itself (Google's lead
       forms);
    3. ``event.payload["sync_stream"]`` and ``["sync_params"]``: a targeted read of that
       stream of the plugin, one partition with those params (Meta's ``leadgen``: the
       ``leads`` stream reads ``{"lead_id": ...}``).

    Records are common-model lead records: ``external_id``, ``form_id``, ``ad_id``,
    ``ad_group_id``, ``campaign_id``, ``page_id``, ``created_time`` (a datetime, ISO text
    or unix seconds; ``created_at`` or ``submitted_at`` are read too), ``fields`` (the
    answers: personal data, never logged), ``is_test``; anything else is kept in ``raw``.
    Errors follow the auth contract: :class:`~cmis_core.errors.Transient` and
    :class:`~cmis_core.errors.RateLimited` are retried with back-off.
    """

    async def expand(self, ctx: PlatformContext, event: WebhookEvent) -> list[Mapping[str, Any]]:
        """The records ``event`` stands for (leads: one per lead named by the event)."""
        ...


@attrs.frozen(kw_only=True)
class Partition:
    """A unit of sync work whose rows and new state commit together.

    ``key`` is stable across runs (``act_1:2026-11-01..2026-11-07``); ``params`` are what
    the stream needs to read it (date range, watermark, parent id).
    """

    key: str
    account_id: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Page:
    """One page of mapped records, as the stream yields them.

    ``state``, when set, is stream state to commit with this page's records: a shallow
    merge into the stream's stored state (a ``None`` value removes the key), which
    ``partitions`` receives next time. A stream uses it to checkpoint mid-partition, e.g.
    an in-flight report job (``{"inflight:" + partition.key: {"report_run_id": ...}}``) so
    an interrupted run picks the job up instead of starting another, or a watermark.

    ``routes``, when set, are ``(kind, external_id)`` pairs this page makes known, so that
    webhook events about them reach this organisation and integration: ``kind`` is
    ``"page"``, ``"ad_account"``, ``"form"`` or ``"customer"``, the id in the form the
    plugin's webhook events use as ``route_id``. They are stored with the page's records.
    A stream uses them for objects it walks but does not store (Meta's pages and lead
    forms, Google's lead form assets): ad accounts and the ``page_id`` / ``form_id`` of
    lead records are routed without being listed here.

    .. versionadded:: 0.2 ``routes``
    """

    records: list[Mapping[str, Any]] = attrs.field(repr=lambda v: f"<{len(v)} records>")
    state: Mapping[str, Any] | None = None
    routes: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class Stream(Protocol):
    """One kind of record a platform syncs (campaigns, daily ad metrics, leads, ...).

    ``entity`` is the common-model table it fills; ``parent`` the stream whose records fan
    out to this one (``"ad_accounts"``), or ``None``. ``partitions`` splits the work given
    the stream's stored state; ``read`` yields pages of records already mapped onto the
    common model (money in integer micros), following the platform's paging to the end.

    Optional: ``concurrent_partitions(ctx) -> int``, how many of one account's partitions
    the engine may read at once (1 when absent); see :mod:`cmis_core.sync.in_order` for
    how their state is kept in order.
    """

    @property
    def platform(self) -> str:
        """The platform slug."""
        ...

    @property
    def name(self) -> str:
        """The stream's name, unique within its platform (``campaigns``)."""
        ...

    @property
    def entity(self) -> EntityKind:
        """The common-model table this stream fills."""
        ...

    @property
    def parent(self) -> str | None:
        """The stream whose records fan out to this one, or None."""
        ...

    def partitions(
        self, ctx: PlatformContext, *, account: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> Iterable[Partition]:
        """The partitions to read now, given what ``state`` says is done."""
        ...

    def read(self, ctx: PlatformContext, partition: Partition) -> AsyncIterator[Page]:
        """Every page of ``partition``, mapped; ends when the platform says there is no more."""
        ...


@attrs.frozen(kw_only=True)
class SandboxOptions:
    """How to build a sandbox: data size and seed, token lifetime, rate limits, latency."""

    seed: int = 1
    size: str = "small"
    token_ttl: int = 3600
    rate_limit: bool = True
    latency_ms: int = 0
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Sandbox:
    """A fake of a platform's API as an ASGI app, served on loopback by the core.

    ``app`` builds the app; ``env`` gives the settings that point the plugin at a sandbox
    served at ``base_url`` (``CMIS_<P>_API_URL`` and friends, client id and secret).
    """

    platform: str
    app: Callable[[SandboxOptions], ASGIApp] = attrs.field(eq=False)
    env: Callable[[str], dict[str, str]] = attrs.field(eq=False)
    description: str = ""
