"""Every Prometheus metric the service exports, defined once, on a registry of its own.

Two kinds: metrics updated from tracker effects (counters and histograms, held by
``Metrics``) and live gauges computed from the tracker at scrape time (``LIVE``, emitted by
``callcenter.metrics.live``). Labels are bounded: queue, state, outcome, reason, asterisk —
never a caller number, uniqueid or linkedid.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from callcenter import __version__
from callcenter.config import Settings

# The *_created series double the series count and no dashboard or alert reads them.
disable_created_metrics()

# The states a supervisor sees (callcenter.calls.agent_state), in display order.
AGENT_STATES = ("available", "ringing", "on_call", "wrapup", "paused", "unavailable")
# Which state an agent in several queues is in: a call anywhere wins; paused only when paused
# everywhere (a queue they still take calls from makes them available).
STATE_PRIORITY = ("on_call", "ringing", "wrapup", "available", "paused", "unavailable")
# How a queue visit ended; the tracker's outcomes, with abandons split by the short-abandon
# threshold. Anything else the tracker may invent later is counted as "other".
OUTCOMES = (
    "answered",
    "abandoned",
    "short_abandoned",
    "timeout",
    "exit_empty",
    "exit_key",
    "withdrawn",
    "other",
)
# Wait buckets in seconds; the service-level thresholds of the settings are added to them.
WAIT_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
TALK_BUCKETS = (10.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0)
HOLD_BUCKETS = (0.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
WRAPUP_BUCKETS = (1.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class LiveMetric:
    """A metric computed at scrape time from live state: its name, type, help and labels."""

    name: str  # as exposed; a counter's name ends in _total
    kind: str  # gauge or counter
    help: str
    labels: tuple[str, ...] = ()


LIVE: dict[str, LiveMetric] = {
    m.name: m
    for m in (
        LiveMetric(
            "callcenter_queue_calls_waiting", "gauge", "Callers waiting in the queue.", ("queue",)
        ),
        LiveMetric(
            "callcenter_queue_oldest_wait_seconds",
            "gauge",
            "How long the longest-waiting caller has waited (0 when nobody waits).",
            ("queue",),
        ),
        LiveMetric(
            "callcenter_queue_agents",
            "gauge",
            "Agents logged in to the queue by state.",
            ("queue", "state"),
        ),
        LiveMetric(
            "callcenter_agents_paused",
            "gauge",
            "Agents paused in the queue by pause reason.",
            ("queue", "reason"),
        ),
        LiveMetric(
            "callcenter_agents",
            "gauge",
            "Agents by state, each counted once however many queues they are in (a call in "
            "any queue makes them on_call; paused only when paused in every queue).",
            ("state",),
        ),
        LiveMetric(
            "callcenter_agents_paused_by_reason",
            "gauge",
            "Agents whose state is paused, each counted once, by pause reason.",
            ("reason",),
        ),
        LiveMetric("callcenter_calls_open", "gauge", "Calls in progress the tracker follows."),
        LiveMetric(
            "callcenter_ami_connected",
            "gauge",
            "1 while the AMI link to the Asterisk server is logged in.",
            ("asterisk",),
        ),
        LiveMetric(
            "callcenter_ingest_owner",
            "gauge",
            "1 while this instance ingests the Asterisk server; 0 while another one does.",
            ("asterisk",),
        ),
        LiveMetric(
            "callcenter_ami_reconnects_total",
            "counter",
            "AMI links re-established after a loss.",
            ("asterisk",),
        ),
        LiveMetric(
            "callcenter_ami_login_failures_total",
            "counter",
            "AMI logins rejected by the Asterisk server.",
            ("asterisk",),
        ),
        LiveMetric(
            "callcenter_ami_last_event_timestamp_seconds",
            "gauge",
            "Epoch of the last AMI message received from the server.",
            ("asterisk",),
        ),
        LiveMetric(
            "callcenter_db_records_rejected_total",
            "counter",
            "Records set aside in the reject file (record: refused by the database; call.ended:"
            " its event could not be encoded, the call row was written).",
            ("kind",),
        ),
        LiveMetric(
            "callcenter_db_records_spilled_total",
            "counter",
            "Records written to the spill file while the database was away.",
        ),
        LiveMetric(
            "callcenter_event_queue_depth",
            "gauge",
            "AMI messages received but not processed yet (the backlog).",
        ),
        LiveMetric(
            "callcenter_ami_messages_total", "counter", "AMI messages the pipeline received."
        ),
        LiveMetric(
            "callcenter_ami_messages_dropped_total",
            "counter",
            "AMI messages dropped as noise the service does not need.",
        ),
        LiveMetric("callcenter_events_total", "counter", "Typed events fed to the call tracker."),
        LiveMetric(
            "callcenter_event_errors_total",
            "counter",
            "AMI messages skipped: unknown_event, bad_event, garbage, tracker_error.",
            ("kind",),
        ),
        LiveMetric(
            "callcenter_tracker_anomalies_total",
            "counter",
            "Oddities in the event stream the tracker worked around, by kind.",
            ("kind",),
        ),
        LiveMetric(
            "callcenter_subscriber_errors_total",
            "counter",
            "Effect subscribers (store, metrics, pages) that raised.",
        ),
        LiveMetric(
            "callcenter_reconciled_calls_total",
            "counter",
            "Calls checked against Asterisk's queue_log/CEL after an AMI gap, by result: "
            "corrected, confirmed, found (never seen on AMI), unmatched (no records in time).",
            ("result",),
        ),
        LiveMetric(
            "callcenter_reconcile_pending_calls",
            "gauge",
            "Calls that crossed an AMI gap, waiting for Asterisk's records before being logged.",
        ),
    )
}


def exit_outcome(outcome: str | None, wait_s: float | None, short_abandon_s: float) -> str:
    """The outcome label of an ended visit: abandons under the threshold are short ones."""
    label = outcome or "abandoned"
    if label == "abandoned" and wait_s is not None and wait_s < short_abandon_s:
        return "short_abandoned"
    return label if label in OUTCOMES else "other"


def wait_buckets(settings: Settings) -> tuple[float, ...]:
    """The wait histogram's buckets: the defaults plus every service-level threshold."""
    return _merge(WAIT_BUCKETS, settings.service_level_seconds.values())


def wrapup_buckets(settings: Settings) -> tuple[float, ...]:
    """The wrap-up histogram's buckets: the defaults plus every configured wrap-up time."""
    return _merge(WRAPUP_BUCKETS, settings.wrapup_seconds.values())


def _merge(base: Iterable[float], extra: Iterable[float]) -> tuple[float, ...]:
    return tuple(sorted({float(b) for b in base} | {float(x) for x in extra if x > 0}))


class Metrics:
    """The effect-driven metrics, registered on their own ``CollectorRegistry``."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.entered = Counter(
            "callcenter_queue_calls_entered_total",
            "Queue visits that began (a transferred call's next visit counts in its queue).",
            ["queue"],
            registry=r,
        )
        self.exited = Counter(
            "callcenter_queue_calls_exited_total",
            "Queue visits that ended, by outcome; the outcomes add up to the visits entered.",
            ["queue", "outcome"],
            registry=r,
        )
        self.wait = Histogram(
            "callcenter_queue_wait_seconds",
            "Seconds a caller waited in the queue before an agent answered or the caller left.",
            ["queue", "outcome"],
            buckets=wait_buckets(settings),
            registry=r,
        )
        self.talk = Histogram(
            "callcenter_call_talk_seconds",
            "Seconds an agent talked with the caller (hold included), per answered visit.",
            ["queue"],
            buckets=TALK_BUCKETS,
            registry=r,
        )
        self.hold = Histogram(
            "callcenter_call_hold_seconds",
            "Seconds the caller was on hold during an answered visit.",
            ["queue"],
            buckets=HOLD_BUCKETS,
            registry=r,
        )
        self.wrapup = Histogram(
            "callcenter_agent_wrapup_seconds",
            "Seconds of after-call work: until the next activity, at most the wrap-up time.",
            ["queue"],
            buckets=wrapup_buckets(settings),
            registry=r,
        )
        self.lag = Histogram(
            "callcenter_event_lag_seconds",
            "Seconds from receiving an AMI message to handing its effects to the subscribers.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.build_info = Gauge(
            "callcenter_build_info",
            "Always 1; the labels say which build runs.",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=r)

    def known_queue(self, queue: str) -> None:
        """Creates a queue's counter series at zero, so rates work from its first visit."""
        self.entered.labels(queue)
        for outcome in OUTCOMES:
            self.exited.labels(queue, outcome)
