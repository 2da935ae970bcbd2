"""Starts the IVR inside the service: the FastAGI server and the survey call-back dialer.

One call from the composition root after the database pool exists::

    self.ivr = await start_ivr(self)      # Service.start(); MenuError stops the start-up
    await self.ivr.close()                # Service.stop()

and one line for the metrics: ``registry.register(IvrCollector(service.ivr.stats))``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from callcenter.ivr.desk import PgTicketDesk, TicketDesk
from callcenter.ivr.dialer import run_callback_dialer
from callcenter.ivr.menu import IvrMenu, load_menu
from callcenter.ivr.server import FastAgiServer
from callcenter.ivr.stats import IvrStats

log = structlog.get_logger(__name__)

# Türkiye has been UTC+3 all year since 2016: the fallback when tzdata is missing.
_TURKEY = timezone(timedelta(hours=3))


def local_zone(name: str) -> tzinfo:
    """The call center's time zone, or UTC+3 when the system has no tz database."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _TURKEY


def local_today(zone: tzinfo) -> Callable[[], date]:
    """A clock for the flows: today's date where the call center is."""
    return lambda: datetime.now(zone).date()


@dataclass
class IvrRuntime:
    """The running IVR: its server, its menu, and the dialer task if call-backs are on."""

    server: FastAgiServer
    menu: IvrMenu
    dialer: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stats(self) -> IvrStats:
        """The server's counters (for IvrCollector)."""
        return self.server.stats

    async def close(self) -> None:
        """Stops the dialer and the server; sessions in progress are ended."""
        self.stop.set()
        if self.dialer is not None:
            # asyncio.wait, not a suppressed await: a cancellation of close() itself must
            # propagate, and a dialer that does not stop in time is cancelled.
            done, _ = await asyncio.wait([self.dialer], timeout=5.0)
            if not done:
                self.dialer.cancel()
                await asyncio.wait([self.dialer])
        await self.server.close()


async def start_ivr(
    service: Any,
    desk: TicketDesk | None = None,
    *,
    dialer: bool = True,
    sock: socket.socket | None = None,
) -> IvrRuntime:
    """Validates the menu file, then serves the IVR and, if enabled, dials survey call-backs."""
    from callcenter.categories import categories

    settings = service.settings
    codes = [c.code for c in categories(settings)]
    menu = load_menu(settings.ivr_menu or None, known_categories=codes)
    zone = local_zone(getattr(settings, "timezone", "Europe/Istanbul"))
    desk = desk or PgTicketDesk(service.pool, settings)
    server = FastAgiServer(
        menu,
        desk,
        today=local_today(zone),
        allowed_peers=await allowed_peers(settings),
        secret=getattr(settings, "fastagi_secret", ""),
        call_exists=_call_check(service),
    )
    await server.start(settings.fastagi_host, settings.fastagi_port, sock)
    runtime = IvrRuntime(server, menu)
    # Call-backs originate over the first Asterisk server's AMI link.
    clients = list(getattr(service, "clients", {}).values())
    if dialer and menu.callbacks.enabled and clients and service.pool is not None:
        runtime.dialer = asyncio.create_task(
            run_callback_dialer(
                service.pool, clients[0].action, menu.callbacks, zone, runtime.stop
            ),
            name="survey-dialer",
        )
    log.info("ivr_started", menu=menu.source, callbacks=runtime.dialer is not None)
    return runtime


LOOPBACK = ("127.0.0.0/8", "::1")


async def allowed_peers(settings: Any) -> list[str]:
    """``fastagi_allowed_peers``, or loopback plus the addresses of the configured PBXs."""
    configured = tuple(getattr(settings, "fastagi_allowed_peers", ()))
    if configured:
        return list(configured)
    peers = list(LOOPBACK)
    loop = asyncio.get_running_loop()
    for server in settings.asterisk:
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(server.host, None), 5.0)
        except (OSError, TimeoutError) as exc:
            log.warning("fastagi_peer_unresolved", server=server.name, error=str(exc))
            continue
        peers.extend(str(info[4][0]) for info in infos)
    return sorted(set(peers))


def _call_check(service: Any) -> Callable[[Any], bool] | None:
    """A check that a session's call is live on a watched PBX (None: nothing to check against)."""
    tracker = getattr(service, "tracker", None)
    if tracker is None or not getattr(service.settings, "fastagi_verify_call", True):
        return None
    names = [s.name for s in service.settings.asterisk]

    def exists(call: Any) -> bool:
        if any(
            (name, call.linkedid) in tracker.calls or (name, call.uniqueid) in tracker.calls
            for name in names
        ):
            return True
        # While an AMI link is down the service cannot see new calls: refusing them would turn
        # every caller of that PBX away from the IVR. The peer list and the secret still hold.
        clients = getattr(service, "clients", {}) or {}
        return any(not getattr(client, "connected", True) for client in clients.values())

    return exists


async def start_fastagi(service: Any) -> FastAgiServer:
    """Serves the IVR without the call-back dialer; the server's ``close()`` stops it."""
    return (await start_ivr(service, dialer=False)).server
