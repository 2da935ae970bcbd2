"""A small fake Asterisk Manager Interface server for tests, speaking real AMI framing over TCP.

It sends the greeting line, handles ``Login`` (configurable user and secret; a wrong secret is
answered ``Response: Error`` / ``Message: Authentication failed`` and the connection is closed,
as Asterisk does), answers ``Ping`` and ``Logoff``, answers list actions (``QueueStatus``,
``QueueSummary``, ``CoreShowChannels`` by default, empty) with a real ``EventList``, and lets a
test script any other action, push raw bytes, drop connections, stall, and count what it received.

Usage::

    async with FakeAmiServer(secret="s3cret") as server:
        server.set_list("QueueStatus", "QueueStatusComplete", [{"Event": "QueueParams", ...}])
        server.on("QueuePause", lambda conn, action: conn.respond(action, Message="Paused"))
        ...  # connect a client to server.host, server.port
        await server.push(event("Hangup", Channel="Local/x-00000001;1"))
        await server.wait_until(lambda: server.count("Ping") >= 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

GREETING = "Asterisk Call Manager/11.0.0\r\n"
EOL = "\r\n"

Handler = Callable[["AmiConnection", dict[str, str]], Awaitable[None] | None]


def message(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """Frames headers as one AMI message: ``Key: Value\\r\\n`` lines and a blank line."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return "".join(f"{k}: {v}{EOL}" for k, v in pairs) + EOL


def event(name: str, /, **headers: str) -> str:
    """Frames an ``Event: name`` message with the given headers, in order."""
    return message([("Event", name), *headers.items()])


def parse(raw: str) -> dict[str, str]:
    """Parses one AMI message into a dict (the last of repeated headers wins)."""
    headers: dict[str, str] = {}
    for line in raw.split(EOL):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value[1:] if value.startswith(" ") else value
    return headers


class AmiConnection:
    """One client connection: what it sent us and how to answer it."""

    def __init__(
        self,
        server: FakeAmiServer,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.actions: list[dict[str, str]] = []
        self.sent = bytearray()  # every byte written to this client, in order
        self.closed = False

    async def send(self, data: str | bytes) -> None:
        """Writes raw bytes (str is UTF-8 encoded) to the client and waits for the drain."""
        if self.closed:
            return
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self.sent += payload
        self.writer.write(payload)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def respond(
        self, action: Mapping[str, str], response: str = "Success", **headers: str
    ) -> None:
        """Answers ``action`` with ``Response: <response>``, its ActionID and ``headers``."""
        pairs = [("Response", response)]
        if "ActionID" in action:
            pairs.append(("ActionID", action["ActionID"]))
        await self.send(message([*pairs, *headers.items()]))

    async def respond_list(
        self,
        action: Mapping[str, str],
        complete_event: str,
        events: Iterable[Mapping[str, str]],
        *,
        between: Callable[[int], str | None] | None = None,
    ) -> None:
        """Answers a list action: Success + ``EventList: start``, the events, then the Complete.

        ``between(i)`` may return raw text to interleave before list event ``i`` (e.g. a
        broadcast event), as Asterisk interleaves freely.
        """
        action_id = action.get("ActionID", "")
        await self.respond(action, EventList="start", Message="Events will follow")
        items = list(events)
        for i, headers in enumerate(items):
            if between is not None and (extra := between(i)) is not None:
                await self.send(extra)
            await self.send(message([*headers.items(), ("ActionID", action_id)]))
        await self.send(
            message(
                [
                    ("Event", complete_event),
                    ("ActionID", action_id),
                    ("EventList", "Complete"),
                    ("ListItems", str(len(items))),
                ]
            )
        )

    def drop(self) -> None:
        """Aborts the TCP connection at once (like a crashed PBX or a cut cable)."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()
            self.server._notify()


class FakeAmiServer:
    """A scriptable AMI server on 127.0.0.1 with a random port."""

    def __init__(
        self,
        *,
        username: str = "callcenter",
        secret: str = "secret",
        greeting: str = GREETING,
        port: int = 0,
    ) -> None:
        self.username = username
        self.secret = secret
        self.greeting = greeting
        self.host = "127.0.0.1"
        self.port = port
        self.connections: list[AmiConnection] = []
        self.logins = 0
        self.login_failures = 0
        self.answer_pings = True  # False: Pings are read and counted but never answered
        self.stalled = False  # True: nothing is answered any more (actions are still counted)
        self.handlers: dict[str, Handler] = {}
        self.lists: dict[str, tuple[str, list[dict[str, str]]]] = {}
        for name, complete in (
            ("QueueStatus", "QueueStatusComplete"),
            ("QueueSummary", "QueueSummaryComplete"),
            ("CoreShowChannels", "CoreShowChannelsComplete"),
        ):
            self.set_list(name, complete, [])
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- scripting --------------------------------------------------------------------------

    def on(self, action: str, handler: Handler) -> None:
        """Answers ``Action: <action>`` with ``handler(connection, headers)`` (sync or async).

        A handler replaces the built-in answer, also for Login (call ``login`` to accept) and
        before authentication.
        """
        self.handlers[action.lower()] = handler

    def ignore(self, action: str) -> None:
        """Reads and counts ``Action: <action>`` but never answers it."""
        self.on(action, lambda _conn, _action: None)

    def set_list(
        self, action: str, complete_event: str, events: Iterable[Mapping[str, str]]
    ) -> None:
        """Answers the list action ``action`` with ``events`` and ``complete_event``."""
        self.lists[action.lower()] = (complete_event, [dict(e) for e in events])

    # -- observing --------------------------------------------------------------------------

    @property
    def actions(self) -> list[dict[str, str]]:
        """Every action received, over all connections, in order."""
        return [a for conn in self.connections for a in conn.actions]

    def count(self, action: str) -> int:
        """How many ``Action: <action>`` were received over all connections."""
        name = action.lower()
        return sum(1 for a in self.actions if a.get("Action", "").lower() == name)

    @property
    def live(self) -> list[AmiConnection]:
        """Connections that are still open."""
        return [c for c in self.connections if not c.closed]

    async def wait_until(self, predicate: Callable[[], bool], limit: float = 5.0) -> None:
        """Waits until ``predicate()`` is true; raises TimeoutError after ``limit`` seconds."""

        async def _wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(_wait(), limit)

    # -- acting -----------------------------------------------------------------------------

    async def push(self, data: str | bytes, connection: AmiConnection | None = None) -> None:
        """Sends raw bytes to ``connection`` (default: the newest live one)."""
        conn = connection or self.live[-1]
        await conn.send(data)

    def drop(self) -> None:
        """Aborts every live connection."""
        for conn in self.live:
            conn.drop()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> FakeAmiServer:
        """Starts listening; ``self.port`` is the bound port afterwards."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stops listening, drops every connection and waits for the handlers to finish."""
        if self._server is not None:
            self._server.close()
        self.drop()  # readers see EOF and their handler tasks end on their own
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1)
        for task in list(self._tasks):  # e.g. a scripted handler still waiting on the test
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def __aenter__(self) -> FakeAmiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals --------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wakes every ``wait_until``."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = AmiConnection(self, len(self.connections) + 1, reader, writer)
        self.connections.append(conn)
        self._notify()
        try:
            await conn.send(self.greeting)
            while not conn.closed:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                action = parse(raw.decode("utf-8"))
                conn.actions.append(action)
                self._notify()
                if not self.stalled:
                    await self._answer(conn, action)
        except asyncio.CancelledError:
            # Ends quietly: Python 3.11's start_server callback calls task.exception() on the
            # handler task and would log a spurious CancelledError traceback.
            pass
        finally:
            conn.closed = True
            writer.transport.abort()
            self._tasks.discard(task)
            self._notify()

    async def _answer(self, conn: AmiConnection, action: dict[str, str]) -> None:
        name = action.get("Action", "").lower()
        handler = self.handlers.get(name)
        if handler is not None:
            result: Any = handler(conn, action)
            if inspect.isawaitable(result):
                await result
        elif name == "login":
            await self.login(conn, action)
        elif not conn.authenticated:
            await conn.respond(action, "Error", Message="Authentication Required")
        elif name == "ping":
            if self.answer_pings:
                await conn.respond(action, Ping="Pong", Timestamp="1718030610.123456")
        elif name == "logoff":
            await conn.respond(action, "Goodbye", Message="Thanks for all the fish.")
            conn.drop()
        elif name in self.lists:
            complete, events = self.lists[name]
            await conn.respond_list(action, complete, events)
        else:
            await conn.respond(action, "Error", Message="Invalid/unknown command")

    async def login(self, conn: AmiConnection, action: dict[str, str]) -> None:
        """Answers a Login as Asterisk does (a scripted Login handler may call this late)."""
        if action.get("Username") == self.username and action.get("Secret") == self.secret:
            conn.authenticated = True
            self.logins += 1
            await conn.respond(action, Message="Authentication accepted")
            await conn.send(
                event(
                    "FullyBooted",
                    Privilege="system,all",
                    Uptime="0",
                    LastReload="0",
                    Status="Fully Booted",
                )
            )
        else:
            self.login_failures += 1
            await conn.respond(action, "Error", Message="Authentication failed")
            conn.drop()
        self._notify()
