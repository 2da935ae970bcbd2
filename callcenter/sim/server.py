"""The AMI TCP server of the simulated Asterisk: sessions, login, and the event broadcast.

Simulated time is driven here. With a ``speed`` the scheduler follows the wall clock
(``speed`` simulated seconds per wall second); with ``speed=None`` time only moves when
:meth:`AmiServer.advance` is called, which is how tests step through a scenario.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from callcenter.sim import wire
from callcenter.sim.actions import HANDLERS, Headers, get
from callcenter.sim.engine import SECURITY, Pbx

log = logging.getLogger(__name__)

_HIGH_WATER = 1 << 20  # bytes queued for a client before the clock waits for it
_BATCH = 2000  # scheduler callbacks between two flushes, so slow ticks still stream


@dataclass(frozen=True, slots=True)
class Credentials:
    """The one manager.conf user the simulator accepts."""

    username: str = "callcenter"
    secret: str = "callcenter"


@dataclass(eq=False)
class Session:
    """One connected AMI client."""

    writer: asyncio.StreamWriter
    peer: str
    local: str
    authenticated: bool = False
    username: str = ""
    mask: int = 0
    closing: bool = False
    id: str = ""
    written: int = field(default=0)

    def send(self, text: str) -> None:
        """Writes to the client unless it is gone (the clock waits for slow readers)."""
        if self.closing or self.writer.is_closing():
            return
        data = text.encode()
        self.written += len(data)
        self.writer.write(data)


class AmiServer:
    """Serves a :class:`Pbx` over AMI to any number of clients."""

    def __init__(
        self,
        pbx: Pbx,
        *,
        credentials: Credentials | None = None,
        speed: float | None = 1.0,
        auth_fail_delay: float = 1.0,
        write_timeout: float = 5.0,
        auth_timeout: float = 30.0,
    ) -> None:
        self.pbx = pbx
        self.auth_timeout = auth_timeout  # manager.conf authtimeout
        self.write_timeout = write_timeout  # manager.conf writetimeout
        self.credentials = credentials or Credentials()
        self.speed = speed
        self.auth_fail_delay = auth_fail_delay  # Asterisk sleeps 1 s before the failure
        self.sessions: set[Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._driver: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._wall0 = 0.0
        self._sim0 = 0.0
        self.lag = 0.0  # how far simulated time fell behind the wall clock (load mode)
        # The last actions clients sent (name, headers), so tests can check what arrived.
        self.received: deque[tuple[str, dict[str, str]]] = deque(maxlen=1000)
        pbx.wanted = 0

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listens and starts the clock; returns the bound port."""
        self._server = await asyncio.start_server(self._client, host, port)
        self._wall0 = time.monotonic()
        self._sim0 = self.pbx.sched.now
        if self.speed is not None:
            self._driver = asyncio.create_task(self._drive(), name="sim-clock")
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stops the clock, disconnects every client and stops listening."""
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        if self._server is not None:
            self._server.close()
        for s in list(self.sessions):
            s.closing = True
            s.writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    # ---- simulated time -----------------------------------------------------------------

    def sim_now(self) -> float:
        """Simulated seconds since the start, as the clock says now."""
        if self.speed is None:
            return self.pbx.sched.now
        return self._sim0 + (time.monotonic() - self._wall0) * self.speed

    def wake(self) -> None:
        """Tells the clock a timer was added from outside the scheduler (an AGI answer)."""
        self._wake.set()

    def advance(self, until: float) -> None:
        """Manual mode: runs everything due up to simulated time ``until`` and flushes."""
        sched = self.pbx.sched
        while True:
            ran = sched.run_until(until, _BATCH)
            self.flush()
            if ran < _BATCH:
                break

    def _catch_up(self) -> None:
        if self.speed is not None:
            self.pbx.sched.run_until(self.sim_now())

    async def _drive(self) -> None:
        sched = self.pbx.sched
        speed = self.speed or 1.0
        while True:
            now = self.sim_now()
            nxt = sched.next_time()
            if nxt is None or nxt > now:
                self._wake.clear()
                delay = 1.0 if nxt is None else min(1.0, (nxt - now) / speed)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(delay, 0.0005))
                continue
            self.lag = now - nxt
            sched.run_until(now, _BATCH)
            self.flush()
            await self._backpressure()

    async def _backpressure(self) -> None:
        """Lets slow readers catch up (simulated time lags instead of memory growing);
        one that reads nothing for ``writetimeout`` seconds is dropped, as Asterisk does."""
        for s in list(self.sessions):
            if s.closing or s.writer.transport.get_write_buffer_size() < _HIGH_WATER:
                continue
            try:
                await asyncio.wait_for(s.writer.drain(), self.write_timeout)
            except (TimeoutError, ConnectionError):
                log.warning("AMI client %s too slow; disconnecting", s.peer)
                s.closing = True
                s.writer.transport.abort()
        await asyncio.sleep(0)

    # ---- output ---------------------------------------------------------------------------

    def _update_wanted(self) -> None:
        wanted = 0
        for s in self.sessions:
            if s.authenticated:
                wanted |= s.mask
        self.pbx.wanted = wanted

    def flush(self) -> None:
        """Writes the queued events to every session that wants them."""
        out = self.pbx.take_output()
        if not out:
            return
        by_mask: dict[int, str] = {}
        for s in self.sessions:
            if not s.authenticated or not s.mask:
                continue
            data = by_mask.get(s.mask)
            if data is None:
                if s.mask == wire.ALL_CLASSES:
                    data = "".join(text for _, text in out)
                else:
                    data = "".join(text for bits, text in out if bits & s.mask)
                by_mask[s.mask] = data
            if data:
                s.send(data)
        self._wake.set()

    # ---- a client ---------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        sock = writer.get_extra_info("sockname") or ("?", 0)
        session = Session(writer, f"{peer[0]}/{peer[1]}", f"{sock[0]}/{sock[1]}")
        session.id = self.pbx.ids.session()
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        session.send(wire.GREETING)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        buffer = ""
        try:
            while not session.closing:
                if session.authenticated:
                    chunk = await reader.read(65536)
                else:
                    # manager.conf authtimeout: a session that does not log in is closed.
                    chunk = await asyncio.wait_for(reader.read(65536), self.auth_timeout)
                if not chunk:
                    break
                buffer += decoder.decode(chunk).replace("\r\n", "\n").replace("\n", "\r\n")
                while "\r\n\r\n" in buffer and not session.closing:
                    block, buffer = buffer.split("\r\n\r\n", 1)
                    await self._action(session, wire.parse_action(block))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down: end quietly (a re-raise is logged by asyncio.streams)
        finally:
            self.sessions.discard(session)
            self._update_wanted()
            session.closing = True
            writer.close()

    async def _action(self, session: Session, h: Headers) -> None:
        if not h:
            return
        name = get(h, "Action").lower()
        aid = get(h, "ActionID") or None
        if name not in ("login", "ping"):  # never keep a Login's secret
            self.received.append((name, {k: v for k, v in h if k.lower() != "secret"}))
        self._catch_up()
        self.flush()
        if name == "login":
            await self._login(session, h, aid)
        elif name == "logoff":
            session.send(wire.response("Goodbye", aid, ("Message", "Thanks for all the fish.")))
            await self._close(session)
        elif not name:
            session.send(wire.error(aid, "Missing action in request"))
        elif not session.authenticated:
            session.send(wire.error(aid, "Permission denied"))
        elif name == "ping":
            ts = wire.fmt_ts(self.pbx.now_epoch())
            session.send(wire.response("Success", aid, ("Ping", "Pong"), ("Timestamp", ts)))
        elif name == "events":
            mask = wire.event_mask(get(h, "EventMask"))
            if mask is None:
                session.send(wire.error(aid, "Invalid event mask"))
            else:
                session.mask = mask
                self._update_wanted()
                on = "On" if mask else "Off"
                session.send(wire.response("Success", aid, ("Events", on)))
        elif name in HANDLERS:
            session.send(HANDLERS[name](self.pbx, h, aid))
        else:
            session.send(
                wire.error(
                    aid,
                    f"Invalid/unknown command: {get(h, 'Action')}. "
                    "Use Action: ListCommands to show available commands.",
                )
            )
        self.flush()

    async def _login(self, session: Session, h: Headers, aid: str | None) -> None:
        if session.authenticated:
            session.send(wire.success(aid, "Already authenticated"))
            return
        creds = self.credentials
        if get(h, "Username") != creds.username or get(h, "Secret") != creds.secret:
            # Asterisk: sleep(1), "Authentication failed", then it closes the session.
            await asyncio.sleep(self.auth_fail_delay)
            session.send(wire.error(aid, "Authentication failed"))
            await self._close(session)
            return
        events = get(h, "Events", "on")
        session.authenticated = True
        session.username = creds.username
        session.mask = wire.event_mask(events) or 0
        self._update_wanted()
        session.send(wire.success(aid, "Authentication accepted"))
        if session.mask & wire.CLASSES["system"]:
            uptime = int(self.pbx.now_epoch()) - self.pbx.boot_epoch
            session.send(
                "Event: FullyBooted\r\nPrivilege: system,all\r\n"
                f"Uptime: {uptime}\r\nLastReload: {uptime}\r\nStatus: Fully Booted\r\n\r\n"
            )
        tv = _event_tv(self.pbx.now_epoch())
        self.pbx.emit(
            "SuccessfulAuth",
            SECURITY,
            wire.lines(
                [
                    ("EventTV", tv),
                    ("Severity", "Informational"),
                    ("Service", "AMI"),
                    ("EventVersion", 1),
                    ("AccountID", creds.username),
                    ("SessionID", session.id),
                    ("LocalAddress", f"IPV4/TCP/{session.local}"),
                    ("RemoteAddress", f"IPV4/TCP/{session.peer}"),
                    ("UsingPassword", 0),
                    ("SessionTV", tv),
                ]
            ),
        )

    async def _close(self, session: Session) -> None:
        session.closing = True
        with contextlib.suppress(ConnectionError):
            await session.writer.drain()
        session.writer.close()


def _event_tv(epoch: float) -> str:
    """A security event's time: ``2026-11-28T16:46:02.852+0000``."""
    ms = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{ms:03d}+0000"
