"""How long ``python -m callcenter run`` takes to end in each life-cycle case, and with what.

Each case runs the real command as a subprocess on real sockets (the simulated AMI server of
``tests/amiserver.py``, a throwaway PostgreSQL database): a bad setting, a port in use, a
rejected AMI login, an unreachable database, SIGTERM/SIGINT while running, SIGTERM while the
AMI login or the resync hangs. Printed per case: the exit code, the seconds from start (or
from the signal) to exit, and the last stderr line. Baseline, same run: the interpreter alone
(``python -c pass``) and ``python -m callcenter --help``, i.e. the start-up cost in every case.
The limits are 5 s for a failed start and 10 s for a stop.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/lifecycle.py
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.store.migrations import migrate  # noqa: E402
from tests.amiserver import FakeAmiServer  # noqa: E402
from tests.integration.test_lifecycle import WEBHOOK, env_for, free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


async def spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, since: float) -> tuple[int, float, str]:
    """Waits for the exit; returns code, seconds since ``since``, last stderr line."""
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(60):
            err = await proc.stderr.read()
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -9, time.perf_counter() - since, "HUNG (killed after 60 s)"
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    return code, time.perf_counter() - since, (lines[-1] if lines else "")[:150]


async def failing(env: dict[str, str]) -> tuple[int, float, str]:
    began = time.perf_counter()
    return await finish(await spawn(["-m", "callcenter", "run"], env), began)


async def started_then(env: dict[str, str], sig: signal.Signals) -> tuple[int, float, str]:
    proc = await spawn(["-m", "callcenter", "run"], env)
    assert proc.stderr is not None
    async with asyncio.timeout(60):
        while b"service_started" not in await proc.stderr.readline():
            pass
    began = time.perf_counter()
    proc.send_signal(sig)
    return await finish(proc, began)


async def stalled_then(
    env: dict[str, str], ami: FakeAmiServer, stall: str
) -> tuple[int, float, str]:
    ami.ignore(stall)
    proc = await spawn(["-m", "callcenter", "run"], env)
    await ami.wait_until(lambda: ami.count(stall) >= 1, 60)
    began = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    return await finish(proc, began)


async def main() -> None:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = "bench_lifecycle_" + secrets.token_hex(4)
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / name
    results: list[tuple[str, tuple[int, float, str]]] = []
    try:
        await migrate(url)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        began = time.perf_counter()
        results.append(
            ("baseline: python -c pass", await finish(await spawn(["-c", "pass"], clean), began))
        )
        began = time.perf_counter()
        help_run = await spawn(["-m", "callcenter", "--help"], clean)
        results.append(("baseline: callcenter --help", await finish(help_run, began)))
        async with FakeAmiServer(secret="s3cret") as ami:
            env = env_for(url, ami, tmp, CALLCENTER_WEBHOOKS=json.dumps(WEBHOOK))
            results.append(("webhooks as one object", await failing(env)))
            results.append(
                (
                    "log level 'loud'",
                    await failing(env_for(url, ami, tmp, CALLCENTER_LOG_LEVEL="loud")),
                )
            )
            with socket.create_server(("127.0.0.1", 0)) as taken:
                port = str(taken.getsockname()[1])
                results.append(
                    (
                        "HTTP port in use",
                        await failing(env_for(url, ami, tmp, CALLCENTER_HTTP_PORT=port)),
                    )
                )
                results.append(
                    (
                        "FastAGI port in use",
                        await failing(env_for(url, ami, tmp, CALLCENTER_FASTAGI_PORT=port)),
                    )
                )
            dead = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
            results.append(("database unreachable", await failing(env_for(dead, ami, tmp))))
            results.append(
                (
                    "SIGTERM while running",
                    await started_then(env_for(url, ami, tmp), signal.SIGTERM),
                )
            )
            results.append(
                ("SIGINT while running", await started_then(env_for(url, ami, tmp), signal.SIGINT))
            )
        async with FakeAmiServer(secret="other") as ami:
            results.append(("AMI login rejected", await failing(env_for(url, ami, tmp))))
        async with FakeAmiServer(secret="s3cret") as ami:
            results.append(
                (
                    "SIGTERM, AMI Login unanswered",
                    await stalled_then(env_for(url, ami, tmp), ami, "Login"),
                )
            )
        async with FakeAmiServer(secret="s3cret") as ami:
            results.append(
                (
                    "SIGTERM, resync unanswered",
                    await stalled_then(env_for(url, ami, tmp), ami, "QueueStatus"),
                )
            )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"{'case':<32} {'exit':>4} {'seconds':>8}  last stderr line")
    for label, (code, seconds, line) in results:
        print(f"{label:<32} {code:>4} {seconds:>8.2f}  {line}")


if __name__ == "__main__":
    asyncio.run(main())
