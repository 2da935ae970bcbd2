"""The asyncpg connection pool and the health check."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any) -> Any:
    """Opens an asyncpg pool to ``dsn`` with the service's defaults."""
    kwargs.setdefault("command_timeout", 60.0)
    kwargs.setdefault("server_settings", {"application_name": "callcenter"})
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, **kwargs)


async def db_ok(pool: Any, max_wait: float = 2.0) -> bool:
    """Tells whether the database answers a trivial query within ``max_wait`` seconds."""
    try:
        return bool(await asyncio.wait_for(pool.fetchval("SELECT 1"), max_wait))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("database health check failed", error=repr(exc))
        return False
