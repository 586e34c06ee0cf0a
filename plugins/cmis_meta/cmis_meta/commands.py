"""``cmis meta subscribe``: the app's webhook subscriptions and each object's ``subscribed_apps``.

Three calls, as Meta documents them: ``POST /{app-id}/subscriptions`` (app token) for the
``page`` object (field ``leadgen``) and the ``ad_account`` object (the ad-object fields),
with the callback URL and verify token; then ``POST /{page-id}/subscribed_apps
?subscribed_fields=leadgen`` with each page's token and ``POST /act_<id>/subscribed_apps``
for each ad account, with the integration's token (read from stdin: ``--token-stdin``).
"""

from __future__ import annotations

import sys
from typing import Any

import click

AD_ACCOUNT_FIELDS = (
    "with_issues_ad_objects,in_process_ad_objects,ad_recommendations,creative_fatigue"
)


async def subscribe(
    ctx: Any, *, callback_url: str, user_token: str | None, accounts: tuple[str, ...]
) -> dict[str, list[str]]:
    """Set up the subscriptions; returns what was subscribed (ids, never tokens)."""
    from cmis_core.sync.paging import request_json
    from cmis_meta.client import MetaAuth, app_token, graph_url

    settings = ctx.settings
    client_id, secret = settings.client_id, settings.client_secret
    verify = settings.require("WEBHOOK_VERIFY_TOKEN", "Meta sends it back in the handshake")
    app_headers = {"Authorization": f"Bearer {app_token(client_id, secret)}"}
    done: dict[str, list[str]] = {"objects": [], "pages": [], "ad_accounts": []}
    for obj, fields in (("page", "leadgen"), ("ad_account", AD_ACCOUNT_FIELDS)):
        await request_json(
            ctx,
            "POST",
            graph_url(ctx, f"{client_id}/subscriptions"),
            params={
                "object": obj,
                "callback_url": callback_url,
                "fields": fields,
                "verify_token": verify,
            },
            headers=app_headers,
        )
        done["objects"].append(obj)
    if user_token is None:
        return done
    auth = MetaAuth(user_token, secret)
    pages = await request_json(
        ctx,
        "GET",
        graph_url(ctx, "me/accounts"),
        params={"fields": "id,access_token", "limit": 100},
        headers={"Authorization": f"Bearer {user_token}"},
    )
    for page in (pages or {}).get("data") or []:
        page_auth = MetaAuth(str(page["access_token"]), secret)
        response = await ctx.http.post(
            graph_url(ctx, f"{page['id']}/subscribed_apps"),
            params={"subscribed_fields": "leadgen"},
            auth=page_auth,
        )
        _raise(response)
        done["pages"].append(str(page["id"]))
    for account in accounts:
        response = await ctx.http.post(
            graph_url(ctx, f"{account}/subscribed_apps"), params={"app_id": client_id}, auth=auth
        )
        _raise(response)
        done["ad_accounts"].append(account)
    return done


def _raise(response: Any) -> None:
    from cmis_meta.client import classify

    error = classify(response)
    if error is not None:
        raise error


@click.group(name="meta")
def meta_group() -> None:
    """Meta (Facebook and Instagram) commands."""


@meta_group.command(name="subscribe")
@click.option("--callback-url", required=True, help="Public URL of /webhooks/meta.")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read a user token from stdin to subscribe pages and ad accounts.",
)
@click.option("--ad-account", "accounts", multiple=True, help="act_<id> to subscribe (repeatable).")
def subscribe_command(callback_url: str, token_stdin: bool, accounts: tuple[str, ...]) -> None:
    """Subscribe the app to lead and ad-account webhooks, then each page and ad account."""
    import asyncio

    from cmis_core.factory import get_registry
    from cmis_core.http import HttpHub
    from cmis_core.settings import Settings

    token = sys.stdin.readline().strip() if token_stdin else None
    registry = get_registry()
    settings = Settings.from_env()

    async def run() -> dict[str, list[str]]:
        async with HttpHub.from_settings(settings) as hub:
            ctx = hub.context(registry.platform("meta"), settings.platform("meta"))
            return await subscribe(
                ctx, callback_url=callback_url, user_token=token, accounts=accounts
            )

    done = asyncio.run(run())
    click.echo(
        f"subscribed objects: {', '.join(done['objects'])}; pages: {len(done['pages'])}; "
        f"ad accounts: {len(done['ad_accounts'])}"
    )
