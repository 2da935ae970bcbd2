"""The running service end to end: AMI over TCP -> tracker -> PostgreSQL, /healthz, record."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg

from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.web.server import make_app, serve
from tests.amiserver import FakeAmiServer

TRACES = Path(__file__).resolve().parent.parent / "traces"
ROOT = Path(__file__).resolve().parent.parent.parent


def _raw_messages(scenario: str) -> list[str]:
    """The bytes Asterisk sent after the login snapshot (what a live link would carry)."""
    with gzip.open(TRACES / scenario / "ami.jsonl.gz", "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    raws = [r["raw"] for r in records if "raw" in r and ":" in r["raw"]]
    done = next(
        i for i, raw in enumerate(raws) if raw.startswith("Event: CoreShowChannelsComplete")
    )
    return raws[done + 1 :]


def _settings(db_url: str, ami: FakeAmiServer, tmp_path: Path) -> Settings:
    server = AsteriskServer(
        name="pbx1",
        host=ami.host,
        port=ami.port,
        username="callcenter",
        secret="s3cret",
        ping_interval=0.5,
        action_timeout=2.0,
    )
    return Settings(
        database_url=db_url, asterisk=(server,), spool_dir=str(tmp_path), fastagi_port=0
    )


async def test_live_ami_calls_land_in_postgres_and_healthz_follows_the_link(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    async with FakeAmiServer(secret="s3cret") as ami:
        settings = _settings(db_url, ami, tmp_path)
        service = Service(settings)
        await asyncio.wait_for(service.start(), 30)
        runner = await serve(make_app(service), "127.0.0.1", 0)
        port = runner.addresses[0][1]
        try:
            for raw in _raw_messages("concurrent"):
                await ami.push(raw)

            async def landed() -> None:
                # Rows arrive through the batched writer: poll the table (bounded by wait_for).
                while await pool.fetchval("SELECT count(*) FROM calls") < 8:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(landed(), 20)
            outcomes = await pool.fetch("SELECT outcome, count(*) FROM calls GROUP BY 1")
            assert {r["outcome"]: r["count"] for r in outcomes} == {"answered": 5, "abandoned": 3}

            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    report = await resp.json()
                    assert resp.status == 200, report
                assert report["asterisk"]["pbx1"]["connected"] is True
                assert report["database"]["reachable"] is True
                # The link drops and the PBX now refuses the login: /healthz says so.
                ami.secret = "rotated"
                ami.drop()

                async def degraded() -> dict[str, object]:
                    while True:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 503:
                                return dict(await resp.json())
                        await asyncio.sleep(0.05)

                report = await asyncio.wait_for(degraded(), 20)
                assert report["status"] == "degraded"
        finally:
            await runner.cleanup()
            await asyncio.wait_for(service.stop(), 30)


async def test_wrong_ami_secret_stops_the_start_with_a_clear_error(
    db_url: str, tmp_path: Path
) -> None:
    async with FakeAmiServer(secret="right") as ami:
        settings = _settings(db_url, ami, tmp_path)
        service = Service(settings)
        try:
            await asyncio.wait_for(service.start(), 30)
        except Exception as exc:
            assert "Authentication failed" in str(exc)
        else:
            raise AssertionError("a wrong secret must stop the start-up")
        finally:
            await asyncio.wait_for(service.stop(), 30)


async def test_record_then_replay_gives_the_same_calls(tmp_path: Path) -> None:
    raws = _raw_messages("transfer")
    async with FakeAmiServer(secret="s3cret") as ami:
        out = tmp_path / "trace.jsonl.gz"
        env = {
            "CALLCENTER_AMI_HOST": ami.host,
            "CALLCENTER_AMI_PORT": str(ami.port),
            "CALLCENTER_AMI_SECRET": "s3cret",
            "PATH": "/usr/bin:/bin",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callcenter",
            "record",
            "--out",
            str(out),
            "--duration",
            "30",
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        await ami.wait_until(lambda: ami.count("Login") >= 1, 20)
        for raw in raws:
            await ami.push(raw)
        await asyncio.sleep(0.5)
        ami.drop()  # the server closes: the recorder stops
        _, stderr = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode == 0, stderr.decode()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "callcenter", "replay", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    calls = [json.loads(line) for line in done.stdout.splitlines()]
    assert [c["linkedid"] for c in calls] == ["1795884561.0", "1795884583.6"]
    assert [len(c["visits"]) for c in calls] == [2, 2]
    assert all(c["outcome"] == "answered" for c in calls)
