"""Reconciliation with Asterisk's queue_log and CEL: windows cut out of every recorded trace.

Each window drops the AMI messages inside it and adds the resync the service runs on its
next login (tests/gaps.py). Before reconciliation some queue visits are wrong or missing;
after it every visit must agree with queue_log (outcome, queue, agent, wait and talk within
a second), every call must be logged once, and the calls found only in the records must be
flagged reconciled.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from callcenter.model import Call
from callcenter.reconcile import AsteriskRecords, reconcile
from callcenter.reconciler import records_from_files
from callcenter.records import (
    RecordError,
    cel_from_row,
    parse_cel_csv,
    parse_queue_log,
    parse_queue_log_line,
    queue_log_from_row,
)
from tests.gaps import TRACES, cut, messages, replay, score, windows
from tests.gaps import login_time as _login
from tests.queuelog import read_queue_log

SCENARIOS = sorted(p.name for p in TRACES.iterdir() if (p / "queue_log").exists())


def _cel_path(scenario: str) -> Path:
    plain = TRACES / scenario / "cel_custom_Master.csv"
    return plain if plain.exists() else plain.with_name(plain.name + ".gz")


@cache
def _records(scenario: str) -> AsteriskRecords:
    return records_from_files(TRACES / scenario / "queue_log", _cel_path(scenario))


@cache
def _messages(scenario: str) -> list[tuple[float, str]]:
    return messages(scenario)


@cache
def _exact(scenario: str) -> dict[str, Call]:
    return {c.linkedid: c for c in replay(_messages(scenario))}


CASES = [(s, name, a, b) for s in SCENARIOS for (name, a, b) in windows(s)]


@pytest.mark.parametrize(
    ("scenario", "name", "gap_from", "gap_to"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_every_visit_is_exact_after_reconciling_a_gap(
    scenario: str, name: str, gap_from: float, gap_to: float
) -> None:
    expected = read_queue_log(TRACES / scenario / "queue_log")
    calls = replay(cut(_messages(scenario), gap_from, gap_to))
    result = reconcile(calls, _records(scenario), "pbx1", (gap_from, gap_to))
    after = score(calls + result.found, expected)
    assert after.problems == [], after.problems
    assert after.exact == after.total
    linkedids = [c.linkedid for c in calls + result.found]
    assert len(linkedids) == len(set(linkedids)), "a call logged twice"
    assert set(linkedids) == set(_exact(scenario)), "every call logged, none invented"
    for call in result.found:
        assert call.reconciled and call.reconstructed
        truth = _exact(scenario)[call.linkedid]
        # A caller refused by a full (or empty) queue leaves no queue_log line and nothing in
        # CEL that names the queue: inside a gap it is only a call (docs/reliability.md).
        if truth.outcome not in ("full", "join_empty"):
            assert call.outcome == truth.outcome, call.linkedid
        assert call.caller_number == truth.caller_number
        assert abs(call.started_at - truth.started_at) < 1.0
        assert call.ended_at is not None and abs(call.ended_at - (truth.ended_at or 0)) < 1.0
    for call in calls:
        if call.reconstructed and call.linkedid in _records(scenario).calls:
            assert call.reconciled, call.linkedid
        elif not call.reconstructed:
            assert call.to_dict() == _exact(scenario)[call.linkedid].to_dict()


def test_the_gaps_really_lose_visits_before_reconciliation() -> None:
    # The test above would pass on a cut that hides nothing: show that the cuts do hide.
    lost = 0
    found = 0
    for scenario, _name, gap_from, gap_to in CASES:
        if scenario == "burst":
            continue
        expected = read_queue_log(TRACES / scenario / "queue_log")
        calls = replay(cut(_messages(scenario), gap_from, gap_to))
        before = score(calls, expected)
        lost += before.total - before.exact
        found += len(reconcile(calls, _records(scenario), "pbx1", (gap_from, gap_to)).found)
    assert lost >= 20
    assert found >= 10


def test_a_call_answered_during_the_gap_takes_asterisks_agent_wait_and_talk() -> None:
    # concurrent: the link drops while callers wait; two of them are answered in the gap.
    stream = _messages("concurrent")
    login = _login(stream)
    calls = replay(cut(stream, login + 2.5, login + 15.0))
    wrong = {c.linkedid: c for c in calls if c.outcome == "abandoned" and c.reconstructed}
    assert wrong, "the cut should turn answered calls into abandons"
    reconcile(calls, _records("concurrent"), "pbx1")
    truth = _exact("concurrent")
    for linkedid, call in wrong.items():
        assert call.outcome == truth[linkedid].outcome
        assert call.agent == truth[linkedid].agent
        assert call.reconciled


def test_calls_that_never_reached_a_queue_come_from_cel() -> None:
    stream = _messages("ivr_self_service")
    login = _login(stream)
    # Nothing of the call reaches the service: it is rebuilt from CEL alone.
    calls = replay(cut(stream, login + 0.001, stream[-1][0] + 1.0))
    calls = [c for c in calls if c.linkedid in _exact("ivr_self_service")]
    records = AsteriskRecords.build(
        [], parse_cel_csv(_cel_path("ivr_self_service").read_text().splitlines())[0]
    )
    result = reconcile([], records, "pbx1", (login, stream[-1][0] + 1.0))
    [found] = result.found + [c for c in calls if c.reconciled]
    truth = next(iter(_exact("ivr_self_service").values()))
    assert found.outcome == "ivr_only" == truth.outcome
    assert found.caller_number == truth.caller_number
    assert found.caller_name == truth.caller_name
    assert found.dialled == truth.dialled
    assert found.ivr_digits == truth.ivr_digits
    assert found.hangup_cause == truth.hangup_cause
    assert found.hangup_by == "caller"


def test_reconciling_twice_changes_nothing_more() -> None:
    stream = _messages("concurrent")
    login = _login(stream)
    calls = replay(cut(stream, login + 2.5, login + 15.0))
    first = reconcile(calls, _records("concurrent"), "pbx1", (login + 2.5, login + 15.0))
    assert first.corrected
    again = reconcile(calls, _records("concurrent"), "pbx1")
    assert again.corrected == [] and len(again.confirmed) == len(first.corrected) + len(
        first.confirmed
    )


# ---- the two shapes of each record -------------------------------------------------------


def test_queue_log_file_line_and_realtime_row_agree() -> None:
    line = "1795884612|1795884609.0|genel|Zeynep Kaya|CONNECT|2|1795884610.8|2"
    from_file = parse_queue_log_line(line)
    row = {
        "time": datetime(2026, 11, 28, 16, 50, 12),  # naive: UTC, as Asterisk writes it
        "callid": "1795884609.0",
        "queuename": "genel",
        "agent": "Zeynep Kaya",
        "event": "CONNECT",
        "data1": "2",
        "data2": "1795884610.8",
        "data3": "2",
        "data4": "",
        "data5": "",
    }
    from_row = queue_log_from_row(row)
    assert from_row == from_file
    plain = {k: v for k, v in row.items() if not k.startswith("data")}
    assert queue_log_from_row({**plain, "data": "2|1795884610.8|2"}).data == (
        "2",
        "1795884610.8",
        "2",
    )


def test_bad_queue_log_lines_are_counted_not_fatal() -> None:
    with pytest.raises(RecordError):
        parse_queue_log_line("not a queue_log line")
    entries, bad = parse_queue_log(["garbage", "", "x|y|z|w|ENTERQUEUE||1|1", "1|a|q|NONE|"])
    assert (len(entries), bad) == (0, 3)


def test_cel_csv_and_cel_pgsql_row_agree() -> None:
    text = _cel_path("ivr_self_service").read_text().splitlines()
    events, bad = parse_cel_csv(text)
    assert bad == 0 and events[-1].event == "LINKEDID_END"
    dtmf = next(e for e in events if e.event == "DTMF")
    row = {
        "eventtype": "DTMF",
        "eventtime": datetime.fromtimestamp(dtmf.ts, UTC).replace(tzinfo=None),
        "cid_name": dtmf.cid_name,
        "cid_num": dtmf.cid_num,
        "exten": dtmf.exten,
        "context": dtmf.context,
        "channame": dtmf.channel,
        "appname": dtmf.application,
        "appdata": dtmf.app_data,
        "uniqueid": dtmf.uniqueid,
        "linkedid": dtmf.linkedid,
        "extra": json.dumps(dict(dtmf.extra)),
    }
    assert cel_from_row(row) == dtmf
    _, bad = parse_cel_csv(
        ['"too","short"', '"DTMF","nan?","","","","","","","","","","","3","","","","","","",""']
    )
    assert bad == 2


# ---- offline: replay --queue-log --cel ------------------------------------------------------


def _write_trace(path: Path, stream: list[tuple[float, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for ts, text in stream:
            fh.write(json.dumps({"t": ts, "raw": text + "\r\n\r\n"}) + "\n")


def test_replay_command_reconciles_a_trace_with_a_gap(tmp_path: Path) -> None:
    stream = _messages("concurrent")
    login = _login(stream)
    trace = tmp_path / "gap.jsonl.gz"
    _write_trace(trace, cut(stream, login + 2.5, login + 15.0))
    argv = [sys.executable, "-m", "callcenter", "replay", str(trace)]

    def run(*extra: str) -> list[dict]:
        out = subprocess.run(argv + list(extra), capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines()]

    expected = read_queue_log(TRACES / "concurrent" / "queue_log")
    plain = run()
    fixed = run(
        "--queue-log",
        str(TRACES / "concurrent" / "queue_log"),
        "--cel",
        str(_cel_path("concurrent")),
    )
    assert score(_as_calls(plain), expected).exact < len(expected)
    assert score(_as_calls(fixed), expected).exact == len(expected)
    assert sorted(c["linkedid"] for c in fixed) == sorted(_exact("concurrent"))
    assert any(c["reconciled"] for c in fixed) and not any(c["reconciled"] for c in plain)


def _as_calls(rows: list[dict]) -> list[Call]:
    """Replay output rows as calls, enough for scoring (uniqueid, visits, times)."""
    from callcenter.model import Visit

    calls = []
    for row in rows:
        call = Call(
            server="pbx1", linkedid=row["linkedid"], uniqueid=row["uniqueid"], started_at=0.0
        )
        for v in row["visits"]:
            entered = _epoch(v["entered_at"])
            visit = Visit(
                queue=v["queue"],
                entered_at=entered,
                agent=v["agent"],
                outcome=v["outcome"],
                talk_s=v["talk_s"],
            )
            if v["wait_s"] is not None and entered is not None:
                visit.left_at = entered + v["wait_s"]
            elif v["wait_s"] is not None:
                visit.asterisk_wait_s = round(v["wait_s"])
            call.visits.append(visit)
        calls.append(call)
    return calls


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_withheld_number_in_cel_is_no_number() -> None:
    # As on AMI (events.is_withheld): the placeholder is never stored as a number.
    from callcenter.records import CelEvent

    events = [
        CelEvent("CHAN_START", 10.0, "7.1", "7.1", cid_num="anonymous", cid_name="<unknown>"),
        CelEvent("LINKEDID_END", 12.0, "7.1", "7.1", cid_num="anonymous"),
    ]
    records = AsteriskRecords.build([], events)
    [found] = reconcile([], records, "pbx1", (0.0, 20.0)).found
    assert found.caller_number is None and found.caller_name is None
