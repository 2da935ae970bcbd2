"""The simulated PBX's core: a discrete-event scheduler on simulated time and event output.

Nothing here sleeps or reads a clock: the server (or a test) decides how simulated time
maps to wall time and calls :meth:`Scheduler.run_until`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from callcenter.sim import wire
from callcenter.sim.channels import CAUSE_TXT, Channel
from callcenter.sim.config import PbxConfig
from callcenter.sim.ids import Ids

if TYPE_CHECKING:
    from callcenter.sim.agi_ivr import AgiIvr
    from callcenter.sim.dialplan import InboundCall
    from callcenter.sim.hooks import Hooks
    from callcenter.sim.members import Device, Member
    from callcenter.sim.plan import CallPlan
    from callcenter.sim.queue import Queue

CALL = "call,all"
DIALPLAN = "dialplan,all"
AGENT = "agent,all"
CDR = "cdr,all"
DTMF = "dtmf,all"
USER = "user,all"
SECURITY = "security,all"
SYSTEM = "system,all"

_BITS = {p: wire.privilege_mask(p) for p in (CALL, DIALPLAN, AGENT, CDR, DTMF, USER, SECURITY)}
# Asterisk stamps each message as it is built; a microsecond step keeps a block's messages
# ordered and distinct without moving the block in simulated time.
_STEP = 0.000001


@dataclass(eq=False, slots=True)
class Timer:
    """A scheduled callback; cancelling only flags it (the heap drops it lazily)."""

    at: float
    fn: Callable[..., None]
    args: tuple[Any, ...] = ()
    cancelled: bool = False

    def cancel(self) -> None:
        """Stops the callback from running."""
        self.cancelled = True


class Scheduler:
    """A heap of callbacks on simulated seconds since the start of the simulation."""

    def __init__(self) -> None:
        self.now = 0.0
        # (time, sequence, timer): plain tuples compare fast; the sequence keeps FIFO order.
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def at(self, when: float, fn: Callable[..., None], *args: Any) -> Timer:
        """Runs ``fn(*args)`` at simulated time ``when`` (never in the past)."""
        timer = Timer(max(when, self.now), fn, args)
        heapq.heappush(self._heap, (timer.at, next(self._seq), timer))
        return timer

    def after(self, delay: float, fn: Callable[..., None], *args: Any) -> Timer:
        """Runs ``fn(*args)`` ``delay`` simulated seconds from now."""
        return self.at(self.now + max(0.0, delay), fn, *args)

    def next_time(self) -> float | None:
        """When the next live callback is due, or None if nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, until: float, limit: int | None = None) -> int:
        """Runs every callback due at or before ``until`` in time order; returns how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= until and (limit is None or ran < limit):
            timer = heapq.heappop(heap)[2]
            if timer.cancelled:
                continue
            self.now = max(self.now, timer.at)
            timer.fn(*timer.args)
            ran += 1
        if limit is None or ran < limit:
            self.now = max(self.now, until)
        return ran


class Pbx:
    """The simulated Asterisk: channels, queues, agents' phones, and the event stream."""

    def __init__(
        self,
        config: PbxConfig,
        *,
        epoch: float,
        rng: random.Random,
        hooks: Hooks | None = None,
    ) -> None:
        from callcenter.sim.hooks import Hooks
        from callcenter.sim.queue import build_queues

        self.config = config
        self.epoch = epoch
        self.rng = rng
        self.hooks = hooks or Hooks()
        self.sched = Scheduler()
        self.ids = Ids(rng)
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, InboundCall] = {}  # by linkedid
        self.globals: dict[str, str] = dict(config.globals)
        self.outbox: list[tuple[int, str]] = []
        self.wanted = wire.ALL_CLASSES  # OR of what the connected sessions want
        self.events_emitted = 0
        self.boot_epoch = int(epoch)
        self._last_us = 0
        self._last_sec = -1
        self._sec_text = ""
        self.queues: dict[str, Queue] = {}
        self.devices: dict[str, Device] = {}
        # Decides each ring's RD (seconds | "never" | "rand"); the default reads the
        # dialplan globals RD_<ext> / RD_DEFAULT like the reference [agents] context.
        self.ring_policy: Callable[[Member, InboundCall], str] | None = None
        self.agi: AgiIvr | None = None  # IVR-line calls go through the service's FastAGI IVR
        # Originates that ring an agent's phone first (agents' call-backs), as received.
        self.agent_originates: list[dict[str, str]] = []
        build_queues(self)

    def ring_label(self, member: Member, call: InboundCall) -> str:
        """The ring delay the agent's phone will use for this offer."""
        if self.ring_policy is not None:
            return self.ring_policy(member, call)
        ext = member.device.ext
        return self.globals.get(f"RD_{ext}") or self.globals.get("RD_DEFAULT", "3")

    def originate(self, plan: CallPlan, action_id: str | None, originated: bool = True) -> None:
        """Starts an inbound call now (asynchronously, as ``Async: true`` Originate does)."""
        from callcenter.sim.dialplan import InboundCall

        def start() -> None:
            InboundCall(self, plan.with_variables(), action_id, originated).start()

        self.sched.after(0.0, start)

    # ---- time -------------------------------------------------------------------------------

    def now_epoch(self) -> float:
        """The current simulated time as epoch seconds."""
        return self.epoch + self.sched.now

    def _stamp(self) -> str:
        """The next event's Timestamp, in whole microseconds, never going backwards."""
        us = int((self.epoch + self.sched.now) * 1_000_000)
        if us <= self._last_us:
            us = self._last_us + 1
        self._last_us = us
        sec = us // 1_000_000
        if sec != self._last_sec:
            self._last_sec, self._sec_text = sec, f"{sec}."
        return f"{self._sec_text}{us - sec * 1_000_000:06d}"

    # ---- output -----------------------------------------------------------------------------

    def wants(self, privilege: str) -> bool:
        """Whether any connected session wants events of this class (so rendering can skip)."""
        return bool(_BITS.get(privilege, wire.ALL_CLASSES) & self.wanted)

    def emit(self, name: str, privilege: str, body: str) -> None:
        """Queues one broadcast event (``Timestamp`` after ``Privilege`` when enabled)."""
        bits = _BITS.get(privilege) or wire.privilege_mask(privilege)
        if not bits & self.wanted:
            return
        self.events_emitted += 1
        ts = self._stamp()
        if self.config.timestampevents:
            text = f"Event: {name}\r\nPrivilege: {privilege}\r\nTimestamp: {ts}\r\n{body}\r\n"
        else:
            text = f"Event: {name}\r\nPrivilege: {privilege}\r\n{body}\r\n"
        self.outbox.append((bits, text))

    def take_output(self) -> list[tuple[int, str]]:
        """Hands over the queued events and starts a new batch."""
        out, self.outbox = self.outbox, []
        return out

    # ---- channel helpers (the common events, in Asterisk's header layout) ---------------

    def new_channel(
        self, name: str, context: str, exten: str, linkedid: str | None, state: int
    ) -> Channel:
        """Creates a channel and emits its Newchannel."""
        now = self.now_epoch()
        uid = self.ids.uniqueid(now)
        ch = Channel(name, uid, linkedid or uid, context, exten, now, state=state)
        self.channels[name] = ch
        self.emit("Newchannel", CALL, ch.block())
        return ch

    def newexten(self, ch: Channel, priority: int, app: str, data: str = "") -> None:
        """Moves ``ch`` to ``priority`` running ``app(data)`` and emits Newexten."""
        ch.priority, ch.app, ch.appdata = priority, app, data
        if self.wanted & _BITS[DIALPLAN]:
            self.emit(
                "Newexten",
                DIALPLAN,
                f"{ch.block()}Extension: {ch.exten}\r\nApplication: {app}\r\nAppData: {data}\r\n",
            )

    def varset(self, ch: Channel, name: str, value: object) -> None:
        """Sets a channel variable and emits VarSet."""
        ch.variables[name] = str(value)
        if self.wanted & _BITS[DIALPLAN]:
            self.emit("VarSet", DIALPLAN, f"{ch.block()}Variable: {name}\r\nValue: {value}\r\n")

    def varsets(self, ch: Channel, pairs: list[tuple[str, object]]) -> None:
        """Several VarSets on one channel, in order."""
        for name, value in pairs:
            self.varset(ch, name, value)

    def chan_event(self, name: str, ch: Channel, extra: str = "", privilege: str = CALL) -> None:
        """Emits an event made of the channel block plus ``extra`` header lines."""
        if self.wanted & _BITS.get(privilege, wire.ALL_CLASSES):
            self.emit(name, privilege, ch.block() + extra)

    def newstate(self, ch: Channel, state: int) -> None:
        """Changes a channel's state and emits Newstate."""
        ch.state = state
        if state == 6 and ch.answered is None:
            ch.answered = self.now_epoch()
        self.chan_event("Newstate", ch)

    def devstate(self, device: str, state: str) -> None:
        """Emits DeviceStateChange."""
        if self.wanted & _BITS[CALL]:
            self.emit("DeviceStateChange", CALL, f"Device: {device}\r\nState: {state}\r\n")

    def soft_hangup(self, ch: Channel, cause: int = 16) -> None:
        """Emits SoftHangupRequest."""
        self.chan_event("SoftHangupRequest", ch, f"Cause: {cause}\r\n")

    def hangup_request(self, ch: Channel, cause: int = 16) -> None:
        """Emits HangupRequest."""
        self.chan_event("HangupRequest", ch, f"Cause: {cause}\r\n")

    def hangup(self, ch: Channel, cause: int = 16) -> None:
        """Destroys a channel and emits its Hangup."""
        ch.hungup = True
        self.channels.pop(ch.name, None)
        self.chan_event(
            "Hangup", ch, f"Cause: {cause}\r\nCause-txt: {CAUSE_TXT.get(cause, '')}\r\n"
        )

    def cdr(
        self, ch: Channel, *, dest_channel: str, disposition: str, answer: float | None
    ) -> None:
        """Emits a Cdr event for ``ch`` ending now (cdr_manager's layout, fields from ``ch``)."""
        if not self.wanted & _BITS[CDR]:
            return
        end = self.now_epoch()
        billsec = int(end) - int(answer) if answer is not None else 0
        body = wire.lines(
            [
                ("AccountCode", ""),
                ("Source", ch.cid_num),
                ("Destination", ch.exten),
                ("DestinationContext", ch.context),
                ("CallerID", ch.callerid),
                ("Channel", ch.name),
                ("DestinationChannel", dest_channel),
                ("LastApplication", ch.app),
                ("LastData", ch.appdata),
                ("StartTime", cdr_time(ch.created)),
                ("AnswerTime", cdr_time(answer) if answer is not None else ""),
                ("EndTime", cdr_time(end)),
                ("Duration", int(end) - int(ch.created)),
                ("BillableSeconds", billsec),
                ("Disposition", disposition),
                ("AMAFlags", "DOCUMENTATION"),
                ("UniqueID", ch.uniqueid),
                ("UserField", ""),
            ]
        )
        self.emit("Cdr", CDR, body)


def cdr_time(epoch: float) -> str:
    """A CDR time as cdr_manager prints it (the recorded server ran on UTC)."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
