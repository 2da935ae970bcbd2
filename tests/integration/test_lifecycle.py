"""The life cycle of ``python -m callcenter run`` as a real process on real sockets.

Each start failure ends with one ``callcenter: …`` line and a non-zero exit, without logging in
to AMI or touching another instance's open calls; SIGTERM and SIGINT always stop it. Timeouts
here only guard against a hang; the tests assert exit codes and lines, not speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.amiserver import FakeAmiServer

ROOT = Path(__file__).resolve().parent.parent.parent
# A hang guard, far above what any case takes (the limits are 5 s to fail, 10 s to stop).
GUARD_S = 60.0
WEBHOOK = {
    "name": "backend",
    "url": "http://127.0.0.1:9/hooks",
    "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
}


@dataclass
class Ended:
    """How a process ended."""

    code: int
    stderr: str

    @property
    def lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def last(self) -> str:
        """The last stderr line (the one the operator reads)."""
        return self.lines[-1] if self.lines else ""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(db_url: str, ami: FakeAmiServer | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a service under test: its own ports, spool and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(
        DATABASE_URL=db_url,
        CALLCENTER_HTTP_HOST="127.0.0.1",
        CALLCENTER_HTTP_PORT=str(free_port()),
        CALLCENTER_FASTAGI_PORT="0",
        CALLCENTER_SPOOL_DIR=str(tmp_path / "spool"),
        CALLCENTER_LOG_FORMAT="json",
        CALLCENTER_AMI_HOST="127.0.0.1",
        CALLCENTER_AMI_PORT=str(ami.port if ami else free_port()),
        CALLCENTER_AMI_USERNAME="callcenter",
        CALLCENTER_AMI_SECRET="s3cret",
        CALLCENTER_AMI_ACTION_TIMEOUT="30",
        CALLCENTER_AMI_CONNECT_TIMEOUT="30",
        CALLCENTER_RETENTION_DAYS="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def service(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """Starts ``python -m callcenter run``; kills it if a test left it running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter",
        "run",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def ended(proc: asyncio.subprocess.Process) -> Ended:
    """Waits (bounded) for the process to exit and collects its stderr."""
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(GUARD_S):
            err = await proc.stderr.read()
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        raise AssertionError("the service did not exit: it hangs") from None
    return Ended(code, err.decode("utf-8", "replace"))


async def wait_for_line(proc: asyncio.subprocess.Process, event: str, seen: list[str]) -> None:
    """Reads stderr until a JSON log line of ``event`` appears (bounded)."""
    assert proc.stderr is not None
    async with asyncio.timeout(GUARD_S):
        while True:
            raw = await proc.stderr.readline()
            if not raw:
                raise AssertionError(f"the service exited before {event!r}: {seen[-5:]}")
            line = raw.decode("utf-8", "replace")
            seen.append(line)
            if f'"event": "{event}"' in line or f'"event":"{event}"' in line:
                return


def assert_one_line_failure(end: Ended, code: int, *needles: str) -> None:
    """A failure: the expected exit code, no traceback, and one ``callcenter:`` line last."""
    assert end.code == code, end.stderr
    assert "Traceback" not in end.stderr, end.stderr
    assert end.last.startswith("callcenter: "), end.stderr
    for needle in needles:
        assert needle in end.last, end.last


@pytest.fixture
async def other_instances_call(db_url: str) -> AsyncIterator[tuple[str, object]]:
    """An open call another instance snapshotted, and its updated_at (must stay untouched)."""
    conn = await asyncpg.connect(db_url)
    try:
        state = json.dumps({"marker": "another instance"})
        await conn.execute(
            "INSERT INTO open_calls (server, linkedid, state, updated_at) VALUES "
            "('pbx1', 'lifecycle-other', $1::jsonb, now() - interval '1 hour') "
            "ON CONFLICT (server, linkedid) DO UPDATE SET state = EXCLUDED.state, "
            "updated_at = EXCLUDED.updated_at",
            state,
        )
        before = await conn.fetchval(
            "SELECT updated_at FROM open_calls WHERE linkedid = 'lifecycle-other'"
        )
        yield "lifecycle-other", before
        await conn.execute("DELETE FROM open_calls WHERE linkedid = 'lifecycle-other'")
    finally:
        await conn.close()


async def untouched(db_url: str, linkedid: str, before: object) -> bool:
    """Whether the other instance's open call still has its own snapshot."""
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT state::text AS state, updated_at FROM open_calls WHERE linkedid = $1",
            linkedid,
        )
    finally:
        await conn.close()
    return row is not None and row["updated_at"] == before and "another instance" in row["state"]


async def test_webhooks_given_as_one_object_fail_before_anything_connects(
    db_url: str, tmp_path: Path
) -> None:
    async with FakeAmiServer(secret="s3cret") as ami:
        env = env_for(db_url, ami, tmp_path, CALLCENTER_WEBHOOKS=json.dumps(WEBHOOK))
        async with service(env) as proc:
            end = await ended(proc)
        assert_one_line_failure(end, 2, "webhooks", "wrap it in [ ]")
        assert len(end.lines) == 1, end.stderr
        assert ami.connections == []  # nothing connected


async def test_http_port_in_use_fails_before_the_ami_login(
    db_url: str, tmp_path: Path, other_instances_call: tuple[str, object]
) -> None:
    linkedid, before = other_instances_call
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        async with FakeAmiServer(secret="s3cret") as ami:
            env = env_for(db_url, ami, tmp_path, CALLCENTER_HTTP_PORT=str(port))
            async with service(env) as proc:
                end = await ended(proc)
            assert_one_line_failure(end, 1, "cannot listen for HTTP", str(port))
            assert ami.connections == [] and ami.logins == 0
    assert await untouched(db_url, linkedid, before)


async def test_fastagi_port_in_use_fails_before_the_ami_login(db_url: str, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        async with FakeAmiServer(secret="s3cret") as ami:
            env = env_for(db_url, ami, tmp_path, CALLCENTER_FASTAGI_PORT=str(port))
            async with service(env) as proc:
                end = await ended(proc)
            assert_one_line_failure(end, 1, "cannot listen for FastAGI", str(port))
            assert ami.connections == []


async def test_rejected_ami_login_fails_without_touching_other_instances_calls(
    db_url: str, tmp_path: Path, other_instances_call: tuple[str, object]
) -> None:
    linkedid, before = other_instances_call
    async with FakeAmiServer(secret="another") as ami:
        async with service(env_for(db_url, ami, tmp_path)) as proc:
            end = await ended(proc)
        assert_one_line_failure(end, 1, "rejected the login")
        assert ami.login_failures == 1
    assert await untouched(db_url, linkedid, before)


async def test_unreachable_database_fails_with_one_line(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    async with FakeAmiServer(secret="s3cret") as ami:
        async with service(env_for(dead, ami, tmp_path)) as proc:
            end = await ended(proc)
        assert_one_line_failure(end, 1, "database unreachable", "Connection refused")
        assert ami.connections == []


async def test_a_database_that_never_answers_fails_with_one_line(tmp_path: Path) -> None:
    # A listener that never accepts: the TCP handshake completes, PostgreSQL never speaks.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        dead = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/test"
        async with FakeAmiServer(secret="s3cret") as ami:
            async with service(env_for(dead, ami, tmp_path)) as proc:
                end = await ended(proc)
            assert_one_line_failure(end, 1, "database unreachable", "no connection within")
            assert ami.connections == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_running_service(
    db_url: str, tmp_path: Path, sig: signal.Signals
) -> None:
    async with FakeAmiServer(secret="s3cret") as ami:
        async with service(env_for(db_url, ami, tmp_path)) as proc:
            seen: list[str] = []
            await wait_for_line(proc, "service_started", seen)
            proc.send_signal(sig)
            end = await ended(proc)
        assert end.code == 0, "".join(seen) + end.stderr
        assert "Traceback" not in end.stderr, end.stderr
        assert ami.count("Logoff") == 1  # it logged off: a clean stop, not a kill


@pytest.mark.parametrize("stall", ["Login", "QueueStatus"])
async def test_a_signal_during_the_ami_login_or_resync_stops_the_service(
    db_url: str, tmp_path: Path, stall: str
) -> None:
    async with FakeAmiServer(secret="s3cret") as ami:
        ami.ignore(stall)  # Asterisk never answers: the start (or the resync) hangs there
        async with service(env_for(db_url, ami, tmp_path)) as proc:
            await ami.wait_until(lambda: ami.count(stall) >= 1, GUARD_S)
            proc.send_signal(signal.SIGTERM)
            end = await ended(proc)
        assert end.code == 0, end.stderr
        assert "Traceback" not in end.stderr, end.stderr
        assert "took longer" not in end.stderr  # stopped cleanly, not by the hard watchdog
