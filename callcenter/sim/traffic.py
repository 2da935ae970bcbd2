"""The traffic model: who calls when, what they want, how long they talk and wait.

Pure and seeded: every draw comes from the ``random.Random`` passed in. The defaults are
Sancaktepe's 2024 figures (MISSION.md): 350,878 calls a year on ~251 working days
(~1,400 a day, 200-300 in the peak hour), 72 s average talk, ~26 s average wait with
about eight agents at the peak; one answered call in four becomes a request.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from callcenter.sim import names
from callcenter.sim.config import GENEL_DID, IVR_DID
from callcenter.sim.ivr import KEY_FOR_CATEGORY, MENU
from callcenter.sim.plan import CallPlan

# Share of a working day's calls arriving in each hour (08:30-17:30 office hours).
HOURLY_SHARE: tuple[tuple[int, float], ...] = (
    (8, 0.045),
    (9, 0.145),
    (10, 0.16),
    (11, 0.15),
    (12, 0.085),
    (13, 0.12),
    (14, 0.13),
    (15, 0.11),
    (16, 0.055),
)
# Agents logged in per hour (lunch is staggered, so 12:00 keeps most seats).
STAFFING: tuple[tuple[int, int], ...] = (
    (8, 3),
    (9, 7),
    (10, 8),
    (11, 8),
    (12, 5),
    (13, 6),
    (14, 7),
    (15, 6),
    (16, 3),
)
# What callers come for (MISSION.md's service categories) and how often.
CATEGORY_MIX: tuple[tuple[str, float], ...] = (
    ("Bilgi ve yönlendirme", 0.38),
    ("Sosyal yardım", 0.17),
    ("Başvuru durumu", 0.09),
    ("Masa-sandalye", 0.05),
    ("Çözüm ofisleri", 0.06),
    ("Depremzede başvuruları", 0.03),
    ("Şikâyet ve öneri", 0.12),
    ("CİMER / Açık Kapı", 0.04),
    ("Muhtarlık işleri", 0.06),
)


@dataclass(frozen=True, slots=True)
class PauseKind:
    """A kind of agent pause: its QueuePause reason, how often per agent-hour, how long."""

    reason: str
    per_hour: float
    mean_s: float


PAUSES = (
    PauseKind("Çay molası", 0.35, 600.0),
    PauseKind("Toplantı", 0.04, 1800.0),
    PauseKind("Eğitim", 0.015, 2700.0),
)


@dataclass(frozen=True, slots=True)
class TrafficParams:
    """Every parameter of the traffic model; the defaults are the municipality's."""

    calls_per_year: int = 350_878
    working_days: int = 251
    hourly_share: tuple[tuple[int, float], ...] = HOURLY_SHARE
    staffing: tuple[tuple[int, int], ...] = STAFFING
    day_sigma: float = 0.12  # day-to-day variation of the daily volume (lognormal)
    talk_mean_s: float = 72.0
    talk_sigma: float = 0.65  # lognormal shape of talk time
    talk_min_s: float = 4.0
    patience_median_s: float = 180.0  # lognormal caller patience in the queue
    patience_sigma: float = 0.8
    ring_min_s: float = 1.0
    ring_max_s: float = 4.0
    no_answer_p: float = 0.03  # an offered call rings out (RINGNOANSWER after 15 s)
    ring_timeout_s: float = 15.0
    retry_s: float = 2.0
    # After-call work (typing the disposition or the request) before the next offer; with
    # the staffing and pauses above it brings the average wait to the reported ~26 s.
    wrapup_s: float = 35.0
    agent_hangup_p: float = 0.4  # the agent ends the call (else the caller)
    request_p: float = 0.27  # an answered call is closed as a request (ticket)
    ivr_share: float = 0.9  # callers on the IVR line (the rest dial the direct line)
    ivr_key_delay_s: float = 2.5
    category_mix: tuple[tuple[str, float], ...] = CATEGORY_MIX
    pauses: tuple[PauseKind, ...] = PAUSES
    agent_count: int = field(default=0)  # 0 = max of the staffing profile

    @property
    def calls_per_day(self) -> float:
        """Mean calls on one working day."""
        return self.calls_per_year / self.working_days

    @property
    def agents(self) -> int:
        """How many agents the model needs names and phones for."""
        return self.agent_count or max(n for _, n in self.staffing)

    def share(self, hour: int) -> float:
        """The share of the day's calls arriving in ``hour`` (0 outside office hours)."""
        return dict(self.hourly_share).get(hour, 0.0)

    def staff(self, hour: int) -> int:
        """Agents on duty in ``hour``."""
        return dict(self.staffing).get(hour, 0)


def load_params(calls_per_second: float, agents: int) -> TrafficParams:
    """Load mode: a steady rate all day long, talk short enough for ``agents`` to keep up."""
    rate_h = calls_per_second * 3600
    ring = 2.5
    wrapup = 3.0
    # ~75 % occupancy: each call may take 0.75 * agents / rate seconds of an agent's time.
    talk = max(2.0, 0.75 * agents / calls_per_second - ring - wrapup - 1.0)
    hours = tuple(range(24))
    return TrafficParams(
        calls_per_year=int(rate_h * 24),
        working_days=1,
        hourly_share=tuple((h, 1 / 24) for h in hours),
        staffing=tuple((h, agents) for h in hours),
        day_sigma=0.0,
        talk_mean_s=talk,
        talk_sigma=0.3,
        talk_min_s=1.0,
        patience_median_s=600.0,
        patience_sigma=0.2,
        no_answer_p=0.0,
        wrapup_s=wrapup,
        ivr_share=0.0,
        pauses=(),
        agent_count=agents,
    )


# ---- draws -----------------------------------------------------------------------------------


def lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    """A lognormal draw with the given mean (not median)."""
    mu = math.log(mean) - sigma * sigma / 2
    return rng.lognormvariate(mu, sigma)


def day_volume(p: TrafficParams, rng: random.Random) -> float:
    """The expected number of calls of one day (days differ a little)."""
    if p.day_sigma <= 0:
        return p.calls_per_day
    return lognormal(rng, p.calls_per_day, p.day_sigma)


def arrivals(
    p: TrafficParams, rng: random.Random, volume: float, start_h: float, end_h: float
) -> list[float]:
    """Poisson arrival times (seconds after midnight) between two hours of the day."""
    times: list[float] = []
    hour = int(start_h)
    while hour < end_h and hour < 24:
        rate = volume * p.share(hour) / 3600.0
        lo, hi = max(start_h, hour) * 3600.0, min(end_h, hour + 1) * 3600.0
        t = lo
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= hi:
                break
            times.append(t)
        hour += 1
    return times


def talk_time(p: TrafficParams, rng: random.Random) -> float:
    """Seconds of conversation once an agent answers."""
    return max(p.talk_min_s, lognormal(rng, p.talk_mean_s, p.talk_sigma))


def patience(p: TrafficParams, rng: random.Random) -> float:
    """Seconds a caller is willing to wait in the queue."""
    return p.patience_median_s * math.exp(rng.gauss(0.0, p.patience_sigma))


def ring_delay(p: TrafficParams, rng: random.Random) -> float | None:
    """Seconds an agent's phone rings before pick-up; None if it rings out."""
    if rng.random() < p.no_answer_p:
        return None
    return round(rng.uniform(p.ring_min_s, p.ring_max_s), 1)


def category(p: TrafficParams, rng: random.Random) -> str:
    """The service a caller wants."""
    cats, weights = zip(*p.category_mix, strict=True)
    return rng.choices(cats, weights)[0]


def caller_plan(p: TrafficParams, rng: random.Random) -> CallPlan:
    """A complete simulated caller: number, line, IVR keys, patience, talk, who hangs up."""
    cat = category(p, rng)
    talk = talk_time(p, rng)
    plan = CallPlan(
        name=names.caller_name(rng),
        number=names.phone_number(rng),
        talk=round(talk, 1),
        hangup_by="agent" if rng.random() < p.agent_hangup_p else "caller",
        patience=round(patience(p, rng), 1),
        category=cat,
    )
    key = KEY_FOR_CATEGORY.get(cat)
    if rng.random() < p.ivr_share and key is not None:
        plan.did = IVR_DID
        plan.ivr_digits = (key,)
        plan.ivr_delay = round(rng.uniform(1.0, 2 * p.ivr_key_delay_s - 1.0), 1)
    else:
        plan.did = GENEL_DID
        if cat == "Başvuru durumu":
            plan.category = "Bilgi ve yönlendirme"  # the direct line has no self-service
        elif MENU.get(key or "", None) is not None and MENU[key or ""].queue == "sosyal-yardim":
            plan.queue = "sosyal-yardim"
    return plan.with_variables()


def pause_plan(
    p: TrafficParams, rng: random.Random, start_s: float, end_s: float
) -> list[tuple[float, PauseKind, float]]:
    """One agent's pauses between two times of day: (start, kind, seconds), in order.

    A pause that falls while the agent is on a call begins when the call ends; one that
    falls while the agent is off duty does not happen.
    """
    out: list[tuple[float, PauseKind, float]] = []
    for kind in p.pauses:
        rate = kind.per_hour / 3600.0
        t = start_s
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= end_s:
                break
            out.append((t, kind, rng.expovariate(1 / kind.mean_s)))
    out.sort(key=lambda item: item[0])
    return out


def is_request(p: TrafficParams, rng: random.Random) -> bool:
    """Whether the agent closes an answered call as a request (a ticket)."""
    return rng.random() < p.request_p
