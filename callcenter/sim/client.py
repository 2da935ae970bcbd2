"""A minimal recording AMI client (plain asyncio) for tests, the benchmark and the demo.

It keeps every message it receives, in order, in the recording format of the traces:
``{"t": seconds, "raw": "<message incl. CRLFCRLF>"}`` (the first record is the greeting).
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import time


class AmiClient:
    """Connects, logs in, sends actions and collects the messages the server sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.messages: list[tuple[float, str]] = []  # (monotonic time, raw message)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, host: str, port: int) -> AmiClient:
        """Opens a connection (the greeting is the first recorded message)."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                now = time.monotonic()
                self._buffer += self._decoder.decode(chunk)
                if not self.messages and "\r\n" in self._buffer:
                    line, self._buffer = self._buffer.split("\r\n", 1)
                    self.messages.append((now, line + "\r\n"))
                while "\r\n\r\n" in self._buffer:
                    msg, self._buffer = self._buffer.split("\r\n\r\n", 1)
                    self.messages.append((now, msg + "\r\n\r\n"))
                self._arrived.set()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed.set()
            self._arrived.set()

    def send(self, action: str, **headers: object) -> str:
        """Sends an action; returns its ActionID. ``Variable=[…]`` repeats the header."""
        aid = str(headers.pop("ActionID", f"t-{next(self._ids)}"))
        lines = [f"Action: {action}", f"ActionID: {aid}"]
        for key, value in headers.items():
            values = value if isinstance(value, list | tuple) else [value]
            lines.extend(f"{key}: {v}" for v in values)
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return aid

    async def wait_for(self, predicate: str, start: int = 0) -> int:
        """Waits until a message containing ``predicate`` arrives; returns its index."""
        index = start
        while True:
            while index < len(self.messages):
                if predicate in self.messages[index][1]:
                    return index
                index += 1
            if self.closed.is_set():
                raise ConnectionError(f"connection closed before {predicate!r}")
            self._arrived.clear()
            await self._arrived.wait()

    async def action(self, action: str, **headers: object) -> str:
        """Sends an action and waits for its response (or, for lists, its Complete)."""
        start = len(self.messages)
        aid = self.send(action, **headers)
        index = await self.wait_for(f"ActionID: {aid}\r\n", start)
        first = self.messages[index][1]
        if "EventList: start" in first:
            index = await self.wait_for("EventList: Complete", index)
        return first

    async def login(
        self, username: str = "callcenter", secret: str = "callcenter", events: str = "on"
    ) -> str:
        """Logs in; returns the response text."""
        return await self.action("Login", Username=username, Secret=secret, Events=events)

    async def sync(self) -> None:
        """Round-trips a Ping: everything the server sent before it has arrived."""
        await self.action("Ping")

    async def close(self) -> None:
        """Closes the connection."""
        self.writer.close()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
