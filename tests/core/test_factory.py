"""Plugin discovery: failures isolated, conflicts disable one platform, allow/deny lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmis_core.errors import ExitCode, PluginConflict, PluginLoadFailed, UnknownPlatform
from cmis_core.factory import load_plugins
from cmis_core.settings import Settings
from cmis_core.types import IntegrationEvent, IntegrationStatus
from tests.core.fake_dists import GOOD_PLUGIN, RAISING_PLUGIN, entry_points_in, make_dist


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def settings(**env: str) -> Settings:
    return Settings.from_env({"CMIS_HOME": "/nonexistent", **env})


def test_good_plugin_loads_and_is_indexed(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.2.0",
        "alpha",
        "alpha_plugin_a",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    registry = load_plugins(settings(), entry_points_in(site))
    assert registry.platform("alpha").display_name == "Alpha"
    [info] = registry.plugins()
    assert (info.distribution, info.version, info.status) == ("cmis-alpha", "1.2.0", "loaded")
    assert info.platforms == ("alpha",)
    assert "oauth2" in info.capabilities


def test_plugin_raising_on_import_is_named_and_others_load(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.0",
        "alpha",
        "alpha_plugin_b",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    make_dist(site, "cmis-broken", "0.3", "broken", "broken_plugin_b", RAISING_PLUGIN)
    registry = load_plugins(settings(), entry_points_in(site))
    by_name = {p.name: p for p in registry.plugins()}
    assert by_name["alpha"].status == "loaded"
    assert by_name["broken"].status == "failed"
    assert by_name["broken"].distribution == "cmis-broken"
    assert by_name["broken"].version == "0.3"
    assert "boom at import" in (by_name["broken"].error or "")
    with pytest.raises(PluginLoadFailed, match=r"cmis-broken 0\.3"):
        registry.platform("broken")


def test_strict_mode_reraises_import_errors(site: Path) -> None:
    make_dist(site, "cmis-broken", "0.3", "broken", "broken_plugin_c", RAISING_PLUGIN)
    with pytest.raises(RuntimeError, match="boom"):
        load_plugins(settings(CMIS_PLUGINS_STRICT="1"), entry_points_in(site))


def test_conflict_disables_that_platform_only(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.0",
        "alpha",
        "alpha_plugin_d",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    make_dist(
        site,
        "acme-alpha",
        "9.0",
        "alpha2",
        "alpha_plugin_acme",
        GOOD_PLUGIN.format(slug="alpha", title="Acme Alpha"),
    )
    make_dist(
        site,
        "cmis-beta",
        "1.0",
        "beta",
        "beta_plugin_d",
        GOOD_PLUGIN.format(slug="beta", title="Beta"),
    )
    registry = load_plugins(settings(), entry_points_in(site))
    with pytest.raises(PluginConflict) as caught:
        registry.platform("alpha")
    assert "acme-alpha" in str(caught.value) and "cmis-alpha" in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE
    assert registry.platform("beta").name == "beta"
    statuses = {p.name: p.status for p in registry.plugins()}
    assert statuses == {"alpha": "conflict", "alpha2": "conflict", "beta": "loaded"}


def test_allow_list_and_disable_list(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.0",
        "alpha",
        "alpha_plugin_e",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    make_dist(
        site,
        "cmis-beta",
        "1.0",
        "beta",
        "beta_plugin_e",
        GOOD_PLUGIN.format(slug="beta", title="Beta"),
    )
    only_beta = load_plugins(settings(CMIS_PLUGINS="beta"), entry_points_in(site))
    assert set(only_beta.platforms) == {"beta"}
    assert [p.name for p in only_beta.plugins()] == ["beta"]
    no_beta = load_plugins(settings(CMIS_PLUGINS_DISABLED="beta"), entry_points_in(site))
    assert set(no_beta.platforms) == {"alpha"}
    assert {p.name: p.status for p in no_beta.plugins()}["beta"] == "disabled"


def test_hook_returning_wrong_type_fails_that_plugin(site: Path) -> None:
    source = """
from cmis_core import hookimpl

@hookimpl
def cmis_platforms():
    return [{"name": "gamma"}]
"""
    make_dist(site, "cmis-gamma", "1.0", "gamma", "gamma_plugin_f", source)
    registry = load_plugins(settings(), entry_points_in(site))
    [info] = registry.plugins()
    assert info.status == "failed"
    assert "expected Platform" in (info.error or "")


def test_unknown_platform_names_what_is_installed(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.0",
        "alpha",
        "alpha_plugin_g",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    registry = load_plugins(settings(), entry_points_in(site))
    with pytest.raises(UnknownPlatform, match="installed: alpha"):
        registry.platform("tiktok")


def test_observer_errors_are_logged_not_raised(site: Path) -> None:
    source = """
from cmis_core import hookimpl
SEEN = []

@hookimpl
def cmis_on_integration_connected(event):
    SEEN.append(event.event_id)
    raise ValueError("observer broke")
"""
    make_dist(site, "cmis-watch", "1.0", "watch", "watch_plugin_h", source)
    make_dist(
        site,
        "cmis-watch2",
        "1.0",
        "watch2",
        "watch_plugin_h2",
        source.replace("observer broke", "second broke"),
    )
    registry = load_plugins(settings(), entry_points_in(site))
    event = IntegrationEvent(
        event_id="ev1",
        org="acme",
        platform="alpha",
        integration_id="i1",
        status=IntegrationStatus.ACTIVE,
    )
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        registry.integration_connected(event)
    import watch_plugin_h
    import watch_plugin_h2

    assert watch_plugin_h.SEEN == ["ev1"] and watch_plugin_h2.SEEN == ["ev1"]
    failures = [entry for entry in logs if entry["event"] == "plugins.observer_failed"]
    assert len(failures) == 2


def _cli(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(site), "CMIS_LOG_FORMAT": "json", **env}
    full_env.pop("CMIS_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "cmis_core", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


def test_cli_plugins_list_json_with_a_broken_and_a_conflicting_plugin(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.0",
        "alpha",
        "alpha_plugin_i",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    make_dist(
        site,
        "acme-alpha",
        "2.0",
        "alpha2",
        "alpha_plugin_i2",
        GOOD_PLUGIN.format(slug="alpha", title="Acme"),
    )
    make_dist(site, "cmis-broken", "0.1", "broken", "broken_plugin_i", RAISING_PLUGIN)
    result = _cli(site, "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["broken"]["status"] == "failed"
    assert rows["broken"]["distribution"] == "cmis-broken"
    assert "RuntimeError: boom at import" in rows["broken"]["error"]
    assert rows["alpha"]["status"] == rows["alpha2"]["status"] == "conflict"


def test_cli_command_touching_a_conflicting_platform_exits_2(site: Path) -> None:
    make_dist(
        site,
        "cmis-alpha",
        "1.0",
        "alpha",
        "alpha_plugin_j",
        GOOD_PLUGIN.format(slug="alpha", title="Alpha"),
    )
    make_dist(
        site,
        "acme-alpha",
        "2.0",
        "alpha2",
        "alpha_plugin_j2",
        GOOD_PLUGIN.format(slug="alpha", title="Acme"),
    )
    result = _cli(site, "plugins", "show", "alpha")
    assert result.returncode == 2
    assert "acme-alpha" in result.stderr and "cmis-alpha" in result.stderr
    assert "Traceback" not in result.stderr
