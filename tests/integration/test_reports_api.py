"""The report's shapes: the HTTP API (supervisor role, JSON and CSV) and the CLI command."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from callcenter.__main__ import main as cli
from callcenter.app import Service
from callcenter.config import Settings
from callcenter.replay import replay_file
from callcenter.store import Batch, write_batch
from callcenter.web import reports
from callcenter.web.auth import create_token
from callcenter.web.server import make_app
from tests.conftest import run_async, truncate_all

TRACES = Path(__file__).resolve().parents[1] / "traces"
DAY = "2026-11-28"
TOP_KEYS = {"calls", "requests", "avg_talk_s", "avg_wait_s", "service_level", "asa_s", "rows"}


async def load_traces(conn: Any) -> int:
    """Writes the calls of a few recorded scenarios; returns how many."""
    calls = []
    for scenario in ("concurrent", "transfer", "queue_timeout", "ivr_self_service"):
        calls += replay_file(TRACES / scenario / "ami.jsonl.gz", server=scenario)
    await asyncio.wait_for(write_batch(conn, Batch(calls=calls)), 60)
    return len(calls)


@pytest.fixture
async def served(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> AsyncIterator[tuple[TestServer, dict[str, str]]]:
    """The report feature on a socket, with the traces loaded and a token per role."""
    async with pool.acquire() as conn:
        await load_traces(conn)
    service = Service(Settings(database_url=db_url, spool_dir=str(tmp_path), fastagi_port=0))
    await asyncio.wait_for(service.start(ami=False), 60)
    server = TestServer(make_app(service, [reports.setup]))
    try:
        await server.start_server()
        tokens = {}
        for role in ("supervisor", "admin", "agent"):
            tokens[role], _ = await create_token(
                service.pool,
                role=role,
                name=f"test {role}",
                agent="Ayşe" if role == "agent" else None,
            )
        yield server, tokens
    finally:
        await server.close()
        await asyncio.wait_for(service.stop(), 60)


async def get(server: TestServer, path: str, token: str | None = None) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url(path), headers=headers) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_the_api_needs_a_supervisor(served: tuple[TestServer, dict[str, str]]) -> None:
    server, tokens = served
    path = f"/api/reports?from={DAY}"
    assert (await get(server, path))[0] == 401
    assert (await get(server, path, tokens["agent"]))[0] == 403
    assert (await get(server, path, tokens["supervisor"]))[0] == 200
    assert (await get(server, path, tokens["admin"]))[0] == 200


async def test_json_is_one_object_with_the_period_and_rows(
    served: tuple[TestServer, dict[str, str]],
) -> None:
    server, tokens = served
    status, ctype, body = await get(
        server, f"/api/reports?from={DAY}&to={DAY}&by=queue", tokens["supervisor"]
    )
    assert status == 200 and ctype.startswith("application/json")
    report = json.loads(body)
    assert TOP_KEYS <= set(report)
    # concurrent 8 + transfer 2 + queue_timeout 1 + IVR self-service 1
    assert (report["calls"], report["offered"], report["answered"]) == (12, 13, 9)
    assert report["timeouts"] == 1 and report["abandoned"] == 3
    assert report["avg_talk"] == "0:08" and report["from"] == report["to"] == DAY
    assert [r["queue"] for r in report["rows"]] == ["", "genel", "sosyal-yardim"]
    assert sum(r["calls"] for r in report["rows"]) == report["calls"]
    assert sum(b["count"] for b in report["wait_distribution"]) == report["offered"]


async def test_csv_download(served: tuple[TestServer, dict[str, str]]) -> None:
    server, tokens = served
    status, ctype, body = await get(
        server, f"/api/reports?from={DAY}&by=hour&format=csv", tokens["supervisor"]
    )
    assert status == 200 and ctype.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert list(rows[0])[:5] == ["hour", "calls", "requests", "avg_talk_s", "avg_wait_s"]
    assert rows[-1]["hour"] == "total" and rows[-1]["calls"] == "12"
    assert sum(int(r["calls"]) for r in rows[:-1]) == 12


async def test_bad_requests_are_400(served: tuple[TestServer, dict[str, str]]) -> None:
    server, tokens = served
    for query in (
        "",
        "from=28.11.2026",
        f"from={DAY}&by=week",
        f"from={DAY}&to=2026-11-01",
        f"from={DAY}&format=xml",
    ):
        status, _, body = await get(server, f"/api/reports?{query}", tokens["supervisor"])
        assert status == 400, query
        assert json.loads(body)["error"]["code"] == "bad_request"


async def test_the_page_is_served(served: tuple[TestServer, dict[str, str]]) -> None:
    server, _ = served
    status, ctype, body = await get(server, "/reports")
    assert status == 200 and ctype.startswith("text/html")
    assert "Çağrı Merkezi Raporu" in body.decode("utf-8")
    for asset in ("/reports/reports.js", "/reports/reports.css"):
        assert (await get(server, asset))[0] == 200


# ---- the command line ---------------------------------------------------------------------


@pytest.fixture
def loaded(db_url: str) -> str:
    """The session database with the traces loaded (sync: the CLI runs its own event loop)."""

    async def setup() -> None:
        p = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
        try:
            await truncate_all(p)
            async with p.acquire() as conn:
                await load_traces(conn)
        finally:
            await p.close()

    run_async(setup())
    return db_url


def test_cli_json(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli(
            [
                "report",
                "--from",
                DAY,
                "--to",
                DAY,
                "--by",
                "day",
                "--format",
                "json",
                "--database-url",
                loaded,
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert TOP_KEYS <= set(report)
    assert report["calls"] == 12 and report["rows"][0]["day"] == DAY


def test_cli_csv_and_table(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["report", "--from", DAY, "--format", "csv", "--database-url", loaded]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][0] == "total" and rows[1][:2] == ["total", "12"] and len(rows) == 2
    assert cli(["report", "--from", DAY, "--by", "queue", "--database-url", loaded]) == 0
    out = capsys.readouterr().out
    assert "Calls" in out and "Average talk" in out and "sosyal-yardim" in out


def test_cli_refuses_a_backwards_period(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["report", "--from", DAY, "--to", "2026-01-01", "--database-url", loaded]) == 2
    assert "before it starts" in capsys.readouterr().err
