"""Leaving a queue without an agent, named as Asterisk names it (trace ``queue_exits``).

Recorded on the bundled Asterisk 22.10.1 (tests/traces/queue_exits/meta.json): a caller who
presses the exit key (EXITWITHKEY), one whose queue empties (EXITEMPTY), one withdrawn over
AMI (WITHDRAW) and one refused by an empty queue (JOINEMPTY). None of them is an abandon.
"""

from __future__ import annotations

import csv
from pathlib import Path

from callcenter.config import Settings
from callcenter.kpis import Tally, Thresholds
from callcenter.model import Call
from callcenter.reconcile import AsteriskRecords
from callcenter.reconciler import records_from_files
from callcenter.records import cel_from_row, queue_log_from_row
from callcenter.replay import replay_file
from tests.metrics_support import replay as metrics_replay
from tests.metrics_support import series
from tests.queuelog import read_queue_log

TRACE = Path(__file__).resolve().parent.parent / "traces" / "queue_exits"
BY_NUMBER = {
    "05321230001": "exit_key",
    "05321230002": "exit_empty",
    "05321230003": "withdrawn",
    "05321230004": "join_empty",
}


def _calls() -> dict[str, Call]:
    return {c.caller_number or "": c for c in replay_file(TRACE / "ami.jsonl.gz")}


def test_each_exit_is_its_own_outcome_not_an_abandon() -> None:
    calls = _calls()
    assert {n: c.outcome for n, c in calls.items()} == BY_NUMBER
    exit_key = calls["05321230001"]
    assert exit_key.visits[0].outcome == "exit_key" and exit_key.ivr_digits == "5"
    join_empty = calls["05321230004"]
    assert join_empty.visits == [] and join_empty.rejected_queue == "bos"
    # queue_log says the same, visit by visit (the refused caller has no line there).
    ql = {v.callid: v for v in read_queue_log(TRACE / "queue_log")}
    for call in calls.values():
        for visit in call.visits:
            truth = ql[call.uniqueid]
            assert visit.outcome == truth.outcome
            assert visit.wait_s is not None and truth.wait is not None
            assert abs(visit.wait_s - truth.wait) <= 1


def test_reports_count_them_as_other_exits_never_as_abandons() -> None:
    tally = Tally()
    for call in _calls().values():
        tally.add_call(call)
        for visit in call.visits:
            tally.add_visit(visit, Thresholds())
    kpis = tally.kpis()
    assert kpis["calls"] == 4 and kpis["offered"] == 3
    assert kpis["other_exits"] == 3
    assert kpis["abandoned"] == kpis["short_abandoned"] == kpis["timeouts"] == 0
    assert kpis["abandon_rate"] == 0.0


def test_metrics_label_each_exit_by_name() -> None:
    samples = metrics_replay("queue_exits", Settings()).scrape()
    exited = {
        (dict(labels)["queue"], dict(labels)["outcome"]): v
        for labels, v in series(samples, "callcenter_queue_calls_exited_total").items()
        if v
    }
    assert exited == {("genel", "exit_key"): 1, ("bos", "exit_empty"): 1, ("bos", "withdrawn"): 1}


def test_the_rows_asterisk_wrote_to_postgresql_say_what_the_files_say() -> None:
    # queue_log_table.csv / cel_table.csv: the rows res_config_pgsql and cel_pgsql wrote for
    # the same calls (UTC, microseconds), read with the same code as the live tables.
    with (TRACE / "queue_log_table.csv").open(encoding="utf-8") as fh:
        entries = [queue_log_from_row(row) for row in csv.DictReader(fh)]
    with (TRACE / "cel_table.csv").open(encoding="utf-8") as fh:
        events = [cel_from_row(row) for row in csv.DictReader(fh)]
    from_db = AsteriskRecords.build(entries, events)
    from_files = records_from_files(TRACE / "queue_log", TRACE / "cel_custom_Master.csv")
    assert set(from_db.calls) == set(from_files.calls)
    for linkedid, db_call in from_db.calls.items():
        file_call = from_files.calls[linkedid]
        assert db_call.complete and file_call.complete
        assert abs((db_call.started_at or 0) - (file_call.started_at or 0)) < 0.01
        assert abs((db_call.ended_at or 0) - (file_call.ended_at or 0)) < 0.01
        assert db_call.caller_number == file_call.caller_number
        assert [(v.queue, v.outcome, v.wait) for v in db_call.visits] == [
            (v.queue, v.outcome, v.wait) for v in file_call.visits
        ]
    outcomes = {c.caller_number: [v.outcome for v in c.visits] for c in from_db.calls.values()}
    assert outcomes == {
        "05321230001": ["exit_key"],
        "05321230002": ["exit_empty"],
        "05321230003": ["withdrawn"],
        "05321230004": [],
    }
