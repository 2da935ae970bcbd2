"""``callcenter token create|list|revoke``: manage API tokens (the token is printed once)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import structlog

from callcenter.web.auth import ROLES, create_token, list_tokens, revoke_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``create``, ``list`` and ``revoke`` sub-commands."""
    sub = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who or what uses the token")
    create.add_argument("--agent", help="agent tokens: the queue member name (e.g. 'Zeynep Kaya')")
    create.add_argument("--interface", help="agent tokens: the member interface (PJSIP/1001)")
    listing = sub.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)


async def _with_pool(action: Any, args: argparse.Namespace) -> int:
    """Opens a small pool, migrates the database and runs ``action(pool, args)``."""
    from callcenter.config import load_settings
    from callcenter.store.db import create_pool
    from callcenter.store.migrations import migrate

    # stdout carries only the token, so a script can capture it; logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    settings = load_settings(getattr(args, "config", None))
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        await migrate(pool)
        return int(await action(pool, args))
    finally:
        await pool.close()


async def _create(pool: Any, args: argparse.Namespace) -> int:
    try:
        token, principal = await create_token(
            pool, role=args.role, name=args.name, agent=args.agent, interface=args.interface
        )
    except ValueError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"created token {principal.token_id} ({principal.role}, {principal.name}); "
        "it is shown only this once",
        file=sys.stderr,
    )
    return 0


async def _list(pool: Any, args: argparse.Namespace) -> int:
    for row in await list_tokens(pool):
        if args.json:
            print(json.dumps(row, default=str, ensure_ascii=False))
            continue
        state = "revoked" if row["revoked_at"] else "active"
        who = row["agent"] or row["interface"] or ""
        used = row["last_used_at"].isoformat(timespec="seconds") if row["last_used_at"] else "-"
        print(
            f"{row['id']:>4}  {row['prefix']}…  {row['role']:<11} {state:<7} "
            f"{row['name']}{'  [' + who + ']' if who else ''}  last used {used}"
        )
    return 0


async def _revoke(pool: Any, args: argparse.Namespace) -> int:
    if await revoke_token(pool, args.id):
        print(f"revoked token {args.id}", file=sys.stderr)
        return 0
    print(f"token: no active token with id {args.id}", file=sys.stderr)
    return 1


def main(args: argparse.Namespace) -> int:
    """Runs the chosen token action against the configured database."""
    action = {"create": _create, "list": _list, "revoke": _revoke}[args.token_command]
    return asyncio.run(_with_pool(action, args))
