"""Every queue visit of every recorded trace agrees with Asterisk's own queue_log."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.pipeline import Pipeline
from callcenter.replay import replay_file
from tests.queuelog import read_queue_log

TRACES = Path(__file__).resolve().parent.parent / "traces"
SCENARIOS = sorted(p.name for p in TRACES.iterdir() if (p / "queue_log").exists())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_visits_agree_with_queue_log(scenario: str) -> None:
    pipe = Pipeline()
    calls = replay_file(TRACES / scenario / "ami.jsonl.gz", pipeline=pipe)
    expected = read_queue_log(TRACES / scenario / "queue_log")
    ours = {
        (c.uniqueid, v.queue, round(v.entered_at or 0)): (c, v) for c in calls for v in c.visits
    }
    by_visit: dict[tuple[str, str], list] = {}
    for (uniqueid, queue, _), cv in ours.items():
        by_visit.setdefault((uniqueid, queue), []).append(cv)
    assert sum(len(c.visits) for c in calls) == len(expected)
    for ql in expected:
        candidates = by_visit[(ql.callid, ql.queue)]
        call, visit = min(candidates, key=lambda cv: abs((cv[1].entered_at or 0) - ql.entered))
        where = f"{scenario} {ql.callid} {ql.queue}"
        assert visit.outcome == ql.outcome, where
        assert visit.agent == ql.agent, where
        assert visit.wait_s is not None and abs(visit.wait_s - ql.wait) <= 1, where
        if ql.talk is not None:
            assert visit.talk_s is not None and abs(visit.talk_s - ql.talk) <= 1, where
            assert visit.hangup_by == ql.reason, where
        else:
            assert visit.talk_s is None, where
        if ql.outcome == "abandoned":
            assert visit.hangup_by == "caller", where  # ABANDON: the caller hung up waiting
        # Blind transfer and redirect alike: the queue the caller was sent on to.
        assert visit.transferred_to == ql.transferred_to, where
        no_answer = [o.agent for o in visit.offers if o.result == "no_answer"]
        assert no_answer == ql.ringnoanswer, where
    assert pipe.counters["tracker_errors"] == 0
    assert pipe.counters["bad_events"] == 0


def test_transfers_name_the_queue_the_caller_was_sent_to() -> None:
    """The transfer trace: one blind transfer, one redirect, both to sosyal-yardim."""
    expected = read_queue_log(TRACES / "transfer" / "queue_log")
    assert [v.transferred_to for v in expected] == ["sosyal-yardim", None] * 2
    calls = replay_file(TRACES / "transfer" / "ami.jsonl.gz")
    assert [[v.transferred_to for v in c.visits] for c in calls] == [["sosyal-yardim", None]] * 2
