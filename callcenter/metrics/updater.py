"""Turns tracker effects into counter and histogram updates (an effect subscriber).

Each queue visit counts once as entered (at QueueJoined, or when it ends if the join was
never seen: a resync, a restart) and once as exited (at VisitEnded), so the outcomes always
add up to the visits entered. Wrap-up has no AMI event: it runs from the end of an answered
visit until the agent's next activity (rings, pauses, goes unavailable, logs off), at most
the queue's wrap-up time.
"""

from __future__ import annotations

import heapq

from callcenter.calls import agent_state
from callcenter.config import Settings, per_queue
from callcenter.metrics.definitions import Metrics, exit_outcome
from callcenter.model import (
    AgentOffered,
    CallAnswered,
    CallEnded,
    CallStarted,
    Effect,
    Member,
    MemberChanged,
    PauseEnded,
    QueueJoined,
    SessionEnded,
    Visit,
    VisitEnded,
)

AgentKey = tuple[str, str]  # (server, interface)
# A state change this soon after a call ended is the call's own teardown, not new work.
_TEARDOWN_S = 1.0
_ENDS_WRAPUP = {"ringing", "paused", "unavailable", "on_call"}


class MetricsUpdater:
    """Folds effects into ``Metrics``; call it with each batch of effects, in order."""

    def __init__(self, metrics: Metrics, settings: Settings) -> None:
        self.metrics = metrics
        self.settings = settings
        self.queues: set[str] = set()  # every queue seen, for the live gauges' zero series
        self.clock = 0.0  # the latest event time seen in effects
        self._joined: dict[int, Visit] = {}  # open visits counted as entered, by id()
        self._wrapups: dict[AgentKey, tuple[str, float, float]] = {}  # queue, start, limit
        self._deadlines: list[tuple[float, AgentKey, float]] = []  # (start + limit, key, start)

    def __call__(self, effects: list[Effect]) -> None:
        """Applies a batch of effects (the Service subscriber signature)."""
        for effect in effects:
            self.apply(effect)
        self.expire(self.clock)

    def apply(self, effect: Effect) -> None:
        """Applies one effect."""
        if isinstance(effect, QueueJoined):
            self._see_queue(effect.visit.queue)
            self.metrics.entered.labels(effect.visit.queue).inc()
            self._joined[id(effect.visit)] = effect.visit
            self._tick(effect.visit.entered_at)
        elif isinstance(effect, VisitEnded):
            self._visit_ended(effect.call.server, effect.visit)
        elif isinstance(effect, MemberChanged):
            self._see_queue(effect.member.queue)
            self._tick(effect.member.since)
            self._member_changed(effect.member, effect.removed)
        elif isinstance(effect, CallAnswered):
            self._tick(effect.visit.answered_at)
        elif isinstance(effect, AgentOffered):
            self._tick(effect.offer.rang_at)
        elif isinstance(effect, CallStarted):
            self._tick(effect.call.started_at)
        elif isinstance(effect, CallEnded):
            self._tick(effect.call.ended_at)
        elif isinstance(effect, PauseEnded):
            self._tick(effect.pause.ended_at)
        elif isinstance(effect, SessionEnded):
            self._tick(effect.session.ended_at)

    def expire(self, now: float) -> None:
        """Records the wrap-ups that ran their full time by ``now``."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, key, start = heapq.heappop(self._deadlines)
            pending = self._wrapups.get(key)
            if pending is not None and pending[1] == start:
                del self._wrapups[key]
                self.metrics.wrapup.labels(pending[0]).observe(pending[2])

    # ---- helpers ------------------------------------------------------------------------

    def _tick(self, ts: float | None) -> None:
        if ts is not None and ts > self.clock:
            self.clock = ts

    def _see_queue(self, queue: str) -> None:
        if queue not in self.queues:
            self.queues.add(queue)
            self.metrics.known_queue(queue)

    def _visit_ended(self, server: str, visit: Visit) -> None:
        m = self.metrics
        queue = visit.queue
        self._see_queue(queue)
        self._tick(visit.ended_at)
        if self._joined.pop(id(visit), None) is not visit:
            m.entered.labels(queue).inc()  # its join happened before we were listening
        wait = visit.wait_s
        outcome = exit_outcome(visit.outcome, wait, self.settings.short_abandon_seconds)
        m.exited.labels(queue, outcome).inc()
        if wait is not None:
            m.wait.labels(queue, outcome).observe(wait)
        if visit.answered_at is None:
            return
        if visit.talk_s is not None:
            m.talk.labels(queue).observe(visit.talk_s)
        m.hold.labels(queue).observe(visit.hold_s)
        if visit.interface and visit.ended_at is not None:
            self._start_wrapup(server, visit.interface, queue, visit.ended_at)

    def _start_wrapup(self, server: str, interface: str, queue: str, start: float) -> None:
        limit = per_queue(self.settings.wrapup_seconds, queue)
        if limit <= 0:
            return
        key = (server, interface)
        self._wrapups[key] = (queue, start, limit)
        heapq.heappush(self._deadlines, (start + limit, key, start))

    def _member_changed(self, member: Member, removed: bool) -> None:
        key = (member.server, member.interface)
        pending = self._wrapups.get(key)
        if pending is None:
            return
        queue, start, limit = pending
        if removed:
            end = max(self.clock, start)
        else:
            state = agent_state(member, member.since, limit)
            if state not in _ENDS_WRAPUP:
                return
            if state == "on_call" and member.since < start + _TEARDOWN_S:
                return
            end = member.since
        del self._wrapups[key]
        self.metrics.wrapup.labels(queue).observe(min(limit, max(0.0, end - start)))
