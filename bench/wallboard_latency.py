"""AMI event to wallboard update latency, p50 and p99, under the recorded burst.

The burst (a real Asterisk 22: 25 calls/s, 255 agents) is fed to a DB-less service at its
recorded pace for ``--seconds`` of trace time, while ``--clients`` WebSocket pages (and one
page that never reads) watch /ws/wallboard. For every message that changed something, the
latency is the time until each page received the first board built after it. The baseline,
measured in the same run, is the same pages receiving a board-sized message sent straight on
their sockets (the transport alone); the ratio is what the hub's coalescing window adds.

    .venv/bin/python bench/wallboard_latency.py
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import re
import statistics
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.events import parse_message
from callcenter.model import Effect
from callcenter.replay import iter_trace, open_trace, trace_t0
from callcenter.web import wallboard
from callcenter.web.server import make_app

TRACE = Path(__file__).resolve().parent.parent / "tests" / "traces" / "burst" / "ami.jsonl.gz"
_SERVER_TIME = re.compile(r'"server_time":([0-9.]+)')


def load(seconds: float) -> list[tuple[float, str]]:
    """The first ``seconds`` of the burst as (trace time, message)."""
    with open_trace(TRACE) as fh:
        messages = list(iter_trace(fh, trace_t0(TRACE) or 0.0))
    start = messages[0][0]
    return [(ts - start, text) for ts, text in messages if ts - start <= seconds]


async def watch(ws: aiohttp.ClientWebSocketResponse, boards: list[tuple[float, float]]) -> None:
    """Records (board build time, receive time) of every board a page gets."""
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        found = _SERVER_TIME.search(msg.data, 0, 200)
        if found:
            boards.append((float(found.group(1)), time.time()))
        elif msg.data.startswith('{"type":"probe"'):
            boards.append((json.loads(msg.data)["sent"], time.time()))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of some values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(seconds: float, clients: int) -> None:
    """Feeds the burst, measures, prints."""
    messages = load(seconds)
    service = Service(Settings())
    changed: list[float] = []

    def record(effects: list[Effect]) -> None:
        changed.append(time.time())

    runner = web.AppRunner(make_app(service, [wallboard.setup]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/ws/wallboard"
    service.subscribe(record)
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(url, max_msg_size=0) for _ in range(clients)]
        idle = await session.ws_connect(url)  # a page that never reads
        boards: list[list[tuple[float, float]]] = [[] for _ in sockets]
        watchers = [
            asyncio.create_task(watch(ws, b)) for ws, b in zip(sockets, boards, strict=True)
        ]
        await asyncio.sleep(0.5)
        start = time.time()
        for offset, text in messages:
            delay = start + offset - time.time()
            if delay > 0.001:
                await asyncio.sleep(delay)
            service.process("pbx1", parse_message(text), time.time())
        await asyncio.sleep(1.0)
        fed = time.time() - start
        # Baseline: a board-sized message straight on each page's socket.
        hub = runner.app[wallboard.WALLBOARD]
        size = len(json.dumps(hub.board()))
        measured = [list(page) for page in boards]
        for page in boards:
            page.clear()
        for _ in range(50):
            probe = json.dumps({"type": "probe", "sent": time.time(), "pad": "x" * size})
            for client in list(hub.clients):
                if not client.ws.closed:  # the idle page is dropped by the heartbeat
                    await client.ws.send_str(probe)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        transport = [recv - sent for page in boards for sent, recv in page]
        for ws in (*sockets, idle):
            await ws.close()
        for task in watchers:
            task.cancel()
    await runner.cleanup()
    latencies: list[float] = []
    for page in measured:
        built = [b for b, _ in page]
        for t in changed:
            i = bisect.bisect_left(built, t)
            if i < len(page):
                latencies.append(page[i][1] - t)
    print(
        f"burst, {len(messages):,} messages in {fed:.1f} s ({len(messages) / fed:,.0f}/s), "
        f"{len(changed):,} changes, {clients} pages (+1 that never reads), "
        f"board {size / 1024:.0f} KiB"
    )
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    b50 = statistics.median(transport)
    print(
        f"AMI event -> wallboard: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
        f"baseline (transport of a board alone) p50 {b50 * 1000:.1f} ms; ratio {p50 / b50:.1f}"
    )


def main() -> None:
    """Parses arguments and runs the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="trace seconds to feed")
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.clients))


if __name__ == "__main__":
    main()
