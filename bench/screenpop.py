"""Screen-pop latency (AMI event -> pop at the agent's WebSocket) and outbox delivery throughput.

The recorded ``answered`` call is cloned into N concurrent calls (fresh uniqueids, channels,
callers and one agent each, every caller with an earlier call in the log). Each agent has a
WebSocket client connected to the real service (pipeline, tracker, history prefetch from
PostgreSQL, hub). The latency of a pop is from the moment its AgentCalled message enters the
service's AMI sink to the moment the client has the ringing pop. Baseline, same run: the same
message sent by a bare aiohttp WebSocket handler (``ws.send_str``) to the same kind of client.
Calls ring at ``--rate`` per second (the recorded peak is 25/s) and, separately, all at once.

Outbox: M events in the outbox delivered signed to a local receiver by the DeliveryWorker;
baseline, same run: plain aiohttp POSTs of the same bodies at the same concurrency.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/screenpop.py
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter import events
from callcenter.app import Service
from callcenter.config import Settings
from callcenter.replay import iter_trace, trace_t0
from callcenter.store.migrations import migrate
from callcenter.web import agent, api
from callcenter.web.auth import create_token
from callcenter.web.server import make_app
from callcenter.webhooks import DeliveryWorker, Subscription, enqueue, generate_secret

TRACE = Path(__file__).resolve().parent.parent / "tests" / "traces" / "answered" / "ami.jsonl.gz"
_UID = re.compile(r"\b1795884362\.(\d+)\b")
_CHAN = re.compile(r"-0000000([01]);")


def template() -> tuple[list[str], list[str]]:
    """The answered call's own messages, split at (and including) AgentCalled."""
    path = TRACE
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        msgs = [m for _, m in iter_trace(fh, trace_t0(path) or 0.0) if "1795884362." in m]
    cut = next(i for i, m in enumerate(msgs) if m.startswith("Event: AgentCalled")) + 1
    return msgs[:cut], msgs[cut:]


def clone(msgs: list[str], i: int) -> list[str]:
    """The messages of call ``i``: its own ids, channels, caller and agent."""
    out = []
    for m in msgs:
        m = _UID.sub(lambda g: f"1900000000.{2 * i + int(g.group(1))}", m)
        m = _CHAN.sub(lambda g: f"-{2 * i + int(g.group(1)):08x};", m)
        m = m.replace("05321234567", f"0532{i:07d}").replace("Zeynep Kaya", f"Agent {i}")
        out.append(m.replace("Local/1001@agents", f"Local/{20000 + i}@agents"))
    return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Clients:
    """N WebSocket clients that note when each call's first ringing pop arrives."""

    def __init__(self) -> None:
        # One connection per agent screen: no pool limit.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.received: dict[str, float] = {}
        self.complete: dict[str, float] = {}  # the first ringing pop that has the history
        self.with_history = 0
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.done = asyncio.Event()
        self.expected = 0

    async def open(self, urls: list[str]) -> None:
        self.sockets = await asyncio.gather(
            *(self.session.ws_connect(u, max_msg_size=0) for u in urls)
        )
        for ws in self.sockets:
            self.tasks.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            now = time.perf_counter()
            data = json.loads(msg.data)
            if data.get("type") != "pop" or data.get("stage") != "ringing":
                continue
            linkedid = data["linkedid"]
            if linkedid not in self.received:
                self.received[linkedid] = now
                self.with_history += not data.get("history_pending")
            if not data.get("history_pending") and linkedid not in self.complete:
                self.complete[linkedid] = now
                if len(self.complete) >= self.expected:
                    self.done.set()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await self.session.close()


async def paced(n: int, rate: float | None, send: Callable[[int], None]) -> None:
    """Calls ``send(i)`` for each call, ``rate`` per second (all at once if None)."""
    start = time.perf_counter()
    for i in range(n):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        send(i)


async def service_run(
    url: str, n: int, rate: float | None, batched: bool = True
) -> tuple[list[float], list[float], int]:
    """Pop latencies through the whole service for ``n`` concurrent calls.

    ``batched=False`` fetches each caller's history with a query of its own (the baseline).
    """
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    await pool.execute("TRUNCATE calls, api_tokens CASCADE")
    earlier = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    await pool.executemany(
        """
        INSERT INTO calls (server, linkedid, uniqueid, caller_number, caller_name, queue, agent,
                           outcome, started_at)
        VALUES ('pbx1', $1, $1, $2, 'Bench Caller', 'genel', 'Agent x', 'answered', $3)
        """,
        [(f"1800000000.{i}", f"0532{i:07d}", earlier) for i in range(n)],
    )
    tokens = [
        (await create_token(pool, role="agent", name=f"a{i}", agent=f"Agent {i}"))[0]
        for i in range(n)
    ]
    service = Service(Settings(database_url=url))
    await service.start(ami=False)
    app = make_app(service, [agent.setup, api.setup])
    app[agent.SCREENPOP].batched = batched
    server = TestServer(app)
    await server.start_server()
    clients = Clients()
    clients.expected = n
    try:
        await clients.open([str(server.make_url(f"/ws/agent?token={t}")) for t in tokens])
        before, _ = template()
        # The adapter's work (reading and splitting AMI text) is not part of the measure.
        calls = [[events.parse_message(text) for text in clone(before, i)] for i in range(n)]
        sent: dict[str, float] = {}

        def send(i: int) -> None:
            now = time.time()
            for headers in calls[i][:-1]:
                service.ami_sink("pbx1", headers, now)
            sent[f"1900000000.{2 * i}"] = time.perf_counter()
            service.ami_sink("pbx1", calls[i][-1], now)

        await paced(n, rate, send)
        await asyncio.wait_for(clients.done.wait(), 120)
        first = [clients.received[k] - sent[k] for k in sent]
        full = [clients.complete[k] - sent[k] for k in sent]
        return first, full, clients.with_history
    finally:
        await clients.close()
        await server.close()
        await service.stop()
        await pool.close()


async def baseline_run(n: int, rate: float | None, size: int) -> list[float]:
    """The same number of clients and messages over a bare aiohttp WebSocket."""
    sockets: dict[int, web.WebSocketResponse] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets[int(request.query["i"])] = ws
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app)
    await server.start_server()
    clients = Clients()
    clients.expected = n
    try:
        await clients.open([str(server.make_url(f"/ws?i={i}")) for i in range(n)])
        sent: dict[str, float] = {}
        pad = "x" * max(0, size - 80)

        def send(i: int) -> None:
            linkedid = f"b.{i}"
            text = json.dumps({"type": "pop", "stage": "ringing", "linkedid": linkedid, "p": pad})
            sent[linkedid] = time.perf_counter()
            asyncio.get_running_loop().create_task(sockets[i].send_str(text))

        await paced(n, rate, send)
        await asyncio.wait_for(clients.done.wait(), 120)
        return [clients.received[k] - sent[k] for k in sent]
    finally:
        await clients.close()
        await server.close()


async def outbox_run(url: str, m: int) -> tuple[float, float]:
    """Events per second through the outbox worker, and through plain POSTs (baseline)."""
    got = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal got
        await request.read()
        got += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = TestServer(app, host="127.0.0.1")
    await receiver.start_server()
    url_hook = str(receiver.make_url("/hook"))
    pool = await asyncpg.create_pool(url, min_size=2, max_size=8)
    try:
        await pool.execute("TRUNCATE webhook_outbox, webhook_subscriptions CASCADE")
        body = {"ticket": {"reference": "2026-000001", "note": "x" * 300}}
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(m):
                await enqueue(conn, "ticket.created", body)
        sub = Subscription("bench", url_hook, (generate_secret(),), ("*",))
        worker = DeliveryWorker(
            lambda: pool, [sub], allowed_hosts=("127.0.0.1",), batch=200, concurrency=32
        )
        start = time.perf_counter()
        while got < m:
            if not await worker.run_once():
                await asyncio.sleep(0.01)
        outbox_rate = m / (time.perf_counter() - start)
        await worker.stop()

        text = json.dumps({"type": "ticket.created", "data": body})
        sem = asyncio.Semaphore(32)
        async with aiohttp.ClientSession() as session:

            async def post() -> None:
                async with sem, session.post(url_hook, data=text) as resp:
                    await resp.read()

            start = time.perf_counter()
            await asyncio.gather(*(post() for _ in range(m)))
            plain_rate = m / (time.perf_counter() - start)
        return outbox_rate, plain_rate
    finally:
        await pool.close()
        await receiver.close()


async def main(args: argparse.Namespace) -> None:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"cc_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        await migrate(url)
        print(
            "latency from AgentCalled entering the service to the pop at the agent's WebSocket "
            "(ms, p50/p99);\n'full' = the pop with the caller's history (histories fetched in "
            "batches); 'one query each' = the same with a query per caller (the old way, same "
            "run);\nbaseline = bare aiohttp WebSocket send of a same-size message, same run"
        )
        print(f"{'calls':>6} {'pacing':>8} {'first pop':>16} {'full pop':>16} "
              f"{'one query each':>16} {'baseline':>14} {'ratio p50':>10}")  # fmt: skip
        for n in args.calls:
            for rate in (args.rate, None):
                # The baseline first: the first run of a process also pays its warm-up.
                _, single, _ = await service_run(url, n, rate, batched=False)
                first, full, _ = await service_run(url, n, rate)
                base_lat = await baseline_run(n, rate, 1500)
                pacing = f"{rate:g}/s" if rate else "burst"
                print(
                    f"{n:>6} {pacing:>8} {pct(first, 0.5):>7.2f}/{pct(first, 0.99):<8.2f}"
                    f"{pct(full, 0.5):>7.2f}/{pct(full, 0.99):<8.2f}"
                    f"{pct(single, 0.5):>7.2f}/{pct(single, 0.99):<8.2f}"
                    f"{pct(base_lat, 0.5):>6.2f}/{pct(base_lat, 0.99):<7.2f}"
                    f"{statistics.median(first) / statistics.median(base_lat):>9.1f}x"
                )
        outbox_rate, plain_rate = await outbox_run(url, args.events)
        ratio = outbox_rate / plain_rate
        print(
            f"outbox delivery: {outbox_rate:,.0f} events/s signed via DeliveryWorker "
            f"(baseline plain aiohttp POST: {plain_rate:,.0f}/s, ratio {ratio:.2f})"
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rate", type=float, default=100.0, help="calls ringing per second")
    parser.add_argument("--events", type=int, default=3000, help="outbox events")
    asyncio.run(main(parser.parse_args()))
