"""KPIs of replayed recordings of a real Asterisk 22, and their agreement with Asterisk itself.

Asterisk's view comes from its queue_log (the whole scenario) and, where the trace holds a
QueueStatus taken after calls (pause_unpause_login, midcall_resync), from its QueueParams.
Where the definitions coincide the figures agree; docs/kpis.md says where and why they differ.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from pathlib import Path
from statistics import mean

import pytest

from callcenter.kpis import Thresholds, tally_calls
from callcenter.kpis_asterisk import QueueVisitSeconds, queue_params
from callcenter.model import Call
from callcenter.pipeline import Pipeline
from callcenter.replay import replay_file
from tests.queuelog import QlVisit, read_queue_log

TRACES = Path(__file__).resolve().parents[1] / "traces"
SCENARIOS = sorted(p.name for p in TRACES.iterdir() if (p / "queue_log").exists())
QUEUED = [s for s in SCENARIOS if s != "ivr_self_service"]
TH = Thresholds()  # T = 20 s: the servicelevel of the recorded queues.conf
SERVICELEVEL = 20


@cache
def replayed(scenario: str) -> tuple[list[Call], Pipeline]:
    pipe = Pipeline()
    return replay_file(TRACES / scenario / "ami.jsonl.gz", pipeline=pipe), pipe


def ql_by_queue(scenario: str) -> dict[str, list[QlVisit]]:
    out: dict[str, list[QlVisit]] = defaultdict(list)
    for v in read_queue_log(TRACES / scenario / "queue_log"):
        out[v.queue].append(v)
    return out


def ql_seconds(v: QlVisit) -> QueueVisitSeconds:
    return QueueVisitSeconds(
        entered=v.entered,
        wait=v.wait or 0,
        talk=v.talk,
        answered=v.outcome == "answered",
        abandoned=v.outcome in ("abandoned", "timeout"),
    )


def test_concurrent_scenario_by_hand() -> None:
    # 8 callers: answered after 2, 3, 4, 12 and 13 s; 3 hung up after 7, 8 and 13 s.
    k = tally_calls(replayed("concurrent")[0], TH)[""].kpis()
    assert (k["calls"], k["offered"], k["answered"], k["abandoned"]) == (8, 8, 5, 3)
    assert k["short_abandoned"] == 0 and k["timeouts"] == 0
    assert k["service_level"] == 0.625  # 5 answered within 20 s of 8
    assert k["abandon_rate"] == 0.375
    assert k["asa_s"] == 6.8  # (2 + 3 + 4 + 12 + 13) / 5
    assert k["avg_talk_s"] == 5.6  # (6 + 5 + 8 + 5 + 4) / 5
    assert k["max_wait_s"] == 13.0


def test_burst_scenario() -> None:
    k = tally_calls(replayed("burst")[0], TH)[""].kpis()
    # 1500 calls: 116 refused by a full queue (no visit), 1339 answered, 45 abandoned.
    assert (k["calls"], k["offered"], k["answered"]) == (1500, 1384, 1339)
    assert k["abandoned"] + k["short_abandoned"] == 45
    assert k["answered_calls"] == 1339
    assert k["service_level"] is not None and 0.9 < k["service_level"] <= 1.0


def test_timeout_is_not_an_abandon_for_us() -> None:
    k = tally_calls(replayed("queue_timeout")[0], TH)[""].kpis()
    assert (k["timeouts"], k["abandoned"], k["service_level"]) == (1, 0, 0.0)


def test_transfer_counts_each_queue_and_the_call_once() -> None:
    k = tally_calls(replayed("transfer")[0], TH)[""].kpis()
    assert (k["calls"], k["offered"], k["answered"], k["answered_calls"]) == (2, 4, 4, 2)


@pytest.mark.parametrize("scenario", QUEUED)
def test_counts_agree_with_queue_log(scenario: str) -> None:
    ours = tally_calls(replayed(scenario)[0], TH, "queue")
    for queue, ql in ql_by_queue(scenario).items():
        t = ours[queue]
        completed = [v for v in ql if v.talk is not None]
        # Completed: conversations that ended (all of them, once the scenario is over).
        assert t.answered == len(completed), queue
        # Abandoned: app_queue counts a queue timeout as abandoned too.
        ast_abandoned = sum(v.outcome in ("abandoned", "timeout") for v in ql)
        assert t.abandoned + t.short_abandoned + t.timeouts == ast_abandoned, queue
        assert t.offered == len(ql), queue


@pytest.mark.parametrize("scenario", QUEUED)
def test_averages_agree_with_queue_log_to_the_second(scenario: str) -> None:
    ours = tally_calls(replayed(scenario)[0], TH, "queue")
    for queue, ql in ql_by_queue(scenario).items():
        k = ours[queue].kpis()
        waits = [v.wait for v in ql if v.outcome == "answered" and v.wait is not None]
        talks = [v.talk for v in ql if v.talk is not None]
        # queue_log subtracts whole epoch seconds: each figure is within a second of ours.
        if waits:
            assert abs(k["asa_s"] - mean(waits)) <= 1.0, queue
        if talks:
            visit_talk = ours[queue].talk_s / ours[queue].talk_n
            assert abs(visit_talk - mean(talks)) <= 1.0, queue


@pytest.mark.parametrize("scenario", QUEUED)
def test_answered_within_t_agrees_except_within_a_second_of_t(scenario: str) -> None:
    calls = replayed(scenario)[0]
    for queue, ql in ql_by_queue(scenario).items():
        ast_in_sl = sum(v.outcome == "answered" and (v.wait or 0) <= SERVICELEVEL for v in ql)
        visits = [v for c in calls for v in c.visits if v.queue == queue]
        ours = [v for v in visits if v.outcome == "answered" and (v.wait_s or 0) <= SERVICELEVEL]
        boundary = [
            v for v in visits if v.outcome == "answered" and abs((v.wait_s or 0) - SERVICELEVEL) < 1
        ]
        assert abs(len(ours) - ast_in_sl) <= len(boundary), queue


def test_ring_noanswer_shows_the_whole_second_boundary() -> None:
    # Answered after 20.017 s: queue_log says 20 (within 20 s for Asterisk), we say outside.
    (call,) = replayed("ring_noanswer")[0]
    assert call.visits[0].wait_s is not None and 20 < call.visits[0].wait_s < 21
    assert call.visits[0].asterisk_wait_s == 20
    assert tally_calls([call], TH)[""].kpis()["service_level"] == 0.0
    params = queue_params([QueueVisitSeconds.of(call.visits[0])], SERVICELEVEL)  # type: ignore[list-item]
    assert params.service_level_perf == 100.0


@pytest.mark.parametrize("scenario", QUEUED)
def test_queue_params_from_our_visits_equal_those_queue_log_implies(scenario: str) -> None:
    calls = replayed(scenario)[0]
    for queue, ql in ql_by_queue(scenario).items():
        ours = [QueueVisitSeconds.of(v) for c in calls for v in c.visits if v.queue == queue]
        mine = queue_params([v for v in ours if v is not None], SERVICELEVEL)
        theirs = queue_params([ql_seconds(v) for v in ql], SERVICELEVEL)
        assert (mine.completed, mine.abandoned) == (theirs.completed, theirs.abandoned), queue
        assert mine.service_level_perf == theirs.service_level_perf, queue
        assert mine.service_level_perf2 == theirs.service_level_perf2, queue
        assert abs(mine.holdtime - theirs.holdtime) <= 1, queue
        assert abs(mine.talktime - theirs.talktime) <= 1, queue


@pytest.mark.parametrize("scenario", ["pause_unpause_login", "midcall_resync"])
def test_queue_params_asterisk_reported(scenario: str) -> None:
    # These traces hold a QueueStatus taken after calls had been answered: Asterisk's own
    # counters at that moment are what queue_log implies up to then.
    _, pipe = replayed(scenario)
    reported = [s for s in pipe.tracker.queue_stats.values() if s.holdtime or s.completed]
    assert reported
    ql = ql_by_queue(scenario)
    for snap in reported:
        implied = queue_params([ql_seconds(v) for v in ql[snap.queue]], SERVICELEVEL, snap.ts)
        assert implied.completed == snap.completed
        assert implied.abandoned == snap.abandoned
        assert implied.holdtime == snap.holdtime
        assert implied.talktime == snap.talktime
        assert implied.service_level_perf == snap.service_level_perf


def test_pause_unpause_login_kpis_match_asterisks_queue_params() -> None:
    calls, pipe = replayed("pause_unpause_login")
    snap = pipe.tracker.queue_stats[("pbx1", "genel")]
    done = [c for c in calls if c.ended_at is not None and c.ended_at <= snap.ts]
    k = tally_calls(done, TH, "queue")["genel"].kpis()
    assert k["answered"] == snap.completed == 1
    assert round(k["asa_s"]) == snap.holdtime  # one call: the average is that call's wait
    assert round(k["avg_talk_s"]) == snap.talktime
    assert k["service_level"] * 100 == snap.service_level_perf
