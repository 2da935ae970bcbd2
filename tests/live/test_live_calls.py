"""Live calls on a real Asterisk: the service's records equal Asterisk's own, call by call.

One traffic run (``scenarios.run_traffic``, about a minute and a half) feeds every test here;
each test checks one promise against queue_log, the AMI events and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.live.ami import AmiDriver
from tests.live.conftest import LivePbx, LiveService
from tests.live.pbx import ROOT
from tests.live.scenarios import LOCAL_AGENTS, SIP_AGENTS, Traffic, run_traffic
from tests.queuelog import QlVisit, read_queue_log

pytestmark = pytest.mark.asyncio(loop_scope="session")

# queue_log's outcome of a visit -> the service's queue_visits.outcome
# Calls an agent or a supervisor moved to another queue after the IVR.
MOVED = ("blind-transfer", "redirect")
OUTCOMES = {"answered": "answered", "abandoned": "abandoned", "timeout": "timeout"}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def traffic(
    live_pbx: LivePbx,
    live_service: LiveService,
    live_ami: AmiDriver,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Traffic]:
    """The whole run, once per session, recorded by ``callcenter record`` as well."""
    trace = tmp_path_factory.mktemp("trace") / "live.jsonl.gz"
    run = await run_traffic(live_pbx, live_service, live_ami, trace)
    run.trace = trace
    yield run


def ql_visits(pbx: LivePbx, traffic: Traffic) -> list[QlVisit]:
    """queue_log's visits of this run's calls."""
    ours = {c.linkedid for c in traffic.calls.values()}
    return [v for v in read_queue_log(pbx.layout.queue_log) if v.callid in ours]


async def pg_visits(live: LiveService, linkedid: str) -> list[dict[str, Any]]:
    rows = await live.pool.fetch(
        "SELECT * FROM queue_visits WHERE linkedid = $1 ORDER BY seq", linkedid
    )
    return [dict(r) for r in rows]


async def pg_call(live: LiveService, linkedid: str) -> dict[str, Any]:
    row = await live.pool.fetchrow("SELECT * FROM calls WHERE linkedid = $1", linkedid)
    assert row is not None, f"call {linkedid} is not in PostgreSQL"
    call = dict(row)
    call["ivr_vars"] = json.loads(call["ivr_vars"]) if call["ivr_vars"] else {}
    return call


async def test_every_queue_visit_in_queue_log_is_in_postgresql_alike(
    live_pbx: LivePbx, live_service: LiveService, traffic: Traffic
) -> None:
    visits = ql_visits(live_pbx, traffic)
    assert len(visits) >= len([e for e in traffic.expect.values() if e.queue])
    checked = 0
    for linkedid in {v.callid for v in visits}:
        truth = [v for v in visits if v.callid == linkedid]
        stored = await pg_visits(live_service, linkedid)
        assert [v.queue for v in truth] == [s["queue"] for s in stored], linkedid
        for ql, pg in zip(truth, stored, strict=True):
            where = f"{linkedid} {ql.queue}"
            assert pg["outcome"] == OUTCOMES.get(ql.outcome or "", ql.outcome), where
            assert pg["agent"] == ql.agent, where
            assert ql.wait is not None and pg["wait_s"] is not None, where
            assert abs(pg["wait_s"] - ql.wait) <= 1.0, (where, pg["wait_s"], ql.wait)
            if ql.talk is not None:
                assert pg["talk_s"] is not None and abs(pg["talk_s"] - ql.talk) <= 1.0, (
                    where,
                    pg["talk_s"],
                    ql.talk,
                )
            checked += 1
    print(
        f"live: {len(traffic.calls)} calls, {checked} queue visits exact, {traffic.seconds:.0f} s"
    )


async def test_record_then_replay_gives_the_same_visits(
    live_pbx: LivePbx, traffic: Traffic
) -> None:
    assert traffic.trace is not None
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "callcenter", "replay", str(traffic.trace)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    replayed = {c["linkedid"]: c for c in map(json.loads, done.stdout.splitlines())}
    visits = ql_visits(live_pbx, traffic)
    for linkedid in {v.callid for v in visits}:
        truth = [v for v in visits if v.callid == linkedid]
        assert linkedid in replayed, linkedid
        again = replayed[linkedid]["visits"]
        assert [v.queue for v in truth] == [r["queue"] for r in again], linkedid
        for ql, rv in zip(truth, again, strict=True):
            assert rv["outcome"] == OUTCOMES.get(ql.outcome or "", ql.outcome), linkedid
            assert rv["agent"] == ql.agent, linkedid
            assert ql.wait is not None and abs(rv["wait_s"] - ql.wait) <= 1.0, linkedid
            if ql.talk is not None:
                assert abs(rv["talk_s"] - ql.talk) <= 1.0, linkedid
    print(f"live: record → replay, {len(visits)} queue visits exact")


async def test_every_ivr_path_ends_where_the_ivr_chose(
    live_pbx: LivePbx, live_service: LiveService, traffic: Traffic
) -> None:
    visits = ql_visits(live_pbx, traffic)
    for label, expect in traffic.expect.items():
        caller = traffic.calls[label]
        first = [v.queue for v in visits if v.callid == caller.linkedid][:1]
        call = await pg_call(live_service, caller.linkedid)
        if expect.queue is None:
            assert first == [], f"{label}: a self-service call was queued in {first}"
            assert call["ivr_result"] == expect.result, label
        else:
            assert first == [expect.queue], f"{label}: expected {expect.queue}, got {first}"
            assert call["queue"] == expect.queue, label
            # Transfers and redirects included: CC_QUEUE stays the IVR's choice.
            assert call["ivr_vars"].get("CC_QUEUE") == expect.queue, label
        if expect.result is not None and expect.survey is None:
            assert call["ivr_result"] == expect.result, label
        assert call["ivr_vars"].get("CC_LANG") == expect.language, label


async def test_the_survey_keeps_the_ivrs_own_record(
    live_service: LiveService, traffic: Traffic
) -> None:
    for label, expect in traffic.expect.items():
        if expect.survey is None:
            continue
        call = await pg_call(live_service, traffic.calls[label].linkedid)
        assert call["ivr_vars"].get("CC_IVR_END") == "queue", label
        if expect.result is not None:
            assert call["ivr_result"] == expect.result, label
    for label in MOVED:  # the transfer target is not the IVR's choice
        call = await pg_call(live_service, traffic.calls[label].linkedid)
        assert call["ivr_vars"].get("CC_QUEUE") == traffic.expect[label].queue, label


async def test_a_failing_prompt_does_not_override_the_ivrs_decision(
    live_service: LiveService, traffic: Traffic
) -> None:
    # Both calls of phase 3 ended their AGI with FAILURE (a prompt could not be played)…
    for label in ("agi-failure-queue", "booking"):
        assert traffic.calls[label].linkedid in traffic.agi_failed, label
    # …and still went where the IVR sent them (checked in detail above), not to genel.
    queued = await pg_call(live_service, traffic.calls["agi-failure-queue"].linkedid)
    assert queued["queue"] == "depremzede"
    assert queued["ivr_vars"].get("CC_IVR_END") != "fallback"
    booked = await pg_call(live_service, traffic.calls["booking"].linkedid)
    assert booked["queue"] is None and booked["ivr_vars"].get("CC_IVR_END") == "hangup"


async def test_tickets_and_status_answers_land(live_service: LiveService, traffic: Traffic) -> None:
    booking = await pg_call(live_service, traffic.calls["booking"].linkedid)
    reference = booking["ivr_vars"].get("CC_TICKET")
    ticket = await live_service.pool.fetchrow(
        "SELECT * FROM tickets WHERE reference = $1", reference
    )
    assert ticket is not None and ticket["category"] == "masa-sandalye"
    assert ticket["channel"] == "ivr"
    fields = json.loads(ticket["fields"])
    assert fields["neighbourhood"] == "Sarıgazi"
    assert traffic.booking_date is not None
    assert fields["event_date"] == traffic.booking_date.isoformat()
    status = await pg_call(live_service, traffic.calls["status"].linkedid)
    assert status["ivr_vars"].get("CC_TICKET") == traffic.status_reference
    assert status["ivr_vars"].get("CC_TICKET_STATUS") == "open"


async def test_survey_answers_land(live_service: LiveService, traffic: Traffic) -> None:
    rows = {
        r["linkedid"]: r
        for r in await live_service.pool.fetch(
            "SELECT * FROM ivr_surveys WHERE kind = 'after_call'"
        )
    }
    surveyed = {label: e for label, e in traffic.expect.items() if e.survey is not None}
    assert len(surveyed) >= 5
    for label, expect in surveyed.items():
        caller = traffic.calls[label]
        row = rows.get(caller.linkedid)
        assert row is not None, f"{label}: no survey answer stored"
        assert expect.survey is not None
        assert (row["score"], row["resolved"]) == expect.survey, label
        assert row["queue"] == expect.queue, label
        assert row["language"] == expect.language, label


async def test_each_pop_reaches_the_agent_whose_phone_rings(
    live_pbx: LivePbx, traffic: Traffic
) -> None:
    visits = {v.callid: v for v in ql_visits(live_pbx, traffic)}
    ext_of = {name: ext for ext, name in SIP_AGENTS.items()}
    for label, expect in traffic.expect.items():
        if not expect.sip:
            continue
        linkedid = traffic.calls[label].linkedid
        agent = visits[linkedid].agent
        assert agent in ext_of, f"{label}: answered by {agent}, not a SIP phone"
        # The phone that rang got the INVITE carrying this call's linkedid…
        invites = "\n".join(traffic.phone_output[ext_of[agent]])
        assert re.search(rf"X-Callcenter-Linkedid: {re.escape(linkedid)}\b", invites), label
        # …and that agent's screen got the pop, ringing then connected; nobody else's did.
        stages = [p["stage"] for p in traffic.pops[agent] if p["linkedid"] == linkedid]
        assert "ringing" in stages and "connected" in stages, (label, stages)
        for other, pops in traffic.pops.items():
            if other != agent:
                assert all(p["linkedid"] != linkedid for p in pops), (label, other)


async def test_metrics_equal_queue_show(traffic: Traffic) -> None:
    assert len(traffic.metrics_samples) >= 4
    assert any(sum(shown.values()) > 0 for shown, _ in traffic.metrics_samples)
    for shown, exported in traffic.metrics_samples:
        assert exported == shown


async def test_pauses_with_reasons_are_recorded(
    live_pbx: LivePbx, live_service: LiveService, traffic: Traffic
) -> None:
    lines = live_pbx.layout.queue_log.read_text(encoding="utf-8").splitlines()
    for agent, reason in traffic.pauses:
        logged = [line for line in lines if f"|{agent}|PAUSE|" in line]
        assert logged and all(line.split("|")[5] == reason for line in logged), logged
        rows = await live_service.pool.fetch(
            "SELECT queue, reason, ended_at FROM agent_pauses WHERE agent = $1", agent
        )
        assert {r["queue"] for r in rows} == {line.split("|")[2] for line in logged}
        assert {r["reason"] for r in rows} == {reason}
        assert all(r["ended_at"] is not None for r in rows)


async def test_ring_no_answer_transfer_redirect_and_abandon(
    live_pbx: LivePbx, live_service: LiveService, traffic: Traffic
) -> None:
    visits = ql_visits(live_pbx, traffic)

    def of(label: str) -> list[QlVisit]:
        return [v for v in visits if v.callid == traffic.calls[label].linkedid]

    [rna] = of("ring-no-answer")
    assert LOCAL_AGENTS["9002"] in rna.ringnoanswer and rna.outcome == "answered"
    stored = await pg_visits(live_service, traffic.calls["ring-no-answer"].linkedid)
    offers = json.loads(stored[0]["offers"])
    assert any(o["agent"] == LOCAL_AGENTS["9002"] and o["result"] != "answered" for o in offers)
    first, second = of("blind-transfer")
    assert (first.queue, first.reason, second.queue) == (
        "sosyal-yardim",
        "transfer",
        "sikayet-oneri",
    )
    assert [v.queue for v in of("redirect")] == ["masa-sandalye", "depremzede"]
    [abandon] = of("abandon")
    assert abandon.outcome == "abandoned"
    call = await pg_call(live_service, traffic.calls["abandon"].linkedid)
    assert call["outcome"] == "abandoned"


async def test_the_console_stays_clean_during_the_run(live_pbx: LivePbx, traffic: Traffic) -> None:
    errors = [
        line
        for line in live_pbx.console_lines("ERROR")
        # Phase 3 removes two prompts on purpose.
        if "transfer-agent" not in line and "after-flow" not in line
    ]
    assert errors == []


async def test_the_withheld_caller_reaches_the_queue_the_ivr_chose(
    live_pbx: LivePbx, live_service: LiveService, traffic: Traffic
) -> None:
    caller = traffic.calls["withheld"]
    [visit] = [v for v in ql_visits(live_pbx, traffic) if v.callid == caller.linkedid]
    assert (visit.queue, visit.outcome) == ("genel", "answered")
    call = await pg_call(live_service, caller.linkedid)
    assert call["outcome"] == "answered"


async def test_a_withheld_number_is_stored_as_no_number(
    live_service: LiveService, traffic: Traffic
) -> None:
    call = await pg_call(live_service, traffic.calls["withheld"].linkedid)
    assert call["caller_number"] is None


async def test_abandons_say_who_hung_up_and_moves_name_the_next_queue(
    live_service: LiveService, traffic: Traffic
) -> None:
    [abandon] = await pg_visits(live_service, traffic.calls["abandon"].linkedid)
    assert abandon["hangup_by"] == "caller"
    for label in MOVED:
        first, second = await pg_visits(live_service, traffic.calls[label].linkedid)
        assert first["transferred_to"] == second["queue"], label


async def test_numbers_are_said_from_the_ivrs_own_prompts(
    live_pbx: LivePbx, traffic: Traffic
) -> None:
    # The booking read back a date and a reference, the status call a reference: from the
    # IVR's own building blocks, never Asterisk's say.c (it has no Turkish rules).
    console = live_pbx.console_text()
    assert "not currently supported" not in console
    for label in ("booking", "status"):
        channel = re.escape(traffic.calls[label].channel)
        said = re.findall(rf"<{channel}> Playing 'callcenter/say/", console)
        assert len(said) >= 3, label
