"""Webhook handshake and subscription set-up against the sandbox."""

from __future__ import annotations

import pytest
from cmis_meta.commands import subscribe
from cmis_meta.webhooks import MetaWebhooks

from cmis_core.errors import WebhookRejected


async def test_handshake_needs_the_verify_token(control, ctx) -> None:
    request, _, body = await control.webhook_handshake()
    assert MetaWebhooks().handshake(request, ctx.settings).body == body
    wrong = type(request)(
        platform="meta",
        method="GET",
        path=request.path,
        query={**request.query, "hub.verify_token": "guess"},
    )
    with pytest.raises(WebhookRejected) as caught:
        MetaWebhooks().handshake(wrong, ctx.settings)
    assert caught.value.status == 403


async def test_redelivered_leads_share_a_dedupe_key(control) -> None:
    verifier = MetaWebhooks()
    lead, _ = await control.webhook_sample()  # the sandbox alternates: lead, then ad account
    (event,) = verifier.parse(lead.body)
    assert event.kind == "lead"
    rebatched = lead.body.replace(b'"time":', b'"time": ')  # a retry with other bytes
    assert verifier.dedupe_key(
        type(lead)(platform="meta", method="POST", path=lead.path, body=rebatched)
    ) == (f"leadgen:{event.external_id}")
    other, _ = await control.webhook_sample()
    assert verifier.dedupe_key(other).startswith("sha256:")


async def test_subscribe_sets_up_app_pages_and_ad_accounts(ctx, served, tokens) -> None:
    done = await subscribe(
        ctx,
        callback_url="https://cmis.example/webhooks/meta",
        user_token=tokens.access_token,
        accounts=("act_100000000",),
    )
    stats = (await ctx.http.get(served.base_url + "/_sandbox/meta/stats")).json()
    assert set(stats["subscriptions"]) == {"page", "ad_account"}
    assert stats["subscriptions"]["page"]["fields"][0]["name"] == "leadgen"
    assert set(stats["subscribed"]) == {*done["pages"], "act_100000000"}
    assert len(done["pages"]) == 2
