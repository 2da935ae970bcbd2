"""Call-level ``hangup_by`` on every shared trace, pinned against Asterisk's own records.

queue_log says who ended an answered call (COMPLETECALLER / COMPLETEAGENT) and that a caller
abandoned; for a call no agent answered, the CDR of the inbound leg says whether the dialplan
ran ``Hangup()`` (``lastapp`` = Hangup: the PBX ended it, e.g. after IVR self-service or a
queue timeout) or the caller hung up while an application ran.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from callcenter.replay import replay_file
from tests.queuelog import read_queue_log

TRACES = Path(__file__).resolve().parent.parent / "traces"
SCENARIOS = sorted(
    p.name for p in TRACES.iterdir() if (p / "cdr.csv").exists() and (p / "queue_log").exists()
)
# cdr_custom's fields (asterisk_conf_used/cdr_custom.conf): lastapp is 6, uniqueid 16, linkedid 17.
_LASTAPP, _UNIQUEID, _LINKEDID = 6, 16, 17


def expected_hangup_by(scenario: str) -> dict[str, str]:
    """Who ended each call (by linkedid), from queue_log and the CDR alone."""
    visits = read_queue_log(TRACES / scenario / "queue_log")
    with (TRACES / scenario / "cdr.csv").open(encoding="utf-8", newline="") as fh:
        inbound = {r[_LINKEDID]: r for r in csv.reader(fh) if r[_UNIQUEID] == r[_LINKEDID]}
    truth: dict[str, str] = {}
    for linkedid, cdr in inbound.items():
        mine = [v for v in visits if v.callid == linkedid]
        answered = [v for v in mine if v.reason is not None]
        if answered:
            reason = answered[-1].reason
            truth[linkedid] = reason if reason in ("caller", "agent") else "caller"
        elif cdr[_LASTAPP] == "Hangup":
            truth[linkedid] = "system"
        else:
            truth[linkedid] = "caller"
    return truth


def test_every_trace_has_its_cdr() -> None:
    assert len(SCENARIOS) >= 12


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_call_hangup_by_agrees_with_queue_log_and_cdr(scenario: str) -> None:
    calls = replay_file(TRACES / scenario / "ami.jsonl.gz")
    truth = expected_hangup_by(scenario)
    assert {c.linkedid for c in calls} == set(truth), scenario
    for call in calls:
        assert call.hangup_by == truth[call.linkedid], f"{scenario} {call.linkedid}"


def test_the_pin_covers_all_three_answers() -> None:
    seen = {by for s in SCENARIOS for by in expected_hangup_by(s).values()}
    assert seen == {"caller", "agent", "system"}
