"""KPI arithmetic on hand-made calls: every definition of docs/kpis.md, one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from callcenter.kpis import (
    Tally,
    Thresholds,
    agent_times,
    tally_calls,
    time_key,
    union,
    wait_bin,
    wait_bin_labels,
)
from callcenter.model import Call, Offer, Visit

T0 = datetime(2024, 3, 5, 6, 10, tzinfo=UTC).timestamp()  # 09:10 in Istanbul
TH = Thresholds(service_level_s={"*": 20.0, "sosyal": 30.0}, short_abandon_s=5.0)


def visit(
    queue: str = "genel",
    at: float = T0,
    wait: float = 10.0,
    outcome: str = "answered",
    talk: float = 60.0,
    hold: float = 0.0,
    agent: str = "Ayşe",
) -> Visit:
    """A finished visit entered at ``at`` that waited ``wait`` seconds."""
    v = Visit(queue=queue, entered_at=at, outcome=outcome, hold_s=hold)
    if outcome == "answered":
        v.answered_at, v.agent, v.talk_s = at + wait, agent, talk
        v.left_at, v.ended_at = at + wait, at + wait + talk
        v.offers.append(Offer(agent=agent, interface=f"SIP/{agent}", rang_at=at, result="answered"))
    else:
        v.left_at = v.ended_at = at + wait
    return v


def call(*visits: Visit, start: float | None = None, linkedid: str = "1") -> Call:
    """A finished call with the given visits."""
    started = start if start is not None else (visits[0].entered_at or T0) - 5 if visits else T0
    c = Call(server="pbx1", linkedid=linkedid, uniqueid=linkedid, started_at=started)
    c.visits.extend(visits)
    c.ended_at = max((v.ended_at or started for v in visits), default=started + 30)
    return c


def total(*calls: Call, th: Thresholds = TH) -> dict[str, object]:
    return tally_calls(calls, th)[""].kpis()


def test_outcomes_add_up_to_offered() -> None:
    k = total(
        call(visit(wait=3)),
        call(visit(outcome="abandoned", wait=30)),
        call(visit(outcome="abandoned", wait=2)),
        call(visit(outcome="timeout", wait=60)),
        call(visit(outcome="exit_empty", wait=1)),
    )
    assert (k["offered"], k["answered"], k["abandoned"], k["short_abandoned"]) == (5, 1, 1, 1)
    assert (k["timeouts"], k["other_exits"]) == (1, 1)


def test_service_level_leaves_short_abandons_out() -> None:
    # 2 answered in time, 1 answered late, 1 abandoned, 2 short abandons: 2 / (6 - 2).
    calls = [
        call(visit(wait=5)),
        call(visit(wait=20)),  # exactly T counts as within
        call(visit(wait=20.5)),
        call(visit(outcome="abandoned", wait=40)),
        call(visit(outcome="abandoned", wait=4.9)),
        call(visit(outcome="abandoned", wait=0.2)),
    ]
    k = total(*calls)
    assert k["service_level"] == 0.5
    assert k["abandon_rate"] == 0.25


def test_service_level_threshold_is_per_queue() -> None:
    k = tally_calls([call(visit("sosyal", wait=25)), call(visit("genel", wait=25))], TH, "queue")
    assert k["sosyal"].kpis()["service_level"] == 1.0
    assert k["genel"].kpis()["service_level"] == 0.0


def test_a_timeout_counts_against_the_service_level() -> None:
    assert total(call(visit(wait=3)), call(visit(outcome="timeout", wait=60)))["service_level"] == (
        0.5
    )


def test_asa_aht_and_hold() -> None:
    th = Thresholds(wrapup_s={"*": 10.0})
    calls = [call(visit(wait=4, talk=50, hold=6)), call(visit(wait=8, talk=70, hold=0))]
    k = total(*calls, th=th)
    assert k["asa_s"] == 6.0
    # talk already includes hold: AHT = talk + wrap-up.
    assert k["aht_s"] == 70.0
    assert k["avg_hold_s"] == 3.0


def test_municipal_figures_are_per_call() -> None:
    transferred = call(
        visit("genel", at=T0, wait=10, talk=30, agent="Ayşe"),
        visit("sosyal", at=T0 + 40, wait=20, talk=40, agent="Mehmet"),
    )
    abandoned = call(visit(outcome="abandoned", wait=30), linkedid="2")
    ivr_only = call(start=T0, linkedid="3")
    k = total(transferred, abandoned, ivr_only)
    assert k["calls"] == 3
    assert k["offered"] == 3  # the transferred call was offered to two queues
    assert k["answered_calls"] == 1
    assert k["avg_talk_s"] == 70.0  # both conversations of the transferred call
    assert k["avg_wait_s"] == 20.0  # first queue's wait: (10 + 30) / 2; IVR-only not queued
    assert k["avg_queue_wait_s"] == 20.0  # (10 + 20 + 30) / 3
    assert k["max_wait_s"] == 30.0


def test_requests_and_request_rate() -> None:
    calls = [call(visit(), linkedid=str(i)) for i in range(4)]
    tickets = {"0": 1, "2": 2}
    k = tally_calls(calls, TH, requests=lambda c: tickets.get(c.linkedid, 0))[""].kpis()
    assert k["requests"] == 3
    assert k["request_rate"] == 0.75


def test_wait_distribution() -> None:
    assert [wait_bin(w) for w in (0, 4.99, 5, 19.9, 20, 299, 300, 9999)] == [0, 0, 1, 2, 3, 6, 7, 7]
    assert wait_bin_labels()[0] == "0-5" and wait_bin_labels()[-1] == "300+"
    t = tally_calls([call(visit(wait=w)) for w in (1, 2, 12, 400)], TH)[""]
    assert t.wait_hist == [2, 0, 1, 0, 0, 0, 0, 1]


def test_grouping_by_local_day_hour_and_month() -> None:
    late = datetime(2024, 3, 5, 21, 30, tzinfo=UTC).timestamp()  # 00:30 on the 6th in Istanbul
    calls = [call(visit(at=T0), linkedid="a"), call(visit(at=late), linkedid="b")]
    assert sorted(tally_calls(calls, TH, "day")) == ["2024-03-05", "2024-03-06"]
    assert sorted(tally_calls(calls, TH, "hour")) == ["00", "09"]
    assert sorted(tally_calls(calls, TH, "month")) == ["2024-03"]
    assert time_key(late, "day", ZoneInfo("UTC")) == "2024-03-05"


def test_grouping_by_agent_counts_rings_and_answers() -> None:
    v = visit(agent="Mehmet", wait=12)
    v.offers.insert(0, Offer(agent="Ayşe", interface="SIP/a", rang_at=T0, result="no_answer"))
    groups = tally_calls([call(v), call(visit(agent="Ayşe"), linkedid="2")], TH, "agent")
    assert groups["Ayşe"].rang == 2 and groups["Ayşe"].missed == 1
    assert groups["Ayşe"].answered == 1 and groups["Mehmet"].answered == 1
    assert groups["Mehmet"].kpis()["asa_s"] == 12.0


def test_tallies_add_up() -> None:
    calls = [
        call(visit(wait=w, outcome=o), linkedid=str(w))
        for w, o in [(3, "answered"), (30, "abandoned"), (2, "abandoned"), (25, "answered")]
    ]
    whole = tally_calls(calls, TH)[""]
    summed = Tally()
    for part in tally_calls(calls, TH, "queue").values():
        summed += part
    assert summed == whole


def test_nothing_to_divide_gives_none() -> None:
    k = Tally().kpis()
    assert k["service_level"] is None and k["asa_s"] is None and k["avg_wait_s"] is None


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        tally_calls([], TH, "week")


def test_agent_time_counts_overlaps_once_and_pauses_while_logged_in() -> None:
    sessions = [("Ayşe", 0.0, 100.0), ("Ayşe", 50.0, 150.0), ("Ali", 0.0, None)]
    pauses = [
        ("Ayşe", "Çay", 10.0, 20.0),
        ("Ayşe", "Çay", 15.0, 25.0),  # the same pause in a second queue
        ("Ayşe", "Toplantı", 140.0, 200.0),  # runs past logoff
        ("Ali", "", 190.0, None),
    ]
    times = agent_times(sessions, pauses, 0.0, 200.0)
    assert times["Ayşe"].logged_in_s == 150.0
    assert times["Ayşe"].pauses == {"Çay": 15.0, "Toplantı": 10.0}
    assert times["Ayşe"].paused_s == 25.0
    assert times["Ali"].logged_in_s == 200.0 and times["Ali"].paused_s == 10.0
    k = times["Ayşe"].kpis(handled_s=62.5)
    assert k["occupancy"] == 0.5


def test_agent_time_is_clipped_to_the_period() -> None:
    times = agent_times([("Ayşe", -100.0, 50.0)], [("Ayşe", "x", -10.0, 10.0)], 0.0, 100.0)
    assert times["Ayşe"].logged_in_s == 50.0 and times["Ayşe"].paused_s == 10.0


def test_union_merges_touching_spans() -> None:
    assert union([(5, 6), (0, 2), (2, 3), (4, 4)]) == [(0, 3), (5, 6)]
