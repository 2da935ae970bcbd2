"""``callcenter migrate``: applies the versioned SQL migrations (also done at start-up)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from callcenter.config import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL)")


def main(args: argparse.Namespace) -> int:
    """Applies pending migrations and prints the versions applied."""
    from callcenter.store.migrations import migrate

    settings = load_settings(args.config)  # a ConfigError exits 2 in __main__
    url = args.database_url or settings.database_url
    try:
        applied = asyncio.run(migrate(url))
    except Exception as exc:  # unreachable server, bad SQL: one clear line
        print(f"migrate: cannot migrate {url.split('@')[-1]}: {exc}", file=sys.stderr)
        return 1
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0
