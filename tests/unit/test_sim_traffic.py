"""The traffic model: seeded, and a simulated year lands on the municipality's 2024 figures."""

from __future__ import annotations

import dataclasses
import random
import statistics
from typing import Any

import pytest

from callcenter.sim import traffic
from callcenter.sim.config import GENEL_DID, IVR_DID
from callcenter.sim.ivr import MENU
from callcenter.sim.traffic import TrafficParams, load_params
from callcenter.sim.yearmodel import YearSummary, simulate_day, simulate_year

SEED_CALLS = 350_878
SEED_REQUESTS = 80_672
SEED_TALK_S = 72.0
SEED_WAIT_S = 26.0


@pytest.fixture(scope="module")
def year() -> YearSummary:
    """One simulated year with the default parameters (a few seconds)."""
    return simulate_year(seed=2024)


def test_the_same_seed_gives_the_same_callers() -> None:
    p = TrafficParams()
    a = [traffic.caller_plan(p, random.Random(7)) for _ in range(3)]
    b = [traffic.caller_plan(p, random.Random(7)) for _ in range(3)]
    assert a == b
    assert traffic.caller_plan(p, random.Random(8)) != a[0]


def test_the_same_seed_gives_the_same_day() -> None:
    p = TrafficParams()
    assert simulate_day(p, random.Random(3)) == simulate_day(p, random.Random(3))
    assert simulate_day(p, random.Random(3)) != simulate_day(p, random.Random(4))


def test_a_year_has_the_reported_number_of_calls(year: YearSummary) -> None:
    assert abs(year.calls - SEED_CALLS) / SEED_CALLS < 0.03
    assert 1_300 < year.calls_per_day < 1_500
    assert 200 <= year.peak_hour_calls <= 300


def test_about_a_quarter_of_answered_calls_become_requests(year: YearSummary) -> None:
    assert abs(year.requests - SEED_REQUESTS) / SEED_REQUESTS < 0.05
    assert 0.2 < year.requests / year.answered < 0.3


def test_talk_and_wait_match_the_report(year: YearSummary) -> None:
    assert abs(year.avg_talk_s - SEED_TALK_S) <= 2.0
    assert 20.0 <= year.avg_wait_s <= 32.0
    # Some callers give up, most do not.
    assert 0.01 < year.abandoned / year.calls < 0.12
    assert year.answered + year.abandoned + year.ivr_only == year.calls


def test_talk_time_is_lognormal_with_the_reported_mean() -> None:
    p, rng = TrafficParams(), random.Random(1)
    talks = [traffic.talk_time(p, rng) for _ in range(20_000)]
    assert abs(statistics.fmean(talks) - 72.0) < 1.5
    assert statistics.median(talks) < statistics.fmean(talks)  # right-skewed
    assert min(talks) >= p.talk_min_s


def test_arrivals_follow_the_hourly_profile() -> None:
    p, rng = TrafficParams(), random.Random(2)
    times = traffic.arrivals(p, rng, 14_000.0, 8, 17)  # ten days' worth in one go
    per_hour = [sum(1 for t in times if h * 3600 <= t < (h + 1) * 3600) for h in range(8, 17)]
    assert times == sorted(times)
    assert abs(len(times) - 14_000) < 400
    assert max(per_hour) == per_hour[2]  # 10:00-11:00 is the peak
    assert per_hour[0] < per_hour[1]


def test_callers_use_the_ivr_line_with_a_menu_key_for_their_category() -> None:
    p, rng = TrafficParams(), random.Random(3)
    plans = [traffic.caller_plan(p, rng) for _ in range(2_000)]
    ivr = [pl for pl in plans if pl.did == IVR_DID]
    assert 0.85 < len(ivr) / len(plans) < 0.95
    for plan in ivr:
        assert len(plan.ivr_digits) == 1
        assert MENU[plan.ivr_digits[0]].category == plan.category
    assert all(pl.did == GENEL_DID and not pl.ivr_digits for pl in plans if pl not in ivr)
    assert {pl.hangup_by for pl in plans} == {"caller", "agent"}
    # The plan carries the reference dialplan's variables, as an Originate would.
    assert ("__TALK", f"{plans[0].talk:g}") in plans[0].variables


def test_some_calls_ring_out() -> None:
    p, rng = TrafficParams(), random.Random(4)
    delays = [traffic.ring_delay(p, rng) for _ in range(10_000)]
    rings = [d for d in delays if d is not None]
    assert 0.01 < delays.count(None) / len(delays) < 0.06
    assert min(rings) >= 1.0 and max(rings) <= 4.0


def test_pauses_carry_turkish_reasons() -> None:
    p, rng = TrafficParams(), random.Random(5)
    plan = traffic.pause_plan(p, rng, 8 * 3600.0, 17 * 3600.0)
    assert {kind.reason for _, kind, _ in plan} <= {"Çay molası", "Toplantı", "Eğitim"}
    assert [t for t, _, _ in plan] == sorted(t for t, _, _ in plan)


def test_load_mode_keeps_agents_below_full_occupancy() -> None:
    p = load_params(25, 255)
    work = 2.5 + p.talk_mean_s + p.wrapup_s + 1.0
    assert 25 * work / 255 < 0.9
    assert p.calls_per_day == pytest.approx(25 * 86400)
    assert p.staff(3) == 255


def test_more_agents_mean_shorter_waits() -> None:
    base = TrafficParams(working_days=10, calls_per_year=int(SEED_CALLS * 10 / 251))
    fewer = dataclasses.replace(base, staffing=tuple((h, max(1, n - 1)) for h, n in base.staffing))
    assert simulate_year(fewer, seed=1).avg_wait_s > simulate_year(base, seed=1).avg_wait_s


def _callers(seed: int, hours: float) -> list[tuple[str, str]]:
    """The (name, number) of every caller the workload sends in ``hours`` of a morning."""
    from callcenter.sim.engine import Pbx
    from callcenter.sim.workload import Workload, morning_peak, traffic_config

    params = TrafficParams()
    pbx = Pbx(traffic_config(params), epoch=morning_peak(), rng=random.Random(seed))
    seen: list[tuple[str, str]] = []

    def record(plan: Any, action_id: str | None, originated: bool = True) -> None:
        seen.append((plan.name, plan.number))

    pbx.originate = record  # type: ignore[method-assign]
    Workload(pbx, params, random.Random(seed + 1)).start()
    pbx.sched.run_until(hours * 3600.0)
    return seen


def test_a_share_of_callers_call_again_and_the_seed_fixes_who() -> None:
    seen = _callers(7, 3.0)
    numbers = [number for _, number in seen]
    repeats = len(numbers) - len(set(numbers))
    # A fifth of the callers are earlier ones (the pop has a history to show for them).
    assert 0.1 < repeats / len(numbers) < 0.3, (repeats, len(numbers))
    # The same person calls again: name and number together.
    assert len(set(seen)) == len(set(numbers))
    assert _callers(7, 3.0) == seen
