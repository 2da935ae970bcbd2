"""Recorded traces replayed into the metrics: counts agree with Asterisk's queue_log."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from callcenter.config import Settings
from callcenter.model import QueueJoined
from tests.metrics_support import TRACES, Replayer, caller_numbers, replay, series, value
from tests.queuelog import read_queue_log

SCENARIOS = sorted(
    p.name for p in TRACES.iterdir() if (p / "queue_log").exists() and p.name != "burst"
)
# A uniqueid or linkedid: epoch seconds dot sequence number.
_UNIQUEID = re.compile(r"\d{9,}\.\d+")


def _check_against_queue_log(scenario: str) -> None:
    done = replay(scenario)
    samples = done.scrape()
    expected = read_queue_log(TRACES / scenario / "queue_log")
    entered = Counter(v.queue for v in expected)
    outcomes = Counter((v.queue, v.outcome) for v in expected)
    for queue in entered:
        got_entered = value(samples, "callcenter_queue_calls_entered_total", queue=queue)
        assert got_entered == entered[queue], queue
        exited = {
            dict(labels)["outcome"]: v
            for labels, v in series(samples, "callcenter_queue_calls_exited_total").items()
            if dict(labels)["queue"] == queue
        }
        assert sum(exited.values()) == got_entered, queue
        assert exited["answered"] == outcomes[(queue, "answered")]
        assert exited["abandoned"] + exited["short_abandoned"] == outcomes[(queue, "abandoned")]
        assert exited["timeout"] == outcomes[(queue, "timeout")]
        assert exited["exit_empty"] == outcomes[(queue, "exit_empty")]
        assert exited["exit_key"] == outcomes[(queue, "exit_key")]
        assert exited["withdrawn"] == outcomes[(queue, "withdrawn")]
        for outcome, count in exited.items():
            # Every ended visit with a known wait is in the wait histogram, once.
            waited = value(
                samples, "callcenter_queue_wait_seconds_count", queue=queue, outcome=outcome
            )
            assert waited == count, (queue, outcome)
        talked = value(samples, "callcenter_call_talk_seconds_count", queue=queue)
        assert talked == outcomes[(queue, "answered")]
    # Nothing is left waiting after the trace, and the gauges say so.
    for v in series(samples, "callcenter_queue_calls_waiting").values():
        assert v == 0
    assert value(samples, "callcenter_event_errors_total", kind="tracker_error") == 0


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_exits_add_up_and_match_queue_log(scenario: str) -> None:
    _check_against_queue_log(scenario)


def test_burst_exits_add_up_and_match_queue_log() -> None:
    _check_against_queue_log("burst")


@pytest.mark.parametrize("scenario", ["concurrent", "transfer", "midcall_resync"])
def test_labels_never_carry_a_number_or_call_id(scenario: str) -> None:
    done = replay(scenario)
    numbers = caller_numbers(scenario)
    assert numbers
    for (_, labels), _v in done.scrape().items():
        for key, label in labels:
            assert label not in numbers, key
            assert not any(n in label for n in numbers), key
            assert not _UNIQUEID.search(label), key


def test_transfer_counts_the_second_visit_in_its_queue() -> None:
    samples = replay("transfer").scrape()
    assert value(samples, "callcenter_queue_calls_entered_total", queue="genel") == 2
    assert value(samples, "callcenter_queue_calls_entered_total", queue="sosyal-yardim") == 2


def test_oldest_wait_is_live_between_events() -> None:
    rp = Replayer("abandon")
    assert rp.run(lambda _, effects: any(isinstance(e, QueueJoined) for e in effects))
    joined = next(e for e in rp.effects if isinstance(e, QueueJoined))
    assert joined.visit.entered_at is not None
    rp.clock.now = joined.visit.entered_at + 3.0
    first = rp.scrape()
    assert value(first, "callcenter_queue_calls_waiting", queue="genel") == 1
    assert value(first, "callcenter_queue_oldest_wait_seconds", queue="genel") == pytest.approx(3.0)
    rp.clock.now += 10.0  # no event in between: the gauge still moves
    later = rp.scrape()
    oldest = value(later, "callcenter_queue_oldest_wait_seconds", queue="genel")
    assert oldest == pytest.approx(13.0)


def test_gauges_are_right_straight_after_a_midcall_resync() -> None:
    # Stop at the end of the login snapshot: no live event has been seen yet.
    rp = Replayer("midcall_resync")
    assert rp.run(lambda text, _: text.startswith("Event: CallcenterResyncEnd"))
    samples = rp.scrape()
    assert value(samples, "callcenter_queue_calls_waiting", queue="genel") == 2
    assert value(samples, "callcenter_queue_oldest_wait_seconds", queue="genel") > 0
    assert value(samples, "callcenter_queue_agents", queue="genel", state="on_call") == 1
    assert value(samples, "callcenter_calls_open") == 3
    rp.finish()
    samples = rp.scrape()
    assert value(samples, "callcenter_queue_calls_waiting", queue="genel") == 0
    # The visits joined before we listened are counted as entered when they end.
    assert value(samples, "callcenter_queue_calls_entered_total", queue="genel") == 3


def test_pauses_by_reason_and_agent_states() -> None:
    rp = Replayer("pause_unpause_login")
    assert rp.run(lambda text, _: "PausedReason: Eğitim" in text)
    samples = rp.scrape()
    paused = {
        dict(labels)["reason"]: v
        for labels, v in series(samples, "callcenter_agents_paused").items()
        if dict(labels)["queue"] == "genel"
    }
    assert paused == {"Çay molası": 1, "Toplantı": 1, "Eğitim": 1}
    assert value(samples, "callcenter_queue_agents", queue="genel", state="paused") == 3
    rp.finish()
    samples = rp.scrape()
    # At the end everyone is unpaused and 1005 has left both queues.
    assert not any(series(samples, "callcenter_agents_paused").values())
    assert value(samples, "callcenter_queue_agents", queue="genel", state="paused") == 0


def test_service_level_thresholds_are_wait_buckets() -> None:
    settings = Settings(service_level_seconds={"*": 20.0, "sosyal-yardim": 25.0})
    done = replay("answered", settings=settings)
    samples = done.scrape()
    buckets = {
        dict(labels)["le"]
        for labels in series(samples, "callcenter_queue_wait_seconds_bucket")
        if dict(labels)["queue"] == "genel"
    }
    assert {"20.0", "25.0", "+Inf"} <= buckets
