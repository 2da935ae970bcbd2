"""The FastAGI server: accepts Asterisk's connections and drives the pure IVR over them.

Routes (the path of ``agi://callcenter:4573/<route>``; arguments after it in the dialplan):

* ``ivr`` (linkedid): the menus, from the start menu.
* ``survey`` (linkedid, queue, agent): the survey after the agent hung up.
* ``survey-callback`` (linkedid, ticket id, reference): the survey on a call-back.

A session that breaks (half a header, a stall, garbage, a hang-up) ends alone: the header has a
deadline and a size limit, every answer a deadline, and nothing here blocks the event loop.

Nobody is trusted by default (docs/security.md): a connection from a peer outside
``allowed_peers`` is closed before a byte is read; with a ``secret``, the AGI URL must carry it
(``agi://callcenter:4573/ivr?secret=…``); with ``call_exists``, the call the session names must
be a live call on an Asterisk server this service watches over AMI.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date
from urllib.parse import parse_qs

import structlog

from callcenter.events import is_withheld
from callcenter.ivr.agi import ESCAPE_ALL, HEADER_END, AgiChannel, AgiError, AgiHangup, parse_env
from callcenter.ivr.desk import TicketDesk
from callcenter.ivr.engine import IvrSession
from callcenter.ivr.menu import IvrMenu
from callcenter.ivr.stats import IvrStats
from callcenter.ivr.steps import (
    Ask,
    CallInfo,
    Done,
    Failed,
    Hangup,
    Keys,
    LookupStatus,
    OpenTicket,
    RecordSurvey,
    Reply,
    Request,
    Sound,
    Step,
    ToQueue,
)
from callcenter.logs import mask_number

log = structlog.get_logger(__name__)

USER_EVENT = "CallcenterIvr"  # the UserEvent name the flows' results travel in
# The survey's result travels under its own name: the call tracker keeps the IVR's result.
SURVEY_EVENT = "CallcenterSurvey"


def call_info(env: Mapping[str, str], today: date) -> CallInfo:
    """What the IVR knows about a call, from the AGI environment."""
    args = tuple(env[f"agi_arg_{i}"] for i in range(1, 20) if f"agi_arg_{i}" in env)
    number = env.get("agi_callerid", "")
    name = env.get("agi_calleridname", "")
    return CallInfo(
        today=today,
        channel=env.get("agi_channel", ""),
        uniqueid=env.get("agi_uniqueid", ""),
        linkedid=(args[0] if args and args[0] else env.get("agi_uniqueid", "")),
        # A withheld number ("anonymous") is no number: tickets must not be filed under it.
        caller_number=number if number and not is_withheld(number) else None,
        caller_name=name if name and not is_withheld(name) else None,
        language=env.get("agi_language", ""),
        args=args,
    )


async def collect(channel: AgiChannel, say: tuple[Sound, ...], ask: Ask) -> Keys:
    """Plays the sounds (a key interrupts them) and collects the caller's entry."""
    digits = ""
    for sound in say:
        key = await _say(channel, sound, ESCAPE_ALL)
        if key:
            digits = key
            break
    if digits == ask.terminator:
        return Keys("")
    while len(digits) < ask.max_digits:
        key = await channel.wait_for_digit(ask.interdigit_s if digits else ask.timeout_s)
        if not key:
            return Keys(digits, timed_out=not digits)
        if key == ask.terminator:
            break
        digits += key
    return Keys(digits)


async def _say(channel: AgiChannel, sound: Sound, escape: str) -> str:
    return await channel.stream_file(sound.sound, escape)


_REFUSED = ("peer_refused", "bad_secret", "unknown_call")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_peers(peers: Iterable[str]) -> list[IpNetwork]:
    """Addresses and networks (``10.0.0.5``, ``10.0.0.0/24``); ValueError names a bad one."""
    nets = []
    for peer in peers:
        try:
            nets.append(ipaddress.ip_network(peer.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {peer!r}") from None
    return nets


def _host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


class FastAgiServer:
    """Serves the IVR routes to Asterisk; one task per connection, all bounded."""

    def __init__(
        self,
        menu: IvrMenu,
        desk: TicketDesk,
        *,
        today: Callable[[], date] = date.today,
        header_timeout: float = 5.0,
        reply_timeout: float = 300.0,
        request_timeout: float = 10.0,
        max_header_bytes: int = 16384,
        stats: IvrStats | None = None,
        allowed_peers: Iterable[str] | None = None,
        secret: str = "",
        call_exists: Callable[[CallInfo], bool] | None = None,
        verify_wait_s: float = 2.0,
    ) -> None:
        self.menu = menu
        self.desk = desk
        self.today = today
        self.header_timeout = header_timeout
        # Long enough for the longest prompt to play; Asterisk answers STREAM FILE at its end.
        self.reply_timeout = reply_timeout
        self.request_timeout = request_timeout
        self.max_header_bytes = max_header_bytes
        self.stats = stats or IvrStats()
        # None: any peer (tests that drive the server directly); the service always passes a list.
        self.allowed_peers = None if allowed_peers is None else parse_peers(allowed_peers)
        self.secret = secret
        self.call_exists = call_exists
        # The AGI may connect a moment before the AMI events of its channel are processed.
        self.verify_wait_s = verify_wait_s
        self.server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._routes: dict[str, Callable[[AgiChannel, CallInfo], Awaitable[None]]] = {
            "ivr": self._ivr,
            "survey": self._survey,
            "survey-callback": self._survey_callback,
        }

    @property
    def port(self) -> int:
        """The port the server listens on (useful when started on port 0)."""
        assert self.server is not None and self.server.sockets
        return int(self.server.sockets[0].getsockname()[1])

    async def start(
        self, host: str, port: int, sock: socket.socket | None = None
    ) -> asyncio.Server:
        """Starts listening, on ``sock`` if given (bound before the service connected)."""
        if sock is not None:
            self.server = await asyncio.start_server(
                self._handle, sock=sock, limit=self.max_header_bytes
            )
        else:
            self.server = await asyncio.start_server(
                self._handle, host, port, limit=self.max_header_bytes
            )
        log.info("fastagi_listening", host=host, port=self.port)
        return self.server

    async def close(self) -> None:
        """Stops listening and ends the sessions in progress."""
        if self.server is not None:
            self.server.close()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(self._sessions, timeout=5.0)
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self.server.wait_closed()

    # ---- one connection ------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self.stats.active += 1
        reason: str | None = None
        route = "?"
        try:
            reason, env = None, None
            if not self._peer_allowed(writer.get_extra_info("peername")):
                reason = "peer_refused"
            else:
                reason, env = await self._read_header(reader)
            if env is not None:
                script, _, query = env.get("agi_network_script", "").partition("?")
                route = script.strip("/")
                handler = self._routes.get(route)
                if handler is None:
                    reason = "no_route"
                elif not self._secret_ok(query):
                    reason = "bad_secret"
                elif not await self._call_known(call_info(env, self.today())):
                    reason = "unknown_call"
                else:
                    self.stats.sessions[route] += 1
                    call = call_info(env, self.today())
                    structlog.contextvars.bind_contextvars(linkedid=call.linkedid, route=route)
                    channel = AgiChannel(reader, writer, env, self.reply_timeout)
                    await handler(channel, call)
        except AgiError as exc:
            reason = "protocol"
            log.warning("fastagi_protocol_error", error=str(exc))
        except TimeoutError:
            reason = "timeout"
        except (ConnectionError, OSError):
            reason = "connection"
        except Exception:
            reason = "error"
            log.exception("fastagi_session_failed")
        finally:
            self.stats.active -= 1
            if reason is not None:
                self.stats.broken[reason] += 1
                if reason in _REFUSED:
                    log.warning("fastagi_refused", reason=reason, peer=_host(writer))
                else:
                    log.info("fastagi_session_broken", reason=reason, route=route)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            structlog.contextvars.unbind_contextvars("linkedid", "route")
            self._sessions.discard(task)

    def _peer_allowed(self, peer: object) -> bool:
        """Whether the connecting address is one of the allowed peers."""
        if self.allowed_peers is None:
            return True
        try:
            address = ipaddress.ip_address(peer[0])  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            return False  # a Unix socket or no address at all: not a PBX we know
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allowed_peers)

    def _secret_ok(self, query: str) -> bool:
        """Whether the AGI URL carries the configured secret (always, when none is set)."""
        if not self.secret:
            return True
        given = parse_qs(query).get("secret", [""])[0]
        return hmac.compare_digest(given.encode(), self.secret.encode())

    async def _call_known(self, call: CallInfo) -> bool:
        """Whether the session's call is live on a watched PBX (waits briefly for its events)."""
        if self.call_exists is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.verify_wait_s
        while not self.call_exists(call):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _read_header(
        self, reader: asyncio.StreamReader
    ) -> tuple[str | None, dict[str, str] | None]:
        """Reads the environment block, or says why there is none."""
        try:
            async with asyncio.timeout(self.header_timeout):
                block = await reader.readuntil(HEADER_END)
        except TimeoutError:
            return "header_timeout", None
        except asyncio.IncompleteReadError:
            return "header_incomplete", None
        except asyncio.LimitOverrunError:
            return "header_too_long", None
        env = parse_env(block)
        if "agi_network_script" not in env:
            return "protocol", None
        return None, env

    # ---- routes --------------------------------------------------------------------------

    async def _ivr(self, channel: AgiChannel, call: CallInfo) -> None:
        await self._drive(channel, call, "ivr", IvrSession(self.menu, call))

    async def _survey(self, channel: AgiChannel, call: CallInfo) -> None:
        args = (*call.args, "", "", "")
        params = {"kind": "after_call", "queue": args[1], "agent": args[2]}
        session = IvrSession(
            self.menu, call, flow=self.menu.survey_flow, params=params, language=call.language
        )
        await self._drive(channel, call, "survey", session)

    async def _survey_callback(self, channel: AgiChannel, call: CallInfo) -> None:
        args = (*call.args, "", "", "")
        params = {"kind": "callback", "callback_id": args[1], "ticket_reference": args[2]}
        if args[1].isdigit():
            await self._perform_safely(self.desk.callback_reached(int(args[1])))
        session = IvrSession(self.menu, call, flow=self.menu.survey_flow, params=params)
        await self._drive(channel, call, "survey-callback", session)

    # ---- the driver ----------------------------------------------------------------------

    async def _drive(
        self, channel: AgiChannel, call: CallInfo, route: str, ivr: IvrSession
    ) -> None:
        """Runs the session's steps on the channel until it ends or the caller hangs up."""
        log.info("ivr_session", caller=mask_number(call.caller_number or ""))
        step = ivr.start()
        try:
            while True:
                await self._apply(channel, step, SURVEY_EVENT if ivr.post_call else USER_EVENT)
                if step.ask is not None:
                    step = ivr.feed(await collect(channel, step.say, step.ask))
                    continue
                for sound in step.say:
                    await _say(channel, sound, "")
                if step.request is not None:
                    step = ivr.feed(await self._perform(step.request, call))
                    continue
                end = "queue" if isinstance(step.end, ToQueue) else "hangup"
                assert isinstance(step.end, ToQueue | Hangup)
                self.stats.endings[(route, end)] += 1
                log.info("ivr_end", end=end, path=">".join(ivr.path), results=ivr.results)
                return
        except AgiHangup:
            self.stats.hangups[route] += 1
            log.info("ivr_caller_hung_up", path=">".join(ivr.path))
            for request in ivr.hangup():
                await self._perform(request, call)
        finally:
            for flow, result in ivr.results:
                self.stats.flow_results[(flow, result)] += 1

    async def _apply(self, channel: AgiChannel, step: Step, event: str) -> None:
        for name, value in step.variables:
            await channel.set_variable(name, value)
        for flow, result in step.events:
            await channel.user_event(event, {"Flow": flow, "Result": result})

    async def _perform(self, request: Request, call: CallInfo) -> Reply:
        """Does a flow's I/O against the desk, bounded in time; a failure becomes Failed."""
        try:
            async with asyncio.timeout(self.request_timeout):
                if isinstance(request, LookupStatus):
                    return Done(await self.desk.ticket_status(request.reference))
                if isinstance(request, OpenTicket):
                    reference = await self.desk.open_ticket(
                        category=request.category,
                        caller_number=call.caller_number,
                        channel="ivr",
                        linkedid=call.linkedid or None,
                        note=request.note,
                        fields=dict(request.fields),
                    )
                    log.info("ivr_ticket_opened", reference=reference, category=request.category)
                    return Done(reference)
                assert isinstance(request, RecordSurvey)
                await self.desk.record_survey(request.answer)
                answer = request.answer
                self.stats.surveys[(answer.kind, answer.score)] += 1
                return Done()
        except Exception as exc:
            log.warning("ivr_request_failed", request=type(request).__name__, error=repr(exc))
            return Failed(repr(exc))

    async def _perform_safely(self, work: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self.request_timeout):
                await work
        except Exception as exc:
            log.warning("ivr_request_failed", error=repr(exc))
