"""Issue 8, item 1: the AMI link cut and restored many times during a busy simulated morning."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg
import pytest

from tests.faults.proxy import FaultProxy
from tests.faults.scenarios import ami_cuts


async def test_ami_link_cut_again_and_again_logs_every_call_once(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    report = await asyncio.wait_for(ami_cuts(db_url, tmp_path, minutes=20, cuts=8), 300)
    print(report.row(), report.notes)  # the figures, for whoever runs with -s
    assert report.problems() == []
    assert report.lost == report.duplicates == report.invisible == 0
    assert report.injected == 8 and report.notes["stalls"] == 2
    v = report.verdict
    assert v is not None and v.calls > 150
    # Calls alive in a gap are flagged, the others exact: together, every call.
    assert v.touched > 0 and v.exact + v.touched == v.calls == v.logged
    # This seed has calls that ended in a gap, closed from the resync.
    assert report.notes["ended_in_gaps"] >= 1
    assert report.notes["still_open"] == 0


async def _read(reader: asyncio.StreamReader) -> bytes:
    """What arrives next; b"" for a connection closed or reset."""
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    except ConnectionError:
        return b""


async def test_the_proxy_stalls_without_losing_bytes_and_cuts_for_good() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(100):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = FaultProxy("127.0.0.1", int(server.sockets[0].getsockname()[1]))
    port = await proxy.start()
    writers: list[asyncio.StreamWriter] = []
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        writer.write(b"one")
        assert await _read(reader) == b"one"
        proxy.stall()
        writer.write(b"two")
        with pytest.raises(TimeoutError):  # a black hole: nothing comes back…
            await asyncio.wait_for(reader.read(100), 0.3)
        proxy.restore()
        assert await _read(reader) == b"two"  # …and nothing was lost, as with TCP
        assert proxy.cut() == 1
        assert await _read(reader) == b""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        assert await _read(reader) == b""  # refused while the link is down
        proxy.restore()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        writer.write(b"three")
        assert await _read(reader) == b"three"
        assert (proxy.cuts, proxy.stalls, proxy.refused) == (1, 1, 1)
    finally:
        for w in writers:
            w.close()
        await proxy.close()
        server.close()
        await server.wait_closed()
