"""Tickets in PostgreSQL: references, de-duplication, status changes, dispositions, outbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from callcenter.config import Settings
from callcenter.dispositions import CallbackTickets, record_disposition
from callcenter.replay import open_trace, replay_lines, trace_t0
from callcenter.tickets import (
    TicketError,
    get_ticket,
    list_tickets,
    open_ticket,
    set_status,
    survey_candidates,
    ticket_status,
)

TRACES = Path(__file__).resolve().parents[1] / "traces"
NUMBER = "05321234567"


async def outbox(pool: Any) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch("SELECT event_type, payload::text AS p FROM webhook_outbox ORDER BY id")
    return [(r["event_type"], json.loads(r["p"])) for r in rows]


async def test_reference_is_year_and_sequence(pool: Any) -> None:
    first = await open_ticket(pool, category="masa-sandalye", caller_number=NUMBER, channel="ivr")
    second = await open_ticket(
        pool, category="sosyal-yardim", caller_number=NUMBER, channel="phone"
    )
    year, seq = first.reference.split("-")
    assert len(year) == 4 and seq == "000001"
    assert second.reference == f"{year}-000002"
    assert await ticket_status(pool, first.reference) == "open"
    assert await ticket_status(pool, first.reference.replace("-", "")) == "open"
    assert await ticket_status(pool, "1999-000001") is None
    assert first.caller_number == "+905321234567"  # stored in E.164


async def test_ticket_and_its_webhook_share_one_transaction(pool: Any) -> None:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await open_ticket(conn, category="masa-sandalye", caller_number=NUMBER, channel="ivr")
        await tx.rollback()
    assert await list_tickets(pool) == []
    assert await outbox(pool) == []
    ticket = await open_ticket(pool, category="masa-sandalye", caller_number=NUMBER, channel="ivr")
    [(kind, body)] = await outbox(pool)
    assert kind == "ticket.created"
    assert body["type"] == "ticket.created"
    assert body["data"]["ticket"]["reference"] == ticket.reference


async def test_same_number_and_category_while_open_joins_the_ticket(pool: Any) -> None:
    first = await open_ticket(
        pool, category="masa-sandalye", caller_number=NUMBER, channel="ivr", linkedid="1.1"
    )
    # The same citizen, spelled another way, calls again about the same thing.
    again = await open_ticket(
        pool,
        category="masa-sandalye",
        caller_number="+90 532 123 45 67",
        channel="phone",
        linkedid="2.2",
        note="Tekrar aradı",
    )
    assert again.reference == first.reference and again.merged
    assert again.requests == 2
    assert [c["linkedid"] for c in again.calls] == ["1.1", "2.2"]
    assert [c["channel"] for c in again.calls] == ["ivr", "phone"]
    kinds = [k for k, _ in await outbox(pool)]
    assert kinds == ["ticket.created", "ticket.updated"]
    # Another category, or another number, is another request.
    other = await open_ticket(pool, category="sosyal-yardim", caller_number=NUMBER, channel="ivr")
    assert other.reference != first.reference
    stranger = await open_ticket(
        pool, category="masa-sandalye", caller_number="05339998877", channel="ivr"
    )
    assert stranger.reference != first.reference


async def test_closed_or_old_tickets_are_not_joined(pool: Any) -> None:
    settings = Settings(ticket_dedupe_days=7)
    kw: dict[str, Any] = {"category": "masa-sandalye", "caller_number": NUMBER, "channel": "ivr"}
    first = await open_ticket(pool, settings=settings, **kw)
    await set_status(pool, first.reference, "resolved", source="backend")
    after_close = await open_ticket(pool, settings=settings, **kw)
    assert after_close.reference != first.reference
    await pool.execute(
        "UPDATE tickets SET created_at = now() - interval '8 days' WHERE reference = $1",
        after_close.reference,
    )
    after_window = await open_ticket(pool, settings=settings, **kw)
    assert after_window.reference != after_close.reference
    assert not after_window.merged


async def test_withheld_numbers_are_never_merged(pool: Any) -> None:
    a = await open_ticket(pool, category="masa-sandalye", caller_number=None, channel="ivr")
    b = await open_ticket(pool, category="masa-sandalye", caller_number="anonymous", channel="ivr")
    assert a.reference != b.reference


async def test_concurrent_requests_open_one_ticket(pool: Any) -> None:
    tickets = await asyncio.gather(
        *(
            open_ticket(
                pool,
                category="depremzede",
                caller_number=NUMBER,
                channel="ivr",
                linkedid=f"{i}.0",
            )
            for i in range(4)
        )
    )
    assert len({t.reference for t in tickets}) == 1
    [ticket] = await list_tickets(pool)
    assert ticket.requests == 4 and len(ticket.calls) == 4


async def test_the_same_call_asking_twice_changes_nothing(pool: Any) -> None:
    kw: dict[str, Any] = {
        "category": "masa-sandalye",
        "caller_number": NUMBER,
        "channel": "ivr",
        "linkedid": "1.1",
        "server": "pbx1",
    }
    first = await open_ticket(pool, **kw)
    again = await open_ticket(pool, **kw)
    assert again.reference == first.reference and again.requests == 1
    assert len(await outbox(pool)) == 1


async def test_status_moves_and_resolved_becomes_a_survey_candidate(pool: Any) -> None:
    ticket = await open_ticket(pool, category="sosyal-yardim", caller_number=NUMBER, channel="ivr")
    moved = await set_status(pool, ticket.reference, "in_progress", source="backend")
    assert moved.status == "in_progress"
    done = await set_status(pool, ticket.reference, "resolved", source="backend", note="Teslim")
    assert done.closed_at is not None
    [candidate] = await survey_candidates(pool)
    assert candidate["reference"] == ticket.reference
    assert candidate["caller_number"] == "+905321234567"
    with pytest.raises(TicketError) as err:
        await set_status(pool, ticket.reference, "in_progress", source="backend")
    assert err.value.code == "bad_transition"
    reopened = await set_status(pool, ticket.reference, "open", source="backend")
    assert reopened.closed_at is None and await survey_candidates(pool) == []
    updates = [b["data"] for k, b in await outbox(pool) if k == "ticket.updated"]
    assert [u["ticket"]["status"] for u in updates] == ["in_progress", "resolved", "open"]
    assert updates[1]["previous_status"] == "in_progress"
    with pytest.raises(TicketError):
        await set_status(pool, "2026-999999", "open", source="backend")


async def test_disposition_request_opens_a_ticket_once(pool: Any) -> None:
    kw: dict[str, Any] = {
        "server": "pbx1",
        "linkedid": "1795884362.0",
        "agent": "Zeynep Kaya",
        "kind": "request",
        "category": "masa-sandalye",
        "note": "Cenaze için 30 sandalye",
        "caller_number": NUMBER,
        "caller_name": "Ayşe Yılmaz",
    }
    first = await record_disposition(pool, **kw)
    assert first["ticket"]["caller_name"] == "Ayşe Yılmaz"
    assert first["ticket"]["channel"] == "phone"
    assert first["ticket"]["calls"][0]["linkedid"] == "1795884362.0"
    again = await record_disposition(pool, **kw)
    assert again["duplicate"] and again["reference"] == first["reference"]
    assert len(await list_tickets(pool)) == 1
    info = await record_disposition(
        pool, server="pbx1", linkedid="9.9", agent="Zeynep Kaya", kind="info"
    )
    assert info["ticket"] is None and info["kind"] == "info"
    with pytest.raises(TicketError, match="category"):
        await record_disposition(
            pool, server="pbx1", linkedid="8.8", agent="a", kind="request", category="nope"
        )


async def test_abandoned_call_becomes_a_callback_ticket_once(pool: Any) -> None:
    settings = Settings(callback_tickets=True, callback_min_wait_s=5.0)
    sink = CallbackTickets(lambda: pool, settings)
    sink.start()
    path = TRACES / "abandon" / "ami.jsonl.gz"
    try:
        for _ in range(2):  # a replay of the same trace must not open a second ticket
            with open_trace(path) as fh:
                for effect in replay_lines(fh, "pbx1", trace_t0(path) or 0.0):
                    sink([effect])
            await asyncio.wait_for(sink.flush(), 10)
    finally:
        await sink.stop()
    [ticket] = await list_tickets(pool)
    assert ticket.channel == "callback" and ticket.category == "geri-arama"
    assert ticket.calls[0]["linkedid"] == "1795884425.0"
    assert ticket.requests == 1
    found = await get_ticket(pool, ticket.reference)
    assert found is not None and "bekledikten" in found.note
