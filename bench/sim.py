"""How many calls/s and AMI events/s the simulator serves on one core.

The simulator runs in this process (one core) in load mode, as fast as it can: simulated
time is stepped without sleeping, and after every step the output is written to a client
in another process that reads and counts every message (it only splits on CRLFCRLF).
The rate it sustains is ``calls simulated / wall seconds``; at ``speed`` 1 that is the
highest steady rate it can serve. The baseline, measured in the same run over the same
kind of socket, is the rate at which plain pre-rendered AMI bytes (the simulator's own
messages) reach that client. Figures vary between runs on these machines: compare the
ratio, not the absolute numbers.

    .venv/bin/python bench/sim.py [--sim-seconds 60] [--rate 25] [--agents 255]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import time
from multiprocessing.connection import Connection

from callcenter.sim.cli import Simulator
from callcenter.sim.server import Session

STEP = 0.05  # simulated seconds per scheduler step


def _reader(port: int, login: bool, conn: Connection) -> None:
    """The client process: reads until the server closes, then reports (messages, bytes)."""
    sock = socket.create_connection(("127.0.0.1", port))
    messages = total = 0
    tail = b""
    if login:
        sock.sendall(b"Action: Login\r\nUsername: callcenter\r\nSecret: callcenter\r\n\r\n")
        seen = b""
        while b"Authentication accepted" not in seen:
            data = sock.recv(1 << 16)
            total += len(data)
            seen += data
        messages = seen.count(b"\r\n\r\n")
        tail = seen[-3:]
    conn.send("ready")
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        total += len(data)
        chunk = tail + data
        messages += chunk.count(b"\r\n\r\n")
        tail = chunk[-3:]  # a separator split across two reads is still counted once
    conn.send((messages, total))
    sock.close()


def _spawn(port: int, login: bool) -> tuple[mp.Process, Connection]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_reader, args=(port, login, child))
    proc.start()
    assert parent.recv() == "ready"
    return proc, parent


async def _drain(sessions: set[Session]) -> None:
    for s in list(sessions):
        if not s.writer.is_closing():
            await s.writer.drain()


async def bench_sim(sim_seconds: float, rate: float, agents: int) -> dict[str, float]:
    """Load mode as fast as possible with one reading client."""
    sim = Simulator(calls_per_second=rate, agents=agents, speed=None, seed=1, port=0)
    port = await sim.start()
    proc, conn = await asyncio.to_thread(_spawn, port, True)
    server = sim.server  # the reader is logged in once _spawn returns
    warm = 30.0  # reach a steady state before measuring (queues filled, agents busy)
    t = 0.0
    while t < warm:
        t += STEP
        server.advance(t)
        await _drain(server.sessions)
    calls0, events0 = sim.stats.calls, sim.pbx.events_emitted
    written0 = sum(s.written for s in server.sessions)
    start = time.perf_counter()
    while t < warm + sim_seconds:
        t += STEP
        server.advance(t)
        await _drain(server.sessions)
    wall = time.perf_counter() - start
    calls = sim.stats.calls - calls0
    events = sim.pbx.events_emitted - events0
    written = sum(s.written for s in server.sessions) - written0
    await sim.stop()
    received, _ = await asyncio.to_thread(conn.recv)
    await asyncio.to_thread(proc.join)
    return {
        "wall_s": wall,
        "calls_per_s": calls / wall,
        "events_per_s": events / wall,
        "mb_per_s": written / wall / 1e6,
        "speed": sim_seconds / wall,
        "received": received,
    }


async def bench_realtime(rate: float, agents: int, seconds: float) -> dict[str, float]:
    """The load at speed 1 (wall clock) for ``seconds``: does the simulator keep up?"""
    sim = Simulator(calls_per_second=rate, agents=agents, speed=1.0, seed=3, port=0)
    port = await sim.start()
    proc, conn = await asyncio.to_thread(_spawn, port, True)
    await asyncio.sleep(5.0)  # warm up: the first calls are still talking
    calls0, events0 = sim.stats.calls, sim.pbx.events_emitted
    start = time.perf_counter()
    worst = 0.0
    while time.perf_counter() - start < seconds:
        await asyncio.sleep(0.25)
        worst = max(worst, sim.server.lag)
    wall = time.perf_counter() - start
    calls = sim.stats.calls - calls0
    events = sim.pbx.events_emitted - events0
    await sim.stop()
    received, _ = await asyncio.to_thread(conn.recv)
    await asyncio.to_thread(proc.join)
    return {
        "rate": rate,
        "calls_per_s": calls / wall,
        "events_per_s": events / wall,
        "max_lag_s": worst,
        "received": received,
    }


async def bench_raw(sample: list[bytes], seconds: float) -> dict[str, float]:
    """Baseline: the same messages, pre-rendered, written as fast as the client reads them."""
    blob = b"".join(sample)
    count = len(sample)
    done = asyncio.Event()
    stats: dict[str, float] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            writer.write(blob)
            await writer.drain()
            sent += count
        stats["wall_s"] = time.perf_counter() - start
        stats["msgs"] = sent
        writer.close()
        done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proc, conn = await asyncio.to_thread(_spawn, port, False)
    await done.wait()
    received, total = await asyncio.to_thread(conn.recv)
    await asyncio.to_thread(proc.join)
    server.close()
    await server.wait_closed()
    return {
        "msgs_per_s": stats["msgs"] / stats["wall_s"],
        "mb_per_s": total / stats["wall_s"] / 1e6,
        "received": received,
    }


def sample_messages(rate: float, agents: int, sim_seconds: float = 20.0) -> list[bytes]:
    """Messages the simulator renders in load mode, for the baseline to replay."""
    sim = Simulator(calls_per_second=rate, agents=agents, speed=None, seed=2, port=0)
    assert sim.workload is not None
    sim.workload.start()
    sim.pbx.wanted = -1
    sim.pbx.sched.run_until(sim_seconds)
    return [text.encode() for _, text in sim.pbx.take_output()]


async def main() -> None:
    """Runs both measurements and prints the figures and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=25.0, help="offered calls/s (simulated)")
    ap.add_argument("--agents", type=int, default=255)
    ap.add_argument("--realtime-seconds", type=float, default=10.0)
    args = ap.parse_args()
    sample = sample_messages(args.rate, args.agents)
    raw = await bench_raw(sample, 5.0)
    sim = await bench_sim(args.sim_seconds, args.rate, args.agents)
    print(f"load mode: {args.rate:g} calls/s offered, {args.agents} agents, one reading client")
    print(
        f"simulator : {sim['calls_per_s']:8.1f} calls/s  {sim['events_per_s']:9.0f} events/s"
        f"  {sim['mb_per_s']:6.1f} MB/s  ({sim['speed']:.1f}x real time)"
    )
    print(
        f"baseline  : {raw['msgs_per_s']:9.0f} msgs/s of pre-rendered AMI"
        f"  {raw['mb_per_s']:6.1f} MB/s"
    )
    print(
        f"ratio     : simulator events/s = {sim['events_per_s'] / raw['msgs_per_s']:.2f} x baseline"
    )
    # Speed 1: the highest offered rate it serves with simulated time on the wall clock
    # (lag under a second), probing fractions of the capacity measured above.
    best: dict[str, float] | None = None
    per_agent = args.agents / args.rate
    for fraction in (0.4, 0.6, 0.8, 1.0):
        rate = round(fraction * sim["calls_per_s"])
        probe = await bench_realtime(rate, int(rate * per_agent), args.realtime_seconds)
        kept_up = probe["max_lag_s"] < 1.0
        print(
            f"  speed 1 at {rate:5.0f} calls/s offered: served {probe['calls_per_s']:6.1f}"
            f" calls/s, {probe['events_per_s']:7.0f} events/s, max lag"
            f" {probe['max_lag_s']:.2f} s {'ok' if kept_up else '(falls behind)'}"
        )
        if not kept_up:
            break
        best = probe
    if best is not None:
        print(
            f"steady    : {best['rate']:8.0f} calls/s  {best['events_per_s']:9.0f} events/s"
            " served at speed 1 (highest probe that kept up)"
        )
    print(
        "reference : a real Asterisk 22 sent ~4,300 msgs/s (peak 5,700) for 25 calls/s "
        "(recorded burst)"
    )


if __name__ == "__main__":
    asyncio.run(main())
