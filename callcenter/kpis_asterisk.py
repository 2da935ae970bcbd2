"""What Asterisk's app_queue would report (QueueParams), computed the way app_queue does.

Used to explain, and test, where our KPIs and Asterisk's counters differ: app_queue works in
whole seconds, averages with an exponential filter (each new value weighs 1/4), counts a
timeout as abandoned, and its service level looks at answered calls only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from callcenter.model import Visit


@dataclass(frozen=True, slots=True)
class QueueVisitSeconds:
    """A queue visit in app_queue's terms: whole seconds, as queue_log records them."""

    entered: float
    wait: int  # hold time at connect, or wait when the caller left unanswered
    talk: int | None = None  # None while the conversation has not completed
    answered: bool = False
    abandoned: bool = False  # hung up or timed out (app_queue's record_abandoned)

    @classmethod
    def of(cls, visit: Visit) -> QueueVisitSeconds | None:
        """A visit of ours in app_queue's terms (its own whole-second figures when known)."""
        if visit.entered_at is None or visit.wait_s is None:
            return None
        wait = visit.asterisk_wait_s if visit.asterisk_wait_s is not None else round(visit.wait_s)
        talk = visit.asterisk_talk_s
        if talk is None and visit.talk_s is not None:
            talk = round(visit.talk_s)
        return cls(
            entered=visit.entered_at,
            wait=wait,
            talk=talk if visit.outcome == "answered" else None,
            answered=visit.outcome == "answered",
            abandoned=visit.outcome in ("abandoned", "timeout"),
        )


@dataclass(slots=True)
class QueueParams:
    """The counters of a QueueStatus ``QueueParams`` event."""

    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0

    @property
    def service_level_perf(self) -> float:
        """ServicelevelPerf: answered within the service level / completed, in percent."""
        return round(100.0 * self.completed_in_sl / self.completed, 1) if self.completed else 0.0

    @property
    def service_level_perf2(self) -> float:
        """ServicelevelPerf2: (answered + abandoned within it) / (completed + abandoned), %."""
        total = self.completed + self.abandoned
        inside = self.completed_in_sl + self.abandoned_in_sl
        return round(100.0 * inside / total, 1) if total else 0.0


def ewma(old: int, new: int) -> int:
    """app_queue's running average: (3 * old + new) / 4 in integer arithmetic."""
    return ((old << 2) - old + new) >> 2


def queue_params(
    visits: Iterable[QueueVisitSeconds], servicelevel: int, until: float | None = None
) -> QueueParams:
    """The counters app_queue would hold after these visits (events up to ``until``).

    Hold time is averaged when the agent answers, talk time and Completed when the
    conversation ends; the first value seeds each average.
    """
    events: list[tuple[float, int, QueueVisitSeconds]] = []
    for v in visits:
        if v.answered:
            events.append((v.entered + v.wait, 0, v))
            if v.talk is not None:
                events.append((v.entered + v.wait + v.talk, 1, v))
        elif v.abandoned:
            events.append((v.entered + v.wait, 2, v))
    p = QueueParams()
    for at, kind, v in sorted(events, key=lambda e: (e[0], e[1])):
        if until is not None and at > until:
            break
        if kind == 0:
            seeded = p.completed + p.abandoned > 0
            p.holdtime = ewma(p.holdtime, v.wait) if seeded else v.wait
        elif kind == 1:
            p.completed += 1
            p.completed_in_sl += v.wait <= servicelevel
            talk = v.talk or 0
            p.talktime = ewma(p.talktime, talk) if p.completed > 1 else talk
        else:
            p.abandoned += 1
            p.abandoned_in_sl += v.wait <= servicelevel
    return p
