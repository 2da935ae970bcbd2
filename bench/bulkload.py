"""Bulk loader: millions of synthetic calls into a THROWAWAY database, quickly, with COPY.

Two worker processes render days (bench/synth.py) as COPY text; the loader streams them
into the tables at once, with secondary indexes, triggers and foreign-key checks off and the
big tables unlogged (reads are as fast either way), then builds the indexes, COPYs the report
rollups the workers summed, and analyzes. ``--rebuild`` recomputes the rollups with
``report_rebuild()`` instead (slower; bench/reports.py checks either against a full scan).

    .venv/bin/python bench/bulkload.py --calls 10000000            # creates cc_bulk_<random>
    .venv/bin/python bench/bulkload.py --calls 1000000 --keep      # prints the URL to reuse
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from synth import AGENT, HOURLY, MAX, TABLES, Sums, merge, render_day

from callcenter.store.migrations import migrate

YEAR = 2024
N = "\\N"


def plan(total: int, year: int = YEAR) -> list[tuple[date, int, int]]:
    """(day, calls, first sequence number) for each day of the year; weekends are quieter."""
    first = date(year, 1, 1)
    days = [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]
    weights = [0.35 if d.weekday() >= 5 else 1.0 for d in days]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[-1] += total - sum(counts)
    out, seq = [], 0
    for d, n in zip(days, counts, strict=True):
        out.append((d, n, seq))  # at most one ticket per call: ticket ids follow call numbers
        seq += n
    return out


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def create_database(server_url: str, name: str) -> str:
    """Creates an empty database on the server and returns its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drops a database (disconnecting its sessions)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        """
        SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY($1::text[]) AND NOT i.indisprimary AND NOT i.indisunique
        """,
        list(TABLES),
    )
    return [(r["name"], r["def"]) for r in rows]


async def _chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """COPY data in megabyte pieces."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _hour(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:00:00+00")


def _cell(v: Any) -> str:
    return N if v is None else str(v)


def rollup_text(sums: Sums) -> bytes:
    """Summed rollup rows as COPY text: the key (hour first), then the values."""
    lines = []
    for key, values in sums.items():
        cells = [_hour(key[0]), *key[1:], *(_cell(v) for v in values)]
        lines.append("\t".join(cells) + "\n")
    return "".join(lines).encode()


def _say(msg: str, began: float) -> None:
    print(f"bulkload: {time.perf_counter() - began:6.1f} s  {msg}", file=sys.stderr, flush=True)


async def _prepare(admin: asyncpg.Connection) -> list[tuple[str, str]]:
    """Unlogged big tables, secondary indexes dropped; returns the index definitions."""
    for table in ("ticket_calls", "queue_visits", "calls", "agent_sessions", "agent_pauses"):
        await admin.execute(f"ALTER TABLE {table} SET UNLOGGED")
    indexes = await _secondary_indexes(admin)
    for name, _ in indexes:
        await admin.execute(f'DROP INDEX "{name}"')
    return indexes


async def load(
    url: str, calls: int, agents: int = 150, workers: int = 2, rebuild: bool = False
) -> dict[str, int]:
    """Loads ``calls`` synthetic calls into the (migrated, empty) database at ``url``."""
    began = time.perf_counter()
    conns = [await asyncpg.connect(url) for _ in TABLES]
    try:
        admin = conns[0]
        indexes = await _prepare(admin)
        for conn in conns:
            # No triggers or foreign-key checks while loading: the rollups come separately.
            await conn.execute("SET session_replication_role = replica")
            await conn.execute("SET synchronous_commit = off")
        days = plan(calls)
        counts = dict.fromkeys(TABLES, 0)
        hourly: Sums = {}
        agent: Sums = {}
        requests: Sums = {}
        agent_requests: Sums = {}
        loop = asyncio.get_running_loop()
        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.imap(render_day, [(*d, agents) for d in days], chunksize=1)
            for i in range(len(days)):
                texts, h, a, r, ar = await loop.run_in_executor(None, next, results)
                await asyncio.gather(
                    *(
                        conn.copy_to_table(t, source=_chunks(texts[t]), columns=TABLES[t])
                        for conn, t in zip(conns, TABLES, strict=True)
                        if texts[t]
                    )
                )
                merge(hourly, h, MAX)
                merge(agent, a)
                merge(requests, r)
                merge(agent_requests, ar)
                for t in TABLES:
                    counts[t] += texts[t].count(b"\n")
                if i % 61 == 60:
                    _say(f"{days[i][0]}: {counts['calls']:,} calls", began)
        _say(f"rows loaded: {counts}", began)
        for conn in conns:
            await conn.execute("SET maintenance_work_mem = '512MB'")
        for j in range(0, len(indexes), 2):  # two at a time: two cores
            pair = zip(conns, indexes[j : j + 2], strict=False)
            await asyncio.gather(*(conn.execute(d) for conn, (_, d) in pair))
        _say(f"{len(indexes)} secondary indexes built", began)
        await admin.execute("SELECT setval('tickets_id_seq', coalesce(max(id), 1)) FROM tickets")
        await admin.execute("SET session_replication_role = origin")
        if rebuild:
            await admin.execute("SELECT report_rebuild()")
            _say("report rollups rebuilt by report_rebuild()", began)
        else:
            for table, sums, columns in (
                ("report_hourly", hourly, ["bucket", "server", "queue", *HOURLY]),
                ("report_agent_hourly", agent, ["bucket", "server", "queue", "agent", *AGENT]),
                ("report_request_hourly", requests, ["bucket", "server", "queue", "category", "n"]),
                (
                    "report_request_agent_hourly",
                    agent_requests,
                    ["bucket", "server", "queue", "agent", "n"],
                ),
            ):
                await admin.copy_to_table(table, source=_chunks(rollup_text(sums)), columns=columns)
            _say("report rollups copied", began)
        await admin.execute("ANALYZE")
        _say("analyzed", began)
        return counts
    finally:
        for conn in conns:
            await conn.close()


async def main_async(args: argparse.Namespace) -> int:
    """Creates the database, migrates it, loads it; drops it unless ``--keep``."""
    server = (
        args.database_url
        or os.environ.get("DATABASE_URL")
        or ("postgresql://postgres@127.0.0.1:5432/test")
    )
    name = args.name or f"cc_bulk_{secrets.token_hex(4)}"
    url = await create_database(server, name)
    try:
        await migrate(url)
        began = time.perf_counter()
        counts = await load(url, args.calls, args.agents, rebuild=args.rebuild)
        print(f"loaded {counts['calls']:,} calls in {time.perf_counter() - began:.1f} s: {url}")
    except BaseException:
        await drop_database(server, name)
        raise
    if not args.keep:
        await drop_database(server, name)
    return 0


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--agents", type=int, default=150)
    parser.add_argument("--name", help="database name to create (default cc_bulk_<random>)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--rebuild", action="store_true", help="rollups by report_rebuild()")
    parser.add_argument("--database-url", help="server to create it on (default DATABASE_URL)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
