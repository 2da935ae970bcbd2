"""API tokens: stored hashed, roles checked, 401/403 answered with a clear JSON error."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.web.auth import (
    PRINCIPAL,
    create_token,
    hash_token,
    require,
    requires,
    revoke_token,
)
from callcenter.web.server import make_app


async def whoami(request: web.Request) -> web.Response:
    principal = await require(request)
    return web.json_response(principal.to_dict())


@requires("supervisor", "admin")
async def board(request: web.Request) -> web.Response:
    return web.json_response({"name": request[PRINCIPAL].name})


def feature(app: web.Application) -> None:
    app.router.add_get("/t/me", whoami)
    app.router.add_get("/t/board", board)
    app.router.add_post("/t/board", board)


@pytest.fixture
async def server(pool: Any, db_url: str) -> AsyncIterator[TestServer]:
    service = Service(Settings(database_url=db_url))
    service.pool = pool
    srv = TestServer(make_app(service, [feature]))
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


async def _get(srv: TestServer, path: str, token: str | None = None, method: str = "GET") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, srv.make_url(path), headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers


async def test_tokens_are_stored_hashed(pool: Any) -> None:
    token, principal = await create_token(pool, role="admin", name="ops")
    row = await pool.fetchrow("SELECT * FROM api_tokens WHERE id = $1", principal.token_id)
    assert row["token_hash"] == hash_token(token)
    assert token not in {str(v) for v in row.values()}


async def test_missing_and_unknown_tokens_get_401_json(server: TestServer) -> None:
    status, body, headers = await _get(server, "/t/me")
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert "Bearer" in body["error"]["message"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await _get(server, "/t/me", "cct_not-a-real-token")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_wrong_role_gets_403_naming_the_roles(server: TestServer, pool: Any) -> None:
    token, _ = await create_token(pool, role="agent", name="zeynep", agent="Zeynep Kaya")
    status, body, _ = await _get(server, "/t/me", token)
    assert status == 200
    assert body == {"name": "zeynep", "role": "agent", "agent": "Zeynep Kaya", "interface": None}
    status, body, _ = await _get(server, "/t/board", token)
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert body["error"]["details"]["allowed"] == ["supervisor", "admin"]


async def test_right_role_passes_and_revoked_token_fails(server: TestServer, pool: Any) -> None:
    token, principal = await create_token(pool, role="supervisor", name="ayse")
    status, body, _ = await _get(server, "/t/board", token)
    assert (status, body) == (200, {"name": "ayse"})
    assert await revoke_token(pool, principal.token_id)
    status, _, _ = await _get(server, "/t/board", token)
    assert status == 401


async def test_query_token_only_for_get(server: TestServer, pool: Any) -> None:
    token, _ = await create_token(pool, role="admin", name="ops")
    status, _, _ = await _get(server, f"/t/board?token={token}")
    assert status == 200
    status, _, _ = await _get(server, f"/t/board?token={token}", method="POST")
    assert status == 401


def test_cli_prints_the_token_once_and_lists_without_it(db_url: str) -> None:
    env = {"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "callcenter", "token"]
    done = subprocess.run(
        [*cmd, "create", "--role", "integration", "--name", "crm"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("cct_") and len(token) > 40
    listed = subprocess.run([*cmd, "list"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0
    assert "crm" in listed.stdout and "integration" in listed.stdout
    assert token not in listed.stdout
    bad = subprocess.run(
        [*cmd, "create", "--role", "agent", "--name", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and "--agent" in bad.stderr
