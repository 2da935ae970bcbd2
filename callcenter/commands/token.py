"""``callcenter token create|list|revoke``: manage API tokens (the token is printed once)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import structlog

from callcenter.config import Settings
from callcenter.web.auth import (
    ROLES,
    create_login_link,
    create_token,
    list_tokens,
    revoke_token,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``create``, ``list`` and ``revoke`` sub-commands."""
    sub = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who or what uses the token")
    create.add_argument("--agent", help="agent tokens: the queue member name (e.g. 'Zeynep Kaya')")
    create.add_argument("--interface", help="agent tokens: the member interface (PJSIP/1001)")
    create.add_argument(
        "--link",
        action="store_true",
        help="also print a one-time login link for the agent page (opens a browser session)",
    )
    listing = sub.add_parser("list", help="list tokens (never the secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int)
    link = sub.add_parser("link", help="print a one-time login link for an existing token")
    link.add_argument("id", type=int)


def login_url(settings: Settings, code: str) -> str:
    """The address of a one-time login link (``public_url``, else the HTTP listener)."""
    base = settings.public_url.rstrip("/") or f"http://{settings.http_host}:{settings.http_port}"
    return f"{base}/agent/login?code={code}"


async def _with_pool(action: Any, args: argparse.Namespace) -> int:
    """Opens a small pool, migrates the database and runs ``action(pool, args)``."""
    from callcenter.config import load_settings
    from callcenter.store.db import create_pool
    from callcenter.store.migrations import migrate

    # stdout carries only the token, so a script can capture it; logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    settings = load_settings(getattr(args, "config", None))
    args.settings = settings
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
    if args.link:
        return await _print_link(pool, args.settings, principal.token_id)
    return 0


async def _print_link(pool: Any, settings: Settings, token_id: int) -> int:
    code = await create_login_link(pool, token_id, settings.login_link_minutes)
    print(login_url(settings, code))
    print(
        f"one-time login link for token {token_id}: valid {settings.login_link_minutes:g} "
        "minutes, once",
        file=sys.stderr,
    )
    return 0


async def _link(pool: Any, args: argparse.Namespace) -> int:
    active = await pool.fetchval(
        "SELECT true FROM api_tokens WHERE id = $1 AND revoked_at IS NULL", args.id
    )
    if not active:
        print(f"token: no active token with id {args.id}", file=sys.stderr)
        return 1
    return await _print_link(pool, args.settings, args.id)


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
    action = {"create": _create, "list": _list, "revoke": _revoke, "link": _link}[
        args.token_command
    ]
    return asyncio.run(_with_pool(action, args))
