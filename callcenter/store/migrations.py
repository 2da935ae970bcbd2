"""Versioned SQL migrations (``migrations/NNNN_name.sql``), applied in order exactly once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Any fixed 64-bit key works; every instance must use the same one so that two services starting
# at once serialise on it instead of both creating the same tables.
MIGRATION_LOCK_KEY = 0x63616C6C63656E74  # "callcent"

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version ("0001"), name and SQL text."""

    version: str
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Lists the migrations shipped with the package, in version order."""
    found: dict[str, Migration] = {}
    for entry in resources.files("callcenter.store").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if not match:
            continue
        version, name = match.groups()
        if version in found:
            raise RuntimeError(f"two migrations share version {version}: {name}")
        found[version] = Migration(version, name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(target: str | Any) -> list[str]:
    """Applies pending migrations to a DSN, pool or connection and returns the versions applied."""
    if isinstance(target, str):
        conn = await asyncpg.connect(target)
        try:
            return await _migrate(conn)
        finally:
            await conn.close()
    if isinstance(target, asyncpg.Pool):
        async with target.acquire() as conn:
            return await _migrate(conn)
    return await _migrate(target)


async def _migrate(conn: Any) -> list[str]:
    """Runs all pending migrations in one transaction under an advisory lock."""
    applied: list[str] = []
    async with conn.transaction():
        # The lock is released at commit; a second instance waits here, then sees our rows
        # (READ COMMITTED takes a fresh snapshot per statement) and has nothing left to do.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in available_migrations():
            if migration.version in done:
                continue
            # No arguments: asyncpg uses the simple protocol, which accepts several statements.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
    if applied:
        log.info("migrations applied", versions=applied)
    return applied
