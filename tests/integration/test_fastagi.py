"""The IVR over real FastAGI sockets, driven as Asterisk would, with real tickets in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import asyncpg
import pytest
from structlog.testing import capture_logs

from callcenter import tickets
from callcenter.ivr import prompts as p
from callcenter.ivr import say
from callcenter.ivr.client import agi_environment, run_agi_session, user_events, variables_set
from callcenter.ivr.desk import PgTicketDesk
from callcenter.ivr.dialer import originate_action
from callcenter.ivr.menu import load_menu
from callcenter.ivr.server import FastAgiServer
from callcenter.ivr.surveys import claim_callbacks

LINKEDID = "1795884499.0"
NUMBER = "05321234567"


def today() -> date:
    """The call center's date: ticket references count per local year."""
    return datetime.now(tickets.REFERENCE_TZ).date()


@pytest.fixture
async def agi(pool: asyncpg.Pool) -> AsyncIterator[FastAgiServer]:
    server = FastAgiServer(
        load_menu(), PgTicketDesk(pool), today=today, header_timeout=2.0, reply_timeout=5.0
    )
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close()


async def call(
    server: FastAgiServer, route: str, entries: list[str], *args: str, **env: str
) -> list[str]:
    """One AGI session on ``route`` with the caller typing ``entries``."""
    environment = agi_environment(route, args or (LINKEDID,), **env)
    return await run_agi_session("127.0.0.1", server.port, environment, entries)


def streamed(commands: list[str]) -> list[str]:
    return [c.split('"')[1] for c in commands if c.startswith("STREAM FILE")]


async def test_menu_to_a_queue_leaves_the_ivr_trail_in_channel_variables(
    agi: FastAgiServer,
) -> None:
    commands = await call(agi, "ivr", ["1", "3"])
    assert variables_set(commands) == {
        "CHANNEL(language)": "tr",
        "CC_LANG": "tr",
        "CC_IVR_PATH": "main>sosyal",
        "CC_IVR_CHOICE": "Sağlık yardımı",
        "CC_CATEGORY": "sosyal-yardim",
        "CC_QUEUE": "sosyal-yardim",
        "CC_SURVEY": "1",
        "CC_IVR_END": "queue",
    }
    assert streamed(commands) == [
        "callcenter/main-menu",
        "callcenter/menu-sosyal",
        "callcenter/transfer-agent",
    ]
    assert agi.stats.endings[("ivr", "queue")] == 1
    assert agi.stats.active == 0 and not agi.stats.broken


async def test_english_then_an_agent(agi: FastAgiServer) -> None:
    commands = await call(agi, "ivr", ["9", "0"])
    found = variables_set(commands)
    assert (found["CHANNEL(language)"], found["CC_LANG"], found["CC_QUEUE"]) == (
        "en",
        "en",
        "genel",
    )


async def test_table_and_chair_opens_a_ticket_and_reads_its_reference(
    agi: FastAgiServer, pool: asyncpg.Pool
) -> None:
    when = today() + timedelta(days=10)
    entries = ["2", "2", when.strftime("%d%m%Y"), "18", "1", "", ""]
    commands = await call(agi, "ivr", entries)
    row = await pool.fetchrow("SELECT * FROM tickets")
    assert row["category"] == "masa-sandalye" and row["channel"] == "ivr"
    assert row["caller_number"] == "+905321234567"
    assert json.loads(row["fields"]) == {
        "event_date": when.isoformat(),
        "neighbourhood": "Yenidoğan",
        "neighbourhood_code": "18",
        "event": "cenaze",
        "language": "tr",
    }
    reference = row["reference"]
    # Said from the IVR's own prompts by the Turkish rules, never Asterisk's SAY DIGITS.
    heard = streamed(commands)
    at = heard.index(p.TC_OPENED) + 1
    assert heard[at : heard.index(p.TC_REPEAT)] == say.reference(reference, "tr")
    assert not [c for c in commands if c.startswith("SAY ")]
    found = variables_set(commands)
    assert found["CC_TICKET"] == reference and found["CC_IVR_RESULT"] == "ticket_opened"
    assert user_events(commands) == [
        {"UserEvent": "CallcenterIvr", "Flow": "masa_sandalye", "Result": "ticket_opened"}
    ]
    assert found["CC_IVR_END"] == "hangup"  # silence after the flow: goodbye
    linked = await pool.fetchval(
        "SELECT linkedid FROM ticket_calls WHERE ticket_id = $1", row["id"]
    )
    assert linked == LINKEDID
    assert agi.stats.flow_results[("masa_sandalye", "ticket_opened")] == 1


async def test_request_status_reads_the_tickets_status(
    agi: FastAgiServer, pool: asyncpg.Pool
) -> None:
    ticket = await tickets.open_ticket(
        pool, category="sosyal-yardim", caller_number=NUMBER, channel="phone"
    )
    await tickets.set_status(pool, ticket.reference, "in_progress", source="test")
    serial = str(int(ticket.reference.split("-")[1]))  # this year's: the serial is enough
    commands = await call(agi, "ivr", ["3", serial, ""])
    assert "callcenter/status-in-progress" in streamed(commands)
    found = variables_set(commands)
    assert (found["CC_TICKET"], found["CC_TICKET_STATUS"]) == (ticket.reference, "in_progress")
    heard = streamed(commands)
    at = heard.index(p.STATUS_INTRO) + 1
    assert heard[at : at + len(say.reference(ticket.reference, "tr"))] == say.reference(
        ticket.reference, "tr"
    )
    assert not [c for c in commands if c.startswith("SAY ")]


async def test_request_status_of_an_unknown_reference(agi: FastAgiServer) -> None:
    commands = await call(agi, "ivr", ["3", "2019000001", "0"])
    assert streamed(commands).count(p.STATUS_NOT_FOUND) == 1
    assert variables_set(commands)["CC_QUEUE"] == "genel"


async def test_survey_after_the_agent_call_is_stored_with_its_webhook(
    agi: FastAgiServer, pool: asyncpg.Pool
) -> None:
    args = (LINKEDID, "genel", "Zeynep Kaya")
    commands = await call(agi, "survey", ["4", "1"], *args, language="en")
    # The score key interrupts the introduction, as a caller who knows the drill does.
    assert streamed(commands) == [p.SURVEY_INTRO, p.SURVEY_Q2, p.SURVEY_THANKS]
    row = await pool.fetchrow("SELECT * FROM ivr_surveys")
    assert (row["kind"], row["score"], row["resolved"], row["language"]) == (
        "after_call",
        4,
        True,
        "en",
    )
    assert (row["queue"], row["agent"], row["linkedid"]) == ("genel", "Zeynep Kaya", LINKEDID)
    outbox = await pool.fetchrow(
        "SELECT payload FROM webhook_outbox WHERE event_type = 'survey.completed'"
    )
    data = json.loads(outbox["payload"])["data"]
    assert (data["score"], data["resolved"], data["caller_number"]) == (4, True, "+905321234567")
    assert agi.stats.surveys[("after_call", 4)] == 1
    # The same call's survey again (a retried AGI) is not counted twice in the table.
    await call(agi, "survey", ["2", "2"], *args)
    assert await pool.fetchval("SELECT count(*) FROM ivr_surveys") == 1


async def test_hanging_up_before_the_second_question_keeps_the_score(
    agi: FastAgiServer, pool: asyncpg.Pool
) -> None:
    await call(agi, "survey", ["2"], LINKEDID, "sosyal-yardim", "Elif Şahin")
    row = await pool.fetchrow("SELECT score, resolved FROM ivr_surveys")
    assert (row["score"], row["resolved"]) == (2, None)
    assert agi.stats.hangups["survey"] == 1 and not agi.stats.broken


async def test_resolved_tickets_are_called_back_for_the_survey(
    agi: FastAgiServer, pool: asyncpg.Pool
) -> None:
    ticket = await tickets.open_ticket(
        pool, category="masa-sandalye", caller_number=NUMBER, channel="ivr"
    )
    await tickets.set_status(pool, ticket.reference, "resolved", source="backend")
    now = datetime.now(tickets.REFERENCE_TZ) + timedelta(seconds=1)
    retry = timedelta(minutes=120)
    [due] = await claim_callbacks(pool, now, limit=5, max_attempts=3, retry=retry)
    assert (due.reference, due.caller_number, due.attempt) == (ticket.reference, "+905321234567", 1)
    assert await claim_callbacks(pool, now, limit=5, max_attempts=3, retry=retry) == []  # leased
    action = originate_action(due, load_menu().callbacks)
    assert action["Channel"] == "PJSIP/05321234567@trunk"
    # The dialplan's survey-callback context runs the AGI with the Originate's variables.
    args = ("1795890000.7", str(due.ticket_id), due.reference)
    commands = await call(agi, "survey-callback", ["5", "1"], *args, callerid=NUMBER)
    assert streamed(commands)[0] == p.SURVEY_CALLBACK_INTRO
    row = await pool.fetchrow("SELECT kind, ticket_id, score FROM ivr_surveys")
    assert (row["kind"], row["ticket_id"], row["score"]) == ("callback", ticket.id, 5)
    state = await pool.fetchval(
        "SELECT state FROM survey_callbacks WHERE ticket_id = $1", ticket.id
    )
    assert state == "answered"
    later = now + retry * 3
    assert await claim_callbacks(pool, later, limit=5, max_attempts=3, retry=retry) == []


async def test_unanswered_call_backs_are_retried_then_given_up(pool: asyncpg.Pool) -> None:
    ticket = await tickets.open_ticket(
        pool, category="sosyal-yardim", caller_number=NUMBER, channel="phone"
    )
    await tickets.set_status(pool, ticket.reference, "resolved", source="backend")
    retry = timedelta(minutes=30)
    now = datetime.now(tickets.REFERENCE_TZ) + timedelta(seconds=1)
    attempts = []
    for i in range(4):
        due = await claim_callbacks(
            pool, now + retry * i * 1.5, limit=5, max_attempts=3, retry=retry
        )
        attempts.append([d.attempt for d in due])
    assert attempts == [[1], [2], [3], []]
    state = await pool.fetchval("SELECT state FROM survey_callbacks")
    assert state == "failed"


async def test_a_hang_up_mid_menu_ends_the_session_cleanly(agi: FastAgiServer) -> None:
    environment = agi_environment("ivr", [LINKEDID])
    commands = await run_agi_session("127.0.0.1", agi.port, environment, ["1", "2"], hangup_after=4)
    assert len(commands) == 5  # the fifth command met the hang-up; nothing followed
    assert agi.stats.hangups["ivr"] == 1 and not agi.stats.broken and agi.stats.active == 0


async def test_phone_numbers_are_masked_in_the_ivr_logs(agi: FastAgiServer) -> None:
    with capture_logs() as logs:
        await call(agi, "ivr", ["0"])
    assert any(entry["event"] == "ivr_session" for entry in logs)
    assert NUMBER not in repr(logs)


async def test_a_hang_up_mid_flow_opens_no_ticket(agi: FastAgiServer, pool: asyncpg.Pool) -> None:
    when = today() + timedelta(days=3)
    # Date and neighbourhood keyed, then the caller hangs up during the read-back.
    await call(agi, "ivr", ["2", "1", when.strftime("%d%m%Y"), "16"])
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 0
    assert agi.stats.hangups["ivr"] == 1 and not agi.stats.broken
