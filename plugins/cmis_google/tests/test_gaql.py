"""GAQL is built from values, validated, and round-trips through the sandbox's parser."""

from __future__ import annotations

import datetime as dt

import pytest
from cmis_google.gaql import Condition, Enum, GaqlError, Query, parse


def test_render_metrics_query() -> None:
    query = Query(
        resource="campaign",
        fields=("campaign.id", "segments.date", "metrics.cost_micros"),
        where=(
            Condition("segments.date", "BETWEEN", (dt.date(2026, 11, 1), dt.date(2026, 11, 14))),
            Condition("campaign.status", "IN", (Enum("ENABLED"), Enum("PAUSED"))),
        ),
        order_by=("segments.date DESC",),
        limit=10,
    )
    assert query.render() == (
        "SELECT campaign.id, segments.date, metrics.cost_micros FROM campaign "
        "WHERE segments.date BETWEEN '2026-11-01' AND '2026-11-14' "
        "AND campaign.status IN (ENABLED, PAUSED) ORDER BY segments.date DESC LIMIT 10"
    )


@pytest.mark.parametrize(
    "text",
    [
        "SELECT customer_client.id, customer_client.level FROM customer_client "
        "WHERE customer_client.level <= 1 AND customer_client.manager = FALSE",
        "SELECT ad_group.id FROM ad_group WHERE campaign.id = 123 AND ad_group.name LIKE '%x%'",
        "SELECT campaign.id FROM campaign WHERE campaign.status NOT IN (REMOVED) "
        "ORDER BY campaign.id ASC, campaign.name DESC LIMIT 5",
    ],
)
def test_parse_render_round_trip(text: str) -> None:
    assert parse(text).render() == text
    assert parse(parse(text).render()) == parse(text)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Condition("campaign.name", "=", "x' OR campaign.id > 0"),
        lambda: Condition("campaign.name", "=", 'a"b'),
        lambda: Condition("campaign.name", "=", "a\\b"),
        lambda: Condition("campaign.id; DROP", "=", 1),
        lambda: Condition("campaign.id", "OR", 1),
        lambda: Condition("segments.date", "=", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        lambda: Condition("segments.date", "BETWEEN", (dt.date(2026, 1, 1),)),
        lambda: Condition("campaign.id", "IN", ()),
        lambda: Condition("campaign.id", "=", (1, 2)),
        lambda: Condition("campaign.id", "=", 1.5),
        lambda: Enum("enabled"),
        lambda: Query(resource="campaign; x", fields=("campaign.id",)),
        lambda: Query(resource="campaign", fields=()),
        lambda: Query(resource="campaign", fields=("campaign.id",), limit=0),
    ],
)
def test_unsafe_values_are_refused(make: object) -> None:
    with pytest.raises(GaqlError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    "text",
    ["", "SELECT FROM campaign", "SELECT campaign.id FROM campaign WHERE", "SELECT campaign.id"],
)
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(GaqlError):
        parse(text)


def test_condition_matches() -> None:
    assert Condition(
        "segments.date", "BETWEEN", (dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    ).matches("2026-01-02")
    assert not Condition("campaign.status", "IN", (Enum("ENABLED"),)).matches("PAUSED")
    assert Condition("customer_client.level", "<=", 1).matches(1)
    assert not Condition("customer_client.level", "<=", 1).matches(2)
