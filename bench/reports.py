"""Report benchmark: the year's report and a day's KPIs over millions of calls, vs a full scan.

Loads a year of synthetic calls into a throwaway database (bench/bulkload.py), then times
``callcenter.reports.build_report`` (the rollups) for the year and for one day, beside the
same figures computed straight from the call tables (the baseline, measured in the same run),
and checks that both agree. Not part of the test run.

    .venv/bin/python bench/reports.py --calls 10000000
    .venv/bin/python bench/reports.py --reuse postgresql://postgres@127.0.0.1:5432/cc_bulk_x
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from bulkload import create_database, drop_database, load

from callcenter.kpis import AgentTime, Tally, Thresholds, agent_times
from callcenter.reports import Report, ReportQuery, _read_agent_time, build_report
from callcenter.store.migrations import migrate

TZ = "Europe/Istanbul"
YEAR = ReportQuery(date(2024, 1, 1), date(2024, 12, 31), tz=TZ)
DAY = ReportQuery(date(2024, 3, 5), date(2024, 3, 5), by="hour", tz=TZ)  # a Tuesday
CHECKED = (
    "calls requests avg_talk_s avg_wait_s offered answered abandoned short_abandoned timeouts "
    "service_level asa_s max_wait_s"
).split()

_CALLS = """
SELECT count(*) AS calls, count(wait_s) AS calls_queued, coalesce(sum(wait_s), 0) AS calls_wait_s,
       count(*) FILTER (WHERE outcome = 'answered') AS calls_answered,
       coalesce(sum(talk_s) FILTER (WHERE outcome = 'answered'), 0) AS calls_talk_s
FROM calls WHERE started_at >= $1 AND started_at < $2
"""
_VISITS = """
SELECT count(*) AS offered, count(*) FILTER (WHERE outcome = 'answered') AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s >= 5) AS abandoned,
       count(*) FILTER (WHERE outcome = 'abandoned' AND wait_s < 5) AS short_abandoned,
       count(*) FILTER (WHERE outcome = 'timeout') AS timeouts,
       count(*) FILTER (WHERE outcome = 'answered' AND wait_s <= 20) AS answered_in_sl,
       count(*) FILTER (WHERE outcome = 'answered' AND wait_s IS NOT NULL) AS answer_wait_n,
       coalesce(sum(wait_s) FILTER (WHERE outcome = 'answered'), 0) AS answer_wait_s,
       max(wait_s) AS wait_max
FROM queue_visits
WHERE coalesce(entered_at, answered_at, left_at, ended_at) >= $1
  AND coalesce(entered_at, answered_at, left_at, ended_at) < $2
"""
_REQUESTS = """
SELECT count(*) FROM ticket_calls t JOIN calls c ON c.server = t.server AND c.linkedid = t.linkedid
WHERE c.started_at >= $1 AND c.started_at < $2
"""


async def baseline(pool: asyncpg.Pool, query: ReportQuery) -> Tally:
    """The period's figures straight from the call tables (full scans)."""
    lo, hi = query.bounds()
    calls, visits, requests = await asyncio.gather(
        pool.fetchrow(_CALLS, lo, hi),
        pool.fetchrow(_VISITS, lo, hi),
        pool.fetchval(_REQUESTS, lo, hi),
    )
    t = Tally(requests=requests)
    for row in (calls, visits):
        for k, v in row.items():
            setattr(t, k, v)
    return t


async def timed(what: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, Any]:
    """The median wall time of ``runs`` runs (after one warm-up) and the last result."""
    result = await what()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = await what()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


async def agent_time_in_python(pool: asyncpg.Pool, query: ReportQuery) -> dict[str, AgentTime]:
    """Every session and pause of the period read into Python and merged by kpis.agent_times."""
    lo, hi = query.bounds()
    end = min(hi, datetime.now(UTC))
    where = "started_at < $2 AND coalesce(ended_at, 'infinity') > $1"
    epochs = "extract(epoch FROM started_at)::float8, extract(epoch FROM ended_at)::float8"
    sessions = await pool.fetch(
        f"SELECT agent, {epochs} FROM agent_sessions WHERE {where}", lo, end
    )
    pauses = await pool.fetch(
        f"SELECT agent, reason, {epochs} FROM agent_pauses WHERE {where}", lo, end
    )
    return agent_times(
        [tuple(r) for r in sessions], [tuple(r) for r in pauses], lo.timestamp(), end.timestamp()
    )


async def agent_time_in_sql(pool: asyncpg.Pool, query: ReportQuery) -> dict[str, AgentTime]:
    """The report's own agent-time step alone (PostgreSQL merges)."""
    lo, hi = query.bounds()
    report = Report(query, Thresholds())
    async with pool.acquire() as conn:
        await _read_agent_time(conn, report, lo, hi, None)
    return report.agents


def same_agent_time(ours: dict[str, AgentTime], theirs: dict[str, AgentTime]) -> list[str]:
    """Agents whose logged-in or pause seconds differ by more than a millisecond."""
    out = []
    for agent in sorted(set(ours) | set(theirs)):
        a, b = ours.get(agent, AgentTime()), theirs.get(agent, AgentTime())
        if abs(a.logged_in_s - b.logged_in_s) > 1e-3 or abs(a.paused_s - b.paused_s) > 1e-3:
            mine = f"{a.logged_in_s:.3f}/{a.paused_s:.3f}"
            out.append(f"{agent}: {mine} != {b.logged_in_s:.3f}/{b.paused_s:.3f}")
    return out


def agree(ours: Tally, theirs: Tally) -> list[str]:
    """The checked figures on which the rollups and the full scan differ."""
    a, b = ours.kpis(), theirs.kpis()
    return [f"{k}: {a[k]} != {b[k]}" for k in CHECKED if a[k] != b[k]]


async def bench(url: str, runs: int) -> int:
    """Times and checks the reports on a loaded database; returns the exit status."""
    th = Thresholds()
    pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
    try:
        n = await pool.fetchval("SELECT count(*) FROM calls")
        print(f"database: {n:,} calls; median of {runs} runs after a warm-up")
        failures = []
        print(f"{'figure':<34}{'rollups':>10}{'full scan':>12}{'ratio':>9}")
        for label, query in (("year report (2024)", YEAR), ("day KPIs by hour (2024-03-05)", DAY)):
            fast, report = await timed(lambda q=query: build_report(pool, q, th), runs)
            slow, base = await timed(lambda q=query: baseline(pool, q), max(1, runs // 2))
            print(f"{label:<34}{fast * 1000:>8.1f}ms{slow * 1000:>10.1f}ms{slow / fast:>8.0f}x")
            failures += [f"{label}: {d}" for d in agree(report.total, base)]
        for by in ("day", "queue", "agent"):
            q = ReportQuery(YEAR.start, YEAR.end, by=by, tz=TZ)
            fast, report = await timed(lambda q=q: build_report(pool, q, th), runs)
            print(f"{'year report by ' + by:<34}{fast * 1000:>8.1f}ms  ({len(report.rows)} rows)")
        # Baseline for the agents' logged-in and pause time: every session and pause read
        # into Python and merged there (how the report did it before), same run.
        q = ReportQuery(YEAR.start, YEAR.end, by="agent", tz=TZ)
        slow, merged = await timed(lambda: agent_time_in_python(pool, q), max(1, runs // 2))
        fast, _ = await timed(lambda: agent_time_in_sql(pool, q), runs)
        print(
            f"{'  agent time (sessions, pauses)':<34}{fast * 1000:>8.1f}ms{slow * 1000:>10.1f}ms"
            f"{slow / fast:>8.1f}x  (PostgreSQL multiranges vs Python merge)"
        )
        failures += [f"agent time: {d}" for d in same_agent_time(report.agents, merged)]
        k = report.total.kpis()
        print(
            f"year: {k['calls']:,} calls, {k['requests']:,} requests, avg talk {k['avg_talk_s']} s,"
            f" avg wait {k['avg_wait_s']} s, SL {k['service_level']}, ASA {k['asa_s']} s"
        )
        for line in failures:
            print("DISAGREE " + line)
        print("rollups and full scan agree" if not failures else "rollups and full scan DISAGREE")
        return 1 if failures else 0
    finally:
        await pool.close()


async def main_async(args: argparse.Namespace) -> int:
    """Loads a throwaway database (or reuses one) and runs the benchmark."""
    if args.reuse:
        return await bench(args.reuse, args.runs)
    server = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    name = f"cc_bulk_{secrets.token_hex(4)}"
    url = await create_database(server, name)
    try:
        await migrate(url)
        began = time.perf_counter()
        await load(url, args.calls)
        print(f"bulk load: {args.calls:,} calls in {time.perf_counter() - began:.1f} s")
        return await bench(url, args.runs)
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            await drop_database(server, name)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", metavar="URL", help="an already loaded database")
    parser.add_argument("--keep", action="store_true", help="keep the loaded database")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
