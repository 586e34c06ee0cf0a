"""Webhook counters of one service process, rendered in the Prometheus text format.

Counters live in the process (each ``cmis serve`` worker has its own; Prometheus sums
them). Inbox depth and processing lag are read from the database at scrape time, so they
are the same whichever worker answers. Label values are bounded: platforms that no plugin
provides are counted as ``_unknown`` and rejection reasons are short snake_case labels,
so a sender cannot grow the series without limit.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence

import attrs

UNKNOWN_PLATFORM = "_unknown"
_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
LATENCY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def label(value: str, fallback: str = "other") -> str:
    """``value`` if it is a short snake_case label, else ``fallback``."""
    return value if _LABEL.match(value) else fallback


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    inner = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + inner + "}"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@attrs.frozen(kw_only=True)
class InboxGauge:
    """Rows of one platform and status not yet processed, and the oldest one's age."""

    platform: str
    status: str
    rows: int
    oldest_seconds: float


class WebhookMetrics:
    """Counters and a latency histogram for the receive path (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: dict[tuple[str, str], int] = {}
        self.rejections: dict[tuple[str, str, str], int] = {}
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = {}

    def delivered(self, platform: str, outcome: str) -> None:
        """A delivery answered 200: ``stored``, ``duplicate`` or ``handshake``."""
        with self._lock:
            key = (platform, outcome)
            self.deliveries[key] = self.deliveries.get(key, 0) + 1

    def rejected(self, platform: str, reason: str, status: int) -> None:
        """A delivery refused with ``status`` for ``reason``."""
        with self._lock:
            key = (platform, label(reason), str(status))
            self.rejections[key] = self.rejections.get(key, 0) + 1

    def observe(self, platform: str, seconds: float) -> None:
        """Time from the first byte read to the commit of a stored delivery."""
        with self._lock:
            counts = self._latency.setdefault(platform, [0] * (len(LATENCY_BUCKETS) + 1))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self._latency_sum[platform] = self._latency_sum.get(platform, 0.0) + seconds

    def rejection_count(self, platform: str, reason: str) -> int:
        """Rejections of ``platform`` for ``reason``, whatever the status."""
        with self._lock:
            return sum(
                n for (p, r, _), n in self.rejections.items() if (p, r) == (platform, reason)
            )

    def render(self, inbox: Iterable[InboxGauge] | None) -> str:
        """The Prometheus text exposition of every series (``inbox`` None: database down)."""
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        def sample(name: str, names: Sequence[str], values: Sequence[str], value: float) -> None:
            lines.append(f"{name}{_labels(names, values)} {_number(value)}")

        with self._lock:
            deliveries = dict(self.deliveries)
            rejections = dict(self.rejections)
            latency = {p: list(c) for p, c in self._latency.items()}
            sums = dict(self._latency_sum)

        family(
            "cmis_webhook_deliveries_total",
            "counter",
            "Deliveries answered 200, by outcome (stored, duplicate, handshake).",
        )
        for (platform, outcome), n in sorted(deliveries.items()):
            sample("cmis_webhook_deliveries_total", ("platform", "outcome"), (platform, outcome), n)
        family(
            "cmis_webhook_rejections_total",
            "counter",
            "Deliveries refused, by reason and HTTP status.",
        )
        for (platform, reason, status), n in sorted(rejections.items()):
            sample(
                "cmis_webhook_rejections_total",
                ("platform", "reason", "status"),
                (platform, reason, status),
                n,
            )
        family(
            "cmis_webhook_receive_seconds",
            "histogram",
            "Time from reading a delivery to its inbox commit.",
        )
        for platform, counts in sorted(latency.items()):
            name = "cmis_webhook_receive_seconds"
            for bound, n in zip(LATENCY_BUCKETS, counts, strict=False):
                sample(f"{name}_bucket", ("platform", "le"), (platform, repr(bound)), n)
            sample(f"{name}_bucket", ("platform", "le"), (platform, "+Inf"), counts[-1])
            lines.append(
                f'{name}_sum{{platform="{_escape(platform)}"}} {sums.get(platform, 0.0)!r}'
            )
            sample(f"{name}_count", ("platform",), (platform,), counts[-1])

        family("cmis_webhook_inbox_up", "gauge", "1 when the inbox database answered the scrape.")
        sample("cmis_webhook_inbox_up", (), (), 0 if inbox is None else 1)
        if inbox is not None:
            gauges = list(inbox)
            family(
                "cmis_webhook_inbox_depth",
                "gauge",
                "Inbox rows not processed yet, by status (received, unroutable, failed).",
            )
            for g in sorted(gauges, key=lambda g: (g.platform, g.status)):
                sample(
                    "cmis_webhook_inbox_depth",
                    ("platform", "status"),
                    (g.platform, g.status),
                    g.rows,
                )
            family(
                "cmis_webhook_processing_lag_seconds",
                "gauge",
                "Age of the oldest delivery waiting to be processed (status received).",
            )
            for g in sorted(gauges, key=lambda g: g.platform):
                if g.status == "received":
                    sample(
                        "cmis_webhook_processing_lag_seconds",
                        ("platform",),
                        (g.platform,),
                        round(g.oldest_seconds, 3),
                    )
        return "\n".join(lines) + "\n"


def parse_text(text: str) -> Mapping[str, float]:
    """Samples of an exposition as ``{'name{labels}': value}`` (for tests and the bench)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out
