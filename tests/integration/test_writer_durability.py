"""call.ended is written with its call row, a poison row is set aside, the first failed flush
goes to disk, and the files holding callers' data are private (0600 in a 0700 directory)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
from structlog.testing import capture_logs

from callcenter.config import Settings
from callcenter.metrics.exporter import Exporter
from callcenter.pipeline import Pipeline
from callcenter.store import CallWriter
from callcenter.store.migrations import migrate
from callcenter.webhooks import call_ended_msg_id
from tests.conftest import PrivatePostgres
from tests.integration.test_store import QUIET, answered_call, eventually

REGION = "TR"


def writer(pool: Any, tmp_path: Path, **kw: Any) -> CallWriter:
    """A writer that queues call.ended with each finished call, spilling under tmp_path."""
    return CallWriter(
        pool, QUIET, spill_dir=tmp_path / "spool", call_ended_region=REGION, retry_max=0.2, **kw
    )


async def events(pool: Any, *linkedids: str) -> dict[str, dict[str, Any]]:
    """The call.ended outbox rows of these calls, by linkedid."""
    ids = {call_ended_msg_id("pbx1", lid): lid for lid in linkedids}
    rows = await pool.fetch(
        "SELECT msg_id, payload::text AS p FROM webhook_outbox WHERE msg_id = ANY($1::text[])",
        list(ids),
    )
    return {ids[r["msg_id"]]: json.loads(r["p"]) for r in rows}


def mode(path: Path) -> int:
    """The permission bits of a file or directory."""
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_call_ended_is_written_in_the_transaction_of_the_call_row(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = writer(pool, tmp_path)
    w.submit_call(answered_call("21.0"))
    w.submit_call(answered_call("21.1"))
    await asyncio.wait_for(w.flush(), 20)
    found = await events(pool, "21.0", "21.1")
    assert set(found) == {"21.0", "21.1"}
    assert found["21.0"]["type"] == "call.ended"
    assert found["21.0"]["data"]["linkedid"] == "21.0"
    # The same call written again (a replay, a restart) queues no second event.
    w.submit_call(answered_call("21.0"))
    await asyncio.wait_for(w.close(), 20)
    n = await pool.fetchval(
        "SELECT count(*) FROM webhook_outbox WHERE msg_id = $1", call_ended_msg_id("pbx1", "21.0")
    )
    assert n == 1


async def test_a_poison_call_ended_is_set_aside_and_the_rest_delivered(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = writer(pool, tmp_path)
    poison = answered_call("22.1")
    poison.caller_name = "Ay\udcc5e"  # a lone surrogate: no UTF-8 payload can carry it
    w.submit_call(answered_call("22.0"))
    w.submit_call(poison)
    w.submit_call(answered_call("22.2"))
    with capture_logs() as logs:
        await asyncio.wait_for(w.close(), 20)
    # The rest went through, in the same flush; the poison row did not block them.
    assert set(await events(pool, "22.0", "22.1", "22.2")) == {"22.0", "22.2"}
    assert w.rejected_events + w.rejected == 1 and w.pending == 0
    rejected = [json.loads(line) for line in w.rejected_path.read_text().splitlines()]
    assert len(rejected) == 1 and rejected[0]["data"]["linkedid"] == "22.1"
    assert "error" in rejected[0] and rejected[0]["error"]  # the reason
    assert any(e.get("id") == "22.1" for e in logs if "rejected" in e["event"])


async def test_a_call_row_survives_a_call_ended_that_cannot_be_encoded(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = writer(pool, tmp_path)
    odd = answered_call("23.1")
    odd.visits[0].talk_s = float("nan")  # a number the JSON payload cannot hold
    w.submit_call(answered_call("23.0"))
    w.submit_call(odd)
    w.submit_call(answered_call("23.2"))
    await asyncio.wait_for(w.close(), 20)
    rows = await pool.fetch("SELECT linkedid FROM calls WHERE linkedid LIKE '23.%'")
    assert sorted(r["linkedid"] for r in rows) == ["23.0", "23.1", "23.2"]
    assert set(await events(pool, "23.0", "23.1", "23.2")) == {"23.0", "23.2"}
    assert w.rejected_events == 1 and w.rejected == 0
    (line,) = w.rejected_path.read_text().splitlines()
    kept = json.loads(line)
    assert kept["kind"] == "call.ended" and "error" in kept


async def test_first_failed_flush_moves_memory_to_a_private_spill_file(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    await asyncio.wait_for(migrate(private_pg.url), 30)
    pool = await asyncpg.create_pool(private_pg.url, min_size=1, max_size=2)
    try:
        w = writer(pool, tmp_path)
        await asyncio.to_thread(private_pg.stop)
        for i in range(3):  # far below db_buffer_limit: only the failure spills
            w.submit_call(answered_call(f"24.{i}"))
        with capture_logs():
            w.request_flush()
            await eventually(lambda: w.failed_flushes >= 1)
        # On disk after the first failure: a SIGKILL now loses nothing.
        assert w.spill_path.exists()
        assert len(w.spill_path.read_bytes().splitlines()) == 3
        assert mode(w.spill_path) == 0o600 and mode(w.spill_path.parent) == 0o700
        w.submit_call(answered_call("24.3"))  # while down: straight to the file, after them
        assert len(w.spill_path.read_bytes().splitlines()) == 4

        # A new writer (the next process) replays the file once the database is back.
        await asyncio.wait_for(w.close(grace=0.5), 20)
        await asyncio.to_thread(private_pg.start)
        again = writer(pool, tmp_path)
        await asyncio.wait_for(again.flush(), 30)
        await asyncio.wait_for(again.close(), 20)
        found = await events(pool, *(f"24.{i}" for i in range(4)))
        assert len(found) == 4
        assert not again.spill_path.exists()
    finally:
        await asyncio.wait_for(pool.close(), 20)


async def test_reject_file_is_private_and_an_old_wide_one_is_narrowed(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o755)
    os.chmod(spool, 0o755)
    old = spool / "calls.rejected.jsonl"
    old.write_text("")
    os.chmod(old, 0o644)
    w = writer(pool, tmp_path)
    bad = answered_call("25.1")
    bad.caller_name = "nul\x00byte"
    w.submit_call(bad)
    await asyncio.wait_for(w.close(), 20)
    assert w.rejected == 1
    assert mode(w.rejected_path) == 0o600
    assert mode(spool) == 0o700


async def test_a_fresh_spool_directory_is_0700(pool: asyncpg.Pool, tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, that made it 0755 before
    try:
        w = writer(pool, tmp_path)
        bad = answered_call("26.1")
        bad.caller_name = "nul\x00byte"
        w.submit_call(bad)
        await asyncio.wait_for(w.close(), 20)
    finally:
        os.umask(old)
    assert mode(tmp_path / "spool") == 0o700
    assert mode(w.rejected_path) == 0o600


async def test_rejections_are_counted_in_the_metrics(pool: asyncpg.Pool, tmp_path: Path) -> None:
    w = writer(pool, tmp_path)
    odd = answered_call("27.1")
    odd.visits[0].talk_s = float("nan")
    bad = answered_call("27.2")
    bad.caller_name = "nul\x00byte"
    for call in (answered_call("27.0"), odd, bad):
        w.submit_call(call)
    await asyncio.wait_for(w.close(), 20)
    service = SimpleNamespace(
        clients={}, last_event_at={}, queue=asyncio.Queue(), subscriber_errors=0, writer=w
    )
    text = Exporter(Settings(), Pipeline(), service=service).render().decode()
    assert 'callcenter_db_records_rejected_total{kind="call.ended"} 1.0' in text
    assert 'callcenter_db_records_rejected_total{kind="record"} 1.0' in text
