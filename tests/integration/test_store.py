"""The PostgreSQL store against a real server: migrations, idempotent writes, snapshots, outages."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from callcenter.config import Settings
from callcenter.model import AgentSession, Call, Offer, Pause, Visit
from callcenter.store import (
    CallWriter,
    call_from_json,
    call_to_json,
    db_ok,
    get_call,
    load_open_calls,
    migrate,
    recent_calls,
)
from callcenter.store.migrations import MIGRATION_LOCK_KEY, available_migrations
from tests.conftest import PrivatePostgres

T0 = 1_795_884_362.8224592  # a real trace's start: sub-microsecond digits on purpose
NUMBER = "05321234567"

# Flushes only when a test asks (or a batch fills), so tests decide what shares a batch.
QUIET = Settings(db_batch_size=500, db_flush_interval=3600.0, db_buffer_limit=1000)


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    """Waits until ``check()`` holds, failing after ``within`` seconds."""

    async def poll() -> None:
        # State changed by another task or the server has no event to wait on: poll it.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), within)


def answered_call(linkedid: str = "1795884362.1", server: str = "pbx1", t0: float = T0) -> Call:
    """A finished call: IVR, queue genel (1001 no answer, 1002 answers), transfer to a second
    queue answered by 2001, caller hangs up."""
    v1 = Visit(
        queue="genel",
        entered_at=t0 + 4.25,
        position=1,
        agent="1002",
        interface="PJSIP/1002",
        answered_at=t0 + 19.5,
        left_at=t0 + 19.5,
        ended_at=t0 + 61.0,
        outcome="answered",
        hangup_by="transfer",
        talk_s=41.5,
        hold_s=3.1234,
        asterisk_wait_s=15,
        asterisk_talk_s=41,
        transferred_to="sosyal-yardim",
        offers=[
            Offer("1001", "PJSIP/1001", t0 + 4.3, t0 + 19.3, "no_answer", 15.0),
            Offer("1002", "PJSIP/1002", t0 + 16.0, t0 + 19.5, "answered", 3.5),
        ],
    )
    v2 = Visit(
        queue="sosyal-yardim",
        entered_at=t0 + 61.0,
        position=1,
        agent="2001",
        interface="PJSIP/2001",
        answered_at=t0 + 64.0,
        left_at=t0 + 64.0,
        ended_at=t0 + 100.0,
        outcome="answered",
        hangup_by="caller",
        talk_s=36.0,
        offers=[Offer("2001", "PJSIP/2001", t0 + 61.5, t0 + 64.0, "answered", 2.5)],
    )
    return Call(
        server=server,
        linkedid=linkedid,
        uniqueid=linkedid,
        started_at=t0,
        caller_number=NUMBER,
        caller_name="Ayşe Yılmaz",
        dialled="4441000",
        caller_channel="PJSIP/trunk-00000001",
        ended_at=t0 + 100.0,
        hangup_cause=16,
        hangup_by="caller",
        ivr_path=["ivr-main", "ivr-sosyal"],
        ivr_digits="2",
        ivr_vars={"CC_LANG": "tr", "CC_REASON": "başvuru"},
        visits=[v1, v2],
    )


def open_call(linkedid: str = "1795884400.7", server: str = "pbx1") -> Call:
    """A call in progress: waiting in queue genel while agent 1001's phone rings."""
    return Call(
        server=server,
        linkedid=linkedid,
        uniqueid=linkedid,
        started_at=T0 + 40,
        caller_number="05551112233",
        caller_channel="PJSIP/trunk-00000009",
        ivr_path=["ivr-main"],
        ivr_digits="1",
        live_channels={linkedid, "1795884400.8"},
        visits=[
            Visit(
                queue="genel",
                entered_at=T0 + 43,
                position=2,
                offers=[Offer("1001", "PJSIP/1001", T0 + 50)],
                hold_started_at=None,
            )
        ],
        reconstructed=True,
    )


def finish(call: Call) -> Call:
    """The same call once the caller has given up (abandoned in queue)."""
    done = call_from_json(call_to_json(call))
    done.ended_at = T0 + 70
    done.live_channels = set()
    visit = done.visits[0]
    visit.left_at = visit.ended_at = T0 + 70
    visit.outcome = "abandoned"
    visit.hangup_by = "caller"
    visit.offers[0].result = "canceled"
    visit.offers[0].ended_at = T0 + 70
    return done


def writer_for(pool: Any, tmp_path: Path, settings: Settings = QUIET, **kw: Any) -> CallWriter:
    """A writer with a private spill directory and quick retries."""
    kw.setdefault("retry_initial", 0.02)
    kw.setdefault("retry_max", 0.2)
    kw.setdefault("write_timeout", 5.0)
    return CallWriter(pool, settings, spill_dir=tmp_path / "spill", **kw)


async def count(pool: Any, table: str) -> int:
    """Rows in a table."""
    return int(await pool.fetchval(f"SELECT count(*) FROM {table}"))


def utc(ts: float) -> datetime:
    """Epoch seconds as the datetime PostgreSQL stores (microseconds)."""
    return datetime.fromtimestamp(ts, UTC)


# ---- migrations ----------------------------------------------------------------------------


async def test_migrations_apply_once_and_create_schema(empty_db_url: str) -> None:
    versions = [m.version for m in available_migrations()]
    assert versions[0] == "0001" and versions == sorted(versions)

    assert await asyncio.wait_for(migrate(empty_db_url), 30) == versions
    assert await asyncio.wait_for(migrate(empty_db_url), 30) == []

    conn = await asyncpg.connect(empty_db_url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows][0] == ("0001", "initial")
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"calls", "queue_visits", "agent_sessions", "agent_pauses", "open_calls"} <= tables
        indexes = {
            r["indexdef"].split(" USING btree ")[1]
            for r in await conn.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname='public'")
        }
        for wanted in [
            "(ended_at)",
            "(queue, entered_at)",
            "(caller_number, started_at)",
            "(agent, entered_at)",
        ]:
            assert wanted in indexes
        types = {
            r["column_name"]: r["data_type"]
            for r in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'calls'"
            )
        }
        assert types["started_at"] == "timestamp with time zone"
        assert types["wait_s"] == "double precision"
        assert types["ivr_path"] == "ARRAY" and types["ivr_vars"] == "jsonb"
    finally:
        await conn.close()


async def test_concurrent_migrate_applies_each_version_once(empty_db_url: str) -> None:
    # Hold the migration lock so both migrations are certainly waiting at the same time.
    holder = await asyncpg.connect(empty_db_url)
    a = await asyncpg.connect(empty_db_url)
    b = await asyncpg.connect(empty_db_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        both = asyncio.gather(migrate(a), migrate(b))

        async def waiting() -> int:
            return int(
                await holder.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND NOT l.granted "
                    "AND d.datname = current_database()"
                )
            )

        async def until_both_wait() -> None:
            while await waiting() < 2:  # noqa: ASYNC110 (server state: nothing to await)
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until_both_wait(), 20)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        first, second = await asyncio.wait_for(both, 30)

        expected = [m.version for m in available_migrations()]
        assert sorted([first, second], key=len) == [[], expected]
        assert await holder.fetchval("SELECT count(*) FROM schema_migrations") == len(expected)
    finally:
        for conn in (holder, a, b):
            await conn.close()


async def test_migrate_accepts_a_pool(pool: asyncpg.Pool) -> None:
    assert await asyncio.wait_for(migrate(pool), 30) == []


# ---- serialisation (pure) ------------------------------------------------------------------


def test_call_json_round_trip_is_lossless() -> None:
    for call in (answered_call(), open_call(), Call("pbx2", "1.2", "1.2", started_at=0.5)):
        data = json.loads(json.dumps(call_to_json(call)))
        back = call_from_json(data)
        assert back == call
        assert isinstance(back.live_channels, set)
        assert all(isinstance(o, Offer) for v in back.visits for o in v.offers)
        assert back.to_dict() == call.to_dict()


def test_call_from_json_tolerates_model_changes() -> None:
    data = call_to_json(open_call())
    data["field_from_the_future"] = 1
    data["visits"][0]["another_one"] = "x"
    del data["reconstructed"]  # a field added after the snapshot was taken: default applies
    back = call_from_json(data)
    assert back.reconstructed is False and back.visits[0].queue == "genel"
    del data["linkedid"]
    with pytest.raises(ValueError):
        call_from_json(data)


# ---- idempotent writes ---------------------------------------------------------------------


async def test_same_call_twice_and_across_writers_gives_one_row_each(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    call = answered_call()
    first = writer_for(pool, tmp_path / "a")
    first.submit_call(call)
    await asyncio.wait_for(first.flush(), 20)
    first.submit_call(answered_call())  # an equal record again, in a second batch
    await asyncio.wait_for(first.close(), 20)
    second = writer_for(pool, tmp_path / "b")
    second.submit_call(answered_call())
    await asyncio.wait_for(second.close(), 20)

    assert first.flushed_calls == 2 and second.flushed_calls == 1
    assert await count(pool, "calls") == 1
    assert await count(pool, "queue_visits") == 2

    row = await pool.fetchrow("SELECT * FROM calls")
    assert row["server"] == "pbx1" and row["linkedid"] == "1795884362.1"
    assert row["queue"] == "genel" and row["agent"] == "1002" and row["outcome"] == "answered"
    assert row["started_at"] == utc(T0) and row["ended_at"] == utc(T0 + 100)
    assert row["entered_at"] == utc(T0 + 4.25) and row["answered_at"] == utc(T0 + 19.5)
    assert row["wait_s"] == pytest.approx(15.25) and row["hold_s"] == pytest.approx(3.123)
    assert row["talk_s"] == call.talk_s
    assert row["ivr_path"] == ["ivr-main", "ivr-sosyal"] and row["hangup_cause"] == 16
    visits = await pool.fetch("SELECT * FROM queue_visits ORDER BY seq")
    assert [(v["seq"], v["queue"], v["agent"]) for v in visits] == [
        (1, "genel", "1002"),
        (2, "sosyal-yardim", "2001"),
    ]
    assert visits[0]["ring_s"] == 3.5 and visits[0]["transferred_to"] == "sosyal-yardim"
    offers = json.loads(await pool.fetchval("SELECT offers::text FROM queue_visits WHERE seq=1"))
    assert [(o["agent"], o["result"], o["ring_s"]) for o in offers] == [
        ("1001", "no_answer", 15.0),
        ("1002", "answered", 3.5),
    ]

    # Read back in exactly the shape the tracker's own record has.
    assert await get_call(pool, "pbx1", "1795884362.1") == call.to_dict()
    assert await get_call(pool, "pbx2", "1795884362.1") is None


async def test_resubmitted_call_replaces_values_and_drops_stale_visits(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = writer_for(pool, tmp_path)
    writer.submit_call(answered_call())
    await asyncio.wait_for(writer.flush(), 20)
    fixed = answered_call()
    fixed.visits = fixed.visits[:1]
    fixed.visits[0].hangup_by = "agent"
    fixed.visits[0].transferred_to = None
    fixed.ended_at = T0 + 61
    writer.submit_call(fixed)
    await asyncio.wait_for(writer.close(), 20)

    assert await count(pool, "queue_visits") == 1
    assert await get_call(pool, "pbx1", fixed.linkedid) == fixed.to_dict()


async def test_later_submit_of_a_key_wins_within_a_batch(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = writer_for(pool, tmp_path)
    live = open_call()
    # No await in between: all of these land in one batch.
    writer.submit_open(live)
    writer.submit_call(finish(live))
    writer.submit_open(live)  # a stale snapshot after the final record must not win
    writer.submit_call(answered_call("9.1"))
    writer.submit_call(answered_call("9.1", t0=T0 + 1))
    assert writer.pending == 2
    await asyncio.wait_for(writer.close(), 20)

    assert (writer.flushed_calls, writer.flushed_opens) == (2, 0)
    assert await count(pool, "open_calls") == 0
    assert await pool.fetchval("SELECT started_at FROM calls WHERE linkedid = '9.1'") == utc(T0 + 1)
    stored = await get_call(pool, "pbx1", live.linkedid)
    assert stored is not None and stored["outcome"] == "abandoned"


async def test_batch_size_triggers_a_flush_without_waiting_for_the_timer(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = dataclasses.replace(QUIET, db_batch_size=3)
    writer = writer_for(pool, tmp_path, settings)
    for i in range(3):
        writer.submit_call(answered_call(f"5.{i}"))
    await eventually(lambda: writer.flushed_calls == 3)
    assert await count(pool, "calls") == 3
    await asyncio.wait_for(writer.close(), 20)


async def test_flush_interval_writes_a_lone_record(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = dataclasses.replace(QUIET, db_flush_interval=0.01)
    writer = writer_for(pool, tmp_path, settings)
    writer.submit_call(answered_call())
    await eventually(lambda: writer.flushed_calls == 1)
    await asyncio.wait_for(writer.close(), 20)


# ---- open calls ----------------------------------------------------------------------------


async def test_open_call_snapshot_round_trip_and_removal_when_finished(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = writer_for(pool, tmp_path)
    live = open_call()
    other = open_call("1795884401.1", server="pbx2")
    writer.submit_open(live)
    writer.submit_open(other)
    await asyncio.wait_for(writer.flush(), 20)

    assert await load_open_calls(pool, "pbx1") == [live]
    assert sorted(c.linkedid for c in await load_open_calls(pool)) == [
        live.linkedid,
        other.linkedid,
    ]
    resumed = (await load_open_calls(pool, "pbx1"))[0]
    assert resumed.live_channels == {live.linkedid, "1795884400.8"}
    assert resumed.visits[0].offers == live.visits[0].offers
    assert await load_open_calls(pool, "pbx9") == []

    # A later snapshot of the same call replaces the earlier one.
    live.visits[0].offers.append(Offer("1002", "PJSIP/1002", T0 + 55))
    writer.submit_open(live)
    await asyncio.wait_for(writer.flush(), 20)
    assert await count(pool, "open_calls") == 2
    assert len((await load_open_calls(pool, "pbx1"))[0].visits[0].offers) == 2

    # Finishing the call removes its snapshot in the same transaction.
    writer.submit_call(finish(live))
    await asyncio.wait_for(writer.flush(), 20)
    assert [c.linkedid for c in await load_open_calls(pool)] == [other.linkedid]
    assert await count(pool, "calls") == 1

    # A snapshot retried after the final record (a replay, a late batch) stays out.
    writer.submit_open(live)
    await asyncio.wait_for(writer.close(), 20)
    assert [c.linkedid for c in await load_open_calls(pool)] == [other.linkedid]


async def test_unreadable_snapshot_is_skipped(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO open_calls (server, linkedid, state) VALUES ('pbx1', 'bad', '{}')"
    )
    await pool.execute(
        "INSERT INTO open_calls (server, linkedid, state) VALUES ('pbx1', 'good', $1::text::jsonb)",
        json.dumps(call_to_json(open_call("good"))),
    )
    with capture_logs() as logs:
        calls = await load_open_calls(pool)
    assert [c.linkedid for c in calls] == ["good"]
    assert any(e["event"] == "open call snapshot unreadable" for e in logs)


# ---- pauses and sessions -------------------------------------------------------------------


async def test_pauses_and_sessions_upsert_and_keep_their_end(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = writer_for(pool, tmp_path)
    pause = Pause("PJSIP/1001", "1001", "genel", "lunch", T0)
    session = AgentSession("PJSIP/1001", "1001", "genel", T0 - 600, static=False)
    writer.submit_pause(pause)
    writer.submit_session(session)
    writer.submit_pause(Pause("PJSIP/1001", "1001", "genel", "lunch", T0), server="pbx2")
    await asyncio.wait_for(writer.flush(), 20)

    writer.submit_pause(dataclasses.replace(pause, ended_at=T0 + 1800.5))
    writer.submit_session(dataclasses.replace(session, ended_at=T0 + 3600))
    await asyncio.wait_for(writer.flush(), 20)
    # A replayed start (no end) must not reopen what has ended.
    writer.submit_pause(pause)
    writer.submit_session(session)
    await asyncio.wait_for(writer.close(), 20)

    rows = await pool.fetch("SELECT * FROM agent_pauses ORDER BY server")
    assert [(r["server"], r["reason"]) for r in rows] == [("pbx1", "lunch"), ("pbx2", "lunch")]
    assert rows[0]["ended_at"] == utc(T0 + 1800.5) and rows[0]["duration_s"] == 1800.5
    assert rows[1]["ended_at"] is None
    srow = await pool.fetchrow("SELECT * FROM agent_sessions")
    assert await count(pool, "agent_sessions") == 1
    assert srow["started_at"] == utc(T0 - 600) and srow["ended_at"] == utc(T0 + 3600)
    assert writer.flushed_pauses == 4 and writer.flushed_sessions == 3


# ---- read helpers --------------------------------------------------------------------------


async def test_recent_calls_newest_first_across_servers(pool: asyncpg.Pool, tmp_path: Path) -> None:
    writer = writer_for(pool, tmp_path)
    for i, server in enumerate(["pbx1", "pbx2", "pbx1", "pbx2", "pbx1", "pbx1", "pbx2"]):
        writer.submit_call(answered_call(f"7.{i}", server=server, t0=T0 + i * 1000))
    stranger = answered_call("8.0")
    stranger.caller_number = "05000000000"
    writer.submit_call(stranger)
    await asyncio.wait_for(writer.close(), 20)

    recent = await recent_calls(pool, NUMBER)
    assert [c["linkedid"] for c in recent] == ["7.6", "7.5", "7.4", "7.3", "7.2"]
    assert recent[0]["server"] == "pbx2" and len(recent[0]["visits"]) == 2
    assert recent[0] == answered_call("7.6", server="pbx2", t0=T0 + 6000).to_dict()
    assert [c["linkedid"] for c in await recent_calls(pool, NUMBER, limit=2)] == ["7.6", "7.5"]
    assert await recent_calls(pool, "09999999999") == []


async def test_db_ok(pool: asyncpg.Pool) -> None:
    assert await db_ok(pool) is True
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:9/none", min_size=0)
    try:
        assert await db_ok(dead, max_wait=5) is False
    finally:
        await asyncio.wait_for(dead.close(), 10)


# ---- failures ------------------------------------------------------------------------------


async def test_refused_record_is_set_aside_and_the_rest_is_written(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    writer = writer_for(pool, tmp_path)
    bad = answered_call("6.1")
    bad.caller_name = "nul\x00byte"  # PostgreSQL text cannot hold NUL
    writer.submit_call(answered_call("6.0"))
    writer.submit_call(bad)
    writer.submit_call(answered_call("6.2"))
    with capture_logs() as logs:
        await asyncio.wait_for(writer.close(), 20)

    assert sorted(r["linkedid"] for r in await pool.fetch("SELECT linkedid FROM calls")) == [
        "6.0",
        "6.2",
    ]
    assert writer.rejected == 1 and writer.pending == 0 and writer.flushed_calls == 2
    lines = writer.rejected_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    kept = json.loads(lines[0])
    assert kept["kind"] == "call" and call_from_json(kept["data"]) == bad
    assert any(e["event"] == "db record rejected" and e["id"] == "6.1" for e in logs)


async def test_missing_tables_are_retried_not_rejected(empty_db_url: str, tmp_path: Path) -> None:
    # Writing before migrations ran is a set-up race, not bad data: keep the batch and retry.
    pool = await asyncpg.create_pool(empty_db_url, min_size=1, max_size=2)
    try:
        writer = writer_for(pool, tmp_path)
        writer.submit_call(answered_call())
        writer.request_flush()
        with capture_logs():
            await eventually(lambda: writer.failed_flushes >= 1)
        assert writer.degraded and writer.pending == 1 and writer.rejected == 0
        await asyncio.wait_for(migrate(pool), 30)
        await asyncio.wait_for(writer.flush(), 20)
        assert not writer.degraded and await count(pool, "calls") == 1
        await asyncio.wait_for(writer.close(), 20)
    finally:
        await asyncio.wait_for(pool.close(), 20)


async def test_writer_rides_out_a_database_outage(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    assert await asyncio.wait_for(migrate(private_pg.url), 30)
    pool = await asyncpg.create_pool(private_pg.url, min_size=1, max_size=2)
    try:
        writer = writer_for(pool, tmp_path)
        writer.submit_call(answered_call("1.0"))
        await asyncio.wait_for(writer.flush(), 20)

        await asyncio.to_thread(private_pg.stop)
        live = open_call("1.1")
        writer.submit_open(live)
        writer.submit_pause(Pause("PJSIP/1001", "1001", "genel", "break", T0))
        for i in range(2, 6):
            writer.submit_call(answered_call(f"1.{i}"))
        with capture_logs() as logs:
            writer.request_flush()
            await eventually(lambda: writer.failed_flushes >= 2)
        assert writer.degraded and writer.pending == 6
        assert any(e["event"] == "db flush failed, will retry" for e in logs)
        # The event path keeps going while the database is away.
        writer.submit_call(finish(live))
        writer.submit_pause(Pause("PJSIP/1001", "1001", "genel", "break", T0, T0 + 300))

        await asyncio.to_thread(private_pg.start)
        with capture_logs() as logs:
            await asyncio.wait_for(writer.flush(), 30)
        assert any(e["event"] == "db writes recovered" for e in logs)
        assert not writer.degraded and writer.pending == 0
        await asyncio.wait_for(writer.close(), 20)

        assert await count(pool, "calls") == 6
        assert await count(pool, "queue_visits") == 5 * 2 + 1
        assert await count(pool, "open_calls") == 0
        assert await pool.fetchval("SELECT duration_s FROM agent_pauses") == 300.0
        assert writer.flushed_calls == 6
    finally:
        await asyncio.wait_for(pool.close(), 20)


async def test_full_buffer_spills_to_disk_and_is_replayed_in_order(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    await asyncio.wait_for(migrate(private_pg.url), 30)
    pool = await asyncpg.create_pool(private_pg.url, min_size=1, max_size=2)
    try:
        settings = dataclasses.replace(QUIET, db_buffer_limit=2, db_batch_size=2)
        writer = writer_for(pool, tmp_path, settings)
        await asyncio.to_thread(private_pg.stop)
        writer.submit_call(answered_call("2.0"))
        writer.submit_call(answered_call("2.1"))
        # The buffer is full: from here on records go to disk, in submission order.
        live = open_call("2.2")
        pause = Pause("PJSIP/1001", "1001", "genel", "break", T0)
        writer.submit_open(live)
        writer.submit_pause(pause)
        writer.submit_call(answered_call("2.3"))
        writer.submit_call(finish(live))
        writer.submit_pause(dataclasses.replace(pause, ended_at=T0 + 60))
        assert writer.spilled == 5 and writer.degraded
        assert len(writer.spill_path.read_bytes().splitlines()) == 5
        assert writer.pending == 7
        with capture_logs():
            await eventually(lambda: writer.failed_flushes >= 1)

        await asyncio.to_thread(private_pg.start)
        await asyncio.wait_for(writer.flush(), 30)
        assert not writer.spill_path.exists()
        assert not writer.degraded and writer.pending == 0
        # Spill mode ends once drained: the next record goes through memory again.
        writer.submit_call(answered_call("2.4"))
        assert writer.spilled == 5
        await asyncio.wait_for(writer.close(), 20)

        linkedids = [r["linkedid"] for r in await pool.fetch("SELECT linkedid FROM calls")]
        assert sorted(linkedids) == ["2.0", "2.1", "2.2", "2.3", "2.4"]
        assert await count(pool, "open_calls") == 0
        assert await pool.fetchval("SELECT duration_s FROM agent_pauses") == 60.0
    finally:
        await asyncio.wait_for(pool.close(), 20)


async def test_close_while_database_is_down_leaves_a_spill_the_next_writer_replays(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:9/none", min_size=0)
    try:
        settings = dataclasses.replace(QUIET, db_buffer_limit=2, db_flush_interval=0.01)
        before = writer_for(dead, tmp_path, settings)
        pause = Pause("PJSIP/1001", "1001", "genel", "break", T0)
        before.submit_call(answered_call("3.0"))
        before.submit_pause(pause)
        before.submit_call(answered_call("3.1"))  # spilled
        before.submit_pause(dataclasses.replace(pause, ended_at=T0 + 5))  # spilled
        with capture_logs():
            before.start()
            await eventually(lambda: before.failed_flushes >= 1)
            await asyncio.wait_for(before.close(grace=0.2), 20)
        lines = before.spill_path.read_bytes().splitlines()
        assert len(lines) == 4
        assert [json.loads(line)["kind"] for line in lines] == ["call", "pause", "call", "pause"]
        with pytest.raises(RuntimeError):
            before.submit_call(answered_call("3.2"))
    finally:
        await asyncio.wait_for(dead.close(), 10)

    after = writer_for(pool, tmp_path, settings)
    assert after.degraded and after.pending == 4
    after.start()
    await asyncio.wait_for(after.flush(), 20)
    assert not after.spill_path.exists() and after.pending == 0
    await asyncio.wait_for(after.close(), 20)
    assert await count(pool, "calls") == 2
    assert await pool.fetchval("SELECT duration_s FROM agent_pauses") == 5.0


async def test_torn_spill_line_is_skipped(pool: asyncpg.Pool, tmp_path: Path) -> None:
    spill = tmp_path / "spill" / "calls.spill.jsonl"
    spill.parent.mkdir(parents=True)
    good = {"kind": "call", "server": "pbx1", "data": call_to_json(answered_call("4.0"))}
    spill.write_text(json.dumps(good) + "\n" + '{"kind": "call", "ser', encoding="utf-8")
    writer = writer_for(pool, tmp_path)
    with capture_logs() as logs:
        await asyncio.wait_for(writer.flush(), 20)
    await asyncio.wait_for(writer.close(), 20)
    assert await count(pool, "calls") == 1 and not spill.exists()
    assert any(e["event"] == "db spill line unreadable" for e in logs)
