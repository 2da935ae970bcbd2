"""A whole simulated year in seconds: the traffic model run without channels or sockets.

Each working day is a first-come-first-served queue in front of the agents on duty (the
staffing profile), with the same draws as the live simulator: Poisson arrivals, IVR time,
lognormal patience and talk, ring 1-4 s or a ring-out (15 s, then 2 s before the next
agent), app_queue's one-second turn checks, wrap-up after each call, and agents' pauses.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from dataclasses import asdict, dataclass

from callcenter.sim import traffic
from callcenter.sim.traffic import TrafficParams

_WELCOME_S = 1.0
_DTMF_S = 0.25


@dataclass(frozen=True, slots=True)
class DayStats:
    """Totals of one simulated day."""

    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    ivr_only: int = 0
    requests: int = 0
    talk_s: float = 0.0
    wait_answered_s: float = 0.0
    wait_abandoned_s: float = 0.0
    within_20s: int = 0
    peak_hour_calls: int = 0


@dataclass(frozen=True, slots=True)
class YearSummary:
    """A simulated year next to the figures the municipality reported."""

    days: int
    calls: int
    answered: int
    abandoned: int
    ivr_only: int
    requests: int
    avg_talk_s: float
    avg_wait_s: float  # answered calls: from joining the queue to the agent picking up
    avg_abandon_wait_s: float
    service_level: float  # answered within 20 s / answered
    calls_per_day: float
    peak_hour_calls: float  # average over the days

    def as_dict(self) -> dict[str, float | int]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def _next_on_duty(staff: list[int], agent: int, t: float) -> float:
    hour = int(t // 3600)
    if hour < 24 and staff[hour] > agent:
        return t
    for h in range(hour + 1, 24):
        if staff[h] > agent:
            return h * 3600.0
    return math.inf


def simulate_day(p: TrafficParams, rng: random.Random) -> DayStats:
    """One working day: every caller from arrival to an answer, an abandon or the IVR."""
    hours = [h for h, share in p.hourly_share if share > 0]
    day_end = (max(hours) + 1) * 3600.0
    volume = traffic.day_volume(p, rng)
    times = traffic.arrivals(p, rng, volume, min(hours), max(hours) + 1)
    per_hour: dict[int, int] = {}
    for t in times:
        per_hour[int(t // 3600)] = per_hour.get(int(t // 3600), 0) + 1
    agents = p.agents
    pauses = [
        [(t, d) for t, _, d in traffic.pause_plan(p, rng, 0.0, day_end)] for _ in range(agents)
    ]
    free: list[tuple[float, int]] = [(0.0, i) for i in range(agents)]
    heapq.heapify(free)
    staff = [p.staff(h) for h in range(24)]
    cats, weights = zip(*p.category_mix, strict=True)
    cum = list(itertools.accumulate(weights))
    self_service = cats.index("Başvuru durumu") if "Başvuru durumu" in cats else -1
    answered = abandoned = ivr_only = requests = within = 0
    talk_sum = wait_sum = ab_wait_sum = 0.0
    for arrival in times:
        cat = bisect.bisect(cum, rng.random() * cum[-1])
        ivr = rng.random() < p.ivr_share
        if ivr and cat == self_service:
            ivr_only += 1
            continue
        join = arrival + _WELCOME_S
        if ivr:
            join += rng.uniform(1.0, 2 * p.ivr_key_delay_s - 1.0) + _DTMF_S
        deadline = join + traffic.patience(p, rng)
        now = join
        while True:
            found = _pop_agent(staff, free, pauses, now)
            if found is None:
                abandoned += 1
                ab_wait_sum += deadline - join
                break
            avail, agent = found
            # The caller notices a free agent at its next one-second turn check.
            start = now if avail <= now else join + math.ceil(avail - join)
            if start >= deadline:
                heapq.heappush(free, (avail, agent))
                abandoned += 1
                ab_wait_sum += deadline - join
                break
            ring = traffic.ring_delay(p, rng)
            if ring is None:
                heapq.heappush(free, (start + p.ring_timeout_s, agent))
                now = start + p.ring_timeout_s + p.retry_s
                continue
            pickup = start + ring
            if pickup >= deadline:
                heapq.heappush(free, (deadline, agent))
                abandoned += 1
                ab_wait_sum += deadline - join
                break
            talk = traffic.talk_time(p, rng)
            heapq.heappush(free, (pickup + talk + p.wrapup_s, agent))
            answered += 1
            wait = pickup - join
            wait_sum += wait
            talk_sum += talk
            within += wait <= 20
            requests += traffic.is_request(p, rng)
            break
    return DayStats(
        calls=len(times),
        answered=answered,
        abandoned=abandoned,
        ivr_only=ivr_only,
        requests=requests,
        talk_s=talk_sum,
        wait_answered_s=wait_sum,
        wait_abandoned_s=ab_wait_sum,
        within_20s=within,
        peak_hour_calls=max(per_hour.values(), default=0),
    )


def _pop_agent(
    staff: list[int],
    free: list[tuple[float, int]],
    pauses: list[list[tuple[float, float]]],
    now: float,
) -> tuple[float, int] | None:
    """The agent free soonest, after off-duty hours and due pauses are accounted for."""
    while free:
        avail, agent = heapq.heappop(free)
        t = max(avail, now)
        on = _next_on_duty(staff, agent, t)
        if on == math.inf:
            continue  # gone for the day
        plan = pauses[agent]
        if plan and plan[0][0] <= on:
            # Pauses begin when planned (or when the call in progress ends), idle or not.
            ready = avail
            while plan and plan[0][0] <= max(on, ready):
                start, duration = plan.pop(0)
                if staff[int(start // 3600)] > agent:  # no pauses while off duty
                    ready = max(ready, start) + duration
            heapq.heappush(free, (ready, agent))
            continue
        if on > t:
            heapq.heappush(free, (on, agent))
            continue
        return avail, agent
    return None


def simulate_year(params: TrafficParams | None = None, seed: int = 2024) -> YearSummary:
    """All working days of a year; the summary the closing note compares with the seed."""
    p = params or TrafficParams()
    rng = random.Random(seed)
    days = [simulate_day(p, rng) for _ in range(p.working_days)]
    calls = sum(d.calls for d in days)
    answered = sum(d.answered for d in days)
    abandoned = sum(d.abandoned for d in days)
    return YearSummary(
        days=len(days),
        calls=calls,
        answered=answered,
        abandoned=abandoned,
        ivr_only=sum(d.ivr_only for d in days),
        requests=sum(d.requests for d in days),
        avg_talk_s=round(sum(d.talk_s for d in days) / max(1, answered), 1),
        avg_wait_s=round(sum(d.wait_answered_s for d in days) / max(1, answered), 1),
        avg_abandon_wait_s=round(sum(d.wait_abandoned_s for d in days) / max(1, abandoned), 1),
        service_level=round(sum(d.within_20s for d in days) / max(1, answered), 3),
        calls_per_day=round(calls / max(1, len(days)), 1),
        peak_hour_calls=round(sum(d.peak_hour_calls for d in days) / max(1, len(days)), 1),
    )
