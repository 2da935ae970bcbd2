"""Fault injection, long form: more faults, more simulated time; prints docs/reliability.md's table.

The same scenarios as tests/faults (which run them short in ``make test``), each on real
processes and sockets against the simulated Asterisk, with the call log in PostgreSQL
compared call by call with what the simulator did:

1. the AMI link cut (TCP reset) or stalled (black hole) many times in a busy simulated hour,
   and, separately, a few outages as long as the reconnect backoff's cap (30 s);
2. PostgreSQL stopped (immediate mode) and restarted under load, long enough to spill;
3. the service killed with SIGKILL under load and restarted, webhooks flowing;
4. the ticketing backend down for hours (delivery worker on a simulated clock).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/faults.py
    (or: bash scripts/with-postgres.sh .venv/bin/python bench/faults.py --quick)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the scenarios live with the tests

from callcenter.devdb import PrivatePostgres, postgres_bindir  # noqa: E402
from callcenter.logs import configure_logging  # noqa: E402
from callcenter.store.migrations import migrate  # noqa: E402
from tests.faults.harness import TABLE_HEAD, FaultReport  # noqa: E402
from tests.faults.scenarios import ami_cuts, backend_down, pg_restart, sigkill  # noqa: E402


async def fresh_database(server: str) -> tuple[str, str]:
    """Creates and migrates a database of its own on ``server``; returns (name, url)."""
    name = f"cc_faults_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(server, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = server.rsplit("/", 1)[0] + "/" + name
    await migrate(url)
    return name, url


async def drop_database(server: str, name: str) -> None:
    """Drops a database made by ``fresh_database``."""
    conn = await asyncpg.connect(server, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def in_fresh_database(
    server: str, run: Callable[[str], Awaitable[FaultReport]]
) -> FaultReport:
    """Runs one scenario in a database of its own, dropped afterwards."""
    name, url = await fresh_database(server)
    try:
        return await run(url)
    finally:
        await drop_database(server, name)


async def with_private_postgres(
    run: Callable[[PrivatePostgres], Awaitable[FaultReport]],
) -> FaultReport:
    """Runs one scenario against a PostgreSQL server of its own that it may stop and start."""
    bindir = postgres_bindir()
    if bindir is None:
        raise SystemExit("bench/faults.py: PostgreSQL server binaries (initdb, pg_ctl) needed")
    pg = PrivatePostgres(bindir)
    try:
        await asyncio.to_thread(pg.init)
        await asyncio.to_thread(pg.start)
        return await run(pg)
    finally:
        await asyncio.to_thread(pg.destroy)


def spool() -> Path:
    """A fresh spool directory (spill files, the child service's log)."""
    return Path(tempfile.mkdtemp(prefix="cc-faults-"))


async def main_async(args: argparse.Namespace) -> int:
    """Runs every scenario, prints the table and the evidence; 1 if anything was lost."""
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    scale = 0.25 if args.quick else 1.0
    runs: list[tuple[str, Callable[[], Awaitable[FaultReport]]]] = [
        (
            "ami cuts",
            lambda: in_fresh_database(
                server,
                lambda url: ami_cuts(
                    url,
                    spool(),
                    seed=args.seed,
                    minutes=60 * scale,
                    volume=6.0,
                    agents=40,
                    cuts=max(4, int(40 * scale)),
                    gap_s=2.0,
                ),
            ),
        ),
        (
            "ami long outages",
            lambda: in_fresh_database(
                server,
                lambda url: ami_cuts(
                    url,
                    spool(),
                    seed=args.seed + 1,
                    minutes=max(10, 30 * scale),
                    volume=6.0,
                    agents=40,
                    cuts=max(2, int(6 * scale)),
                    gap_s=30.0,
                    stall_every=0,
                ),
            ),
        ),
        (
            "postgres restarts",
            lambda: with_private_postgres(
                lambda pg: pg_restart(
                    pg,
                    spool(),
                    seed=args.seed + 2,
                    restarts=max(1, int(5 * scale)),
                    down_s=10.0,
                    up_s=5.0,
                    calls_per_second=10.0,
                    agents=100,
                    buffer_limit=100,
                )
            ),
        ),
        (
            "sigkill",
            lambda: in_fresh_database(
                server,
                lambda url: sigkill(
                    url,
                    spool(),
                    seed=args.seed + 3,
                    kills=max(1, int(5 * scale)),
                    run_s=8.0,
                    down_s=3.0,
                    calls_per_second=10.0,
                    agents=100,
                ),
            ),
        ),
        (
            "backend down",
            lambda: in_fresh_database(
                server, lambda url: backend_down(url, hours=12.0, seed=args.seed + 4)
            ),
        ),
    ]
    reports: list[FaultReport] = []
    for label, run in runs:
        if args.only and label not in args.only:
            continue
        began = time.monotonic()
        print(f"running: {label} …", file=sys.stderr, flush=True)
        report = await run()
        print(f"  done in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        reports.append(report)
    print(TABLE_HEAD)
    for report in reports:
        print(report.row())
    print()
    failed = False
    for report in reports:
        problems = report.problems()
        failed = failed or bool(problems)
        v = report.verdict
        detail = (
            f"touched {v.touched}, exact {v.exact}, reconstructed {v.reconstructed}, "
            f"never visible {len(v.invisible)}"
            if v is not None
            else ""
        )
        notes = {k: v for k, v in report.notes.items() if k != "log_tail"}
        print(f"- {report.fault}: {detail}; {notes}")
        if problems:
            print(f"  PROBLEMS: {problems}")
    return 1 if failed else 0


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the faults and time")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument(
        "--only",
        action="append",
        choices=["ami cuts", "ami long outages", "postgres restarts", "sigkill", "backend down"],
        help="run only this scenario (repeatable)",
    )
    args = parser.parse_args()
    configure_logging("console", "error", True)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
