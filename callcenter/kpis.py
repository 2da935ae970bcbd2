"""Call-center KPIs, defined once: pure arithmetic on calls, queue visits and agent time.

Everything here is additive first (``Tally``: counts and sums), derived second
(``Tally.kpis``: rates and averages), so a figure is the same whether it is folded from
replayed calls, from PostgreSQL rollups (``callcenter.reports``) or per hour and summed.
The definitions, and how they differ from Asterisk's own counters, are in ``docs/kpis.md``.

Two units are counted. *Calls* (the municipality's table: calls, requests, average talk,
average wait) are whole calls, placed in time by when they started. *Visits* (the queue KPIs:
offered, answered, service level…) are stays in one queue, placed by when the caller entered
it; a transferred call is offered to each queue it visits, as Asterisk counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.model import Call, Visit

# Upper edges (seconds, exclusive) of the wait distribution; the last bin is open-ended.
# callcenter/store/migrations/0003_reports.sql bins the same way (report_wait_bin).
WAIT_BIN_EDGES: tuple[int, ...] = (5, 10, 20, 30, 60, 120, 300)
WAIT_BINS = len(WAIT_BIN_EDGES) + 1
GROUPINGS = ("day", "hour", "month", "queue", "agent")


def wait_bin(wait_s: float) -> int:
    """The index of the wait-distribution bin a wait falls in."""
    for i, edge in enumerate(WAIT_BIN_EDGES):
        if wait_s < edge:
            return i
    return len(WAIT_BIN_EDGES)


def wait_bin_labels() -> list[str]:
    """Human labels of the wait bins: "0-5", "5-10", … "300+" (seconds)."""
    lows = (0, *WAIT_BIN_EDGES)
    labels = [f"{lo}-{hi}" for lo, hi in zip(lows, WAIT_BIN_EDGES, strict=False)]
    return [*labels, f"{WAIT_BIN_EDGES[-1]}+"]


@dataclass(frozen=True)
class Thresholds:
    """The configurable parts of the definitions: service-level T, short abandons, wrap-up."""

    service_level_s: Mapping[str, float] = field(default_factory=lambda: {"*": 20.0})
    short_abandon_s: float = 5.0
    wrapup_s: Mapping[str, float] = field(default_factory=lambda: {"*": 0.0})

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        """The thresholds of a ``callcenter.config.Settings``."""
        return cls(
            service_level_s=dict(settings.service_level_seconds),
            short_abandon_s=float(settings.short_abandon_seconds),
            wrapup_s=dict(settings.wrapup_seconds),
        )

    def sl(self, queue: str) -> float:
        """The service-level threshold T of a queue (the ``*`` entry, else 20 s)."""
        return float(self.service_level_s.get(queue, self.service_level_s.get("*", 20.0)))

    def wrapup(self, queue: str) -> float:
        """The wrap-up seconds counted after each answered visit of a queue."""
        return float(self.wrapup_s.get(queue, self.wrapup_s.get("*", 0.0)))


def _ratio(num: float, den: float, digits: int = 1) -> float | None:
    """``num / den`` rounded, or None when there is nothing to divide by."""
    return round(num / den, digits) if den else None


@dataclass(slots=True)
class Tally:
    """Additive counts and sums from which every KPI is derived; ``+=`` merges two."""

    # ---- calls (the municipality's table) ----
    calls: int = 0  # calls started (IVR-only and refused calls included)
    calls_queued: int = 0  # calls that waited in a queue (their first queue's wait is known)
    calls_wait_s: float = 0.0
    calls_answered: int = 0
    calls_talk_s: float = 0.0  # talk of the call, overlapping visits counted once
    requests: int = 0  # call-ticket attachments: requests forwarded to a department
    # ---- queue visits ----
    offered: int = 0
    answered: int = 0
    abandoned: int = 0  # hung up after waiting at least the short-abandon threshold
    short_abandoned: int = 0  # hung up sooner: misdials, kept out of SL and abandon rate
    timeouts: int = 0  # the queue's own time limit sent the caller on
    other_exits: int = 0  # left by key, empty queue, withdrawn, unknown
    answered_in_sl: int = 0  # answered with a wait <= the queue's T
    answer_wait_n: int = 0
    answer_wait_s: float = 0.0
    talk_n: int = 0
    talk_s: float = 0.0  # from answer to end of the visit (hold included)
    hold_s: float = 0.0
    wrapup_s: float = 0.0
    wait_n: int = 0  # every visit whose wait is known, answered or not
    wait_s: float = 0.0
    wait_max: float | None = None
    wait_hist: list[int] = field(default_factory=lambda: [0] * WAIT_BINS)
    # ---- agents ----
    rang: int = 0  # times the queue rang the agent
    missed: int = 0  # rang and not answered before the ring timeout (RONA)

    def __iadd__(self, other: Tally) -> Tally:
        """Adds another tally's counts to this one (a group's, an hour's)."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.wait_max is not None and (self.wait_max is None or other.wait_max > self.wait_max):
            self.wait_max = other.wait_max
        self.wait_hist = [a + b for a, b in zip(self.wait_hist, other.wait_hist, strict=True)]
        return self

    # ---- folding ----

    def add_call(self, call: Call) -> None:
        """Counts one finished call for the municipality's table."""
        self.calls += 1
        wait = call.wait_s
        if wait is not None:
            self.calls_queued += 1
            self.calls_wait_s += wait
        if call.outcome == "answered":
            self.calls_answered += 1
            self.calls_talk_s += call.talk_s or 0.0

    def add_visit(self, visit: Visit, th: Thresholds) -> None:
        """Counts one ended queue visit for the queue KPIs."""
        self.offered += 1
        wait = visit.wait_s
        if wait is not None:
            self.wait_n += 1
            self.wait_s += wait
            self.wait_max = wait if self.wait_max is None else max(self.wait_max, wait)
            self.wait_hist[wait_bin(wait)] += 1
        outcome = visit.outcome
        if outcome == "answered":
            self.add_answer(visit, th)
        elif outcome == "abandoned":
            if wait is not None and wait < th.short_abandon_s:
                self.short_abandoned += 1
            else:
                self.abandoned += 1
        elif outcome == "timeout":
            self.timeouts += 1
        else:
            self.other_exits += 1

    def add_answer(self, visit: Visit, th: Thresholds) -> None:
        """Counts the answer of a visit (for its queue, or for the agent who took it)."""
        self.answered += 1
        wait = visit.wait_s
        if wait is not None:
            self.answer_wait_n += 1
            self.answer_wait_s += wait
            if wait <= th.sl(visit.queue):
                self.answered_in_sl += 1
        if visit.talk_s is not None:
            self.talk_n += 1
            self.talk_s += visit.talk_s
        self.hold_s += visit.hold_s
        self.wrapup_s += th.wrapup(visit.queue)

    # ---- deriving ----

    def kpis(self) -> dict[str, Any]:
        """The KPIs of these counts: the municipality's four figures first, then the rest."""
        base = self.offered - self.short_abandoned  # callers who waited long enough to count
        return {
            "calls": self.calls,
            "requests": self.requests,
            "avg_talk_s": _ratio(self.calls_talk_s, self.calls_answered),
            "avg_wait_s": _ratio(self.calls_wait_s, self.calls_queued),
            "answered_calls": self.calls_answered,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "timeouts": self.timeouts,
            "other_exits": self.other_exits,
            "service_level": _ratio(self.answered_in_sl, base, 4),
            "abandon_rate": _ratio(self.abandoned, base, 4),
            "asa_s": _ratio(self.answer_wait_s, self.answer_wait_n),
            "aht_s": _ratio(self.talk_s + self.wrapup_s, self.talk_n),
            "avg_hold_s": _ratio(self.hold_s, self.answered),
            "avg_queue_wait_s": _ratio(self.wait_s, self.wait_n),
            "max_wait_s": None if self.wait_max is None else round(self.wait_max, 1),
            "request_rate": _ratio(self.requests, self.calls_answered, 4),
        }


# The fields that add up (all but the maximum and the histogram), looked up once.
_SUMMED = tuple(f.name for f in fields(Tally) if f.name not in ("wait_max", "wait_hist"))


# ---- grouping ---------------------------------------------------------------------------


def visit_time(visit: Visit) -> float | None:
    """When a visit counts: entering the queue (else the first time known about it)."""
    for ts in (visit.entered_at, visit.answered_at, visit.left_at, visit.ended_at):
        if ts is not None:
            return ts
    return None


def time_key(ts: float, by: str, tz: ZoneInfo) -> str:
    """The group of a moment: local "2024-03-05" (day), "09" (hour of day), "2024-03" (month)."""
    local = datetime.fromtimestamp(ts, tz)
    if by == "day":
        return local.strftime("%Y-%m-%d")
    if by == "hour":
        return local.strftime("%H")
    if by == "month":
        return local.strftime("%Y-%m")
    raise ValueError(f"not a time grouping: {by!r}")


RequestCount = Callable[[Call], int]


def tally_calls(
    calls: Iterable[Call],
    th: Thresholds,
    by: str | None = None,
    tz: str = "Europe/Istanbul",
    requests: RequestCount | None = None,
) -> dict[str, Tally]:
    """Folds finished calls into one tally per group (``""`` when ``by`` is None).

    ``by`` is day, hour, month, queue or agent. Calls go by when they started and their first
    queue, visits by when the caller entered and their queue. For an agent: the calls they
    answered first (with those calls' requests), the visits they answered and how often they
    were rung. ``requests`` says how many tickets a call was attached to.
    """
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; expected one of {', '.join(GROUPINGS)}")
    zone = ZoneInfo(tz)
    out: dict[str, Tally] = {}

    def group(key: str | None) -> Tally | None:
        if key is None:
            return None
        found = out.get(key)
        if found is None:
            found = out[key] = Tally()
        return found

    def key_at(ts: float | None, name: str | None) -> str | None:
        if by is None:
            return ""
        if by in ("queue", "agent"):
            return name
        return None if ts is None else time_key(ts, by, zone)

    for call in calls:
        n_requests = requests(call) if requests else 0
        if by == "agent":
            first = call.first_answered
            t = group(first.agent if first else None)
            if t is not None:
                t.calls += 1
                t.calls_queued += call.wait_s is not None
                t.calls_wait_s += call.wait_s or 0.0
                t.calls_answered += 1
                t.calls_talk_s += call.talk_s or 0.0
                t.requests += n_requests
        else:
            t = group(key_at(call.started_at, call.queue or ""))
            if t is not None:
                t.add_call(call)
                t.requests += n_requests
        for visit in call.visits:
            if by == "agent":
                _tally_agent_visit(visit, th, group)
            else:
                vt = group(key_at(visit_time(visit), visit.queue))
                if vt is not None:
                    vt.add_visit(visit, th)
    return out


def _tally_agent_visit(visit: Visit, th: Thresholds, group: Callable[[str], Tally | None]) -> None:
    """Counts a visit for the agents it rang and the agent who answered it."""
    for offer in visit.offers:
        t = group(offer.agent)
        if t is not None:
            t.rang += 1
            t.missed += offer.result == "no_answer"
    if visit.outcome == "answered" and visit.agent:
        t = group(visit.agent)
        if t is not None:
            t.add_answer(visit, th)


# ---- agent time ---------------------------------------------------------------------------

SessionSpan = tuple[str, float, float | None]  # agent, started_at, ended_at (None: still open)
PauseSpan = tuple[str, str, float, float | None]  # agent, reason, started_at, ended_at


def union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, disjoint spans covering the same time as ``spans``."""
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def intersect(
    a: list[tuple[float, float]], b: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The time covered by both of two sorted, disjoint span lists (as from ``union``)."""
    out: list[tuple[float, float]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Total length of spans."""
    return sum(e - s for s, e in spans)


@dataclass(slots=True)
class AgentTime:
    """An agent's logged-in and paused time within a period, pauses split by reason."""

    logged_in_s: float = 0.0
    paused_s: float = 0.0
    pauses: dict[str, float] = field(default_factory=dict)

    def kpis(self, handled_s: float) -> dict[str, Any]:
        """Logged-in and pause time, and occupancy: handling time / (logged in - paused)."""
        available = self.logged_in_s - self.paused_s
        return {
            "logged_in_s": round(self.logged_in_s, 1),
            "paused_s": round(self.paused_s, 1),
            "pauses": {r: round(s, 1) for r, s in sorted(self.pauses.items())},
            "occupancy": _ratio(min(handled_s, available), available, 4) if available > 0 else None,
        }


def agent_times(
    sessions: Iterable[SessionSpan], pauses: Iterable[PauseSpan], start: float, end: float
) -> dict[str, AgentTime]:
    """Logged-in and pause seconds per agent within ``[start, end)``; open spans run to ``end``.

    Time logged in to (or paused in) several queues at once counts once, and a pause counts
    only while the agent is logged in.
    """
    period = [(start, end)]
    logged: dict[str, list[tuple[float, float]]] = {}
    for agent, s, e in sessions:
        logged.setdefault(agent, []).append((s, end if e is None else e))
    paused: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for agent, reason, s, e in pauses:
        by_reason = paused.setdefault(agent, {})
        by_reason.setdefault(reason or "", []).append((s, end if e is None else e))
    out: dict[str, AgentTime] = {}
    for agent in sorted(set(logged) | set(paused)):
        t = out[agent] = AgentTime()
        online = intersect(union(logged.get(agent, [])), period)
        t.logged_in_s = seconds(online)
        reasons = {r: union(spans) for r, spans in paused.get(agent, {}).items()}
        every = union(s for spans in reasons.values() for s in spans)
        inside = intersect(every, online)
        t.paused_s = seconds(inside)
        # Pauses end at logoff, so they normally lie inside the sessions: clip only if not.
        clip = t.paused_s != seconds(every)
        for reason, spans in reasons.items():
            length = seconds(intersect(spans, online) if clip else spans)
            if length > 0:
                t.pauses[reason] = length
    return out
