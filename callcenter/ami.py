"""AMI adapter over panoramisk 1.4: one ordered event stream per Asterisk server.

panoramisk parses and correlates (``Manager``, ``AMIProtocol``, ``Action``, ``Message``); this
module owns the connection lifecycle and neutralises the defects listed in the design guide:

1. UTF-8 split across TCP reads: the protocol subclass decodes with an incremental decoder.
2. A raising callback kills the connection / async callbacks lose order: one synchronous ``*``
   callback that cannot raise hands every event to the sink, in stream order; errors are counted.
3. ``connect()`` returns before login and bad credentials retry forever: ``start()`` returns
   after a successful Login or raises ``AmiAuthError`` / ``AmiConnectError``; a rejected login is
   never retried.
4. No Ping timeout, no action timeout, actions re-sent after a reconnect: every action runs under
   a timeout (``asyncio.timeout``, cancel-safe); a watchdog pings an idle link and drops it
   when the Ping is not answered; actions in flight when the link drops fail with
   ``AmiDisconnected`` and are never re-sent.
5. ``close()`` during the reconnect window keeps reconnecting: the client owns reconnection and
   ``close()`` stops it for good.
6. Events emitted while disconnected are lost: every (re)login is followed by a resync
   (QueueStatus, QueueSummary, CoreShowChannels) bracketed by ``CallcenterResyncBegin`` /
   ``CallcenterResyncEnd`` synthetic events; link loss emits ``CallcenterLinkDown``.

Also neutralised: panoramisk's completion heuristics (a ``QueueAdd`` answered "Added interface to
queue" never completes, an ``Originate`` without ``Async`` raises ``KeyError``) are replaced by
Asterisk's own ``EventList: start`` / ``EventList: Complete`` framing, and events that answer one
of our list actions are *also* delivered to the sink (panoramisk would swallow them).

Every event message reaches the sink exactly once, in wire order, including list events of the
resync (so a QueueCallerLeave that Asterisk sent after a QueueEntry is seen after it) and
broadcasts carrying another session's ActionID (``OriginateResponse`` with ``drv-8``).
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import contextlib
import gzip
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

import structlog
from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callcenter.config import AsteriskServer
from callcenter.events import parse_message

__all__ = [
    "DEFAULT_RESYNC_ACTIONS",
    "LINK_DOWN",
    "RESYNC_BEGIN",
    "RESYNC_END",
    "AmiAuthError",
    "AmiClient",
    "AmiConnectError",
    "AmiDisconnected",
    "AmiError",
    "AmiTimeout",
    "Sink",
    "record_trace",
]

log = structlog.get_logger(__name__)

#: ``sink(server_name, headers, received_at_epoch)``: called synchronously, in stream order.
Sink = Callable[[str, dict[str, str], float], None]
#: Action headers; a list/tuple value repeats the header (``Variable``); other values use str().
ActionFields = Mapping[str, object]
Result = dict[str, str] | list[dict[str, str]]

RESYNC_BEGIN = "CallcenterResyncBegin"
RESYNC_END = "CallcenterResyncEnd"
LINK_DOWN = "CallcenterLinkDown"

DEFAULT_RESYNC_ACTIONS = ("QueueStatus", "QueueSummary", "CoreShowChannels")
# What the tracker misses when a resync action fails, for the log line operators read.
_RESYNC_LOSS = {
    "QueueStatus": "waiting callers and member states",
    "QueueSummary": "queue counters",
    "CoreShowChannels": "live channels",
}

_EOL = "\r\n"
_EOM = "\r\n\r\n"
_GREETING_PREFIX = "Asterisk Call Manager/"
# A message this long without a terminator means we are not talking to an AMI server.
_MAX_MESSAGE = 1 << 20
# Sink failures are logged for the first few and then once per this many (a systematic bug
# would otherwise log thousands of tracebacks per second); all are counted.
_SINK_ERRORS_LOGGED = 10
_SINK_ERRORS_EVERY = 1000


class AmiError(Exception):
    """Base class of the adapter's errors."""


class AmiConnectError(AmiError):
    """The AMI endpoint could not be reached, or did not greet/answer the Login in time."""


class AmiAuthError(AmiError):
    """Asterisk rejected the Login (wrong username or secret, or a denied address)."""


class AmiTimeout(AmiError):
    """An action got no (complete) answer within the server's ``action_timeout``."""


class AmiDisconnected(AmiError):
    """The link is down: the action was not sent, or its answer can no longer arrive."""


class _Action(Action):
    """A panoramisk Action whose completion follows Asterisk's EventList framing."""

    @property
    def multi(self) -> bool:
        """Whether the first answer opened an event list (``EventList: start``)."""
        first = self.responses[0]
        return str(first.get("EventList", "")).lower() == "start"

    @property
    def completed(self) -> bool:
        """Whether the answer is complete: a single response, or the list's Complete event."""
        if not self.multi:
            return True
        if len(self.responses) < 2:
            return False
        last = self.responses[-1]
        if str(last.get("EventList", "")).lower() == "complete":
            return True
        return str(last.get("Event", "")).endswith("Complete")


class _Manager(Manager):
    """panoramisk's Manager with its own connection lifecycle switched off.

    ``AmiClient`` connects, logs in, pings and reconnects; nothing in panoramisk may schedule
    a reconnect, a ping or a re-send behind its back.
    """

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        # Drops the FullyBooted -> send_awaiting_actions callback (re-sends after reconnects).
        self.callbacks.clear()
        self.patterns.clear()

    def connect(self, *_: Any, **__: Any) -> Any:
        """Refuses: AmiClient owns the connection."""
        raise NotImplementedError("AmiClient owns the AMI connection")

    def connection_lost(self, exc: Any) -> None:
        """Does nothing: panoramisk would schedule a silent reconnect here."""

    def ping(self) -> None:
        """Does nothing: panoramisk's ping has no reply timeout; AmiClient runs a watchdog."""

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Does nothing: actions are never re-sent after a reconnect."""


class _AmiProtocol(AMIProtocol):
    """panoramisk's protocol with incremental UTF-8 decoding and a fail-fast link lifecycle."""

    def __init__(self, client: AmiClient, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._client = client
        self._loop = loop
        # panoramisk decodes each chunk on its own with errors ignored: "Ayşe" became "Aye".
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self.greeting: asyncio.Future[str] = loop.create_future()
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self.last_rx = loop.time()
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.responses: dict[str, _Action] = {}

    def connection_made(self, transport: Any) -> None:
        """Wires the protocol to the client's Manager as soon as the socket is up."""
        super().connection_made(transport)
        self.factory = self._client._manager
        self.encoding = "utf-8"

    def submit(self, fields: ActionFields) -> _Action:
        """Writes one action and registers it for its answer; raises AmiDisconnected if down."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise AmiDisconnected(f"AMI {self._client.server.name} is not connected")
        action = _Action(dict(fields))
        self.responses[action.action_id] = action
        # No logging of the action here: a Login carries the secret.
        self.transport.write(str(action).encode("utf-8"))
        return action

    def send(self, data: Any, as_list: Any = None) -> asyncio.Future[Any]:
        """panoramisk's entry point, routed through ``submit`` (never logs the action)."""
        return self.submit(data).future

    def forget(self, action: _Action) -> None:
        """Stops waiting for an action's answer (late answers are then ignored)."""
        self.responses.pop(action.action_id, None)

    def data_received(self, data: bytes) -> None:
        """Decodes incrementally, splits on blank lines and handles each complete message."""
        received_at = time.time()
        self.last_rx = self._loop.time()
        self._client.bytes_received += len(data)
        text = self._buffer + self._decoder.decode(data)
        if not self.greeting.done():
            line, sep, text = text.partition(_EOL)
            if not sep:
                self._buffer = line
                self._check_size()
                return
            self._on_greeting(line)
        *messages, self._buffer = text.split(_EOM)
        if messages:
            self._client.last_message_at = received_at
        for raw in messages:
            try:
                self._handle(raw, received_at)
            except Exception as exc:  # one bad message must not cost the rest of the chunk
                self._client._internal_error("ami.message_failed", exc)
        self._check_size()

    def _on_greeting(self, line: str) -> None:
        if line.startswith(_GREETING_PREFIX):
            self.version = line[len(_GREETING_PREFIX) :].strip()
            self.greeting.set_result(line)
        else:
            error = AmiConnectError(f"not an AMI server, it said {line[:60]!r}")
            self.greeting.set_exception(error)
            self.drop(str(error))

    def _check_size(self) -> None:
        if len(self._buffer) > _MAX_MESSAGE:
            self.drop(f"no message terminator in {_MAX_MESSAGE} characters")

    def _handle(self, raw: str, received_at: float) -> None:
        client = self._client
        if client._drop_prefixes and raw.startswith(client._drop_prefixes):
            return  # cheapest possible drop: no parsing at all
        if client._drop_raw is not None and client._safe_drop(raw):
            return
        headers = parse_message(raw)
        if not headers:
            return
        action_id = headers.get("ActionID")
        owner = self.responses.get(action_id) if action_id else None
        message = None
        if owner is not None:
            message = Message(headers)
            # A private copy: the sink may keep or change the dict it is given.
            message.cc_copy = dict(headers)
            if owner.add_message(message):
                self.responses.pop(owner.action_id, None)
        # Every event reaches the sink, also the ones that answer our own list actions:
        # unlike panoramisk, which hands those to the action only.
        name = headers.get("Event")
        if name is not None:
            if message is None:
                # Dispatch only matches the event name and the "*" callback reads the parsed
                # headers: a full Message (a case-insensitive copy) would halve the throughput.
                message = Message({"Event": name})
            message.cc_headers = headers
            message.cc_received_at = received_at
            self.factory.dispatch(message)
            if name == "Shutdown":
                self.drop("Asterisk is shutting down")

    def drop(self, reason: str) -> None:
        """Aborts the link now: pending actions fail with AmiDisconnected, nothing is re-sent."""
        if self.lost_reason is None:
            self.lost_reason = reason
        self._fail_pending()
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Closes the link gracefully; pending actions fail instead of being queued for re-send."""
        self._fail_pending()
        super().close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fails pending actions and signals the client; never schedules a reconnect."""
        if self.lost_reason is None:
            self.lost_reason = f"connection lost: {exc}" if exc else "connection closed by peer"
        self._fail_pending()
        self.closed = True
        if not self.greeting.done():
            self.greeting.set_exception(AmiDisconnected(self.lost_reason))
            self.greeting.exception()  # retrieved: a timed-out connect no longer awaits it
        self.lost.set()

    def _fail_pending(self) -> None:
        reason = self.lost_reason or "link closed"
        for action in list(self.responses.values()):
            if not action.future.done():
                name = action.get("Action", "?")
                action.future.set_exception(AmiDisconnected(f"{name} not answered: {reason}"))
        self.responses.clear()


def _as_dict(message: Any) -> dict[str, str]:
    copy = message.__dict__.get("cc_copy")
    if isinstance(copy, dict):
        return copy
    return {str(k): str(v) for k, v in message.items() if k != "content"}


def _as_result(answer: Any) -> Result:
    if isinstance(answer, list):
        return [_as_dict(m) for m in answer]
    return _as_dict(answer)


def _check_fields(fields: ActionFields) -> dict[str, str | list[str]]:
    """Copies an action as strings, without ActionID, refusing values that would inject headers."""
    clean: dict[str, str | list[str]] = {}
    for key, value in fields.items():
        # Our own ActionIDs only: a foreign one ("drv-8") could be mistaken for our answer.
        if key.lower() == "actionid":
            continue
        values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        for text in [key, *values]:
            if "\r" in text or "\n" in text:
                raise ValueError(f"AMI action field {key!r} contains a line break")
        clean[key] = values if isinstance(value, list | tuple) else values[0]
    return clean


class AmiClient:
    """One AMI connection to one Asterisk server, with login, watchdog, reconnect and resync.

    Public state for metrics and health checks: ``connected``, ``reconnects`` (links
    re-established after a loss), ``last_message_at`` (epoch of the last received message),
    ``login_failures``, ``resync_failures`` (resyncs that could not read everything),
    ``callback_errors`` (sink exceptions), ``last_error``, ``bytes_received`` and ``server``.
    """

    def __init__(
        self,
        server: AsteriskServer,
        sink: Sink,
        *,
        drop_events: Iterable[str] = frozenset(),
        drop_raw: Callable[[str], bool] | None = None,
        resync_actions: Sequence[str] = DEFAULT_RESYNC_ACTIONS,
        reconnect_delay: float = 0.5,
        reconnect_delay_max: float = 30.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Prepares the client; nothing happens on the network until ``start()``.

        ``drop_events`` names events discarded before parsing (e.g. ``{"Newexten"}``);
        ``drop_raw(text)`` may discard a raw message before parsing (e.g. ``events.is_noise``);
        neither may drop the list events the resync needs.
        """
        self.server = server
        self.drop_events = frozenset(drop_events)
        self.connected = False
        self.reconnects = 0
        self.last_message_at: float | None = None
        self.login_failures = 0
        self.resync_failures = 0
        self.callback_errors = 0
        self.last_error: str | None = None
        self.bytes_received = 0
        self._sink = sink
        self._drop_prefixes = tuple(f"Event: {name}{_EOL}" for name in sorted(self.drop_events))
        self._drop_raw = drop_raw
        self._resync_actions = tuple(resync_actions)
        self._reconnect_delay = reconnect_delay
        self._reconnect_delay_max = reconnect_delay_max
        self._loop = loop
        self._manager = _Manager(
            host=server.host,
            port=server.port,
            loop=loop,
            protocol_factory=_AmiProtocol,
            log=logging.getLogger(__name__),
        )
        self._manager.register_event("*", self._on_event)
        self._protocol: _AmiProtocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._sessions = 0
        self._fatal: AmiError | None = None

    # -- public API -------------------------------------------------------------------------

    async def start(self, *, wait: bool = True) -> None:
        """Connects and logs in, then keeps the link up in the background.

        With ``wait=True`` (the default) it returns only after a successful Login, or raises
        ``AmiAuthError`` (credentials rejected) or ``AmiConnectError`` (unreachable, no greeting,
        no answer to Login within the timeouts) after a single attempt, so a misconfigured
        service fails at start-up. With ``wait=False`` it returns at once and the background
        task connects, retrying unreachable servers with exponential backoff; a rejected Login
        still stops it (see ``wait_closed``).
        """
        if self._task is not None:
            raise RuntimeError("AmiClient already started")
        loop = self._loop = self._loop or asyncio.get_running_loop()
        self._manager.loop = loop
        self._closing = False
        first = await self._open() if wait else None
        self._task = loop.create_task(self._supervise(first), name=f"ami:{self.server.name}")

    async def action(self, fields: ActionFields) -> Result:
        """Sends an action and returns its answer: a dict, or a list for event-list actions.

        ``Response: Error`` answers are returned, not raised. Raises ``AmiTimeout`` after the
        server's ``action_timeout`` and ``AmiDisconnected`` when the link is down or drops
        before the answer; an action is never re-sent after a reconnect. Any ``ActionID`` given
        is replaced by the adapter's own; a value containing a line break raises ValueError.
        """
        protocol = self._protocol
        if protocol is None or not self.connected:
            raise AmiDisconnected(f"AMI {self.server.name} is not connected")
        return await self._send(protocol, fields)

    async def close(self) -> None:
        """Logs off, closes the link and stops reconnecting; idempotent."""
        self._closing = True
        self._wake.set()
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            with contextlib.suppress(AmiError):
                await self._send(protocol, {"Action": "Logoff"}, min(self.server.action_timeout, 2))
            protocol.drop("closed by the service")
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        self._detach()
        if protocol is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await protocol.lost.wait()

    async def wait_closed(self) -> None:
        """Waits until the client stops for good; raises the AmiError that stopped it, if any.

        That is an ``AmiAuthError`` when a re-login was refused; ``close()`` raises nothing.
        """
        if self._task is not None:
            await asyncio.wait([self._task])
        if self._fatal is not None:
            raise self._fatal

    # -- connection lifecycle ---------------------------------------------------------------

    async def _open(self) -> _AmiProtocol:
        """Connects, waits for the greeting and logs in; one attempt."""
        s = self.server
        loop = self._loop
        assert loop is not None
        where = f"AMI {s.name} at {s.host}:{s.port}"
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # races the inner future, and the task then ignores the service's stop.
            async with asyncio.timeout(s.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _AmiProtocol(self, loop), s.host, s.port
                )
        except TimeoutError:
            raise AmiConnectError(f"cannot connect to {where}: timed out") from None
        except OSError as exc:
            raise AmiConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        assert isinstance(protocol, _AmiProtocol)
        try:
            # Shielded: a timeout must not cancel the future the protocol still resolves.
            async with asyncio.timeout(s.connect_timeout):
                await asyncio.shield(protocol.greeting)
            answer = await self._send(
                protocol,
                {"Action": "Login", "Username": s.username, "Secret": s.secret, "Events": "on"},
            )
        except TimeoutError:
            protocol.drop("no greeting")
            raise AmiConnectError(f"no AMI greeting from {where}") from None
        except AmiError as exc:
            protocol.drop(str(exc))
            raise AmiConnectError(f"cannot log in to {where}: {exc}") from None
        assert isinstance(answer, dict)
        if answer.get("Response") != "Success":
            self.login_failures += 1
            reason = answer.get("Message") or "no reason given"
            message = f"{where} rejected the login of user {s.username!r}: {reason}"
            self.last_error = message
            protocol.drop("login rejected")
            self._log("error", "ami.login_rejected", user=s.username, reason=reason)
            raise AmiAuthError(message)
        # Attached at once, so that close() reaches a session the supervisor has not taken yet.
        self._protocol = protocol
        self._manager.protocol = protocol
        self.connected = True
        return protocol

    async def _supervise(self, protocol: _AmiProtocol | None) -> None:
        """Keeps one session up at a time until ``close()`` or a rejected login.

        Reconnection waits ``reconnect_delay`` seconds, doubling up to ``reconnect_delay_max``
        after each failed attempt or short-lived session; a session that lasted longer than
        ``reconnect_delay_max`` resets it.
        """
        try:
            await self._keep_up(protocol)
        except Exception as exc:  # a bug here must surface, not silently stop ingestion
            self._fatal = AmiError(f"AMI {self.server.name} supervisor failed: {exc!r}")
            self.last_error = str(self._fatal)
            self._log("error", "ami.supervisor_failed", exc_info=exc)

    async def _keep_up(self, protocol: _AmiProtocol | None) -> None:
        """The reconnect loop behind ``_supervise``."""
        delay = self._reconnect_delay
        while not self._closing:
            if protocol is None:
                try:
                    protocol = await self._open()
                except AmiAuthError as exc:
                    # Retrying a rejected secret only hammers the PBX's security log.
                    self._fatal = exc
                    self._log("error", "ami.giving_up", reason=str(exc))
                    return
                except AmiConnectError as exc:
                    self.last_error = str(exc)
                    self._log("warning", "ami.connect_failed", error=str(exc), retry_in=delay)
                    await self._sleep(delay)
                    delay = min(delay * 2, self._reconnect_delay_max)
                    continue
                if self._closing:
                    protocol.drop("closed by the service")
                    self._detach()
                    return
            loop = self._loop
            assert loop is not None
            began = loop.time()
            await self._serve(protocol)
            protocol = None
            if loop.time() - began >= self._reconnect_delay_max:
                delay = self._reconnect_delay  # a stable session resets the backoff
            if not self._closing:
                # Also after a loss: a PBX that accepts and drops at once must not be hammered.
                self._log("info", "ami.reconnecting", retry_in=delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._reconnect_delay_max)

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, waking early when ``close()`` is called."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _serve(self, protocol: _AmiProtocol) -> None:
        """Runs one logged-in session: resync, then watch the link until it drops."""
        self._sessions += 1
        if self._sessions > 1:
            self.reconnects += 1
        self._log("info", "ami.connected", host=self.server.host, reconnects=self.reconnects)
        loop = self._loop
        assert loop is not None
        watchdog = loop.create_task(self._watchdog(protocol))
        try:
            await self._resync(protocol)
            await protocol.lost.wait()
        finally:
            watchdog.cancel()
            await asyncio.wait([watchdog])
            protocol.drop("session ended")
            self._detach()
            reason = protocol.lost_reason or "unknown"
            if self._closing:
                self._log("info", "ami.closed")
            else:
                self.last_error = reason
                self._log("warning", "ami.link_down", reason=reason)
            self._emit({"Event": LINK_DOWN})

    def _detach(self) -> None:
        self.connected = False
        self._protocol = None
        self._manager.protocol = None

    async def _watchdog(self, protocol: _AmiProtocol) -> None:
        """Pings an idle link; an unanswered Ping means the link is dead, so it is dropped."""
        interval = self.server.ping_interval
        loop = self._loop
        assert loop is not None
        while not protocol.closed:
            idle = loop.time() - protocol.last_rx
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                await self._send(protocol, {"Action": "Ping"})
            except AmiTimeout:
                timeout = self.server.action_timeout
                self._log("warning", "ami.ping_unanswered", timeout=timeout)
                protocol.drop(f"no answer to Ping within {timeout} s")
                return
            except AmiDisconnected:
                return

    async def _resync(self, protocol: _AmiProtocol) -> None:
        """Re-reads live state after a login, bracketed by ResyncBegin/ResyncEnd events."""
        self._emit({"Event": RESYNC_BEGIN})
        failed: list[str] = []
        reasons: dict[str, str] = {}
        for name in self._resync_actions:
            try:
                answer = await self._send(protocol, {"Action": name})
            except AmiError as exc:
                failed.append(name)
                reasons[name] = f"{type(exc).__name__}: {exc}"
                continue
            problem = self._list_problem(name, answer)
            if problem is not None:
                failed.append(name)
                reasons[name] = problem
        self._emit(
            {
                "Event": RESYNC_END,
                "Complete": "no" if failed else "yes",
                "Failed": ",".join(failed),
            }
        )
        if failed:
            self.resync_failures += 1
            self._log(
                "warning",
                "ami.resync_incomplete",
                failed=failed,
                not_recovered=[_RESYNC_LOSS.get(n, n) for n in failed],
                reasons=reasons,
            )
        else:
            self._log("info", "ami.resync_done", actions=list(self._resync_actions))

    def _list_problem(self, name: str, answer: Result) -> str | None:
        """Says why a resync answer is unusable, or None when it is a complete list."""
        if isinstance(answer, dict):
            return f"{answer.get('Response', '?')}: {answer.get('Message', 'not an event list')}"
        complete = answer[-1]
        items = complete.get("ListItems")
        received = len(answer) - 2  # minus the Response and the Complete event
        if items is not None and items.isdigit() and int(items) != received:
            self._log(
                "warning",
                "ami.resync_list_mismatch",
                action=name,
                list_items=int(items),
                received=received,
            )
        return None

    # -- sending ----------------------------------------------------------------------------

    async def _send(
        self, protocol: _AmiProtocol, fields: ActionFields, limit: float | None = None
    ) -> Result:
        """Sends on ``protocol`` and waits for the complete answer for at most ``limit`` s."""
        limit = self.server.action_timeout if limit is None else limit
        action = protocol.submit(_check_fields(fields))
        try:
            # Cancel-safe (see _open): a resync must never outlive the service's stop.
            async with asyncio.timeout(limit):
                answer = await action.future
        except TimeoutError:
            name = fields.get("Action", "?")
            raise AmiTimeout(
                f"{name}: no answer from AMI {self.server.name} within {limit} s"
            ) from None
        finally:
            # Also on cancellation: a late answer must not find a stale waiter.
            protocol.forget(action)
        return _as_result(answer)

    # -- delivery ---------------------------------------------------------------------------

    def _on_event(self, _manager: Any, message: Any) -> None:
        """The single ``*`` callback: hands the event to the sink and never raises."""
        try:
            # Not getattr's default: panoramisk messages answer '' for any missing attribute.
            headers = message.__dict__.get("cc_headers")
            if not isinstance(headers, dict):
                headers = _as_dict(message)
            received_at = message.__dict__.get("cc_received_at") or time.time()
            self._sink(self.server.name, headers, received_at)
        except Exception as exc:
            self._sink_failed(exc, message)

    def _emit(self, headers: dict[str, str]) -> None:
        """Delivers a synthetic event through the same never-raising path."""
        try:
            self._sink(self.server.name, headers, time.time())
        except Exception as exc:
            self._sink_failed(exc, headers)

    def _sink_failed(self, exc: Exception, message: Any) -> None:
        self.callback_errors += 1
        self.last_error = f"sink raised {type(exc).__name__}: {exc}"
        n = self.callback_errors
        if n <= _SINK_ERRORS_LOGGED or n % _SINK_ERRORS_EVERY == 0:
            with contextlib.suppress(Exception):
                name = message.get("Event", "?")
                self._log("error", "ami.sink_failed", ami_event=name, errors=n, exc_info=exc)

    def _safe_drop(self, raw: str) -> bool:
        """Applies ``drop_raw``; a failing predicate keeps the message."""
        assert self._drop_raw is not None
        try:
            return bool(self._drop_raw(raw))
        except Exception as exc:
            self._internal_error("ami.drop_predicate_failed", exc)
            return False

    def _internal_error(self, event: str, exc: Exception) -> None:
        self.last_error = f"{event}: {type(exc).__name__}: {exc}"
        self._log("error", event, exc_info=exc)

    def _log(self, level: str, event: str, **fields: Any) -> None:
        # Looked up per call (not bound once) so logging configured later still applies.
        getattr(log, level)(event, server=self.server.name, **fields)


# -- recording -----------------------------------------------------------------------------


def _open_trace(path: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8")
    return open(path, "w", encoding="utf-8")


def _frame(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{k}: {v}{_EOL}" for k, v in pairs) + _EOL


def _raw_record(t: float, data: bytes) -> dict[str, Any]:
    """One received message as a trace record; invalid UTF-8 is kept as base64."""
    try:
        return {"t": t, "raw": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"t": t, "raw_b64": base64.b64encode(data).decode("ascii")}


async def record_trace(
    server: AsteriskServer,
    path: str,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Records live AMI traffic to a JSON-lines trace and returns the messages written.

    Format (as ``tests/traces``): a ``{"meta": {...}}`` line, the greeting, then
    ``{"t": seconds_since_t0, "raw": message_incl_blank_line}`` per received message (``t`` is
    taken when the chunk completing it arrived) and ``{"t": ..., "sent": ...}`` per action sent;
    the Login's secret is written as ``********``. Concatenating the ``raw`` values gives the
    byte stream. Uses a plain asyncio connection (no AMI library), logs in with
    ``Events: on``, and stops after ``duration`` seconds, when ``stop`` is set or when the
    server closes; it then logs off. A ``.gz`` path is gzip-compressed.
    """
    where = f"AMI {server.name} at {server.host}:{server.port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(server.host, server.port), server.connect_timeout
        )
    except TimeoutError:
        raise AmiConnectError(f"cannot connect to {where}: timed out") from None
    except OSError as exc:
        raise AmiConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None

    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    t0_epoch = time.time()
    greeted: asyncio.Future[None] = loop.create_future()
    login: asyncio.Future[dict[str, str]] = loop.create_future()
    written = 0
    out = _open_trace(path)
    meta = {"t0_epoch": t0_epoch, "server": server.name, "host": server.host, "port": server.port}
    out.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")

    def now() -> float:
        return round(time.monotonic() - t0, 6)

    def put(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")

    async def send(pairs: Sequence[tuple[str, str]]) -> None:
        shown = [(k, "********" if k.lower() == "secret" else v) for k, v in pairs]
        put({"t": now(), "sent": _frame(shown)})
        writer.write(_frame(pairs).encode("utf-8"))
        await writer.drain()

    async def pump() -> None:
        # Splits bytes (not text) so every record is a whole message and no byte is altered.
        nonlocal written
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            t = now()
            if not chunk:
                break
            buffer += chunk
            if not greeted.done():
                line, sep, rest = buffer.partition(b"\r\n")
                if not sep:
                    continue
                put(_raw_record(t, line + sep))
                written += 1
                greeted.set_result(None)
                buffer = rest
            *messages, buffer = buffer.split(b"\r\n\r\n")
            for data in messages:
                put(_raw_record(t, data + b"\r\n\r\n"))
                written += 1
                if not login.done() and b"ActionID: rec-login\r\n" in data + b"\r\n":
                    login.set_result(parse_message(data.decode("utf-8", "replace")))
            out.flush()
        if buffer:  # a truncated last message, kept so the byte stream stays exact
            put(_raw_record(now(), buffer))
            written += 1

    pump_task = loop.create_task(pump())
    try:
        await asyncio.wait(
            [greeted, pump_task],
            timeout=server.connect_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not greeted.done():
            raise AmiConnectError(f"no AMI greeting from {where}")
        await send(
            [
                ("Action", "Login"),
                ("ActionID", "rec-login"),
                ("Username", server.username),
                ("Secret", server.secret),
                ("Events", "on"),
            ]
        )
        login_or_eof: list[asyncio.Future[Any]] = [login, pump_task]
        await asyncio.wait(
            login_or_eof, timeout=server.action_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not login.done():
            raise AmiConnectError(f"no answer to the Login from {where}")
        answer = login.result()
        if answer.get("Response") != "Success":
            reason = answer.get("Message") or "no reason given"
            raise AmiAuthError(f"{where} rejected the login of user {server.username!r}: {reason}")
        log.info("ami.recording", server=server.name, path=path, duration=duration)

        waiters: list[asyncio.Future[Any]] = [pump_task]
        stopper = loop.create_task(stop.wait()) if stop is not None else None
        if stopper is not None:
            waiters.append(stopper)
        await asyncio.wait(waiters, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        if stopper is not None:
            stopper.cancel()
        if not pump_task.done():
            await send([("Action", "Logoff"), ("ActionID", "rec-logoff")])
            # Asterisk answers Goodbye and closes; the pump records both.
            await asyncio.wait([pump_task], timeout=server.action_timeout)
    finally:
        if not pump_task.done():
            pump_task.cancel()
        await asyncio.wait([pump_task])
        writer.close()
        out.close()
    if not pump_task.cancelled() and (error := pump_task.exception()) is not None:
        # A reset connection ends the recording; what arrived before it is kept.
        log.warning("ami.recording_interrupted", server=server.name, error=str(error))
    log.info("ami.recorded", server=server.name, path=path, messages=written)
    return written
