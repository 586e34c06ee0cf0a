"""Plugin discovery and the registry of what the plugins provide, keyed by platform.

Entry points of group ``cmis`` are loaded one at a time, once per process
(:func:`get_registry`). A plugin that fails to import (or whose hook raises, or returns
something malformed) is recorded with its distribution, version and error, and skipped;
the others keep working. Two distributions claiming one platform disable that platform
only: every call that needs it raises :class:`~cmis_core.errors.PluginConflict` naming both.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from cmis_core import hookspecs
from cmis_core.errors import (
    PluginConflict,
    PluginLoadFailed,
    UnknownPlatform,
)
from cmis_core.markers import PROJECT

if TYPE_CHECKING:
    from cmis_core.contract import AuthProvider, Sandbox, Stream, WebhookVerifier
    from cmis_core.settings import Settings
    from cmis_core.types import (
        Event,
        IntegrationEvent,
        Platform,
        SyncFinishedEvent,
        WebhookProcessedEvent,
    )


def _log() -> Any:
    # structlog (and through it rich) stays out of `cmis --help`: import on first log only.
    import structlog

    return structlog.get_logger(__name__)


LOADED, FAILED, CONFLICT, DISABLED = "loaded", "failed", "conflict", "disabled"


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What `cmis plugins list` shows of one entry point."""

    name: str
    distribution: str
    version: str
    module: str
    status: str
    platforms: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class _Loaded:
    """A plugin module loaded from an entry point, before its records are indexed."""

    name: str
    distribution: str
    version: str
    module: ModuleType | object
    status: str = LOADED
    error: str | None = None
    records: dict[str, list[Any]] = attrs.field(factory=dict)
    strict: bool = False


@functools.cache
def _expected() -> dict[str, type]:
    """The record type each capability hook must return (imported only when plugins answer)."""
    from cmis_core.contract import AuthProvider, Sandbox, Stream, WebhookVerifier
    from cmis_core.types import Platform

    return {
        "cmis_platforms": Platform,
        "cmis_auth_providers": AuthProvider,
        "cmis_webhook_verifiers": WebhookVerifier,
        "cmis_streams": Stream,
        "cmis_sandboxes": Sandbox,
    }


def _record_platform(hook: str, record: Any) -> str:
    return str(record.name if hook == "cmis_platforms" else record.platform)


class Registry:
    """Everything the installed plugins provide, indexed by platform slug."""

    def __init__(
        self, pm: pluggy.PluginManager, plugins: list[_Loaded], *, trace: bool = False
    ) -> None:
        self.pm = pm
        self._plugins = plugins
        self._trace = trace
        self._indexed = False
        self._platforms: dict[str, Platform] = {}
        self._auth_providers: dict[str, AuthProvider] = {}
        self._webhook_verifiers: dict[str, WebhookVerifier] = {}
        self._streams: dict[str, dict[str, Stream]] = {}
        self._sandboxes: dict[str, Sandbox] = {}
        self._conflicts: dict[str, tuple[str, ...]] = {}
        self._owner: dict[str, _Loaded] = {}

    # ------------------------------------------------------------------ building
    def _ensure(self) -> None:
        """Call the capability hooks once, on first need (not for `cmis --help`)."""
        if self._indexed:
            return
        self._indexed = True
        for plugin in self._plugins:
            if plugin.status != LOADED:
                continue
            try:
                _call_capabilities(self.pm, plugin, self._trace)
            except Exception as exc:
                if plugin.strict:
                    raise
                plugin.status = FAILED
                plugin.error = f"{type(exc).__name__}: {exc}"
                plugin.records = {}
                if self.pm.is_registered(plugin.module):
                    self.pm.unregister(plugin.module)
        self._index()

    def _index(self) -> None:
        claims: dict[str, list[_Loaded]] = {}
        for plugin in self._plugins:
            if plugin.status != LOADED:
                continue
            slugs = {_record_platform(h, r) for h, rs in plugin.records.items() for r in rs}
            for slug in slugs:
                claims.setdefault(slug, []).append(plugin)
        for slug, owners in claims.items():
            if len(owners) > 1:
                dists = tuple(sorted({o.distribution for o in owners}))
                if len(dists) == 1:
                    dists = tuple(sorted(f"{o.distribution} ({o.name})" for o in owners))
                self._conflicts[slug] = dists
                continue
            self._owner[slug] = owners[0]
        for slug, plugin in self._owner.items():
            for hook, records in plugin.records.items():
                for record in records:
                    if _record_platform(hook, record) != slug:
                        continue
                    self._add(hook, slug, record)

    @property
    def platforms(self) -> dict[str, Platform]:
        """Installed platforms by slug (conflicting ones left out)."""
        self._ensure()
        return self._platforms

    @property
    def auth_providers(self) -> dict[str, AuthProvider]:
        self._ensure()
        return self._auth_providers

    @property
    def webhook_verifiers(self) -> dict[str, WebhookVerifier]:
        self._ensure()
        return self._webhook_verifiers

    @property
    def streams(self) -> dict[str, dict[str, Stream]]:
        self._ensure()
        return self._streams

    @property
    def sandboxes(self) -> dict[str, Sandbox]:
        self._ensure()
        return self._sandboxes

    @property
    def conflicts(self) -> dict[str, tuple[str, ...]]:
        """Platforms claimed by more than one distribution, with those distributions."""
        self._ensure()
        return self._conflicts

    @property
    def owner(self) -> dict[str, _Loaded]:
        self._ensure()
        return self._owner

    def _add(self, hook: str, slug: str, record: Any) -> None:
        if hook == "cmis_platforms":
            self._platforms[slug] = record
        elif hook == "cmis_auth_providers":
            self._auth_providers[slug] = record
        elif hook == "cmis_webhook_verifiers":
            self._webhook_verifiers[slug] = record
        elif hook == "cmis_streams":
            self._streams.setdefault(slug, {})[record.name] = record
        elif hook == "cmis_sandboxes":
            self._sandboxes[slug] = record

    # ------------------------------------------------------------------ lookups
    def platform(self, slug: str) -> Platform:
        """The platform ``slug``; raises a clear error when it is missing or in conflict."""
        if slug in self.conflicts:
            raise PluginConflict(slug, self.conflicts[slug])
        if slug in self.platforms:
            return self.platforms[slug]
        for plugin in self._plugins:
            if plugin.name == slug and plugin.status == FAILED:
                raise PluginLoadFailed(
                    f"the plugin for {slug!r} ({plugin.distribution} {plugin.version}) "
                    f"failed to load: {plugin.error}",
                    hint="see `cmis plugins list`",
                )
        known = ", ".join(sorted(self.platforms)) or "none installed"
        raise UnknownPlatform(
            f"no plugin provides platform {slug!r} (installed: {known})",
            hint=f"pip install cmis-{slug}",
        )

    def _need(self, slug: str, table: Mapping[str, Any], what: str) -> Any:
        self.platform(slug)
        if slug not in table:
            raise UnknownPlatform(f"the {slug!r} plugin provides no {what}")
        return table[slug]

    def auth_provider(self, slug: str) -> AuthProvider:
        """The auth provider of ``slug``."""
        provider: AuthProvider = self._need(slug, self.auth_providers, "auth provider")
        return provider

    def webhook_verifier(self, slug: str) -> WebhookVerifier:
        """The webhook verifier of ``slug``."""
        verifier: WebhookVerifier = self._need(slug, self.webhook_verifiers, "webhooks")
        return verifier

    def streams_of(self, slug: str) -> dict[str, Stream]:
        """The streams of ``slug`` by name."""
        streams: dict[str, Stream] = self._need(slug, self.streams, "streams")
        return streams

    def sandbox(self, slug: str) -> Sandbox:
        """The sandbox of ``slug``."""
        sandbox: Sandbox = self._need(slug, self.sandboxes, "sandbox")
        return sandbox

    def plugins(self) -> list[PluginInfo]:
        """One row per entry point, for `cmis plugins list`."""
        self._ensure()
        rows = []
        for plugin in self._plugins:
            slugs = sorted({_record_platform(h, r) for h, rs in plugin.records.items() for r in rs})
            status = plugin.status
            error = plugin.error
            if status == LOADED and any(s in self.conflicts for s in slugs):
                status = CONFLICT
                error = "; ".join(
                    f"{s} claimed by {' and '.join(self.conflicts[s])}"
                    for s in slugs
                    if s in self.conflicts
                )
            caps: set[str] = set()
            for record in plugin.records.get("cmis_platforms", []):
                caps.update(str(c) for c in record.capabilities)
            if plugin.records.get("cmis_sandboxes"):
                caps.add("sandbox")
            if plugin.records.get("cmis_webhook_verifiers"):
                caps.add("webhooks")
            if plugin.records.get("cmis_streams"):
                caps.add("sync")
            rows.append(
                PluginInfo(
                    name=plugin.name,
                    distribution=plugin.distribution,
                    version=plugin.version,
                    module=getattr(plugin.module, "__name__", repr(plugin.module)),
                    status=status,
                    platforms=tuple(slugs),
                    capabilities=tuple(sorted(caps)),
                    error=error,
                )
            )
        return rows

    # ------------------------------------------------------------------ observers
    def notify(self, hook: str, event: Event) -> None:
        """Call every implementation of observer ``hook``; log (never raise) their errors."""
        if hook not in hookspecs.OBSERVER_HOOKS:
            raise ValueError(f"not an observer hook: {hook}")
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception as exc:  # an observer must not break the work it observes
                _log().error(
                    "plugins.observer_failed",
                    hook=hook,
                    plugin=impl.plugin_name,
                    event_id=event.event_id,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def integration_connected(self, event: IntegrationEvent) -> None:
        self.notify("cmis_on_integration_connected", event)

    def integration_expiring(self, event: IntegrationEvent) -> None:
        self.notify("cmis_on_integration_expiring", event)

    def integration_needs_reauth(self, event: IntegrationEvent) -> None:
        self.notify("cmis_on_integration_needs_reauth", event)

    def sync_finished(self, event: SyncFinishedEvent) -> None:
        self.notify("cmis_on_sync_finished", event)

    def webhook_processed(self, event: WebhookProcessedEvent) -> None:
        self.notify("cmis_on_webhook_processed", event)


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return ("unknown", "?")
    return (dist.metadata["Name"] or dist.name, dist.version)


def _call_capabilities(pm: pluggy.PluginManager, plugin: _Loaded, trace: bool) -> None:
    """Call each capability hook of one plugin and validate what it returns."""
    for hook in hookspecs.CAPABILITY_HOOKS:
        impls = [i for i in getattr(pm.hook, hook).get_hookimpls() if i.plugin is plugin.module]
        for impl in impls:
            if trace:
                _log().debug("plugins.hook_call", hook=hook, plugin=plugin.name)
            result = impl.function()
            records = list(result or ())
            for record in records:
                expected = _expected()[hook]
                if not isinstance(record, expected):
                    want = expected.__name__
                    raise TypeError(f"{hook} returned {type(record).__name__}, expected {want}")
            names = [getattr(r, "name", None) for r in records if hook == "cmis_streams"]
            for name in names:
                if names.count(name) > 1:
                    raise ValueError(f"cmis_streams returned two streams named {name!r}")
            plugin.records.setdefault(hook, []).extend(records)


def load_plugins(
    settings: Settings,
    entry_points: Iterable[md.EntryPoint] | None = None,
    builtins: Iterable[tuple[str, object]] = (),
) -> Registry:
    """Build a fresh registry: load each entry point in turn, record failures, index."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    if entry_points is None:
        entry_points = md.entry_points(group=PROJECT)
    loaded: list[_Loaded] = []
    seen: set[tuple[str, str]] = set()
    for ep in sorted(entry_points, key=lambda e: e.name):
        dist, version = _dist_of(ep)
        if (ep.name, ep.value) in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        if settings.plugins is not None and ep.name not in settings.plugins:
            continue
        if ep.name in settings.plugins_disabled:
            loaded.append(_Loaded(ep.name, dist, version, ep.value, status=DISABLED))
            continue
        plugin = _Loaded(ep.name, dist, version, ep.value, strict=settings.plugins_strict)
        try:
            plugin.module = ep.load()
            pm.register(plugin.module, name=f"{dist}:{ep.name}")
        except Exception as exc:
            if settings.plugins_strict:
                raise
            plugin.status = FAILED
            plugin.error = f"{type(exc).__name__}: {exc}"
            plugin.records = {}
            if pm.is_registered(plugin.module):
                pm.unregister(plugin.module)
        loaded.append(plugin)
    for name, module in builtins:
        plugin = _Loaded(name, "cmis-core", md.version("cmis-core"), module, strict=True)
        pm.register(module, name=f"builtin:{name}")
        loaded.append(plugin)
    pm.check_pending()
    if settings.trace_plugins:
        pm.trace.root.setwriter(lambda text: _log().debug("plugins.trace", text=text.rstrip()))
        pm.enable_tracing()
    registry = Registry(pm, loaded, trace=settings.trace_plugins)
    if settings.plugins_strict:
        registry.platforms  # noqa: B018 - strict mode surfaces hook errors now
    return registry


@functools.cache
def get_registry() -> Registry:
    """The process-wide registry, built on first use from the environment's settings."""
    from cmis_core.settings import Settings

    return load_plugins(Settings.from_env())


def reset_registry() -> None:
    """Forget the process-wide registry (tests, and after changing CMIS_PLUGINS)."""
    get_registry.cache_clear()


def make(platform: str) -> Platform:
    """The installed platform ``platform`` (``factory.make("meta")``)."""
    return get_registry().platform(platform)
