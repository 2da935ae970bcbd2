"""KVKK retention forgets every copy: personal data planted everywhere is gone after a run.

Personal data ("TC 12345678901, tel 0532 123 45 67", the caller's number and name) is planted,
back-dated 800 days, in every place the service keeps it: call rows, disposition notes, ticket
notes and fields, ticket-event notes, webhook outbox payloads, delivery errors and answers,
survey answers, call-back rows, agents' call-backs, open-call snapshots, the access log, and the
spill and reject files. ``python -m callcenter retention --days 730`` runs as a separate
process; then the whole database (pg_dump, and every row of every table as text) and the spool
directory are searched.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter.model import Call
from callcenter.store.serialize import call_to_json

PII = "TC 12345678901, tel 0532 123 45 67"
NEEDLES = ("12345678901", "0532 123 45 67", "5321234567", "Ayşe Yılmaz")
RECENT = "TC 98765432109"  # planted today: retention must keep it
OLD = datetime.now(UTC) - timedelta(days=800)


async def plant(pool: asyncpg.Pool, spool: Path) -> None:
    """Puts personal data in every table and file that can hold it, back-dated."""
    fields = json.dumps({"tc": "12345678901", "address": "Sancaktepe, tel 0532 123 45 67"})
    await pool.execute(
        """
        INSERT INTO calls (server, linkedid, uniqueid, caller_number, caller_name, dialled,
                           outcome, started_at, ended_at, ivr_digits, ivr_vars)
        VALUES ('pbx1', 'old.1', 'old.1', '05321234567', 'Ayşe Yılmaz', '05321234567',
                'answered', $1, $1, '12345678901', $2)
        """,
        OLD,
        json.dumps({"tc": "12345678901"}),
    )
    await pool.execute(
        "INSERT INTO call_dispositions (server, linkedid, agent, kind, note, created_at)"
        " VALUES ('pbx1', 'old.1', 'Zeynep Kaya', 'request', $1, $2),"
        " ('pbx1', 'new.1', 'Zeynep Kaya', 'info', $3, now())",
        PII,
        OLD,
        RECENT,
    )
    ticket = await pool.fetchval(
        """
        INSERT INTO tickets (reference, category, status, channel, caller_number, caller_name,
                             note, fields, created_at, updated_at, closed_at)
        VALUES ('2024-000001', 'masa-sandalye', 'resolved', 'phone', '+905321234567',
                'Ayşe Yılmaz', $1, $2, $3, $3, $3) RETURNING id
        """,
        PII,
        fields,
        OLD,
    )
    await pool.execute(
        "INSERT INTO ticket_events (ticket_id, at, kind, status, source, note)"
        " VALUES ($1, $2, 'status', 'resolved', 'backend', $3)",
        ticket,
        OLD,
        PII,
    )
    payload = {
        "type": "ticket.created",
        "timestamp": OLD.isoformat(),
        "data": {
            "ticket": {"reference": "2024-000001", "note": PII, "fields": json.loads(fields)},
            "caller_number": "+905321234567",
        },
    }
    outbox = await pool.fetchval(
        "INSERT INTO webhook_outbox (msg_id, event_type, payload, created_at, fanned_out)"
        " VALUES ('msg_old', 'ticket.created', $1, $2, true) RETURNING id",
        json.dumps(payload, ensure_ascii=False),
        OLD,
    )
    delivery = await pool.fetchval(
        """
        INSERT INTO webhook_deliveries (outbox_id, subscription, state, attempts,
               first_attempt_at, next_attempt_at, last_attempt_at, last_status, last_error)
        VALUES ($1, 'backend', 'failed', 1, $2, $2, $2, 422, $3) RETURNING id
        """,
        outbox,
        OLD,
        f"HTTP 422: rejected note {PII}",
    )
    await pool.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, response)"
        " VALUES ($1, 1, $2, 422, $3, $3)",
        delivery,
        OLD,
        f'{{"error": "bad note {PII}"}}',
    )
    survey = await pool.fetchval(
        "INSERT INTO ivr_surveys (kind, score, caller_number, linkedid, answered_at)"
        " VALUES ('callback', 2, '+905321234567', 'old.1', $1) RETURNING id",
        OLD,
    )
    await pool.execute(
        "INSERT INTO survey_callbacks (ticket_id, caller_number, state, survey_id, created_at,"
        " updated_at) VALUES ($1, '+905321234567', 'answered', $2, $3, $3)",
        ticket,
        survey,
        OLD,
    )
    call = Call(
        "pbx1",
        "old.2",
        "old.2",
        OLD.timestamp(),
        caller_number="05321234567",
        caller_name="Ayşe Yılmaz",
    )
    call.ivr_digits = "12345678901"
    await pool.execute(
        "INSERT INTO open_calls (server, linkedid, state, updated_at)"
        " VALUES ('pbx1', 'old.2', $1, $2)",
        json.dumps(call_to_json(call), ensure_ascii=False),
        OLD,
    )
    await pool.execute(
        "INSERT INTO agent_callbacks (server, linkedid, caller_number, agent, interface, error,"
        " created_at) VALUES ('pbx1', 'old.1', '05321234567', 'Zeynep Kaya', 'PJSIP/1001', $1, $2)",
        PII,
        OLD,
    )
    await pool.execute(
        "INSERT INTO access_log (at, principal, role, action, target, allowed, status)"
        " VALUES ($1, 'z', 'agent', 'pop.read', 'number=05321234567', false, 403)",
        OLD,
    )
    write_spool(spool, call)


def write_spool(spool: Path, call: Call) -> None:
    """The writer's files: a record the database refused, and one spilled while it was away."""
    spool.mkdir(parents=True, exist_ok=True)
    data = call_to_json(call)
    data["ended_at"] = OLD.timestamp()
    data["ivr_vars"] = {"tc": "12345678901"}
    record: dict[str, Any] = {"kind": "call", "server": "pbx1", "data": data}
    rejected = {**record, "error": f"DataError('value too long: {PII}')"}
    lines = [json.dumps(rejected, ensure_ascii=False), json.dumps({**record, "n": RECENT})]
    recent = {**record, "data": {**data, "ended_at": None, "caller_name": RECENT}}
    lines.append(json.dumps(recent, ensure_ascii=False))
    (spool / "calls.rejected.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (spool / "calls.spill.jsonl").write_text(
        json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8"
    )


async def database_text(pool: asyncpg.Pool, db_url: str) -> str:
    """Every row of every table as text, and pg_dump's dump of the database when it is here."""
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    parts = []
    for row in tables:
        text = await pool.fetchval(
            f"SELECT string_agg(t::text, E'\\n') FROM public.\"{row['tablename']}\" t"
        )
        parts.append(text or "")
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        proc = await asyncio.create_subprocess_exec(
            pg_dump, "--data-only", db_url, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        if proc.returncode == 0:  # a newer server than the client: the SQL dump above stands
            # \restrict lines carry a random key per dump: not data.
            lines = out.decode("utf-8").splitlines()
            parts.append("\n".join(x for x in lines if not x.startswith(("\\restrict", "\\unr"))))
    return "\n".join(parts)


def spool_text(spool: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(spool.iterdir()))


async def cli(db_url: str, spool: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": db_url, "CALLCENTER_SPOOL_DIR": str(spool)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter",
        "retention",
        "--days",
        "730",
        "--json",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out)
    return report


@pytest.mark.parametrize("mode", ["anonymise", "delete"])
async def test_retention_leaves_no_copy_of_old_personal_data(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path, mode: str
) -> None:
    spool = tmp_path / "spool"
    await plant(pool, spool)
    before_db, before_files = await database_text(pool, db_url), spool_text(spool)
    for needle in NEEDLES:
        assert needle in before_db and needle in before_files, needle
    # The dry run lists what it will touch, and touches nothing.
    dry = await cli(db_url, spool, "--mode", mode, "--dry-run")
    assert dry["dry_run"] is True
    touched = {name for name, n in dry["rows"].items() if n}
    assert {
        "tickets.anonymised",
        "ticket_events.notes_cleared",
        "webhook_outbox.anonymised",
        "webhook_attempts.answers_cleared",
        "webhook_deliveries.errors_cleared",
        "ivr_surveys.anonymised",
        "survey_callbacks.deleted",
        "access_log.deleted",
        "agent_callbacks.deleted",
        "file:calls.rejected.jsonl",
        "file:calls.spill.jsonl",
    } <= touched
    if mode == "anonymise":
        assert {"calls.anonymised", "call_dispositions.notes_cleared"} <= touched
    else:
        assert {"calls.deleted", "call_dispositions.deleted", "open_calls.deleted"} <= touched
    assert await database_text(pool, db_url) == before_db
    assert spool_text(spool) == before_files
    report = await cli(db_url, spool, "--mode", mode)
    assert {k for k, v in report["rows"].items() if v} == touched
    after_db, after_files = await database_text(pool, db_url), spool_text(spool)
    for needle in NEEDLES:
        assert needle not in after_db, f"{needle!r} is still in the database"
        assert needle not in after_files, f"{needle!r} is still in the spool"
    # What is recent stays, and the files keep their lines (and lengths) for the writer.
    assert RECENT in after_db and RECENT in after_files
    assert len(after_files.encode()) == len(before_files.encode())
    for line in filter(None, after_files.splitlines()):
        json.loads(line)
    # Figures and references stay.
    assert await pool.fetchval("SELECT reference FROM tickets") == "2024-000001"
    assert await pool.fetchval("SELECT score FROM ivr_surveys") == 2
    again = await cli(db_url, spool, "--mode", mode)
    assert set(again["rows"].values()) == {0}
