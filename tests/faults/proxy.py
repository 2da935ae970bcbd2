"""A TCP proxy a test puts between a client and a server to cut, stall and restore the link.

``cut()`` resets every connection at once (both sides see the link die, bytes in flight are
lost) and refuses new ones until ``restore()``; ``stall()`` is a black hole: the connections stay
open but nothing reaches the client any more, so only the client's own watchdog can notice.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

_CHUNK = 65536


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side, the server's side and their two pumps."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    held: list[bytes] = field(default_factory=list)  # client -> server while stalled
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        """Resets both sides now; whatever is still buffered is lost, as on a real cut."""
        for writer in (self.client, self.server):
            writer.transport.abort()


class FaultProxy:
    """Forwards ``host:port`` to ``upstream``; the test decides when the link breaks."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self.state = "up"  # up | cut | stall
        self.accepted = 0  # connections forwarded
        self.refused = 0  # connections reset because the link was down
        self.cuts = 0
        self.stalls = 0
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None

    @property
    def links(self) -> int:
        """Connections open right now."""
        return len(self._links)

    async def start(self) -> int:
        """Listens on an ephemeral port and returns it."""
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        """Stops listening and resets every connection."""
        if self._server is not None:
            self._server.close()
        self._flowing.set()
        for link in list(self._links):
            link.abort()
        tasks = [t for link in self._links for t in link.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    # ---- faults ---------------------------------------------------------------------------

    def cut(self) -> int:
        """Resets every connection and refuses new ones until ``restore()``; returns how many."""
        self.state = "cut"
        self.cuts += 1
        self._flowing.set()  # a stalled pump must wake to see its link is gone
        links = list(self._links)
        for link in links:
            link.abort()
        return len(links)

    def stall(self) -> None:
        """Stops delivering anything to clients while keeping every connection open."""
        self.state = "stall"
        self.stalls += 1
        self._flowing.clear()

    def restore(self) -> None:
        """Lets connections through again (a stalled link resumes with nothing lost)."""
        self.state = "up"
        self._flowing.set()
        for link in self._links:
            for chunk in link.held:
                link.server.write(chunk)
            link.held.clear()

    # ---- forwarding -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.state != "up":
            # The far end is unreachable: the client sees its connection reset at once.
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        self.accepted += 1
        link.tasks = [
            asyncio.create_task(self._to_client(up_reader, link)),
            asyncio.create_task(self._to_server(reader, link)),
        ]
        try:
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # One side gone: the other goes too (an AMI session has no half-open state).
            link.abort()
            for task in link.tasks:
                task.cancel()
            await asyncio.wait(link.tasks)
            self._links.discard(link)

    async def _to_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        """Server -> client; while stalled nothing is read, so bytes back up as on a dead route."""
        with contextlib.suppress(ConnectionError):
            while True:
                await self._flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    return
                await self._flowing.wait()
                if link.client.transport.is_closing():
                    return
                link.client.write(data)
                await link.client.drain()

    async def _to_server(self, reader: asyncio.StreamReader, link: _Link) -> None:
        """Client -> server; kept reading while stalled so a client that gives up is noticed."""
        with contextlib.suppress(ConnectionError):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    return
                if not self._flowing.is_set():
                    link.held.append(data)  # e.g. the watchdog's Ping, never answered
                    continue
                for chunk in [*link.held, data]:
                    link.server.write(chunk)
                link.held.clear()
                await link.server.drain()
