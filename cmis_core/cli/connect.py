"""`cmis connect` and `cmis disconnect`: connect a platform from the terminal, or let it go.

``cmis connect PLATFORM --org ORG`` prints the consent URL, listens once on the loopback
redirect URI for the platform's redirect, and completes the flow. ``--code`` skips the
listener: paste the code (or the whole URL the browser was sent to) when asked.
``--token-stdin`` connects with an existing token read from stdin (a Meta system-user
token, a TikTok long-term token), checked against the platform before it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import click

from cmis_core.errors import ExitCode, OAuthFlowError, UsageError

if TYPE_CHECKING:  # kept out of `cmis --help`
    from cmis_core.auth.connect import Connected, ConnectStart

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


@attrs.frozen
class CliContext:
    """What a command needs: settings, store, vault, registry and the organisation."""

    settings: Any
    store: Any
    vault: Any
    registry: Any
    org: Any

    def args(self) -> tuple[Any, Any, Any, Any]:
        return (self.store, self.vault, self.registry, self.settings)


@contextlib.contextmanager
def opened(org: str | None) -> Iterator[CliContext]:
    """Open settings, store, vault and registry for organisation ``org`` (or CMIS_ORG)."""
    from cmis_core.cli.keys import load_vault
    from cmis_core.factory import get_registry
    from cmis_core.settings import Settings
    from cmis_core.store import open_store

    settings = Settings.from_env()
    slug = settings.require_org(org)
    with open_store(settings) as store:
        found = store.get_org(slug)
        yield CliContext(settings, store, load_vault(settings), get_registry(), found)


def expires_in(when: Any, now: Any = None) -> str:
    """``in 59m``, ``in 3d``, ``expired 2h ago`` or ``never``."""
    import datetime as dt

    if when is None:
        return "never"
    now = now or dt.datetime.now(dt.UTC)
    seconds = int((when - now).total_seconds())
    span = abs(seconds)
    if span < 3600:
        text = f"{max(span // 60, 0)}m"
    elif span < 86400 * 2:
        text = f"{span // 3600}h"
    else:
        text = f"{span // 86400}d"
    return f"in {text}" if seconds > 0 else f"expired {text} ago"


def describe(connected: Connected) -> str:
    info = connected.integration
    verb = "reconnected" if connected.replaced else "connected"
    who = info.account or "an unnamed account"
    scopes = ", ".join(info.scopes) or "none reported"
    return (
        f"{verb} {info.platform} for {connected.org} as {who}; scopes: {scopes}; "
        f"token expires: {expires_in(info.access_expires_at)}"
    )


def _report(connected: Connected) -> int:
    click.echo(describe(connected))
    for warning in connected.warnings:
        click.echo(f"warning: {warning}", err=True)
    return int(ExitCode.OK)


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS and bool(parts.port)


def _pick_redirect(settings: Any, platform: str, wanted: str | None, listen: bool) -> str:
    from cmis_core.auth.states import allowed_redirect_uris, check_redirect_uri

    if wanted is not None:
        chosen = check_redirect_uri(settings, platform, wanted)
        if listen and not _is_loopback(chosen):
            raise UsageError(
                "cmis connect can only listen on a loopback redirect URI "
                "(http://127.0.0.1:PORT/...)",
                hint="pass --code to paste the code instead",
            )
        return chosen
    allowed = allowed_redirect_uris(settings, platform)
    if not listen:
        return allowed[0]
    for uri in allowed:
        if _is_loopback(uri):
            return uri
    raise UsageError(
        "no loopback redirect URI is allowed to listen on",
        hint="add http://127.0.0.1:PORT/oauth/callback/<platform> to CMIS_OAUTH_REDIRECT_URIS, "
        "or pass --code to paste the code",
    )


def pasted_params(text: str, start: ConnectStart) -> dict[str, str]:
    """The callback parameters from what the user pasted: a URL, a query, or the code."""
    text = text.strip()
    if not text:
        raise OAuthFlowError("nothing was pasted")
    if "=" in text:
        query = urlsplit(text).query if "://" in text else text.lstrip("?")
        return dict(parse_qsl(query))
    if start.flow == "oauth1":
        return {"oauth_token": start.state_key, "oauth_verifier": text}
    return {"code": text, "state": start.state}


_DONE_PAGE = (
    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
    "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: {length}\r\n\r\n"
)


class CallbackListener:
    """Listens once on a loopback redirect URI; hands over the callback's query."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self.host = (parts.hostname or "127.0.0.1").strip("[]")
        self.port = int(parts.port or 80)
        self.path = parts.path or "/"
        self.params: asyncio.Future[dict[str, str]] | None = None
        self.answer: asyncio.Future[tuple[str, str]] | None = None
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CallbackListener:
        loop = asyncio.get_running_loop()
        self.params = loop.create_future()
        self.answer = loop.create_future()
        try:
            self.server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host}:{self.port} ({exc.strerror})",
                hint="stop what uses that port (`cmis serve`?), choose another "
                "--redirect-uri, or pass --code",
            ) from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from cmis_core.service.oauth_routes import page

        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = [*line.split(" "), "", ""][:3]
            parts = urlsplit(target)
            assert self.params is not None and self.answer is not None
            if method != "GET" or parts.path != self.path or self.params.done():
                response = page("Not found", "This is not the callback cmis waits for.", 404)
            else:
                self.params.set_result(dict(parse_qsl(parts.query)))
                title, body = await self.answer
                response = page(title, body, 200 if "connected" in title else 400)
            payload = bytes(response.body)
            status = "200 OK" if response.status_code == 200 else f"{response.status_code} Error"
            writer.write(_DONE_PAGE.format(status=status, length=len(payload)).encode() + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()


async def _connect_flow(
    ctx: CliContext,
    platform: str,
    *,
    redirect_uri: str | None,
    scopes: tuple[str, ...],
    paste: bool,
    wait_seconds: float,
) -> Connected:
    from cmis_core.auth import connect as flows
    from cmis_core.auth.tokens import new_http_client

    uri = _pick_redirect(ctx.settings, platform, redirect_uri, listen=not paste)
    async with new_http_client(ctx.settings) as http:
        if paste:
            start = await flows.begin_connect(
                *ctx.args(),
                org_id=ctx.org.id,
                platform=platform,
                http=http,
                redirect_uri=uri,
                scopes=scopes or None,
            )
            click.echo("Open this URL, approve, then paste the code or the URL you land on:")
            click.echo(start.auth_url)
            text = await asyncio.to_thread(click.prompt, "code or URL")
            return await flows.complete_connect(
                *ctx.args(),
                platform=platform,
                params=pasted_params(text, start),
                http=http,
                org_id=ctx.org.id,
            )
        async with CallbackListener(uri) as listener:
            start = await flows.begin_connect(
                *ctx.args(),
                org_id=ctx.org.id,
                platform=platform,
                http=http,
                redirect_uri=uri,
                scopes=scopes or None,
            )
            click.echo("Open this URL in a browser and approve:")
            click.echo(start.auth_url)
            click.echo(f"waiting for the redirect on {uri} ...", err=True)
            assert listener.params is not None and listener.answer is not None
            try:
                params = await asyncio.wait_for(listener.params, wait_seconds)
            except TimeoutError:
                raise OAuthFlowError(
                    f"no redirect arrived within {int(wait_seconds)}s; start again"
                ) from None
            try:
                connected = await flows.complete_connect(
                    *ctx.args(), platform=platform, params=params, http=http, org_id=ctx.org.id
                )
            except Exception as exc:
                from cmis_core.errors import CmisError
                from cmis_core.redaction import redact_text

                why = exc.message if isinstance(exc, CmisError) else "an unexpected error"
                listener.answer.set_result(("Connection failed", redact_text(why)))
                await asyncio.sleep(0.2)  # let the browser get its page
                raise
            listener.answer.set_result(
                (f"{platform} connected", describe(connected) + ". You can close this window.")
            )
            await asyncio.sleep(0.2)
            return connected


@click.command("connect")
@click.argument("platform")
@click.option("--org", help="Organisation slug (default: CMIS_ORG).")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Connect with an existing access token read from stdin (checked first).",
)
@click.option(
    "--code",
    "paste",
    is_flag=True,
    help="Do not listen for the redirect: paste the code (or the URL) when asked.",
)
@click.option("--redirect-uri", help="An allowed redirect URI (default: from CMIS_PUBLIC_URL).")
@click.option("--scope", "scopes", multiple=True, help="A scope to ask for (repeatable).")
@click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait for the redirect."
)
def connect(
    platform: str,
    org: str | None,
    token_stdin: bool,
    paste: bool,
    redirect_uri: str | None,
    scopes: tuple[str, ...],
    timeout: float,
) -> int:
    """Connect PLATFORM for an organisation (OAuth consent, or an existing token)."""
    with opened(org) as ctx:
        ctx.registry.auth_provider(platform)  # a clear error for an unknown platform first
        if token_stdin:
            token = sys.stdin.read()
            return _report(asyncio.run(_with_token(ctx, platform, token)))
        connected = asyncio.run(
            _connect_flow(
                ctx,
                platform,
                redirect_uri=redirect_uri,
                scopes=scopes,
                paste=paste,
                wait_seconds=timeout,
            )
        )
        return _report(connected)


async def _with_token(ctx: CliContext, platform: str, token: str) -> Connected:
    from cmis_core.auth import connect as flows
    from cmis_core.auth.tokens import new_http_client

    async with new_http_client(ctx.settings) as http:
        return await flows.connect_with_token(
            *ctx.args(), org_id=ctx.org.id, platform=platform, access_token=token, http=http
        )


@click.command("disconnect")
@click.argument("platform")
@click.option("--org", help="Organisation slug (default: CMIS_ORG).")
@click.option("--purge", is_flag=True, help="Also delete the data synced from PLATFORM.")
@click.option("--yes", is_flag=True, help="Do not ask before purging.")
def disconnect(platform: str, org: str | None, purge: bool, yes: bool) -> int:
    """Revoke PLATFORM's grant (where it can be) and delete its credentials."""
    from cmis_core.auth import connect as flows
    from cmis_core.auth.tokens import new_http_client

    with opened(org) as ctx:
        if purge and not yes:
            click.confirm(f"delete every {platform} record of {ctx.org.slug} as well?", abort=True)

        async def run() -> flows.Disconnected:
            async with new_http_client(ctx.settings) as http:
                return await flows.disconnect(
                    *ctx.args(), org_id=ctx.org.id, platform=platform, http=http, purge=purge
                )

        done = asyncio.run(run())
    if done.revoked:
        revoked = "grant revoked at the platform"
    elif done.revoke_error:
        revoked = f"revocation failed ({done.revoke_error})"
    elif done.revoked is None:
        revoked = "no credentials were stored"
    else:
        revoked = f"{platform} offers no revocation"
    data = f"{done.rows_deleted} synced rows deleted" if purge else "synced data kept"
    click.echo(f"disconnected {platform} for {done.org}: {revoked}; credentials deleted; {data}")
    if done.revoke_error:
        click.echo("warning: remove the app in the platform's settings to end the grant", err=True)
    return int(ExitCode.OK)
