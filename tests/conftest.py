"""Shared fixtures: a throwaway, migrated PostgreSQL database per test session and clean pools.

``db_url`` names a database created for this pytest session (``cc_test_<random>``) on the server
in ``DATABASE_URL`` (default postgresql://postgres@127.0.0.1:5432/test), migrated once and
dropped at the end, so concurrent test runs on one server never meet. ``pool`` is an asyncpg
pool to it with every table emptied, for one test (function loop scope). ``empty_db_url`` is a
fresh database with no tables; ``private_pg`` is a PostgreSQL server of the test's own that it
may stop and start.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from callcenter.devdb import PrivatePostgres, postgres_bindir
from callcenter.store.migrations import migrate
from tests.ci_skips import pytest_make_collect_report, pytest_runtest_makereport

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]  # CI=true: skip = fail

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"

T = TypeVar("T")


def server_url() -> str:
    """The PostgreSQL server the tests use (``DATABASE_URL``, else the local default)."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _create_database(url: str, name: str) -> None:
    """Creates an empty database ``name`` on the server of ``url``."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(url: str, name: str) -> None:
    """Drops database ``name``, disconnecting whoever is still in it."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion in a thread of its own, whatever loop the caller is in."""
    # A fresh thread keeps asyncio.run from touching the loop pytest-asyncio has set up.
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coro).result()


def _new_database(migrated: bool) -> tuple[str, str]:
    """Creates a uniquely named database (optionally migrated) and returns (name, url)."""
    base = server_url()
    name = f"cc_test_{secrets.token_hex(6)}"
    try:
        run_async(_create_database(base, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL at {urlsplit(base).netloc} is not usable ({exc!r}); "
            "run the tests through `make pytest` (scripts/with-postgres.sh)",
            pytrace=False,
        )
    url = with_database(base, name)
    if migrated:
        run_async(migrate(url))
    return name, url


# Sync fixtures running their own short event loop: they work under any test loop scope.


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    """URL of a migrated database private to this test session."""
    name, url = _new_database(migrated=True)
    yield url
    run_async(_drop_database(server_url(), name))


@pytest.fixture
def empty_db_url() -> Iterator[str]:
    """URL of a fresh database without any tables, dropped after the test."""
    name, url = _new_database(migrated=False)
    yield url
    run_async(_drop_database(server_url(), name))


async def truncate_all(pool: asyncpg.Pool) -> None:
    """Empties every table but ``schema_migrations`` (including tables other teams add)."""
    tables = await pool.fetchval(
        """
        SELECT string_agg(format('%I.%I', schemaname, tablename), ', ')
        FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
        """
    )
    if tables:
        await pool.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool to the session database, every table empty at the start of the test."""
    p = await asyncio.wait_for(asyncpg.create_pool(db_url, min_size=1, max_size=4), 30)
    await truncate_all(p)
    try:
        yield p
    finally:
        await asyncio.wait_for(p.close(), 30)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL server for this test; skipped if the binaries are missing."""
    bindir = postgres_bindir()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PrivatePostgres(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
