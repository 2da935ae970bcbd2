"""The report over real PostgreSQL: rollups kept by triggers give what callcenter.kpis gives."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from callcenter.kpis import Tally, Thresholds, agent_times, tally_calls
from callcenter.model import Call, PauseEnded, SessionEnded
from callcenter.replay import open_trace, replay_lines, trace_t0
from callcenter.reports import ReportQuery, build_report
from callcenter.store import Batch, write_batch

TRACES = Path(__file__).resolve().parents[1] / "traces"
DAY = date(2026, 11, 28)  # every recorded scenario ran that day (Istanbul time)
TH = Thresholds(wrapup_s={"*": 3.0, "sosyal-yardim": 5.0})


def _recorded_on_day(path: Path) -> bool:
    """Whether a trace was recorded on DAY (Istanbul time), like the original scenarios."""
    t0 = trace_t0(path)
    when = datetime.fromtimestamp(t0 or 0.0, ZoneInfo("Europe/Istanbul"))
    return when.date() == DAY


@cache
def recorded() -> tuple[tuple[Call, ...], tuple[Any, ...], tuple[Any, ...]]:
    """Every scenario's calls (server = scenario name), pauses and sessions."""
    calls, pauses, sessions = [], [], []
    for d in sorted(p for p in TRACES.iterdir() if (p / "ami.jsonl.gz").exists()):
        path = d / "ami.jsonl.gz"
        if not _recorded_on_day(path):
            continue  # e.g. queue_exits, recorded later: the day's figures stay as they were
        with open_trace(path) as fh:
            for e in replay_lines(fh, d.name, trace_t0(path) or 0.0):
                if isinstance(e, PauseEnded):
                    pauses.append((d.name, e.pause))
                elif isinstance(e, SessionEnded):
                    sessions.append((d.name, e.session))
                elif type(e).__name__ == "CallEnded":
                    calls.append(e.call)  # type: ignore[attr-defined]
    return tuple(calls), tuple(pauses), tuple(sessions)


async def load(pool: asyncpg.Pool, calls: list[Call] | None = None) -> list[Call]:
    all_calls, pauses, sessions = recorded()
    calls = list(all_calls) if calls is None else calls
    async with pool.acquire() as conn:
        await asyncio.wait_for(
            write_batch(conn, Batch(calls=calls, pauses=list(pauses), sessions=list(sessions))), 60
        )
    return calls


async def attach_ticket(pool: asyncpg.Pool, call: Call, category: str, ref: str) -> int:
    """Opens a ticket for a call (as the tickets module does: ticket, then the attachment)."""
    async with pool.acquire() as conn, conn.transaction():
        ticket_id = await conn.fetchval(
            "INSERT INTO tickets (reference, category, channel, agent) VALUES ($1, $2, 'phone', $3)"
            " RETURNING id",
            ref,
            category,
            call.agent,
        )
        await conn.execute(
            "INSERT INTO ticket_calls (ticket_id, server, linkedid, channel) "
            "VALUES ($1, $2, $3, 'phone')",
            ticket_id,
            call.server,
            call.linkedid,
        )
    return int(ticket_id)


async def report(pool: asyncpg.Pool, by: str | None = None, th: Thresholds = TH, **kw: Any) -> Any:
    query = ReportQuery(DAY, DAY, by=by, tz="Europe/Istanbul", **kw)
    return await asyncio.wait_for(build_report(pool, query, th), 60)


def assert_same(ours: Tally, theirs: Tally, where: str) -> None:
    for f in dataclasses.fields(Tally):
        a, b = getattr(ours, f.name), getattr(theirs, f.name)
        if isinstance(a, float) or isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), f"{where}: {f.name}"
        else:
            assert a == b, f"{where}: {f.name}"


@pytest.mark.parametrize("by", [None, "day", "hour", "month", "queue", "agent"])
async def test_report_equals_the_pure_kpis(pool: asyncpg.Pool, by: str | None) -> None:
    calls = await load(pool)
    got = await report(pool, by)
    expected = tally_calls(calls, TH, by)
    assert_same(got.total, tally_calls(calls, TH)[""], "total")
    if by is None:
        assert got.rows == {}
        return
    keys = {k for k, t in expected.items() if t != Tally()}
    assert {k for k, t in got.rows.items() if t != Tally()} == keys
    for key in keys:
        assert_same(got.rows[key], expected[key], f"{by}={key}")


async def test_day_report_figures(pool: asyncpg.Pool) -> None:
    await load(pool)
    k = (await report(pool)).total.kpis()
    assert k["calls"] == 1522  # 13 scenarios, 1500 in the burst
    assert k["offered"] == 1407 and k["answered"] == 1355
    assert k["answered_calls"] == 1353  # the transfer scenario: 2 calls, 4 answered visits


async def test_a_queue_filter_keeps_that_queue_only(pool: asyncpg.Pool) -> None:
    calls = await load(pool)
    got = await report(pool, queue="sosyal-yardim")
    expected = tally_calls(calls, TH, "queue")["sosyal-yardim"]
    assert_same(got.total, expected, "sosyal-yardim")


async def test_requests_are_counted_per_call_whenever_the_call_lands(pool: asyncpg.Pool) -> None:
    calls = [c for c in recorded()[0] if c.server == "concurrent"]
    answered = [c for c in calls if c.outcome == "answered"]
    early, late = answered[0], answered[1]
    # A ticket for a call not written yet: counted once the call row lands.
    await attach_ticket(pool, early, "masa-sandalye", "2026-000001")
    await load(pool, [c for c in calls if c is not early])
    await attach_ticket(pool, late, "sosyal-yardim", "2026-000002")
    await attach_ticket(pool, late, "masa-sandalye", "2026-000003")
    assert (await report(pool)).total.requests == 2
    await load(pool, [early])
    got = await report(pool, "agent")
    assert got.total.requests == 3
    assert got.total.kpis()["request_rate"] == round(3 / 5, 4)
    assert got.categories == [("masa-sandalye", 2), ("sosyal-yardim", 1)]
    assert got.rows[late.agent or ""].requests == 2 + (early.agent == late.agent)
    # A category changed afterwards moves the request; a detached call loses it.
    async with pool.acquire() as conn:
        await conn.execute("UPDATE tickets SET category = 'bilgi' WHERE reference = '2026-000003'")
        await conn.execute(
            "DELETE FROM ticket_calls WHERE ticket_id = "
            "(SELECT id FROM tickets WHERE reference = '2026-000001')"
        )
    got = await report(pool)
    assert got.total.requests == 2
    assert sorted(got.categories) == [("bilgi", 1), ("sosyal-yardim", 1)]


async def test_resubmitted_and_deleted_calls_are_taken_back(pool: asyncpg.Pool) -> None:
    calls = await load(pool)
    longest = max(
        (c for c in calls if c.server == "concurrent"), key=lambda c: c.visits[0].wait_s or 0
    )
    changed = dataclasses.replace(longest, visits=[dataclasses.replace(longest.visits[0])])
    changed.visits[0].outcome = "timeout"
    changed.visits[0].agent = None
    await load(pool, [changed])
    rest = [changed if c is longest else c for c in calls]
    assert_same((await report(pool)).total, tally_calls(rest, TH)[""], "resubmitted")
    async with pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM calls WHERE server = $1 AND linkedid = $2",
            changed.server,
            changed.linkedid,
        )
    rest = [c for c in rest if c is not changed]
    got = await report(pool, "queue")
    assert_same(got.total, tally_calls(rest, TH)[""], "deleted")
    for queue, t in tally_calls(rest, TH, "queue").items():
        assert got.rows[queue].wait_max == t.wait_max, queue


async def test_new_thresholds_rebuild_the_rollups(pool: asyncpg.Pool) -> None:
    calls = await load(pool)
    strict = Thresholds(service_level_s={"*": 5.0, "genel": 3.0}, short_abandon_s=10.0)
    got = await report(pool, "queue", th=strict)
    for queue, t in tally_calls(calls, strict, "queue").items():
        assert_same(got.rows[queue], t, queue)
    assert got.total.kpis()["service_level"] != (await report(pool)).total.kpis()["service_level"]


async def test_rebuild_gives_the_rollups_the_triggers_kept(pool: asyncpg.Pool) -> None:
    await load(pool)
    await attach_ticket(pool, recorded()[0][3], "bilgi", "2026-000009")
    await report(pool)  # folds the request
    tables = (
        "report_hourly",
        "report_agent_hourly",
        "report_request_hourly",
        "report_request_agent_hourly",
    )

    async def snapshot() -> dict[str, list[Any]]:
        out = {}
        for table in tables:
            rows = await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")
            # Rows a removal left at zero are not rebuilt: compare the non-empty ones.
            out[table] = [
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                for r in rows
                if any(v for k, v in r.items() if isinstance(v, int | float) and k != "bucket")
            ]
        return out

    kept = await snapshot()
    await pool.execute("SELECT report_rebuild()")
    assert await snapshot() == kept


async def test_agent_time_comes_from_sessions_and_pauses(pool: asyncpg.Pool) -> None:
    await load(pool)
    got = await report(pool, "agent")
    _, pauses, sessions = recorded()
    lo, hi = ReportQuery(DAY, DAY).bounds()
    expected = agent_times(
        ((s.agent, s.started_at, s.ended_at) for _, s in sessions),
        ((p.agent, p.reason, p.started_at, p.ended_at) for _, p in pauses),
        lo.timestamp(),
        hi.timestamp(),
    )
    assert set(got.agents) == set(expected)
    for agent, t in expected.items():
        assert got.agents[agent].logged_in_s == pytest.approx(t.logged_in_s, abs=1e-3)
        assert got.agents[agent].pauses == pytest.approx(t.pauses, abs=1e-3)
    paused = [a for a, t in got.agents.items() if t.paused_s > 0]
    assert paused  # pause_unpause_login paused agents with reasons
    assert any("Mola" in got.agents[a].pauses for a in paused)


async def test_an_empty_period_has_no_figures(pool: asyncpg.Pool) -> None:
    await load(pool)
    got = await asyncio.wait_for(
        build_report(pool, ReportQuery(date(2020, 1, 1), date(2020, 12, 31), by="day"), TH), 60
    )
    k = got.total.kpis()
    assert (k["calls"], k["requests"], k["service_level"], k["avg_wait_s"]) == (0, 0, None, None)
    assert got.rows == {}
