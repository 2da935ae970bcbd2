"""The real service and its whole web app, running in a thread of its own for synchronous clients.

Schemathesis speaks HTTP with ``requests`` (blocking), so the app gets its own event loop in a
background thread: the same ``Service.start`` and ``default_features()`` as ``callcenter run``,
on a real socket, with PostgreSQL, tokens for every role and a few calls and tickets to find.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.tickets import open_ticket
from callcenter.web.auth import create_token, revoke_token
from callcenter.web.server import default_features, make_app
from tests.conftest import truncate_all
from tests.fuzz.harness import trace

T = TypeVar("T")
_START_S = 60.0
INBOUND_SECRET = "whsec_" + "A" * 43 + "="


@dataclass
class LiveApp:
    """A running service: its base URL, tokens by role, and ids of things that exist."""

    base: str
    tokens: dict[str, str]
    linkedids: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)


class AppThread:
    """Runs the service and its app on a private event loop in a daemon thread."""

    def __init__(self, db_url: str, spool: Path) -> None:
        self.settings = Settings(
            database_url=db_url,
            spool_dir=str(spool),
            fastagi_enabled=False,
            db_flush_interval=0.05,
            webhook_inbound_secrets=(INBOUND_SECRET,),
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-app", daemon=True)
        self.service: Service | None = None
        self.runner: web.AppRunner | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = _START_S) -> T:
        """Runs a coroutine on the app's loop and waits (bounded) for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> LiveApp:
        """Starts the loop, the service, the web app, and seeds calls, tickets and tokens."""
        self.thread.start()
        return self.run(self._start())

    async def _start(self) -> LiveApp:
        service = self.service = Service(self.settings)
        await service.start(ami=False)
        self.runner = web.AppRunner(make_app(service, default_features()), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        pool = service.pool
        # The session database is shared with other tests' rows (e.g. tickets with fixed
        # references): start from empty tables, as the `pool` fixture does.
        await truncate_all(pool)
        tokens = {}
        for role in ("supervisor", "admin", "integration"):
            tokens[role], _ = await create_token(pool, role=role, name=f"fuzz-{role}")
        tokens["agent"], _ = await create_token(
            pool, role="agent", name="fuzz-agent", agent="Zeynep Kaya", interface="PJSIP/1001"
        )
        revoked, principal = await create_token(pool, role="admin", name="fuzz-revoked")
        await revoke_token(pool, principal.token_id)
        tokens["revoked"] = revoked
        # A recorded trace, so calls exist (live and in the log) for dispositions and pops.
        live = LiveApp(f"http://127.0.0.1:{port}", tokens)
        for ts, text in trace("concurrent"):
            service.dispatch(service.pipeline.feed_text("pbx1", text, ts))
        live.linkedids = sorted({linkedid for _, linkedid in service.tracker._ended})
        for number in ("05321110001", "+905321110002"):
            ticket = await open_ticket(
                pool, category="bilgi", caller_number=number, channel="api", note="fuzz"
            )
            live.references.append(ticket.reference)
        return live

    def stop(self) -> None:
        """Stops the app and the service, then the loop and its thread (all bounded)."""
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.service is not None:
            await self.service.stop()
