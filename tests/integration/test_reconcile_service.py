"""Reconciliation through the real service path: PostgreSQL tables Asterisk writes, one row and
one ``call.ended`` per call, counters that only go up.

The service (no AMI socket; messages go in through its sink, as the adapter's do) reads a
recorded trace with an AMI gap cut out of it (tests/gaps.py); Asterisk's queue_log and CEL of
the same calls are in the ``queue_log`` and ``cel`` tables, as res_config_pgsql and cel_pgsql
write them. Afterwards every queue visit in the call log agrees with queue_log, every call has
one row, and the webhook outbox holds one ``call.ended`` per call, with the corrected call.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from callcenter import events
from callcenter.app import Service
from callcenter.config import Settings
from callcenter.metrics.definitions import Metrics
from callcenter.metrics.updater import MetricsUpdater
from callcenter.model import Call, Visit
from callcenter.reconciler import read_cel_file, read_queue_log_file
from tests.gaps import TRACES, cut, messages, replay
from tests.gaps import score as score_calls
from tests.queuelog import read_queue_log

SCENARIO = "concurrent"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


async def _load_records(pool: asyncpg.Pool) -> None:
    """Writes the trace's queue_log and CEL into the tables, as Asterisk's back-ends do."""
    entries = read_queue_log_file(TRACES / SCENARIO / "queue_log")
    await pool.executemany(
        "INSERT INTO queue_log (time, callid, queuename, agent, event, data1, data2, data3,"
        " data4, data5) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (_utc(e.ts), e.callid, e.queue, e.agent, e.event, *[e.arg(i) for i in range(5)])
            for e in entries
        ],
    )
    cel = read_cel_file(TRACES / SCENARIO / "cel_custom_Master.csv")
    await pool.executemany(
        "INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame,"
        " appname, appdata, uniqueid, linkedid, extra)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        [
            (
                e.event,
                _utc(e.ts),
                e.cid_name,
                e.cid_num,
                e.exten,
                e.context,
                e.channel,
                e.application,
                e.app_data,
                e.uniqueid,
                e.linkedid,
                json.dumps(dict(e.extra)) if e.extra else "",
            )
            for e in cel
        ],
    )


async def _run(settings: Settings, stream: list[tuple[float, str]]) -> tuple[Service, Metrics]:
    """Starts a service, feeds the stream, lets the reconciler settle, stops; returns it."""
    service = Service(settings)
    await asyncio.wait_for(service.start(ami=False), 30)
    metrics = Metrics(settings)
    service.subscribe(MetricsUpdater(metrics, settings))
    for ts, text in stream:
        service.ami_sink("pbx1", events.parse_message(text), ts)
    await asyncio.wait_for(service.drain(), 30)
    deadline = time.monotonic() + 20
    reconciler = service.reconciler
    while reconciler.pending or reconciler._gaps:
        assert time.monotonic() < deadline, "the reconciler never settled"
        await asyncio.sleep(0.1)
    await asyncio.wait_for(service.stop(), 30)
    return service, metrics


def _stored_calls(rows: list[asyncpg.Record], visits: list[asyncpg.Record]) -> list[Call]:
    calls = {}
    for r in rows:
        calls[r["linkedid"]] = Call(
            server="pbx1", linkedid=r["linkedid"], uniqueid=r["uniqueid"], started_at=0.0
        )
    for v in visits:
        visit = Visit(
            queue=v["queue"],
            entered_at=v["entered_at"].timestamp() if v["entered_at"] else None,
            agent=v["agent"],
            outcome=v["outcome"],
            talk_s=v["talk_s"],
        )
        if v["wait_s"] is not None and visit.entered_at is not None:
            visit.left_at = visit.entered_at + v["wait_s"]
        calls[v["linkedid"]].visits.append(visit)
    return list(calls.values())


async def test_a_gap_is_reconciled_once_through_the_service(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    await _load_records(pool)
    settings = Settings(
        database_url=db_url, spool_dir=str(tmp_path), fastagi_port=0, reconcile="pgsql"
    )
    stream = messages(SCENARIO)
    login = next(ts for ts, text in stream if text.startswith("Event: CallcenterResyncEnd"))
    # 12 s without AMI from just after login: 4 calls begin and end inside the gap, 4 cross it.
    gapped = cut(stream, login + 0.5, login + 12.5)
    expected = read_queue_log(TRACES / SCENARIO / "queue_log")
    assert score_calls(replay(gapped), expected).exact < len(expected), "the gap must hurt"

    service, metrics = await _run(settings, gapped)
    stats = service.reconciler.stats
    assert stats.found == 4 and stats.corrected + stats.confirmed == 4, stats
    assert stats.corrected >= 2 and stats.unmatched == 0 and stats.errors == 0, stats

    rows = await pool.fetch("SELECT * FROM calls ORDER BY linkedid")
    visits = await pool.fetch("SELECT * FROM queue_visits ORDER BY linkedid, seq")
    assert [r["linkedid"] for r in rows] == sorted({c.linkedid for c in replay(stream)})
    after = score_calls(_stored_calls(rows, visits), expected)
    assert after.problems == [] and after.exact == len(expected)
    assert any(r["reconciled"] for r in rows)
    assert all(r["reconciled"] for r in rows if r["reconstructed"])

    # One call.ended per call, carrying the corrected record.
    ended = await pool.fetch(
        "SELECT payload::text AS p FROM webhook_outbox WHERE event_type = 'call.ended'"
    )
    payloads = [json.loads(r["p"])["data"] for r in ended]
    assert sorted(p["linkedid"] for p in payloads) == [r["linkedid"] for r in rows]
    by_id = {r["linkedid"]: r for r in rows}
    for data in payloads:
        assert data["outcome"] == by_id[data["linkedid"]]["outcome"]
        assert data["reconciled"] == by_id[data["linkedid"]]["reconciled"]

    # The counters counted every visit once, with Asterisk's outcome.
    exited = {
        (s.labels["queue"], s.labels["outcome"]): s.value
        for family in metrics.registry.collect()
        if family.name == "callcenter_queue_calls_exited"
        for s in family.samples
        if s.name.endswith("_total") and s.value
    }
    wanted: dict[tuple[str, str], float] = {}
    for v in expected:
        outcome = v.outcome or ""
        if outcome == "abandoned" and v.wait is not None and v.wait < 5:
            outcome = "short_abandoned"
        wanted[(v.queue, outcome)] = wanted.get((v.queue, outcome), 0) + 1
    assert exited == wanted

    # Running it all again (a restart, a second reconciliation) writes nothing new.
    before = await pool.fetch("SELECT linkedid, updated_at FROM calls ORDER BY linkedid")
    await _run(settings, gapped)
    assert await pool.fetchval("SELECT count(*) FROM calls") == len(rows)
    assert await pool.fetchval("SELECT count(*) FROM queue_visits") == len(expected)
    count = "SELECT count(*) FROM webhook_outbox WHERE event_type = 'call.ended'"
    assert await pool.fetchval(count) == len(rows)
    again = await pool.fetch("SELECT * FROM calls ORDER BY linkedid")
    keep = ("outcome", "agent", "wait_s", "talk_s", "reconciled")
    assert [tuple(r[k] for k in keep) for r in again] == [tuple(r[k] for k in keep) for r in rows]
    assert len(before) == len(again)
