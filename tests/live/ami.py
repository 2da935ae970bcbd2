"""The test's own AMI driver: actions with replies, every event kept, waits on events.

Deliberately independent of the service's AMI adapter (and of panoramisk): the driver is the
"operator's hands" on the PBX, so a defect in the service's adapter cannot hide in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

Message = dict[str, str]


@dataclass
class AmiDriver:
    """One AMI session (``harness`` user by default) on a live Asterisk."""

    host: str
    port: int
    username: str
    secret: str
    events: list[Message] = field(default_factory=list, repr=False)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _pending: dict[str, asyncio.Future[Message]] = field(default_factory=dict)
    _lists: dict[str, list[Message]] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def connect(self, within: float = 10.0) -> AmiDriver:
        """Connects and logs in; raises if the login is refused."""
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), within
        )
        await asyncio.wait_for(self._reader.readline(), within)  # the greeting line
        self._task = asyncio.create_task(self._read())
        reply = await self.action("Login", Username=self.username, Secret=self.secret)
        if reply.get("Response") != "Success":
            raise AssertionError(f"AMI login refused: {reply}")
        return self

    async def close(self) -> None:
        """Logs off and closes the connection."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.action("Logoff"), 2)
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _read(self) -> None:
        assert self._reader is not None
        decoder_buffer: list[str] = []
        while True:
            raw = await self._reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                decoder_buffer.append(line)
                continue
            message: Message = {}
            for item in decoder_buffer:
                key, _, value = item.partition(":")
                message.setdefault(key.strip(), value.strip())
            decoder_buffer = []
            if message:
                await self._dispatch(message)

    async def _dispatch(self, message: Message) -> None:
        action_id = message.get("ActionID", "")
        if "Response" in message and action_id in self._pending:
            if message.get("EventList") == "start":
                self._lists[action_id] = []
            future = self._pending.pop(action_id)
            if not future.done():
                future.set_result(message)
        elif "Event" in message:
            if action_id in self._lists:
                self._lists[action_id].append(message)
            self.events.append(message)
            async with self._changed:
                self._changed.notify_all()

    async def action(self, name: str, within: float = 10.0, **headers: str) -> Message:
        """Sends an action and returns its response."""
        assert self._writer is not None
        action_id = f"drv-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            for item in value.split("\n") if key == "Variable" else [value]:
                lines.append(f"{key}: {item}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        await self._writer.drain()
        reply = await asyncio.wait_for(future, within)
        reply["_ActionID"] = action_id
        return reply

    async def list_action(self, name: str, within: float = 10.0, **headers: str) -> list[Message]:
        """Sends a list action (QueueStatus, CoreShowChannels) and returns its events."""
        reply = await self.action(name, within, **headers)
        action_id = reply["_ActionID"]
        await self.wait_for(
            lambda e: e.get("ActionID") == action_id and e.get("EventList") == "Complete",
            within,
        )
        return [e for e in self._lists.pop(action_id, []) if e.get("EventList") != "Complete"]

    async def wait_for(
        self, accept: Callable[[Message], bool], within: float = 30.0, since: int = 0
    ) -> Message:
        """The first event (from index ``since``) that ``accept`` takes; waits for it."""
        async with asyncio.timeout(within):
            checked = since
            while True:
                for event in self.events[checked:]:
                    if accept(event):
                        return event
                checked = max(checked, len(self.events))
                async with self._changed:
                    await self._changed.wait()

    def mark(self) -> int:
        """An index to pass as ``since``: only events after now."""
        return len(self.events)
