"""Today's queue figures for the wallboard, live, with the KPI definitions of callcenter.kpis.

A fold over tracker effects (time from the events): visits that ended today go into one
``kpis.Tally`` per queue; visits answered and still in conversation are added at read time,
so "answered" moves the moment an agent picks up. The day is the call center's local day
(``Settings.timezone``) of the visit's entry, as in the reports.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.config import Settings
from callcenter.kpis import Tally, Thresholds, visit_time
from callcenter.model import CallAnswered, Effect, Visit, VisitEnded


class Today:
    """Folds effects into today's per-queue tallies."""

    def __init__(self, settings: Settings) -> None:
        self.thresholds = Thresholds.from_settings(settings)
        self.tz = ZoneInfo(settings.timezone)
        self.day: date | None = None
        self.ended: dict[str, Tally] = {}  # queue -> visits of today that ended
        self._talking: dict[int, Visit] = {}  # answered visits still open, by id()

    def day_of(self, ts: float) -> date:
        """The local calendar day of an epoch time."""
        return datetime.fromtimestamp(ts, self.tz).date()

    def roll(self, ts: float | None) -> None:
        """Starts a new day when ``ts`` falls after the current one."""
        if ts is None:
            return
        day = self.day_of(ts)
        if self.day is None or day > self.day:
            self.day = day
            self.ended = {}

    def apply(self, effect: Effect) -> None:
        """Applies one effect."""
        if isinstance(effect, CallAnswered):
            self.roll(effect.visit.answered_at)
            self._talking[id(effect.visit)] = effect.visit
        elif isinstance(effect, VisitEnded):
            visit = effect.visit
            self.roll(visit.ended_at)
            self._talking.pop(id(visit), None)
            if self._is_today(visit):
                self.ended.setdefault(visit.queue, Tally()).add_visit(visit, self.thresholds)

    def _is_today(self, visit: Visit) -> bool:
        ts = visit_time(visit)
        return ts is not None and self.day is not None and self.day_of(ts) == self.day

    def tallies(self) -> dict[str, Tally]:
        """Per queue: today's ended visits plus the answered ones still in conversation."""
        out: dict[str, Tally] = {}
        for queue, tally in self.ended.items():
            out[queue] = Tally()
            out[queue] += tally
        for visit in self._talking.values():
            if self._is_today(visit):
                live = Tally()
                live.add_visit(visit, self.thresholds)
                # Its talk is not counted until it ends, so neither are its hold and wrap-up.
                live.hold_s = live.wrapup_s = 0.0
                tally = out.setdefault(visit.queue, Tally())
                tally += live
        return out


def figures(tally: Tally, waiting: int) -> dict[str, Any]:
    """What the wallboard shows of a tally; callers waiting now count as offered already."""
    k = tally.kpis()
    return {
        "offered": k["offered"] + waiting,
        "answered": k["answered"],
        "abandoned": k["abandoned"],
        "short_abandoned": k["short_abandoned"],
        "unanswered": k["timeouts"] + k["other_exits"],
        "service_level": k["service_level"],
        "abandon_rate": k["abandon_rate"],
        "asa_s": k["asa_s"],
        "aht_s": k["aht_s"],
    }
