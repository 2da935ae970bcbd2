"""IVR counters, and a Prometheus collector that exports them on whichever registry wants them.

The FastAGI server counts; the metrics module registers ``IvrCollector(server.stats)`` on
the service's registry. Labels are bounded: routes and flows come from the code and the menu
file, reasons from this module, scores are 1-5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Why a FastAGI session ended badly.
BROKEN_REASONS = (
    "header_timeout",  # half a header, then silence
    "header_incomplete",  # half a header, then the connection closed
    "header_too_long",  # no blank line within the size limit: not AGI
    "no_route",  # agi_network_script names no route of ours
    "protocol",  # an answer that is not AGI
    "timeout",  # Asterisk stopped answering
    "connection",  # the connection broke
    "error",  # a bug of ours (logged with its traceback)
    "peer_refused",  # the peer is not an allowed Asterisk host (fastagi_allowed_peers)
    "bad_secret",  # the AGI URL lacks the configured fastagi_secret
    "unknown_call",  # the call is not live on any Asterisk server this service watches
)


@dataclass
class IvrStats:
    """What the FastAGI server has done since it started."""

    active: int = 0
    sessions: Counter[str] = field(default_factory=Counter)  # route
    broken: Counter[str] = field(default_factory=Counter)  # reason
    hangups: Counter[str] = field(default_factory=Counter)  # route: caller hung up in the IVR
    endings: Counter[tuple[str, str]] = field(default_factory=Counter)  # (route, queue|hangup)
    flow_results: Counter[tuple[str, str]] = field(default_factory=Counter)  # (flow, result)
    surveys: Counter[tuple[str, int]] = field(default_factory=Counter)  # (kind, score)


class IvrCollector(Collector):
    """Exposes IvrStats as Prometheus metrics at scrape time."""

    def __init__(self, stats: IvrStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        """Yields the current values."""
        s = self.stats
        active = GaugeMetricFamily(
            "callcenter_ivr_sessions_active", "FastAGI sessions in progress."
        )
        active.add_metric([], s.active)
        yield active
        yield _counter(
            "callcenter_ivr_sessions", "FastAGI sessions started.", ["route"], s.sessions
        )
        broken = CounterMetricFamily(
            "callcenter_ivr_broken_sessions",
            "FastAGI sessions that ended badly, by reason.",
            labels=["reason"],
        )
        for reason in BROKEN_REASONS:
            broken.add_metric([reason], s.broken.get(reason, 0))
        yield broken
        yield _counter(
            "callcenter_ivr_caller_hangups",
            "Callers who hung up inside the IVR.",
            ["route"],
            s.hangups,
        )
        yield _counter(
            "callcenter_ivr_endings",
            "IVR sessions that ended in a queue or a goodbye.",
            ["route", "end"],
            s.endings,
        )
        yield _counter(
            "callcenter_ivr_flow_results",
            "Self-service flows by outcome.",
            ["flow", "result"],
            s.flow_results,
        )
        yield _counter(
            "callcenter_ivr_surveys",
            "Satisfaction surveys stored, by kind and score.",
            ["kind", "score"],
            s.surveys,
        )


def _counter(name: str, doc: str, labels: list[str], values: Mapping[Any, int]) -> Metric:
    """A counter family from a Counter keyed by one label value or a tuple of them."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items(), key=lambda kv: str(kv[0])):
        parts = key if isinstance(key, tuple) else (key,)
        family.add_metric([str(part) for part in parts], value)
    return family
