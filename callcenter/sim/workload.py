"""Drives the simulated PBX with the traffic model: callers arrive, agents log in and out
with the staffing profile, take pauses (QueuePause with Turkish reasons), answer after
1-4 s or let it ring out, and close each answered call with a disposition.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.sim import members, traffic
from callcenter.sim.config import PbxConfig, QueueConfig
from callcenter.sim.engine import Pbx
from callcenter.sim.hooks import AnsweredCallEnd
from callcenter.sim.members import NOT_INUSE
from callcenter.sim.names import agent_names
from callcenter.sim.traffic import TrafficParams

if TYPE_CHECKING:
    from callcenter.sim.dialplan import InboundCall
    from callcenter.sim.members import Member

try:
    ISTANBUL: tzinfo = ZoneInfo("Europe/Istanbul")
except ZoneInfoNotFoundError:  # no tz database (slim images): Turkey is UTC+3 all year
    ISTANBUL = timezone(timedelta(hours=3), "Europe/Istanbul")
QUEUES = ("genel", "sosyal-yardim")
# A fifth of the callers called earlier (the pop shows their history; a caller who hung up
# waiting may call again), from the last few hundred callers.
REPEAT_SHARE = 0.2
REPEAT_POOL = 300


def morning_peak(day: datetime | None = None) -> float:
    """Epoch of 09:00 Istanbul time on ``day`` (default today): the default simulated start."""
    local = (day or datetime.now(ISTANBUL)).astimezone(ISTANBUL)
    return local.replace(hour=9, minute=0, second=0, microsecond=0).timestamp()


def local_midnight(epoch: float) -> float:
    """Epoch of the Istanbul midnight that starts the day containing ``epoch``."""
    local = datetime.fromtimestamp(epoch, ISTANBUL)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def agent_exts(params: TrafficParams) -> list[str]:
    """The agents' extensions: 1001, 1002, …"""
    return [str(1001 + i) for i in range(params.agents)]


def traffic_config(
    params: TrafficParams, timestampevents: bool = True, queues: tuple[str, ...] = QUEUES
) -> PbxConfig:
    """Queues for a traffic-driven run: no static members (agents log in), the model's wrap-up."""
    configs = tuple(
        QueueConfig(
            name,
            maxlen=0,
            wrapuptime=params.wrapup_s,
            timeout=params.ring_timeout_s,
            retry=params.retry_s,
        )
        for name in queues
    )
    return PbxConfig(queues=configs, timestampevents=timestampevents)


@dataclass(slots=True)
class RunStats:
    """What happened to the calls that ended so far (simulated seconds)."""

    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    timeouts: int = 0
    ivr_only: int = 0
    other: int = 0
    requests: int = 0
    wait_s: float = 0.0  # summed over answered calls
    talk_s: float = 0.0

    def call_ended(self, call: InboundCall) -> None:
        """Counts one finished call."""
        self.calls += 1
        result = call.result
        if result == "answered":
            self.answered += 1
            if call.joined_at is not None and call.answered_at is not None:
                self.wait_s += call.answered_at - call.joined_at
            self.talk_s += call.talk_s
        elif result == "abandoned":
            self.abandoned += 1
        elif result == "timeout":
            self.timeouts += 1
        elif result == "ivr_only":
            self.ivr_only += 1
        else:
            self.other += 1

    def summary(self) -> dict[str, float | int]:
        """The demo's closing figures: calls, answered, abandoned, averages, tickets."""
        return {
            "calls": self.calls,
            "answered": self.answered,
            "abandoned": self.abandoned + self.timeouts,
            "ivr_only": self.ivr_only,
            "avg_wait_s": round(self.wait_s / self.answered, 1) if self.answered else 0.0,
            "avg_talk_s": round(self.talk_s / self.answered, 1) if self.answered else 0.0,
            "requests": self.requests,
        }


class Workload:
    """The traffic model acting on a running :class:`Pbx`."""

    def __init__(self, pbx: Pbx, params: TrafficParams, rng: random.Random) -> None:
        self.pbx = pbx
        self.params = params
        self.rng = rng
        self.stats = RunStats()
        self.exts = agent_exts(params)
        self.names = dict(zip(self.exts, agent_names(len(self.exts), rng), strict=True))
        self.logged_in: list[str] = []
        self.paused: set[str] = set()
        # Citizens call again (after hanging up, or about the same request): a share of the
        # callers are earlier callers, drawn from their own generator so the traffic stays put.
        self._again_rng = random.Random(hash(rng.getstate()[1][1:8]))
        self._recent_callers: deque[tuple[str, str]] = deque(maxlen=REPEAT_POOL)
        self._day0 = local_midnight(pbx.epoch)
        self._day = -1
        self._volume = 0.0

    # ---- time of day ------------------------------------------------------------------

    def _clock(self) -> tuple[int, float]:
        """(day index, seconds since that day's midnight) of the simulated now."""
        since = self.pbx.now_epoch() - self._day0
        day = int(since // 86400)
        return day, since - day * 86400

    # ---- start ------------------------------------------------------------------------

    def start(self) -> None:
        """Installs the agent behaviour and schedules the first hour."""
        pbx, p, rng = self.pbx, self.params, self.rng
        pbx.ring_policy = self._ring
        pbx.hooks.decide_request = lambda info: traffic.is_request(p, rng)
        pbx.hooks.answered_listeners.append(self._answered)
        previous = pbx.hooks.on_call_ended

        def ended(call: object) -> None:
            from callcenter.sim.dialplan import InboundCall

            if isinstance(call, InboundCall):
                self.stats.call_ended(call)
            if previous is not None:
                previous(call)

        pbx.hooks.on_call_ended = ended
        self._hour()

    def _ring(self, member: Member, call: InboundCall) -> str:
        delay = traffic.ring_delay(self.params, self.rng)
        return "never" if delay is None else f"{delay:g}"

    def _answered(self, info: AnsweredCallEnd) -> None:
        if info.request:
            self.stats.requests += 1

    # ---- each hour: staffing and arrivals --------------------------------------------------

    def _hour(self) -> None:
        p = self.params
        day, tod = self._clock()
        hour = int(tod // 3600)
        base = self.pbx.sched.now - tod  # simulated time of this day's midnight
        if day != self._day:
            self._day = day
            self._volume = traffic.day_volume(p, self.rng)
            self._plan_pauses(base, tod)
        self._staff(p.staff(hour))
        end_h = hour + 1
        times = iter(traffic.arrivals(p, self.rng, self._volume, tod / 3600, end_h))
        self._next_arrival(base, times)  # one at a time: a busy hour is 90,000 in load mode
        self.pbx.sched.at(base + end_h * 3600.0, self._hour)

    def _next_arrival(self, base: float, times: Iterator[float]) -> None:
        t = next(times, None)
        if t is not None:
            self.pbx.sched.at(base + t, self._arrive, base, times)

    def _arrive(self, base: float, times: Iterator[float]) -> None:
        plan = traffic.caller_plan(self.params, self.rng)
        if self._recent_callers and self._again_rng.random() < REPEAT_SHARE:
            plan.name, plan.number = self._again_rng.choice(self._recent_callers)
        else:
            self._recent_callers.append((plan.name, plan.number))
        self.pbx.originate(plan, None, originated=False)
        self._next_arrival(base, times)

    def _staff(self, wanted: int) -> None:
        for ext in self.exts[:wanted]:
            if ext not in self.logged_in:
                self._login(ext)
        for ext in list(self.logged_in[wanted:]) if len(self.logged_in) > wanted else []:
            self._logout(ext)

    def _login(self, ext: str) -> None:
        interface = f"Local/{ext}@agents/n"
        for queue in self.pbx.queues.values():  # every queue the PBX has (the IVR's too)
            members.add_member(
                self.pbx, queue, interface, self.names[ext], state_interface=f"Custom:{ext}"
            )
        self.logged_in.append(ext)

    def _logout(self, ext: str) -> None:
        device = self.pbx.devices.get(f"Local/{ext}@agents/n")
        if device is not None and device.status != NOT_INUSE:
            self.pbx.sched.after(5.0, self._logout_later, ext)  # finish the call first
            return
        for queue in self.pbx.queues.values():
            members.remove_member(self.pbx, queue, f"Local/{ext}@agents/n")
        if ext in self.logged_in:
            self.logged_in.remove(ext)
        self.paused.discard(ext)

    def _logout_later(self, ext: str) -> None:
        _, tod = self._clock()
        if ext in self.logged_in and self.exts.index(ext) >= self.params.staff(int(tod // 3600)):
            self._logout(ext)

    # ---- pauses -------------------------------------------------------------------------

    def _plan_pauses(self, base: float, tod: float) -> None:
        """Schedules the day's pauses of every agent (the traffic model's pause plan)."""
        for ext in self.exts:
            for t, kind, duration in traffic.pause_plan(self.params, self.rng, tod, 86400.0):
                self.pbx.sched.at(base + t, self._pause, ext, kind.reason, duration)

    def _pause(self, ext: str, reason: str, duration: float, tries: int = 0) -> None:
        interface = f"Local/{ext}@agents/n"
        device = self.pbx.devices.get(interface)
        if ext not in self.logged_in or ext in self.paused or device is None:
            return  # off duty (or already paused): this pause does not happen
        if device.status != NOT_INUSE and tries < 60:
            # On a call: the agent pauses when it ends.
            self.pbx.sched.after(5.0, self._pause, ext, reason, duration, tries + 1)
            return
        members.pause_members(self.pbx, interface, True, None, reason)
        self.paused.add(ext)
        self.pbx.sched.after(duration, self._unpause, ext)

    def _unpause(self, ext: str) -> None:
        if ext in self.paused:
            self.paused.discard(ext)
            members.pause_members(self.pbx, f"Local/{ext}@agents/n", False, None, "")
