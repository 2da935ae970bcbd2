"""``callcenter retention [--dry-run]``: applies the KVKK retention now (the service: daily)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import structlog

from callcenter.config import ConfigError, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would change, change nothing"
    )
    parser.add_argument("--days", type=int, help="override retention_days for this run")
    parser.add_argument(
        "--mode", choices=("anonymise", "delete"), help="override retention_mode for this run"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def main(args: argparse.Namespace) -> int:
    """Runs one retention pass and prints what it changed (or would change)."""
    from callcenter.retention import check, run_retention
    from callcenter.store.db import create_pool

    try:
        settings = load_settings(args.config)
        days = settings.retention_days if args.days is None else args.days
        mode = args.mode or settings.retention_mode
        check(days, mode)
    except (ConfigError, ValueError) as exc:
        print(f"retention: {exc}", file=sys.stderr)
        return 2
    # stdout carries the report only; log lines go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    async def go() -> dict[str, object]:
        pool = await create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            report = await run_retention(
                pool, days=days, mode=mode, dry_run=args.dry_run, spool_dir=settings.spool_dir
            )
        finally:
            await pool.close()
        return report.to_dict()

    try:
        report = asyncio.run(go())
    except Exception as exc:  # unreachable server, missing tables: one clear line
        print(f"retention: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    verb = "would change" if report["dry_run"] else "changed"
    print(f"retention ({report['mode']}, older than {report['cutoff']}): {verb}")
    if report["skipped"]:
        print(f"  nothing: {report['skipped']}")
    rows = report["rows"]
    assert isinstance(rows, dict)
    for name, count in rows.items():
        print(f"  {name:<28} {count:>10}")
    return 0
