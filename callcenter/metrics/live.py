"""Gauges computed from live state at scrape time: waiting callers, agents, AMI links.

Computing them when Prometheus asks (not when the last event came) keeps the oldest wait
ticking between events and makes every gauge right straight after a start or a resync.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.calls import Tracker, agent_state
from callcenter.config import Settings, per_queue
from callcenter.metrics.definitions import AGENT_STATES, LIVE, STATE_PRIORITY
from callcenter.pipeline import Pipeline

# Pause reasons are typed by people: keep at most this many distinct label values.
_MAX_REASONS = 20
_MAX_REASON_LEN = 40
_ERROR_KINDS = {
    "unknown_events": "unknown_event",
    "bad_events": "bad_event",
    "garbage": "garbage",
    "tracker_errors": "tracker_error",
}


class LiveCollector(Collector):
    """Reads the tracker (and the service, when there is one) on every scrape."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        clock: Callable[[], float],
        queues: set[str] | None = None,
        service: Any = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.tracker: Tracker = pipeline.tracker
        self.clock = clock
        self.queues = queues if queues is not None else set()
        self.service = service
        self._reasons: set[str] = set()

    def describe(self) -> Iterable[Metric]:
        """The families this collector emits, without samples (for duplicate checks)."""
        return [self._family(name) for name in LIVE]

    def collect(self) -> Iterable[Metric]:
        """Builds every live family from the current state."""
        now = self.clock()
        families = {name: self._family(name) for name in LIVE}
        states, paused = self._count_agents(now)
        known = set(self.queues)
        known.update(queue for _, queue in self.tracker.queue_stats)
        known.update(queue for queue, _ in states)
        self._queues(families, now, known)
        for queue in sorted(known):
            for state in AGENT_STATES:
                families["callcenter_queue_agents"].add_metric(
                    [queue, state], states.get((queue, state), 0)
                )
        for (queue, reason), count in sorted(paused.items()):
            families["callcenter_agents_paused"].add_metric([queue, reason], count)
        agents, agent_reasons = self._count_people(now)
        for state in AGENT_STATES:
            families["callcenter_agents"].add_metric([state], agents.get(state, 0))
        for reason, count in sorted(agent_reasons.items()):
            families["callcenter_agents_paused_by_reason"].add_metric([reason], count)
        self._ami(families)
        self._pipeline(families)
        return list(families.values())

    # ---- families -----------------------------------------------------------------------

    @staticmethod
    def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
        spec = LIVE[name]
        labels = list(spec.labels)
        if spec.kind == "counter":
            return CounterMetricFamily(name, spec.help, labels=labels)
        return GaugeMetricFamily(name, spec.help, labels=labels)

    def _queues(self, families: dict[str, Any], now: float, known: set[str]) -> None:
        waiting: Counter[str] = Counter()
        oldest: dict[str, float] = {}
        for _, visit in self.tracker.waiting():
            waiting[visit.queue] += 1
            if visit.entered_at is not None:
                oldest[visit.queue] = min(oldest.get(visit.queue, now), visit.entered_at)
        for queue in sorted(known | set(waiting)):
            families["callcenter_queue_calls_waiting"].add_metric([queue], waiting[queue])
            age = max(0.0, now - oldest[queue]) if queue in oldest else 0.0
            families["callcenter_queue_oldest_wait_seconds"].add_metric([queue], round(age, 3))
        families["callcenter_calls_open"].add_metric([], len(self.tracker.calls))

    def _count_agents(
        self, now: float
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """Memberships by (queue, state) and paused ones by (queue, reason): one pass."""
        states: dict[tuple[str, str], int] = {}
        paused: dict[tuple[str, str], int] = {}
        wrapup: dict[str, float] = {}
        wrapup_table = self.settings.wrapup_seconds
        for (_, queue, _), member in self.tracker.members.items():
            limit = wrapup.get(queue)
            if limit is None:
                limit = wrapup[queue] = per_queue(wrapup_table, queue)
            key = (queue, agent_state(member, now, limit))
            states[key] = states.get(key, 0) + 1
            if member.paused:
                pkey = (queue, self._reason(member.paused_reason))
                paused[pkey] = paused.get(pkey, 0) + 1
        return states, paused

    def _count_people(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        """Agents (not memberships) by overall state, and the paused ones by reason.

        An agent in five queues is one agent: the wallboard's rule picks their state (a call
        anywhere wins; paused only when paused in every queue).
        """
        by_agent: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        table = self.settings.wrapup_seconds
        for (server, queue, interface), member in self.tracker.members.items():
            state = agent_state(member, now, per_queue(table, queue))
            by_agent.setdefault((server, interface), []).append((state, member))
        states: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for memberships in by_agent.values():
            state = min((s for s, _ in memberships), key=STATE_PRIORITY.index)
            states[state] = states.get(state, 0) + 1
            if state == "paused":
                member = next(m for s, m in memberships if s == "paused")
                reason = self._reason(member.paused_reason)
                reasons[reason] = reasons.get(reason, 0) + 1
        return states, reasons

    def _reason(self, reason: str) -> str:
        """A bounded label value for a free-text pause reason."""
        label = " ".join(reason.split())[:_MAX_REASON_LEN] or "none"
        if label in self._reasons:
            return label
        if len(self._reasons) >= _MAX_REASONS:
            return "other"
        self._reasons.add(label)
        return label

    def _ami(self, families: dict[str, Any]) -> None:
        service = self.service
        if service is None:
            return
        clients: dict[str, Any] = service.clients
        last_events: dict[str, float] = service.last_event_at
        names = {s.name for s in self.settings.asterisk} | set(clients) | set(last_events)
        for name in sorted(names):
            client = clients.get(name)
            connected = bool(getattr(client, "connected", False))
            # With several instances (callcenter.cluster) one ingests each server; the link is
            # the owner's to report, so the others do not raise a "disconnected" alert.
            owns = getattr(service, "owns", None)
            owner = owns(name) if callable(owns) else True
            families["callcenter_ingest_owner"].add_metric([name], 1.0 if owner else 0.0)
            if owner:
                families["callcenter_ami_connected"].add_metric([name], 1.0 if connected else 0.0)
            families["callcenter_ami_reconnects_total"].add_metric(
                [name], float(getattr(client, "reconnects", 0) or 0)
            )
            families["callcenter_ami_login_failures_total"].add_metric(
                [name], float(getattr(client, "login_failures", 0) or 0)
            )
            last = getattr(client, "last_message_at", None) or last_events.get(name)
            if last:
                families["callcenter_ami_last_event_timestamp_seconds"].add_metric([name], last)
        families["callcenter_event_queue_depth"].add_metric([], service.queue.qsize())
        families["callcenter_subscriber_errors_total"].add_metric([], service.subscriber_errors)
        reconciler = getattr(service, "reconciler", None)
        stats = getattr(reconciler, "stats", None)
        for result in ("corrected", "confirmed", "found", "unmatched"):
            count = float(getattr(stats, result, 0) or 0)
            families["callcenter_reconciled_calls_total"].add_metric([result], count)
        pending = float(getattr(reconciler, "pending", 0) or 0)
        families["callcenter_reconcile_pending_calls"].add_metric([], pending)
        writer = getattr(service, "writer", None)
        rejected = families["callcenter_db_records_rejected_total"]
        rejected.add_metric(["record"], getattr(writer, "rejected", 0))
        rejected.add_metric(["call.ended"], getattr(writer, "rejected_events", 0))
        families["callcenter_db_records_spilled_total"].add_metric(
            [], getattr(writer, "spilled", 0)
        )

    def _pipeline(self, families: dict[str, Any]) -> None:
        counters = self.pipeline.counters
        families["callcenter_ami_messages_total"].add_metric([], counters.get("messages", 0))
        families["callcenter_ami_messages_dropped_total"].add_metric([], counters.get("dropped", 0))
        families["callcenter_events_total"].add_metric([], counters.get("events", 0))
        for key, kind in _ERROR_KINDS.items():
            families["callcenter_event_errors_total"].add_metric([kind], counters.get(key, 0))
        for kind, count in sorted(self.tracker.counters.items()):
            families["callcenter_tracker_anomalies_total"].add_metric([kind], count)
