"""Streams against the sandbox: deleted ads, incremental reads, report runs resumed and split."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from cmis_meta.config import MetaConfig
from cmis_meta.insights import map_metric
from cmis_meta.streams import streams
from cmis_meta.webhooks import MetaWebhooks
from meta_helpers import read

from cmis_core import Partition
from cmis_core.errors import RateLimited, TokenRejected
from cmis_core.sync.windows import account_today

STREAMS = {s.name: s for s in streams()}


async def accounts(api):
    root = STREAMS["ad_accounts"]
    records, _ = await read(api, root, next(iter(root.partitions(api, account=None, state={}))))
    return records


async def one(api, name, account, state=None):
    stream = STREAMS[name]
    out, merged = [], dict(state or {})
    for partition in stream.partitions(api, account=account, state=merged):
        records, new = await read(api, stream, partition)
        out.extend(records)
        merged.update(new)
    return out, merged


async def stats(api, served):
    return (await api.http.get(served.base_url + "/_sandbox/meta/stats")).json()


async def test_deleted_and_archived_ads_are_read_with_their_metrics(api) -> None:
    account = (await accounts(api))[0]
    ads, _ = await one(api, "ads", account)
    hidden = {a["external_id"] for a in ads if a["status"] in ("deleted", "archived")}
    assert hidden, "the sandbox holds deleted and archived ads"
    metrics, state = await one(api, "daily_metrics_ad", account)
    assert hidden <= {m["external_id"] for m in metrics}
    assert len(metrics) == len(ads) * 10  # every ad, every day of the sandbox's window
    assert state[f"metrics_until:{account['external_id']}"] == account_today(account).isoformat()
    assert not [k for k in state if k.startswith("inflight:")]
    assert all(type(m["spend_micros"]) is int for m in metrics)


async def test_second_sync_asks_only_for_what_changed(api, served) -> None:
    account = (await accounts(api))[0]
    first, state = await one(api, "ads", account)
    assert f"watermark:{account['external_id']}" in state
    touched = (
        await api.http.post(
            served.base_url + "/_sandbox/meta/touch", json={"kind": "ads", "count": 3}
        )
    ).json()
    again, state2 = await one(api, "ads", account, state)
    mark = state[f"watermark:{account['external_id']}"]
    overlap = {a["external_id"] for a in first if a["updated_at"].timestamp() > mark - 300}
    assert {a["external_id"] for a in again} == set(touched["touched"]) | overlap
    assert len(again) < len(first) / 2
    assert (
        state2[f"watermark:{account['external_id']}"] > state[f"watermark:{account['external_id']}"]
    )


async def test_insights_look_back_after_the_first_sync(api) -> None:
    account = (await accounts(api))[0]
    stream = STREAMS["daily_metrics_ad"]
    today = account_today(account)  # the account's day, not UTC's
    state = {f"metrics_until:{account['external_id']}": today.isoformat()}
    parts = list(stream.partitions(api, account=account, state=state))
    assert parts[0].params["since"] == (today - dt.timedelta(days=27)).isoformat()
    assert parts[-1].params["until"] == today.isoformat()
    first = list(stream.partitions(api, account=account, state={}))
    assert first[0].params["since"] == (today - dt.timedelta(days=89)).isoformat()


async def test_the_window_ends_today_in_the_account_time_zone(api) -> None:
    account = (await accounts(api))[0]
    stream = STREAMS["daily_metrics_ad"]
    # 25 hours apart: their dates always differ, whatever the hour in UTC
    east = {**account, "timezone": "Pacific/Kiritimati"}  # UTC+14
    west = {**account, "timezone": "Pacific/Pago_Pago"}  # UTC-11
    until = {
        name: dt.date.fromisoformat(
            list(stream.partitions(api, account=a, state={}))[-1].params["until"]
        )
        for name, a in (("east", east), ("west", west))
    }
    assert until["east"] - until["west"] in (dt.timedelta(days=1), dt.timedelta(days=2))
    assert until["east"] == dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date()


async def test_an_interrupted_report_run_is_resumed_not_restarted(api, served) -> None:
    account = (await accounts(api))[0]
    stream = STREAMS["daily_metrics_ad"]
    partition = list(stream.partitions(api, account=account, state={}))[-1]
    pages = stream.read(api, partition)
    checkpoint = (await anext(pages)).state  # the run id, committed before the first poll
    await pages.aclose()  # the sync is killed here
    assert (await stats(api, served))["report_runs"] == 1
    state = dict(checkpoint)
    resumed = next(
        p for p in stream.partitions(api, account=account, state=state) if p.key == partition.key
    )
    assert resumed.params["inflight"]["report_run_id"]
    records, after = await read(api, stream, resumed)
    assert (await stats(api, served))["report_runs"] == 1, "a second job was started"
    assert records
    assert f"inflight:{partition.key}" not in after


async def test_report_runs_of_two_partitions_can_run_at_once(api, served) -> None:
    import asyncio

    account = (await accounts(api))[0]
    stream = STREAMS["daily_metrics_ad"]
    first, second = list(stream.partitions(api, account=account, state={}))[-2:]
    await read(api, stream, first)
    assert (await stats(api, served))["max_running_report_runs"] == 1
    both = await asyncio.gather(read(api, stream, first), read(api, stream, second))
    assert all(records for records, _ in both)
    after = await stats(api, served)
    assert after["report_runs"] == 3
    assert after["max_running_report_runs"] == 2


async def test_too_much_data_splits_the_job(api, served) -> None:
    account = (await accounts(api))[0]
    stream = STREAMS["daily_metrics_ad"]
    partition = list(stream.partitions(api, account=account, state={}))[-1]
    whole, _ = await read(api, stream, partition)
    days = {m["date"] for m in whole}
    per_day = len(whole) // len(days)
    await api.http.post(
        served.base_url + "/_sandbox/meta/limits", json={"job_max_rows": per_day // 2}
    )
    before = (await stats(api, served))["report_runs"]
    split, _ = await read(api, stream, partition)
    assert sorted(map(str, split), key=str) == sorted(map(str, whole), key=str)
    assert (await stats(api, served))["report_runs"] - before > len(days)  # days, then campaigns


async def test_account_level_metrics_are_read_directly(api, served) -> None:
    account = (await accounts(api))[0]
    metrics, _ = await one(api, "daily_metrics_account", account)
    assert len(metrics) == 10
    assert {m["level"] for m in metrics} == {"account"}
    assert (await stats(api, served))["report_runs"] == 0


def test_conversions_count_the_configured_action_types() -> None:
    row = {
        "account_id": "42",
        "ad_id": "9",
        "date_start": "2026-11-01",
        "account_currency": "EUR",
        "impressions": "1000",
        "clicks": "10",
        "spend": "12.34",
        "actions": [
            {"action_type": "lead", "value": "3"},
            {"action_type": "link_click", "value": "9"},
            {"action_type": "omni_purchase", "value": "1.5"},
        ],
        "action_values": [{"action_type": "omni_purchase", "value": "99.99"}],
    }
    config = MetaConfig(
        conversion_action_types=("lead", "omni_purchase"), attribution_windows=("28d_click",)
    )
    record = map_metric(row, level="ad", config=config)
    assert record["conversions"] == Decimal("4.5")
    assert record["conversions_value_micros"] == 99_990_000
    assert record["spend_micros"] == 12_340_000
    assert record["attribution_setting"] == "28d_click"
    assert record["account_id"] == "act_42"
    assert record["date"] == dt.date(2026, 11, 1)


async def test_insights_request_the_attribution_windows(api, served) -> None:
    env = {**served.env, "CMIS_META_ATTRIBUTION_WINDOWS": "1d_click"}
    from meta_helpers import make_context

    ctx = make_context(env, api.http)
    account = (await accounts(api))[0]
    metrics, _ = await one(ctx, "daily_metrics_account", account)
    assert {m["attribution_setting"] for m in metrics} == {"1d_click"}


async def test_rate_limits_and_expired_tokens_surface_typed(api, control, tokens) -> None:
    account = (await accounts(api))[0]
    await control.fault(path="/v27.0/act_*/campaigns", kind="throttle", retry_after=90)
    with pytest.raises(RateLimited) as caught:
        await one(api, "campaigns", account)
    assert caught.value.retry_after >= 60
    await control.expire_tokens(tokens.access_token)
    with pytest.raises(TokenRejected):
        await one(api, "campaigns", account)


async def test_webhook_events_drive_targeted_reads(api, control) -> None:
    verifier = MetaWebhooks()
    for _ in range(2):
        request, _ = await control.webhook_sample()
        verifier.verify(request, api.settings)
        for event in verifier.parse(request.body):
            stream = STREAMS[event.payload["sync_stream"]]
            account = event.route_id if event.route_kind == "ad_account" else None
            partition = Partition(
                key=f"webhook:{event.external_id}",
                account_id=account,
                params=event.payload["sync_params"],
            )
            records, _ = await read(api, stream, partition)
            assert [r["external_id"] for r in records] == [event.external_id]
            if event.kind == "lead":
                lead = records[0]
                assert lead["form_id"] == event.payload["form_id"]
                assert lead["page_id"] == event.route_id
                assert lead["account_id"].startswith("act_")
                assert lead["ad_id"] == event.payload["ad_id"]
                assert lead["fields"]["email"].endswith("@example.invalid")
            else:
                assert records[0]["account_id"] == event.route_id


async def test_leads_are_read_incrementally(api) -> None:
    account = (await accounts(api))[0]
    leads, state = await one(api, "leads", account)
    assert len(leads) == 2 * 5
    assert all(lead["form_id"] for lead in leads)
    again, _ = await one(api, "leads", account, {k: v + 10_000 for k, v in state.items()})
    assert again == []


async def test_leads_stream_routes_every_page_and_form_it_walks(api) -> None:
    from cmis_meta.sandbox.data import SIZES, MetaData

    data = MetaData(3, SIZES["small"])
    account = (await accounts(api))[0]
    stream = STREAMS["leads"]
    (partition,) = stream.partitions(api, account=account, state={})
    # a watermark in the future: no lead is new, the pages and forms still route
    quiet = attrs.evolve(partition, params={"created_since": 4_102_444_800})  # 2100-01-01
    routes, records = [], []
    async for page in stream.read(api, quiet):
        routes.extend(page.routes)
        records.extend(page.records)
    assert records == []
    pages = {r[1] for r in routes if r[0] == "page"}
    forms = {r[1] for r in routes if r[0] == "form"}
    (page_id,) = pages  # one page per sandbox account
    index = next(i for i in range(data.size.accounts) if data.page(i)["id"] == page_id)
    assert forms == {f["id"] for f in data.forms(index)}
    assert len(forms) == data.size.forms
    assert {r[0] for r in routes} == {"page", "form"}
