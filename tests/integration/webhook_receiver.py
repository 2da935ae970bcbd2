"""A real aiohttp webhook receiver for tests: answers, fails, hangs, 429s or 410s on command.

Every request's signature is checked with the ``standardwebhooks`` reference library: with its
own ``verify`` (real clock) or, when the sender runs on a simulated clock, by re-signing with
``Webhook.sign`` at the header's timestamp (the library needs UTC datetimes).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MODES = ("ok", "fail", "hang", "reset", "429", "410")
RECEIVER = web.AppKey("receiver", object)


@dataclass
class Received:
    """One request as the receiver saw it."""

    msg_id: str
    timestamp: int
    body: dict[str, Any]
    verified: bool
    answered: int | None  # HTTP status sent back, None if the request got no answer
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """The receiving end of a webhook subscription."""

    secret: str
    realtime: bool = True
    mode: str = "ok"
    retry_after: str = "120"
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _hang: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> Counter[str]:
        """How many times each webhook-id was answered with a 2xx."""
        return Counter(r.msg_id for r in self.requests if r.answered and r.answered < 300)

    def _verified(self, body: str, headers: dict[str, str]) -> bool:
        hook = Webhook(self.secret)
        try:
            if self.realtime:
                hook.verify(body, headers)
                return True
            stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
            expected = hook.sign(headers["webhook-id"], stamp, body)
            return expected in headers["webhook-signature"].split(" ")
        except (WebhookVerificationError, KeyError, ValueError):
            return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        text = await request.text()
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = Received(
            msg_id=headers.get("webhook-id", ""),
            timestamp=int(headers.get("webhook-timestamp", "0")),
            body=json.loads(text),
            verified=self._verified(text, headers),
            answered=None,
            text=text,
            headers=headers,
        )
        self.requests.append(received)
        if self.mode == "hang":
            await self._hang.wait()
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise web.HTTPInternalServerError()
        status = {"ok": 204, "fail": 500, "429": 429, "410": 410}.get(self.mode, 500)
        if not received.verified:
            status = 401
        received.answered = status
        hdrs = {"Retry-After": self.retry_after} if status == 429 else {}
        return web.Response(status=status, headers=hdrs, text="" if status == 204 else "nope")

    async def start(self) -> None:
        """Listens on 127.0.0.1 (the same port after a stop, so 'down' can end)."""
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Stops listening: senders get connection refused."""
        self._hang.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._hang = asyncio.Event()
