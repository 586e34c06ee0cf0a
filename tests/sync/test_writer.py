"""Records onto tables: renamed fields, money as integer micros only, required fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from cmis_core.errors import Fatal
from cmis_core.sync.writer import Mapper
from cmis_core.types import EntityKind


def mapper(entity: EntityKind) -> Mapper:
    return Mapper.for_entity(entity, platform="meta", integration_id=7)


def test_entity_record_fields_become_columns() -> None:
    row = mapper(EntityKind.AD).to_row(
        {
            "external_id": "9",
            "account_id": "act_1",
            "campaign_id": "3",
            "ad_group_id": "5",
            "creative_id": "11",
            "status": "deleted",
            "platform_status": "DELETED",
            "updated_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
            "raw": {"id": "9"},
            "not_a_column": 1,
        }
    )
    assert row["account_external_id"] == "act_1"
    assert row["campaign_external_id"] == "3"
    assert row["ad_group_external_id"] == "5"
    assert row["creative_external_id"] == "11"
    assert row["updated_time"] == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert row["status"] == "deleted" and row["platform"] == "meta"
    assert "updated_at" not in row and "not_a_column" not in row


def test_account_keeps_time_zone_and_integration_but_not_sync_enabled() -> None:
    row = mapper(EntityKind.AD_ACCOUNT).to_row(
        {"external_id": "act_1", "currency": "EUR", "timezone": "Europe/Paris", "status": "active"}
    )
    assert row["time_zone"] == "Europe/Paris"
    assert row["integration_id"] == 7
    assert "sync_enabled" not in row


def test_metric_record_maps_onto_daily_metrics() -> None:
    row = mapper(EntityKind.DAILY_METRIC).to_row(
        {
            "account_id": "act_1",
            "level": "ad",
            "external_id": "9",
            "date": dt.date(2026, 1, 2),
            "impressions": 10,
            "clicks": 1,
            "spend_micros": 12_340_000,
            "conversions": "1.5",
            "attribution_setting": "7d_click",
        }
    )
    assert row["entity_external_id"] == "9"
    assert row["conversions"] == Decimal("1.5")
    assert row["attribution"] == "7d_click"
    assert type(row["spend_micros"]) is int


@pytest.mark.parametrize("money", [12.34, "12340000", Decimal("12340000")])
def test_money_that_is_not_an_int_is_refused(money: object) -> None:
    with pytest.raises(Fatal, match="integer micros"):
        mapper(EntityKind.CAMPAIGN).to_row(
            {"external_id": "1", "account_id": "act_1", "daily_budget_micros": money}
        )


def test_missing_ids_are_refused() -> None:
    with pytest.raises(Fatal, match="external_id"):
        mapper(EntityKind.CAMPAIGN).to_row({"account_id": "act_1"})
    with pytest.raises(Fatal, match="account_id"):
        mapper(EntityKind.CAMPAIGN).to_row({"external_id": "1"})


def test_naive_times_are_refused() -> None:
    with pytest.raises(Fatal, match="timezone-aware"):
        mapper(EntityKind.CAMPAIGN).to_row(
            {"external_id": "1", "account_id": "a", "updated_time": dt.datetime(2026, 1, 1)}
        )
