"""app_queue as the recordings show it: join, whose turn, rrmemory, ring, connect, complete.

The timing rules are app_queue's, and they reproduce the recorded multi-caller trace:
a waiting caller checks "is it my turn" when joining and then every second; its turn
comes when fewer callers ahead are idle than members are available (autofill); a try that
rings nobody (everyone busy or in wrap-up) or a member that does not answer within the
member timeout is followed by ``retry`` seconds of waiting. Wrap-up is counted from the
member's LastCall in whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcenter.sim import agentleg, connect
from callcenter.sim.agentleg import AgentLeg
from callcenter.sim.channels import Bridge
from callcenter.sim.config import QueueConfig
from callcenter.sim.engine import AGENT, Pbx, Timer
from callcenter.sim.members import Member, add_member

if TYPE_CHECKING:
    from callcenter.sim.dialplan import InboundCall


@dataclass(eq=False, slots=True)
class Queue:
    """A queue's members, waiting callers and the statistics app_queue reports."""

    config: QueueConfig
    members: list[Member] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    rrpos: int = 0
    holdtime: int = 0  # app_queue's running averages (weight 3/4 old, 1/4 new)
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    penalty_members: int = 0

    @property
    def name(self) -> str:
        """The queue's name."""
        return self.config.name

    @property
    def penalties(self) -> bool:
        """Whether any member has a penalty (then rrmemory must sort by metric)."""
        return self.penalty_members > 0

    def available_over(self, count: int, now: float) -> bool:
        """Whether more than ``count`` members are available (wrap-up overrides status)."""
        for m in self.members:
            if m.free(now):
                if count == 0:
                    return True
                count -= 1
        return False

    def sl_perf(self) -> str:
        """Service level performance as app_queue prints it."""
        perf = 100.0 * self.completed_in_sl / self.completed if self.completed else 0.0
        return f"{perf:.1f}"

    def variables(self) -> list[tuple[str, object]]:
        """The QUEUE* channel variables (setqueuevar=yes)."""
        c = self.config
        return [
            ("QUEUENAME", c.name),
            ("QUEUEMAX", c.maxlen),
            ("QUEUESTRATEGY", c.strategy),
            ("QUEUECALLS", len(self.entries)),
            ("QUEUEHOLDTIME", self.holdtime),
            ("QUEUETALKTIME", self.talktime),
            ("QUEUECOMPLETED", self.completed),
            ("QUEUEABANDONED", self.abandoned),
            ("QUEUESRVLEVEL", c.servicelevel),
            ("QUEUESRVLEVELPERF", self.sl_perf()),
        ]


@dataclass(eq=False, slots=True)
class Entry:
    """A caller waiting in a queue (app_queue's queue_ent)."""

    call: InboundCall
    queue: Queue
    joined: float  # epoch
    orig_pos: int
    deadline: float | None = None  # epoch of the Queue() timeout
    pending: bool = False  # a ring attempt is running
    attempt: Attempt | None = None
    timer: Timer | None = None  # the next turn check
    timeout_timer: Timer | None = None
    done: bool = False

    @property
    def position(self) -> int:
        """1-based position in the queue."""
        return self.queue.entries.index(self) + 1

    def stop(self) -> None:
        """Cancels the entry's timers (it left the queue)."""
        self.done = True
        for timer in (self.timer, self.timeout_timer):
            if timer is not None:
                timer.cancel()


@dataclass(eq=False, slots=True)
class Attempt:
    """One member ringing (and, once answered, talking) for one queue entry."""

    entry: Entry
    leg: AgentLeg
    started: float  # epoch
    timer: Timer | None = None
    bridge: Bridge | None = None
    connected: float | None = None
    hold: int = 0


def build_queues(pbx: Pbx) -> None:
    """Creates the configured queues and their static members."""
    for qc in pbx.config.queues:
        queue = Queue(qc)
        pbx.queues[qc.name] = queue
        for mc in qc.members:
            member = add_member(
                pbx, queue, mc.interface, mc.name, penalty=mc.penalty, dynamic=False, emit=False
            )
            if member is not None:
                member.login_time = pbx.boot_epoch


# ---- joining and waiting -------------------------------------------------------------------


def join(pbx: Pbx, call: InboundCall, name: str, timeout: float | None) -> None:
    """Queue(): the caller joins (or is refused) and app_queue looks for an agent at once."""
    c1 = call.c1
    pbx.varsets(c1, [(v, "") for v in _RESET_VARS])
    queue = pbx.queues.get(name)
    if queue is None:
        call.queue_result("UNKNOWN")
        return
    if not queue.members:
        call.queue_result("JOINEMPTY")
        return
    if queue.config.maxlen and len(queue.entries) >= queue.config.maxlen:
        call.queue_result("FULL")  # no Queue* event at all, as the burst recording shows
        return
    now = pbx.now_epoch()
    entry = Entry(call, queue, now, len(queue.entries) + 1)
    if call.joined_at is None:
        call.joined_at = now
    queue.entries.append(entry)
    call.entry = entry
    pbx.devstate(f"Queue:{name}", "RINGING")
    body = f"Queue: {name}\r\nPosition: {entry.position}\r\nCount: {len(queue.entries)}\r\n"
    pbx.chan_event("QueueCallerJoin", c1, body, AGENT)
    pbx.chan_event("MusicOnHoldStart", c1, "Class: default\r\n")
    if timeout is not None:
        entry.deadline = now + timeout
        delay = timeout + pbx.config.timeout_latency
        entry.timeout_timer = pbx.sched.after(delay, _timed_out, pbx, entry)
    _turn(pbx, entry)


_RESET_VARS = (
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "QUEUEWAIT",
    "QUEUEWAIT_MS",
)


def _our_turn(entry: Entry, now: float) -> bool:
    """app_queue's is_our_turn: fewer idle callers ahead than members available."""
    queue = entry.queue
    ahead = 0
    for other in queue.entries:
        if other is entry:
            break
        if not other.pending:
            ahead += 1
    return queue.available_over(ahead, now)


def _turn(pbx: Pbx, entry: Entry) -> None:
    entry.timer = None
    if entry.done or entry.pending:
        return
    if _our_turn(entry, pbx.now_epoch()):
        _try_calling(pbx, entry)
    else:
        entry.timer = pbx.sched.after(1.0, _turn, pbx, entry)


def _metric(queue: Queue, member: Member) -> int:
    pos = member.queuepos
    metric = 1000 + pos if pos < queue.rrpos else pos
    return metric + member.penalty * 1_000_000


def _try_calling(pbx: Pbx, entry: Entry) -> None:
    queue = entry.queue
    now = pbx.now_epoch()
    members = queue.members
    count = len(members)
    if queue.penalties:
        order = sorted(members, key=lambda m: _metric(queue, m))
        for i, member in enumerate(order):
            if member.free(now):
                # rrmemory remembers the next candidate after the one it rings.
                queue.rrpos = order[i + 1].queuepos if i + 1 < count else 0
                _ring(pbx, entry, member)
                return
    else:
        # Without penalties the metric order is the member list rotated at rrpos.
        cut = min(queue.rrpos, count)
        for i in range(count):
            member = members[(cut + i) % count]
            if member.free(now):
                queue.rrpos = members[(cut + i + 1) % count].queuepos if i + 1 < count else 0
                _ring(pbx, entry, member)
                return
    entry.timer = pbx.sched.after(queue.config.retry, _turn, pbx, entry)


# ---- ringing -------------------------------------------------------------------------------


def _ring(pbx: Pbx, entry: Entry, member: Member) -> None:
    call, queue = entry.call, entry.queue
    c1 = call.c1
    entry.pending = True
    leg, called_dest, dial_dest = agentleg.ring(pbx, call, member)
    attempt = Attempt(entry, leg, pbx.now_epoch())
    entry.attempt = attempt
    tail = f"Queue: {queue.name}\r\nInterface: {member.interface}\r\nMemberName: {member.name}\r\n"
    pbx.chan_event("AgentCalled", c1, called_dest + tail, AGENT)
    pbx.chan_event("DialBegin", c1, f"{dial_dest}DialString: {member.interface}\r\n")
    agentleg.run_agent_dialplan(pbx, call, leg, pbx.ring_label(member, call))
    limit = queue.config.timeout
    cfg = pbx.config
    if leg.ring_delay is not None and leg.ring_delay < limit:
        delay = leg.ring_delay + cfg.answer_latency
        attempt.timer = pbx.sched.after(delay, connect.answered, pbx, attempt)
    else:
        delay = limit + cfg.timeout_latency
        attempt.timer = pbx.sched.after(delay, _no_answer, pbx, attempt)


def _no_answer(pbx: Pbx, attempt: Attempt, retry: bool = True) -> None:
    entry, leg = attempt.entry, attempt.leg
    c1, a1 = entry.call.c1, leg.a1
    member = leg.member
    # app_queue reports the timeout it applied, without its own processing delay.
    ring_ms = round((pbx.now_epoch() - attempt.started - pbx.config.timeout_latency) * 1000)
    tail = (
        f"Queue: {entry.queue.name}\r\nInterface: {member.interface}\r\n"
        f"MemberName: {member.name}\r\nRingTime: {ring_ms}\r\n"
    )
    pbx.chan_event("AgentRingNoAnswer", c1, a1.block("Dest") + tail, AGENT)
    pbx.chan_event("DialEnd", c1, a1.block("Dest") + "DialStatus: NOANSWER\r\n")
    _cancel_ring(pbx, attempt)
    if retry:
        entry.timer = pbx.sched.after(entry.queue.config.retry, _turn, pbx, entry)


def _cancel_ring(pbx: Pbx, attempt: Attempt) -> None:
    """The ringing agent channels go away (DialEnd CANCEL, Hangup cause 0)."""
    entry, leg = attempt.entry, attempt.leg
    if attempt.timer is not None:
        attempt.timer.cancel()
    c1, a1 = entry.call.c1, leg.a1
    pbx.chan_event("DialEnd", c1, a1.block("Dest") + "DialStatus: CANCEL\r\n")
    pbx.hangup_request(leg.a2, 0)
    pbx.hangup(a1, 0)
    pbx.chan_event("NewConnectedLine", a1)
    agentleg.hangup_handler(pbx, leg, completed=False)
    agentleg.hangup_a2(pbx, leg, answered=False, cause=0)
    entry.pending = False
    entry.attempt = None


def _timed_out(pbx: Pbx, entry: Entry) -> None:
    """Queue()'s own timeout: ringing stops, QueueCallerAbandon, QUEUESTATUS=TIMEOUT."""
    entry.timeout_timer = None
    if entry.done:
        return
    if entry.attempt is not None:
        _no_answer(pbx, entry.attempt, retry=False)
    call, queue = entry.call, entry.queue
    c1 = call.c1
    hold = int(pbx.now_epoch()) - int(entry.joined)
    pbx.varset(c1, "ABANDONED", "TRUE")
    pbx.varsets(c1, queue.variables())
    _abandon_event(pbx, entry, hold)
    pbx.varsets(c1, _times(pbx, entry, hold, answered=0))
    pbx.chan_event("MusicOnHoldStop", c1)
    queue.abandoned += 1
    pbx.varsets(c1, queue.variables())
    leave(pbx, entry)
    call.queue_result("TIMEOUT")


# ---- the caller gives up -------------------------------------------------------------------


def abandon(pbx: Pbx, entry: Entry) -> None:
    """The caller hangs up while waiting (after the phone's own Hangup steps)."""
    call, queue = entry.call, entry.queue
    c1, c2 = call.c1, call.c2
    attempt = entry.attempt
    if attempt is not None:
        call.cdr_c1("NO ANSWER", attempt.leg.a1.name)
    pbx.hangup_request(c1)
    pbx.hangup(c2)
    pbx.devstate("Local/cust@callers", "NOT_INUSE")
    pbx.chan_event("MusicOnHoldStop", c1)
    if attempt is not None:
        pbx.chan_event("DialEnd", c1, attempt.leg.a1.block("Dest") + "DialStatus: CANCEL\r\n")
        _cancel_ring(pbx, attempt)
    hold = int(pbx.now_epoch()) - int(entry.joined)
    if call.result != "answered":
        call.result = "abandoned"
    pbx.varsets(c1, _times(pbx, entry, hold, answered=0))
    pbx.varset(c1, "ABANDONED", "TRUE")
    pbx.varsets(c1, queue.variables())
    _abandon_event(pbx, entry, hold)
    queue.abandoned += 1
    pbx.varsets(c1, queue.variables())
    leave(pbx, entry)
    pbx.soft_hangup(c1)
    if attempt is None:
        call.cdr_c1("ANSWERED")
    pbx.hangup(c1)
    pbx.devstate("Local/cust@callers", "NOT_INUSE")
    call.flush_redirected()
    call.finish()


def _abandon_event(pbx: Pbx, entry: Entry, hold: int) -> None:
    body = (
        f"Queue: {entry.queue.name}\r\nPosition: {entry.position}\r\n"
        f"OriginalPosition: {entry.orig_pos}\r\nHoldTime: {hold}\r\n"
    )
    pbx.chan_event("QueueCallerAbandon", entry.call.c1, body, AGENT)


def leave(pbx: Pbx, entry: Entry) -> None:
    """QueueCallerLeave: the entry is out of the waiting line."""
    queue, c1 = entry.queue, entry.call.c1
    pos = entry.position
    queue.entries.remove(entry)
    entry.stop()
    entry.call.entry = None
    if not queue.entries:
        pbx.devstate(f"Queue:{queue.name}", "NOT_INUSE")
    body = f"Queue: {queue.name}\r\nPosition: {pos}\r\nCount: {len(queue.entries)}\r\n"
    pbx.chan_event("QueueCallerLeave", c1, body, AGENT)
    pbx.varset(c1, "QUEUEPOSITION", pos)


def _times(pbx: Pbx, entry: Entry, hold: int, answered: float) -> list[tuple[str, object]]:
    now = pbx.now_epoch()
    dialed = now - entry.call.c1.created
    return [
        ("QUEUEWAIT", hold),
        ("QUEUEWAIT_MS", hold * 1000),
        ("DIALEDTIME", int(dialed)),
        ("DIALEDTIME_MS", int(dialed * 1000)),
        ("ANSWEREDTIME", int(answered)),
        ("ANSWEREDTIME_MS", int(answered * 1000)),
    ]
