"""WebSocket fan-out: each client has a bounded queue and its own writer task.

``publish`` never waits: it serialises a message once and puts it on the queue of every client
subscribed to the topic. A client whose queue is full (too slow) or whose send fails or stalls
(dead) is dropped, so one bad client never delays the others. Usage::

    client = hub.add(ws, topics={"agent:Zeynep Kaya"})
    try:
        async for _ in ws: ...
    finally:
        hub.remove(client)

    hub.publish(["agent:Zeynep Kaya"], {"type": "pop", ...})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from typing import Any

import structlog
from aiohttp import WSCloseCode, web

log = structlog.get_logger(__name__)


class Client:
    """One connected WebSocket with its outgoing queue and writer task."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, topics: set[str], size: int) -> None:
        self.hub = hub
        self.ws = ws
        self.topics = topics
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.closed = False
        self.sent = 0
        self.task = asyncio.create_task(self._write(), name="ws-writer")

    def offer(self, text: str) -> bool:
        """Queues a message without waiting; a full queue drops the client."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.hub.drop(self, "slow")
            return False
        return True

    async def _write(self) -> None:
        """Sends queued messages in order; a failed or stalled send drops the client."""
        while True:
            text = await self.queue.get()
            try:
                await asyncio.wait_for(self.ws.send_str(text), self.hub.send_timeout)
            except (TimeoutError, ConnectionError, RuntimeError) as exc:
                self.hub.drop(self, "dead", error=repr(exc))
                return
            self.sent += 1


class Hub:
    """Topic-based fan-out of JSON messages to WebSocket clients."""

    def __init__(self, *, queue_size: int = 256, send_timeout: float = 5.0) -> None:
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.topics: dict[str, set[Client]] = {}
        self.clients: set[Client] = set()
        self.published = 0
        self.dropped: dict[str, int] = {"slow": 0, "dead": 0}
        self._closing: set[asyncio.Task[Any]] = set()

    def add(self, ws: web.WebSocketResponse, topics: Iterable[str]) -> Client:
        """Registers a prepared WebSocket for ``topics`` and starts its writer."""
        client = Client(self, ws, set(topics), self.queue_size)
        self.clients.add(client)
        for topic in client.topics:
            self.topics.setdefault(topic, set()).add(client)
        return client

    def remove(self, client: Client) -> None:
        """Unregisters a client and stops its writer (the connection is the caller's)."""
        client.closed = True
        client.task.cancel()
        self.clients.discard(client)
        for topic in client.topics:
            members = self.topics.get(topic)
            if members is not None:
                members.discard(client)
                if not members:
                    del self.topics[topic]

    def drop(self, client: Client, reason: str, **details: Any) -> None:
        """Removes a slow or dead client and closes its connection in the background."""
        if client.closed:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        log.warning("ws_client_dropped", reason=reason, topics=sorted(client.topics), **details)
        self.remove(client)
        code = WSCloseCode.TRY_AGAIN_LATER if reason == "slow" else WSCloseCode.GOING_AWAY
        task = asyncio.create_task(self._close(client.ws, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        """Closes a dropped connection, giving up after the send timeout."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()), self.send_timeout)

    def subscribers(self, topics: Iterable[str]) -> set[Client]:
        """The clients subscribed to any of ``topics``."""
        found: set[Client] = set()
        for topic in topics:
            found |= self.topics.get(topic, set())
        return found

    def publish(self, topics: str | Iterable[str], message: Any) -> int:
        """Sends a JSON message to the clients of the topics; returns how many took it."""
        if isinstance(topics, str):
            topics = (topics,)
        clients = self.subscribers(topics)
        if not clients:
            return 0
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        self.published += 1
        return sum(client.offer(text) for client in list(clients))

    async def close(self) -> None:
        """Closes every client connection (at shutdown)."""
        for client in list(self.clients):
            self.remove(client)
            await self._close(client.ws, WSCloseCode.GOING_AWAY, "shutdown")
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task

    def stats(self) -> dict[str, Any]:
        """Counters for health and metrics."""
        return {
            "clients": len(self.clients),
            "published": self.published,
            "dropped": dict(self.dropped),
        }
