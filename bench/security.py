"""The attacks of issue 15 measured on the running service, each against a same-run baseline.

1. Slow clients: 100 silent and 100 slow-drip sockets against the HTTP server with the default
   settings; prints when the server has closed them (baseline: one normal request).
2. A hostile PBX: 120,050 calls that never end flooded over AMI into one of two PBXs; prints
   /healthz latency during the flood (baseline: the idle service), /pop?number= latency once
   the cap is full, the index lookup against the old scan of every open call on the same
   calls, and the process RSS before, at the peak and after the flood's calls have ended.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/security.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.app import Service  # noqa: E402
from callcenter.config import AsteriskServer, Settings  # noqa: E402
from callcenter.popup import normalize_number  # noqa: E402
from callcenter.web.auth import create_token  # noqa: E402
from callcenter.web.server import default_features, make_app, serve  # noqa: E402
from tests.amiserver import FakeAmiServer, event  # noqa: E402
from tests.conftest import _drop_database, _new_database, run_async, server_url  # noqa: E402


def rss_mb() -> float:
    """The process's resident set now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ms(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    over = sum(1 for x in s if x > 0.1)
    return (
        f"p50 {statistics.median(s) * 1e3:6.1f} ms  p99 {p99 * 1e3:6.1f} ms  "
        f"max {s[-1] * 1e3:6.1f} ms  over 100 ms: {over} of {len(s)}"
    )


async def timed_get(http: aiohttp.ClientSession, url: str, token: str | None = None) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    start = time.perf_counter()
    async with http.get(url, headers=headers) as resp:
        await resp.read()
    return time.perf_counter() - start


async def slow_clients(url: str, port: int) -> None:
    async with aiohttp.ClientSession() as http:
        baseline = await timed_get(http, url + "/healthz")
    start = time.perf_counter()
    silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
    slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
    closed: list[float] = []

    async def drip(writer: asyncio.StreamWriter) -> None:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
            if writer.is_closing():
                return
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.5)

    async def wait_closed(reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        closed.append(time.perf_counter() - start)

    drips = [asyncio.create_task(drip(w)) for _, w in slow]
    await asyncio.wait_for(asyncio.gather(*(wait_closed(r) for r, _ in silent + slow)), 90)
    for task in drips:
        task.cancel()
    for _, w in silent + slow:
        w.close()
    print(
        f"slow clients: 200 of 200 closed by the server, first after {min(closed):.1f} s, "
        f"last after {max(closed):.1f} s (http_header_timeout 10 s; baseline request "
        f"{baseline * 1e3:.1f} ms)"
    )


def channel(n: int) -> str:
    uid = f"1799000000.{n}"
    return event(
        "Newchannel",
        Channel=f"PJSIP/trunk-{n:08x}",
        Uniqueid=uid,
        Linkedid=uid,
        CallerIDNum=f"05{n:09d}",
        CallerIDName="Flood",
        Context="from-trunk",
        Exten="4441000",
    )


def flooding_pbx(port: int, calls: int, go: Any, done: Any, stop: Any) -> None:
    """The hostile PBX, in a process of its own (its work must not count as the service's)."""

    async def serve_flood() -> None:
        async with FakeAmiServer(secret="s", port=port) as pbx:
            await asyncio.to_thread(go.wait)
            chunk = 1000
            for lo in range(0, calls, chunk):
                await pbx.push("".join(channel(n) for n in range(lo, min(calls, lo + chunk))))
                pbx.live[-1].sent.clear()  # it keeps what it sent: not wanted here
            done.set()
            await asyncio.to_thread(stop.wait)

    asyncio.run(serve_flood())


async def flood(url: str, service: Service, calls: int, pool: Any, go: Any) -> None:
    async with aiohttp.ClientSession() as http:
        baseline = [await timed_get(http, url + "/healthz") for _ in range(200)]
        gc.collect()
        rss_before = rss_mb()
        during: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                during.append(await timed_get(http, url + "/healthz"))
                await asyncio.sleep(0.02)

        prober = asyncio.create_task(probe())
        start = time.perf_counter()
        go.set()
        while service.pipeline.counters["events"] < calls or service.queue.qsize():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        took = time.perf_counter() - start
        await asyncio.wait_for(service.writer.flush(), 300)
        stop.set()
        await prober
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        open_now = service.tracker.open_per_server()
        token, _ = await create_token(pool, role="supervisor", name="bench")
        number = f"05{calls - 1:09d}"
        pops = [
            await timed_get(http, f"{url}/pop?number={number}&format=json", token)
            for _ in range(100)
        ]
    # The old /pop?number= scanned every open call; the index looks one key up.
    live = list(service.tracker.calls.values())
    key = normalize_number(number)
    t0 = time.perf_counter()
    for _ in range(20):
        [c for c in live if normalize_number(c.caller_number) == key]
    scan = (time.perf_counter() - t0) / 20
    screenpop = next(s for s in service.subscribers if hasattr(s, "live_by_number"))
    t0 = time.perf_counter()
    for _ in range(2000):
        screenpop.live_by_number(number)
    index = (time.perf_counter() - t0) / 2000
    # The flood's calls end (the PBX says so at its next resync): memory must come back.
    service.dispatch(service.tracker.close_all(time.time(), "pbx1"))
    await asyncio.wait_for(service.writer.flush(), 300)
    for subscriber in service.subscribers:  # the call.ended outbox's backlog
        if hasattr(subscriber, "flush") and hasattr(subscriber, "pending"):
            await asyncio.wait_for(subscriber.flush(), 300)
    await asyncio.sleep(12)  # the service releases memory 10 quiet seconds after the flood
    rss_after = rss_mb()
    print(
        f"flood: {calls:,} never-ending calls on pbx1 in {took:.1f} s "
        f"({calls / took:,.0f} calls/s); open calls kept {open_now} "
        f"(cap {service.settings.max_open_calls_per_server}); "
        f"capped {service.tracker.counters.get('open_calls_capped', 0):,}"
    )
    print(f"/healthz idle (baseline):    {ms(baseline)}")
    print(f"/healthz during the flood:   {ms(during)}")
    print(f"/pop?number= at the cap:     {ms(pops)}")
    print(
        f"number lookup over {len(live):,} open calls: scan {scan * 1e3:.2f} ms, "
        f"index {index * 1e6:.1f} µs ({scan / index:,.0f}x)"
    )
    print(
        f"RSS: before {rss_before:.0f} MB, peak {peak:.0f} MB, after the calls ended "
        f"{rss_after:.0f} MB (bounded: 5,000 open calls, the 10,000 last ended for /pop)"
    )


async def run(url: str, calls: int) -> None:
    # The drip clients' streams report the server's close as unretrieved errors: expected.
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: None)
    port = free_port()
    go, done, stop = mp.Event(), mp.Event(), mp.Event()
    hostile = mp.Process(target=flooding_pbx, args=(port, calls, go, done, stop), daemon=True)
    hostile.start()
    try:
        await _run(url, calls, port, go)
    finally:
        stop.set()
        hostile.join(10)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(url: str, calls: int, port: int, go: Any) -> None:
    async with FakeAmiServer(secret="s") as pbx2:
        servers = (
            AsteriskServer(name="pbx1", host="127.0.0.1", port=port, secret="s", ping_interval=5.0),
            AsteriskServer(name="pbx2", host=pbx2.host, port=pbx2.port, secret="s"),
        )
        with tempfile.TemporaryDirectory() as spool:
            service = Service(
                Settings(database_url=url, asterisk=servers, spool_dir=spool, fastagi_enabled=False)
            )
            await service.start()
            runner = await serve(make_app(service, default_features()), "127.0.0.1", 0)
            port = runner.addresses[0][1]
            base = f"http://127.0.0.1:{port}"
            try:
                await slow_clients(base, port)
                await flood(base, service, calls, service.pool, go)
            finally:
                await runner.cleanup()
                await service.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=120_050)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    logging.getLogger().setLevel(logging.ERROR)
    name, url = _new_database(migrated=True)
    try:
        asyncio.run(run(url, args.calls))
    finally:
        run_async(_drop_database(server_url(), name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
