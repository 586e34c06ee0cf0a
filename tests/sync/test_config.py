"""The engine's tunables: rows in flight by backend, overrides, refusals."""

from __future__ import annotations

import pytest

from cmis_core.errors import ConfigurationError
from cmis_core.settings import Settings
from cmis_core.sync.config import SyncConfig

PG = "postgresql+psycopg://cmis@127.0.0.1/cmis"


def config(**environ: str) -> SyncConfig:
    return SyncConfig.from_settings(Settings.from_env({"CMIS_HOME": "/tmp/cmis-x", **environ}))


def test_rows_in_flight_are_fewer_on_sqlite_than_on_postgresql() -> None:
    assert config().max_rows_in_flight == 500
    assert config(CMIS_DATABASE_URL=PG).max_rows_in_flight == 2000
    given = config(CMIS_DATABASE_URL=PG, CMIS_SYNC_MAX_ROWS_IN_FLIGHT="300")
    assert given.max_rows_in_flight == 300


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_a_bad_bound_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ConfigurationError, match="CMIS_SYNC_MAX_ROWS_IN_FLIGHT"):
        config(CMIS_SYNC_MAX_ROWS_IN_FLIGHT=value)
