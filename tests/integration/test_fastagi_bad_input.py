"""Broken FastAGI sessions end alone and never block the event loop.

The server runs on an event loop of its own in a thread, so that if a bad client ever froze
that loop (as panoramisk's header loop does on half a header and a disconnect), the checks
here, made from the test's loop with deadlines, fail instead of hanging.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import date
from typing import Any, TypeVar

import pytest

from callcenter.ivr.client import agi_environment, run_agi_session
from callcenter.ivr.desk import MemoryDesk
from callcenter.ivr.menu import load_menu
from callcenter.ivr.server import FastAgiServer

T = TypeVar("T")
HEADER = "".join(f"{k}: {v}\n" for k, v in agi_environment("ivr", ["1.0"]).items()) + "\n"
BOUND = 5.0  # the longest any check here waits


class ThreadedServer:
    """A FastAgiServer on its own event loop in a daemon thread."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = FastAgiServer(
            load_menu(), MemoryDesk(), today=lambda: date(2026, 6, 1), **kwargs
        )
        self.run(self.server.start("127.0.0.1", 0))
        self.port = self.server.port

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the server's loop and waits (bounded) for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(BOUND)

    async def alive(self) -> bool:
        """Whether the server's loop still runs callbacks (a frozen loop never answers)."""

        async def pong() -> bool:
            await asyncio.sleep(0)
            return True

        future = asyncio.run_coroutine_threadsafe(pong(), self.loop)
        async with asyncio.timeout(BOUND):
            return await asyncio.wrap_future(future)

    def close(self) -> None:
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(BOUND)


@pytest.fixture
def agi() -> Iterator[ThreadedServer]:
    server = ThreadedServer(header_timeout=0.5, reply_timeout=0.5)
    try:
        yield server
    finally:
        server.close()


async def eventually(check: Callable[[], bool], step: float = 0.01) -> None:
    """Waits until ``check()`` holds, for at most BOUND seconds."""
    for _ in range(int(BOUND / step)):
        if check():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"still not true after {BOUND} s")


async def good_session(agi: ThreadedServer) -> list[str]:
    environment = agi_environment("ivr", ["1795884499.0"])
    return await run_agi_session("127.0.0.1", agi.port, environment, ["1", "2"], limit_s=BOUND)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection: EOF within BOUND, whatever came before it."""
    async with asyncio.timeout(BOUND):
        await reader.read()
    return reader.at_eof()


async def test_half_a_header_then_disconnect_does_not_spin_the_loop(agi: ThreadedServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(HEADER[:40].encode())
    await writer.drain()
    writer.close()
    await eventually(lambda: agi.server.stats.broken["header_incomplete"] == 1)
    assert await agi.alive()
    assert 'SET VARIABLE CC_QUEUE "sosyal-yardim"' in await good_session(agi)
    await eventually(lambda: agi.server.stats.active == 0)


async def test_the_server_keeps_answering_while_a_bad_client_stalls(agi: ThreadedServer) -> None:
    stalled = []
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
        writer.write(HEADER[:60].encode())  # half a header, then nothing
        await writer.drain()
        stalled.append((reader, writer))
    # While they stall, callers get served, many at once.
    sessions = await asyncio.gather(*(good_session(agi) for _ in range(20)))
    assert all('SET VARIABLE CC_IVR_END "queue"' in s for s in sessions)
    # And the stalled connections are dropped after the header deadline.
    for reader, writer in stalled:
        assert await closed_by_server(reader)
        writer.close()
    await eventually(lambda: agi.server.stats.broken["header_timeout"] == 5)
    await eventually(lambda: agi.server.stats.active == 0)


async def test_garbage_without_a_blank_line_is_cut_at_the_size_limit(agi: ThreadedServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(b"\x16\x03\x01 not agi at all " * 4000)  # e.g. a TLS hello or a port scan
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    await eventually(lambda: agi.server.stats.broken["header_too_long"] == 1)
    assert await agi.alive()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (HEADER.replace("agi_network_script: ivr", "agi_network_script: nope"), "no_route"),
        ("GET / HTTP/1.1\nHost: x\n\n", "protocol"),
    ],
)
async def test_a_header_that_is_not_ours_is_refused(
    agi: ThreadedServer, header: str, reason: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(header.encode())
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()
    await eventually(lambda: agi.server.stats.broken[reason] == 1)


async def session_answering(agi: ThreadedServer, answers: list[bytes], close: bool = False) -> None:
    """A session whose 'Asterisk' answers the first commands with ``answers``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
    writer.write(HEADER.encode())
    for answer in answers:
        async with asyncio.timeout(BOUND):
            await reader.readline()
        writer.write(answer)
    await writer.drain()
    if close:
        writer.close()
        return
    assert await closed_by_server(reader)
    writer.close()


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ([b"hello there\n"], "protocol"),
        ([b"\xff\xfe\x00garbage\n"], "protocol"),
        (
            [b"520-Invalid command syntax.  Proper usage follows:\nUsage: ...\n520 End\n"],
            "protocol",
        ),
        ([b"200 result=1\n", b"200 result=1\n"], "timeout"),  # then Asterisk goes silent
    ],
)
async def test_bad_answers_end_the_session(
    agi: ThreadedServer, answers: list[bytes], reason: str
) -> None:
    await session_answering(agi, answers)
    await eventually(lambda: agi.server.stats.broken[reason] == 1)
    assert await agi.alive()


async def test_asterisk_closing_mid_command_is_a_hang_up(agi: ThreadedServer) -> None:
    await session_answering(agi, [b"200 result=1\n", b"200 result=1\n", b"200 res"], close=True)
    await eventually(lambda: agi.server.stats.hangups["ivr"] == 1)
    assert not agi.server.stats.broken
    await eventually(lambda: agi.server.stats.active == 0)


async def test_hang_up_line_and_dead_channel_answers(agi: ThreadedServer) -> None:
    # Asterisk's own order: HANGUP, the answer to the command in flight, then 511s.
    await session_answering(agi, [b"HANGUP\n200 result=1\n"])
    await eventually(lambda: agi.server.stats.hangups["ivr"] == 1)
    await session_answering(agi, [b"511 Command Not Permitted on a dead channel or intercepted\n"])
    await eventually(lambda: agi.server.stats.hangups["ivr"] == 2)
    assert not agi.server.stats.broken
