"""KVKK retention against real PostgreSQL: old calls lose their personal data, figures stay.

Recorded traces are replayed twice into the store: once as they were recorded ("recent") and
once moved 800 days back ("old"), with tickets, survey answers, call-backs and webhook events
of both ages. A run with ``retention_days = 730`` must clear or delete exactly the old ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter import retention
from callcenter.app import Service
from callcenter.config import Settings, load_settings
from callcenter.model import Call, CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, open_trace, trace_t0
from callcenter.retention import run_retention
from callcenter.store.writer import CallWriter
from callcenter.tickets import open_ticket
from callcenter.webhooks.outbox import call_ended_data, enqueue
from tests.metrics_support import TRACES, caller_numbers

AGE = timedelta(days=800)
OLD_WITH_NUMBER = (
    "SELECT count(*) FROM calls WHERE linkedid LIKE 'old-%' AND caller_number IS NOT NULL"
)
SCENARIOS = ("concurrent", "ivr_to_queue", "transfer")
T0 = trace_t0(TRACES / "concurrent" / "ami.jsonl.gz") or 0.0
NOW = datetime.fromtimestamp(T0, UTC) + timedelta(days=1)
# Columns the reports are made of: anonymising must not change any of them.
FIGURES = (
    "server, linkedid, queue, agent, outcome, hangup_by, started_at, answered_at, ended_at,"
    " wait_s, talk_s, hold_s, ivr_path, ivr_result, reconstructed"
)


def replay(scenario: str, shift: float) -> tuple[list[Call], Call | None]:
    """A trace's finished calls, moved ``shift`` seconds, and one call caught mid-way."""
    path = TRACES / scenario / "ami.jsonl.gz"
    with open_trace(path) as fh:
        messages = list(iter_trace(fh, trace_t0(path) or 0.0))
    pipe = Pipeline()
    ended: list[Call] = []
    open_call = None
    for i, (ts, text) in enumerate(messages):
        ended += [
            e.call for e in pipe.feed_text("pbx1", text, ts + shift) if isinstance(e, CallEnded)
        ]
        if open_call is None and i > len(messages) // 3 and pipe.tracker.calls:
            open_call = next(iter(pipe.tracker.calls.values()))
            # A snapshot frozen now, as the writer would have stored it then.
            open_call = Call(**{f: getattr(open_call, f) for f in open_call.__slots__})  # type: ignore[attr-defined]
    return ended, open_call


async def seed(pool: asyncpg.Pool, tmp_path: Path) -> dict[str, Any]:
    """Old and recent calls, snapshots, tickets, surveys, call-backs and webhook events."""
    settings = Settings(db_flush_interval=0.05)
    writer = CallWriter(pool, settings, spill_dir=tmp_path)
    writer.start()
    old: list[Call] = []
    recent: list[Call] = []
    for scenario in SCENARIOS:
        calls, _ = replay(scenario, 0.0)
        recent += calls
        calls, snapshot = replay(scenario, -AGE.total_seconds())
        old += calls
        for call in calls:
            call.linkedid, call.uniqueid = "old-" + call.linkedid, "old-" + call.uniqueid
        if snapshot is not None:
            snapshot.linkedid = "old-open-" + snapshot.linkedid
            writer.submit_open(snapshot)
    for call in old + recent:
        writer.submit_call(call)
    await asyncio.wait_for(writer.close(), 30)
    long_ago = NOW - AGE
    await pool.execute("UPDATE open_calls SET updated_at = $1", long_ago)
    tickets = {}
    for age, number in (("old", "05321110001"), ("recent", "05387654321")):
        ticket = await open_ticket(
            pool, category="bilgi", caller_number=number, caller_name="Ayşe Demir", channel="api"
        )
        tickets[age] = ticket.reference
    await pool.execute(
        "UPDATE tickets SET created_at = $2, updated_at = $2, closed_at = $2, status = 'resolved'"
        " WHERE reference = $1",
        tickets["old"],
        long_ago,
    )
    old_ticket = await pool.fetchval("SELECT id FROM tickets WHERE reference = $1", tickets["old"])
    await pool.execute(
        """
        INSERT INTO ivr_surveys (kind, score, caller_number, linkedid, answered_at)
        VALUES ('after_call', 5, '+905321110001', 'old-1', $1),
               ('after_call', 4, '+905387654321', 'new-1', now())
        """,
        long_ago,
    )
    await pool.execute(
        "INSERT INTO survey_callbacks (ticket_id, caller_number, state, updated_at)"
        " VALUES ($1, '+905321110001', 'answered', $2)",
        old_ticket,
        long_ago,
    )
    async with pool.acquire() as conn, conn.transaction():
        for call in (old[0], recent[0]):
            await enqueue(conn, "call.ended", call_ended_data(call.to_dict()))
    await pool.execute(
        "UPDATE webhook_outbox SET created_at = $1 WHERE payload->'data'->>'linkedid' LIKE 'old-%'"
        " OR event_type = 'ticket.created' AND payload->'data'->'ticket'->>'reference' = $2",
        long_ago,
        tickets["old"],
    )
    await pool.execute(
        "INSERT INTO call_dispositions (server, linkedid, agent, kind, created_at)"
        " VALUES ('pbx1', $1, 'Zeynep Kaya', 'info', $2),"
        " ('pbx1', $3, 'Zeynep Kaya', 'info', now())",
        old[0].linkedid,
        long_ago,
        recent[0].linkedid,
    )
    return {"old": old, "recent": recent, "tickets": tickets}


async def rows(pool: asyncpg.Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(sql, *args)]


async def dump(pool: asyncpg.Pool) -> str:
    """Every table's rows as text: what a leak of personal data would be found in."""
    tables = await pool.fetchval(
        "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"
    )
    parts = []
    for table in tables.split(","):
        parts.append(await pool.fetchval(f"SELECT coalesce(json_agg(t)::text, '') FROM {table} t"))
    return "\n".join(parts)


def old_numbers() -> set[str]:
    numbers: set[str] = set()
    for scenario in SCENARIOS:
        numbers |= caller_numbers(scenario)
    return numbers


async def test_anonymise_clears_old_personal_data_and_keeps_every_figure(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = await seed(pool, tmp_path)
    figures = await rows(pool, f"SELECT {FIGURES} FROM calls ORDER BY server, linkedid")
    rollups = await rows(pool, "SELECT * FROM report_hourly ORDER BY bucket, server, queue")
    visits = await pool.fetchval("SELECT count(*) FROM queue_visits")
    before = await dump(pool)

    dry = await run_retention(pool, days=730, mode="anonymise", dry_run=True, now=NOW)
    assert await dump(pool) == before, "a dry run changed something"
    report = await run_retention(pool, days=730, mode="anonymise", now=NOW)
    assert report.rows == dry.rows
    old_calls = len(data["old"])
    assert report.rows["calls.anonymised"] == old_calls
    assert report.rows["open_calls.anonymised"] == len(SCENARIOS)
    assert report.rows["tickets.anonymised"] == 1
    assert report.rows["ivr_surveys.anonymised"] == 1
    assert report.rows["survey_callbacks.deleted"] == 1
    assert report.rows["webhook_outbox.anonymised"] == 2  # call.ended and ticket.created

    # Old calls: no number, name or keys; every figure the reports use is unchanged.
    old_rows = await rows(
        pool, "SELECT caller_number, caller_name, ivr_digits FROM calls WHERE linkedid LIKE 'old-%'"
    )
    assert len(old_rows) == old_calls
    assert all(
        r == {"caller_number": None, "caller_name": None, "ivr_digits": ""} for r in old_rows
    )
    assert await rows(pool, f"SELECT {FIGURES} FROM calls ORDER BY server, linkedid") == figures
    assert await rows(pool, "SELECT * FROM report_hourly ORDER BY bucket, server, queue") == rollups
    assert await pool.fetchval("SELECT count(*) FROM queue_visits") == visits
    # Recent calls keep theirs.
    recent = await rows(
        pool,
        "SELECT caller_number FROM calls"
        " WHERE linkedid NOT LIKE 'old-%' AND caller_number IS NOT NULL",
    )
    assert len(recent) == sum(1 for c in data["recent"] if c.caller_number)
    assert any(c.ivr_digits for c in data["old"]), "the seed should include IVR keys"
    # Nothing old anywhere still carries a caller's number, name or keys.
    for state in await pool.fetch("SELECT state FROM open_calls"):
        snapshot = json.loads(state["state"])
        assert (snapshot["caller_number"], snapshot["caller_name"], snapshot["ivr_digits"]) == (
            None,
            None,
            "",
        )
    old_ticket = await pool.fetchrow(
        "SELECT caller_number, caller_name, category, status FROM tickets WHERE reference = $1",
        data["tickets"]["old"],
    )
    assert dict(old_ticket) == {
        "caller_number": None,
        "caller_name": None,
        "category": "bilgi",
        "status": "resolved",
    }
    assert await pool.fetchval(
        "SELECT caller_number FROM tickets WHERE reference = $1", data["tickets"]["recent"]
    )
    assert await pool.fetchval("SELECT count(*) FROM ivr_surveys WHERE caller_number IS NULL") == 1
    assert await pool.fetchval("SELECT sum(score) FROM ivr_surveys") == 9  # scores kept
    old_text = await pool.fetchval(
        "SELECT json_agg(t)::text FROM webhook_outbox t WHERE created_at < $1", NOW - AGE / 2
    )
    for number in old_numbers() | {"05321110001", "+905321110001", "Ayşe Demir"}:
        assert number not in old_text
        assert number not in json.dumps(old_rows)
    # A second run finds nothing left to do.
    again = await run_retention(pool, days=730, mode="anonymise", now=NOW)
    assert set(again.rows.values()) == {0}


async def test_delete_removes_old_calls_with_their_visits_and_rollups(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    data = await seed(pool, tmp_path)
    recent = await rows(
        pool, "SELECT * FROM calls WHERE linkedid NOT LIKE 'old-%' ORDER BY linkedid"
    )
    report = await run_retention(pool, days=730, mode="delete", now=NOW)
    assert report.rows["calls.deleted"] == len(data["old"])
    assert report.rows["call_dispositions.deleted"] == 1
    assert report.rows["open_calls.deleted"] == len(SCENARIOS)
    assert report.rows["tickets.anonymised"] == 1
    assert await pool.fetchval("SELECT count(*) FROM calls WHERE linkedid LIKE 'old-%'") == 0
    assert await pool.fetchval("SELECT count(*) FROM queue_visits WHERE linkedid LIKE 'old-%'") == 0
    assert await pool.fetchval("SELECT count(*) FROM open_calls") == 0
    assert await pool.fetchval("SELECT count(*) FROM call_dispositions") == 1
    assert await rows(pool, "SELECT * FROM calls ORDER BY linkedid") == recent
    # The rollups follow the calls table: only recent calls are counted now.
    assert await pool.fetchval("SELECT sum(calls) FROM report_hourly") == len(recent)
    # The ticket stays (its reference, category and history), without the caller.
    assert (
        await pool.fetchval(
            "SELECT caller_number FROM tickets WHERE reference = $1", data["tickets"]["old"]
        )
        is None
    )


async def test_another_instance_holding_the_lock_means_this_one_waits(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await seed(pool, tmp_path)
    async with pool.acquire() as other:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", retention._LOCK)
        try:
            report = await run_retention(pool, days=730, mode="anonymise", now=NOW)
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", retention._LOCK)
    assert report.skipped and report.rows == {}
    assert await pool.fetchval("SELECT count(*) FROM calls WHERE caller_number IS NOT NULL") > 0


async def test_the_service_runs_it_after_start(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(pool, tmp_path)
    monkeypatch.setattr(retention, "FIRST_RUN_DELAY_S", 0.0)
    # The seeded calls are 800 days before the traces; the service uses the real clock.
    days = (datetime.now(UTC) - (NOW - AGE)).days - 30
    service = Service(
        Settings(
            database_url=db_url, spool_dir=str(tmp_path), fastagi_enabled=False, retention_days=days
        )
    )
    await asyncio.wait_for(service.start(ami=False), 30)
    try:
        assert any(t.get_name() == "retention" for t in service._tasks)

        async def anonymised() -> None:
            sql = OLD_WITH_NUMBER
            while await pool.fetchval(sql):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        await asyncio.wait_for(anonymised(), 30)
    finally:
        await asyncio.wait_for(service.stop(), 30)
    assert await pool.fetchval(
        "SELECT count(*) FROM calls WHERE linkedid NOT LIKE 'old-%' AND caller_number IS NOT NULL"
    )


async def test_off_and_bad_settings(db_url: str, tmp_path: Path) -> None:
    service = Service(
        Settings(
            database_url=db_url, spool_dir=str(tmp_path), fastagi_enabled=False, retention_days=0
        )
    )
    await asyncio.wait_for(service.start(ami=False), 30)
    try:
        assert not any(t.get_name() == "retention" for t in service._tasks)
    finally:
        await asyncio.wait_for(service.stop(), 30)
    bad = Service(
        Settings(
            database_url=db_url,
            spool_dir=str(tmp_path),
            fastagi_enabled=False,
            retention_mode="shred",
        )
    )
    with pytest.raises(ValueError, match="retention_mode"):
        await asyncio.wait_for(bad.start(ami=False), 30)
    await asyncio.wait_for(bad.stop(), 30)
    settings = load_settings(
        env={"CALLCENTER_RETENTION_DAYS": "365", "CALLCENTER_RETENTION_MODE": "delete"}
    )
    assert (settings.retention_days, settings.retention_mode) == (365, "delete")
    assert (Settings().retention_days, Settings().retention_mode) == (730, "anonymise")


def _cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATABASE_URL": db_url, **env}
    environ.pop("CALLCENTER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "callcenter", "retention", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


async def test_cli_dry_run_counts_and_changes_nothing(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await seed(pool, tmp_path)
    before = await dump(pool)
    days = str((datetime.now(UTC) - (NOW - AGE)).days - 30)
    done = await asyncio.to_thread(_cli, db_url, "--dry-run", "--json", "--days", days)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True and report["mode"] == "anonymise"
    assert report["rows"]["calls.anonymised"] > 0
    assert await dump(pool) == before
    text = await asyncio.to_thread(_cli, db_url, "--days", days)
    assert text.returncode == 0, text.stderr
    assert "calls.anonymised" in text.stdout
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM calls WHERE linkedid LIKE 'old-%' AND caller_number IS NOT NULL"
        )
        == 0
    )
    bad = await asyncio.to_thread(_cli, db_url, CALLCENTER_RETENTION_MODE="shred")
    assert bad.returncode == 2 and "retention_mode" in bad.stderr
