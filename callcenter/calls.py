"""The call tracker: folds typed AMI events into call records and agent states.

Pure and replayable: no I/O, no clock, no randomness; time comes from the events. ``feed``
returns the effects (model.Effect) that the adapters turn into rows, metrics and pops.
A call is keyed by (server, linkedid) and is final when its last channel hangs up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from callcenter import events as ev
from callcenter.model import (
    WRAPUP_REASON,
    AgentOffered,
    AgentSession,
    Anomaly,
    Call,
    CallAnswered,
    CallEnded,
    CallStarted,
    Effect,
    Member,
    MemberChanged,
    Offer,
    Pause,
    PauseEnded,
    QueueJoined,
    SessionEnded,
    Visit,
    VisitEnded,
)

# QUEUESTATUS after Queue() returns -> the visit's outcome. Asterisk emits QueueCallerAbandon
# for a timeout too, so this variable is what tells them apart.
_QUEUESTATUS_OUTCOME = {
    "TIMEOUT": "timeout",
    "LEAVEEMPTY": "exit_empty",
    "LEAVEUNAVAIL": "exit_empty",
    "JOINEMPTY": "join_empty",
    "JOINUNAVAIL": "join_empty",
    "FULL": "full",
    "WITHDRAW": "withdrawn",
}
# Device states (AMI Status) -> what a supervisor calls them.
_BUSY = {2, 3, 8}  # INUSE, BUSY, ONHOLD
_RINGING = {6, 7}  # RINGING, RINGINUSE
_UNAVAILABLE = {0, 4, 5}  # UNKNOWN, INVALID, UNAVAILABLE
# Calls recently finalised, so late events for them are recognised and not resurrected.
_ENDED_MEMORY = 20_000
# AgentComplete may arrive just after the call's last Hangup (same TCP chunk, a race with
# channel teardown): a call whose talk has no end yet waits this long in event time for it.
_COMPLETE_GRACE_S = 2.0

CallKey = tuple[str, str]  # (server, linkedid)
MemberKey = tuple[str, str, str]  # (server, queue, interface)


def agent_state(member: Member, now: float, wrapup_s: float) -> str:
    """The supervisor's view of an agent in a queue at ``now``.

    One of available, ringing, on_call, wrapup, paused, unavailable. Wrap-up has no AMI event:
    it is the queue's wrap-up time after the agent's last call.
    """
    if member.paused:
        # The desk's after-call-work pause is wrap-up, not a break.
        return "wrapup" if member.paused_reason == WRAPUP_REASON else "paused"
    if member.status in _UNAVAILABLE:
        return "unavailable"
    if member.status in _RINGING:
        return "ringing"
    if member.in_call or member.status in _BUSY:
        return "on_call"
    if member.last_call_end is not None and now < member.last_call_end + wrapup_s:
        return "wrapup"
    return "available"


@dataclass
class _Resync:
    """What one snapshot (QueueStatus + CoreShowChannels) said, collected until its end."""

    started_at: float
    channels: dict[str, ev.ChannelSnapshot] = field(default_factory=dict)
    entries: list[ev.WaitingEntry] = field(default_factory=list)
    members: set[MemberKey] = field(default_factory=set)
    saw_queue_status: bool = False
    # Calls with an event since the resync began: alive in the stream, so never closed by it.
    # A set, not a time comparison: event times are the PBX's clock, the resync's the service's.
    touched: set[CallKey] = field(default_factory=set)


class Tracker:
    """Folds events from any number of Asterisk servers into calls and agent states."""

    def __init__(self) -> None:
        self.calls: dict[CallKey, Call] = {}
        self.members: dict[MemberKey, Member] = {}
        self.pauses: dict[MemberKey, Pause] = {}
        self.sessions: dict[MemberKey, AgentSession] = {}
        self.queue_stats: dict[tuple[str, str], ev.QueueSnapshot] = {}
        self.counters: dict[str, int] = {}
        self._by_uniqueid: dict[tuple[str, str], str] = {}  # (server, uniqueid) -> linkedid
        self._connected: dict[MemberKey, tuple[CallKey, Visit]] = {}
        self._pending_queue: dict[CallKey, str] = {}  # Queue() being entered (for FULL)
        self._ended: OrderedDict[CallKey, None] = OrderedDict()
        self._resync: dict[str, _Resync] = {}
        self._gone: dict[CallKey, set[str]] = {}  # channels of live calls that hung up
        self._finishing: dict[CallKey, float] = {}  # call -> event time to finalise it by
        self._handlers: dict[type, Callable[[Any, list[Effect]], None]] = {
            ev.ChannelNew: self._on_channel_new,
            ev.CallerIdSet: self._on_caller_id,
            ev.ChannelHangup: self._on_hangup,
            ev.DialplanStep: self._on_dialplan,
            ev.VarSet: self._on_varset,
            ev.Dtmf: self._on_dtmf,
            ev.UserEvent: self._on_user_event,
            ev.QueueJoin: self._on_join,
            ev.QueueLeave: self._on_leave,
            ev.QueueAbandon: self._on_abandon,
            ev.AgentRing: self._on_agent_ring,
            ev.AgentNoAnswer: self._on_agent_no_answer,
            ev.AgentAnswer: self._on_agent_answer,
            ev.AgentDone: self._on_agent_done,
            ev.Transfer: self._on_transfer,
            ev.Hold: self._on_hold,
            ev.MemberUpdate: self._on_member,
            ev.QueueSnapshot: self._on_queue_snapshot,
            ev.WaitingEntry: self._on_waiting_entry,
            ev.ChannelSnapshot: self._on_channel_snapshot,
            ev.ResyncBegin: self._on_resync_begin,
            ev.ResyncEnd: self._on_resync_end,
            ev.LinkDown: self._on_link_down,
        }

    # ---- public API ---------------------------------------------------------------------

    def feed(self, event: ev.Event) -> list[Effect]:
        """Applies one event and returns what changed; never raises on odd input."""
        effects: list[Effect] = []
        handler = self._handlers.get(type(event))
        if handler is None:
            return effects
        handler(event, effects)
        if self._finishing:
            self.tick(event.ts, effects, event.server)
        return effects

    def tick(
        self, now: float, effects: list[Effect] | None = None, server: str | None = None
    ) -> list[Effect]:
        """Finalises calls whose grace period for a late AgentComplete is over at ``now``.

        ``now`` is on the PBX's clock; with ``server`` only that server's calls are looked at
        (each Asterisk has its own clock).
        """
        effects = [] if effects is None else effects
        for key, deadline in list(self._finishing.items()):
            if (server is None or key[0] == server) and now >= deadline:
                call = self.calls.get(key)
                if call is not None:
                    self._finish(call, deadline - _COMPLETE_GRACE_S, effects)
        return effects

    def resume(self, calls: Iterable[Call]) -> None:
        """Takes back calls that were open when the service last stopped, flagged reconstructed.

        Whatever happened to them between their last snapshot and the next resync was never
        seen, as for the calls in flight when an AMI link drops.
        """
        for call in calls:
            call.reconstructed = True
            key = (call.server, call.linkedid)
            self.calls[key] = call
            for uniqueid in call.live_channels | {call.uniqueid}:
                self._by_uniqueid[(call.server, uniqueid)] = call.linkedid
            for visit in call.visits:
                if visit.open and visit.answered_at is not None and visit.interface:
                    self._connected[(call.server, visit.queue, visit.interface)] = (key, visit)

    def waiting(self, server: str | None = None) -> Iterator[tuple[Call, Visit]]:
        """Callers waiting in a queue now (entered, not answered, not gone)."""
        for (srv, _), call in self.calls.items():
            if server is not None and srv != server:
                continue
            for visit in call.visits:
                if visit.left_at is None and visit.outcome is None and visit.ended_at is None:
                    yield call, visit

    def close_all(self, ts: float, server: str | None = None) -> list[Effect]:
        """Finalises every open call (end of a replay, or a server that is gone for good)."""
        effects: list[Effect] = []
        for key, call in list(self.calls.items()):
            if server is None or key[0] == server:
                call.reconstructed = True
                self._finish(call, ts, effects)
        return effects

    # ---- helpers ------------------------------------------------------------------------

    def _touch(self, key: CallKey) -> None:
        """Notes that a call had an event while its server's resync is running."""
        rs = self._resync.get(key[0])
        if rs is not None:
            rs.touched.add(key)

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _anomaly(
        self,
        effects: list[Effect],
        kind: str,
        detail: str,
        server: str = "",
        linkedid: str | None = None,
    ) -> None:
        self._count(kind)
        effects.append(Anomaly(kind, detail, server, linkedid))

    def _call_for(
        self, server: str, chan: ev.Chan, ts: float, effects: list[Effect], create: bool = True
    ) -> Call | None:
        """The call a channel belongs to; created (flagged reconstructed) if unseen so far."""
        key = (server, chan.linkedid)
        call = self.calls.get(key)
        if call is None:
            if key in self._ended or not create:
                self._count("late_event")
                return None
            call = Call(
                server=server,
                linkedid=chan.linkedid,
                uniqueid=chan.linkedid,
                started_at=ts,
                reconstructed=True,
            )
            self.calls[key] = call
            self._anomaly(
                effects,
                "call_without_start",
                f"first seen on {chan.channel}",
                server,
                chan.linkedid,
            )
            effects.append(CallStarted(call))
        if chan.uniqueid not in call.live_channels and chan.uniqueid not in self._gone.get(key, ()):
            call.live_channels.add(chan.uniqueid)
            self._by_uniqueid[(server, chan.uniqueid)] = chan.linkedid
        self._touch(key)
        if chan.uniqueid == call.uniqueid:
            call.caller_channel = call.caller_channel or chan.channel
            if chan.caller_number and not call.caller_number:
                call.caller_number = chan.caller_number
            if chan.caller_name and not call.caller_name:
                call.caller_name = chan.caller_name
        return call

    @staticmethod
    def _open_visit(call: Call, queue: str) -> Visit | None:
        """The caller's latest visit to ``queue`` that has not ended."""
        for visit in reversed(call.visits):
            if visit.queue == queue and visit.ended_at is None:
                return visit
        return None

    def _visit_for(
        self, server: str, chan: ev.Chan, queue: str, ts: float, effects: list[Effect]
    ) -> tuple[Call, Visit] | None:
        """The open visit a queue event is about; created (reconstructed) if we missed the join."""
        call = self._call_for(server, chan, ts, effects)
        if call is None:
            return None
        visit = self._open_visit(call, queue)
        if visit is None:
            visit = Visit(queue=queue, entered_at=None)
            call.visits.append(visit)
            call.reconstructed = True
            self._anomaly(
                effects, "visit_without_join", f"{queue} {chan.channel}", server, call.linkedid
            )
        return call, visit

    def _end_visit(self, call: Call, visit: Visit, ts: float, effects: list[Effect]) -> None:
        """Closes a visit (idempotent) and announces it."""
        if visit.ended_at is not None:
            return
        if visit.left_at is None:
            visit.left_at = ts
        visit.ended_at = ts
        if visit.answered_at is not None and visit.talk_s is None:
            visit.talk_s = round(max(0.0, ts - visit.answered_at), 3)
        if visit.hold_started_at is not None:
            visit.hold_s += max(0.0, ts - visit.hold_started_at)
            visit.hold_started_at = None
        if visit.outcome is None:
            visit.outcome = "answered" if visit.answered_at is not None else "abandoned"
        for offer in visit.offers:
            if offer.result == "ringing":
                offer.result, offer.ended_at = "canceled", ts
                offer.ring_s = round(ts - offer.rang_at, 3)
        if visit.interface:
            self._connected.pop((call.server, visit.queue, visit.interface), None)
        effects.append(VisitEnded(call, visit))

    def _finish(self, call: Call, ts: float, effects: list[Effect]) -> None:
        """Makes a call final: closes its visits, settles who hung up, forgets it."""
        key = (call.server, call.linkedid)
        for visit in call.visits:
            self._end_visit(call, visit, ts, effects)
        call.ended_at = ts
        answered = [v for v in call.visits if v.answered_at is not None]
        if answered:
            last = answered[-1]
            call.hangup_by = last.hangup_by if last.hangup_by in ("caller", "agent") else "caller"
        elif call.outcome in ("abandoned", "ivr_only"):
            call.hangup_by = "caller"
        else:
            call.hangup_by = "system"
        for uniqueid in call.live_channels | self._gone.pop(key, set()) | {call.uniqueid}:
            self._by_uniqueid.pop((call.server, uniqueid), None)
        call.live_channels.clear()
        self.calls.pop(key, None)
        self._finishing.pop(key, None)
        self._pending_queue.pop(key, None)
        self._ended[key] = None
        if len(self._ended) > _ENDED_MEMORY:
            self._ended.popitem(last=False)
        effects.append(CallEnded(call))

    # ---- channel events -----------------------------------------------------------------

    def _on_channel_new(self, e: ev.ChannelNew, effects: list[Effect]) -> None:
        key = (e.server, e.chan.linkedid)
        if key not in self.calls and key not in self._ended:
            fresh = Call(
                server=e.server, linkedid=e.chan.linkedid, uniqueid=e.chan.linkedid, started_at=e.ts
            )
            self.calls[key] = fresh
            effects.append(CallStarted(fresh))
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call and e.chan.uniqueid == call.uniqueid and e.chan.exten and _is_number(e.chan.exten):
            call.dialled = call.dialled or e.chan.exten

    def _on_caller_id(self, e: ev.CallerIdSet, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call and e.chan.uniqueid == call.uniqueid:
            call.caller_number = e.chan.caller_number or call.caller_number
            call.caller_name = e.chan.caller_name or call.caller_name

    def _on_hangup(self, e: ev.ChannelHangup, effects: list[Effect]) -> None:
        key = (e.server, e.chan.linkedid)
        call = self.calls.get(key)
        if call is None:
            self._count("late_event" if key in self._ended else "orphan_hangup")
            return
        call.live_channels.discard(e.chan.uniqueid)
        self._gone.setdefault(key, set()).add(e.chan.uniqueid)
        self._touch(key)
        if e.chan.uniqueid == call.uniqueid:
            call.hangup_cause = e.cause
            self._settle_unanswered(call, e.ts)
        if call.live_channels:
            return
        if self._awaits_complete(call):
            self._finishing[key] = e.ts + _COMPLETE_GRACE_S
        else:
            self._finish(call, e.ts, effects)

    @staticmethod
    def _awaits_complete(call: Call) -> bool:
        """Whether a conversation of this call still waits for its AgentComplete."""
        return any(v.open and v.answered_at is not None for v in call.visits)

    def _settle_unanswered(self, call: Call, ts: float) -> None:
        """The caller's channel is gone: a visit it left without an outcome was abandoned."""
        for visit in call.visits:
            if visit.outcome is None and visit.answered_at is None:
                visit.outcome = "abandoned"
                visit.left_at = visit.left_at or ts

    def _on_dialplan(self, e: ev.DialplanStep, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call is None or e.chan.uniqueid != call.uniqueid:
            return
        context = e.chan.context or ""
        if context and (not call.ivr_path or call.ivr_path[-1] != context):
            call.ivr_path.append(context)
        if not call.dialled and e.chan.exten and _is_number(e.chan.exten):
            call.dialled = e.chan.exten
        if e.application == "Queue":
            self._pending_queue[(call.server, call.linkedid)] = e.app_data.split(",", 1)[0]

    def _on_varset(self, e: ev.VarSet, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call is None:
            return
        if e.variable.startswith("CC_"):
            call.ivr_vars[e.variable] = e.value
            return
        if e.variable != "QUEUESTATUS" or e.chan.uniqueid != call.uniqueid:
            return
        outcome = _QUEUESTATUS_OUTCOME.get(e.value)
        if outcome is None:
            return  # CONTINUE and friends: the queue already said what happened
        queue = self._pending_queue.pop((call.server, call.linkedid), None)
        if outcome in ("full", "join_empty"):
            # Queue() refused the caller: no Queue* event, no queue_log line, only this.
            call.rejected_queue = queue
            call.rejected_status = outcome
            return
        for visit in reversed(call.visits):
            if visit.answered_at is None and (queue is None or visit.queue == queue):
                visit.outcome = outcome
                break

    def _on_dtmf(self, e: ev.Dtmf, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call is None or e.chan.uniqueid != call.uniqueid:
            return
        if not any(v.answered_at is not None and v.open for v in call.visits):
            call.ivr_digits += e.digit

    def _on_user_event(self, e: ev.UserEvent, effects: list[Effect]) -> None:
        if e.chan is None:
            return
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call is not None and "Result" in e.fields:
            call.ivr_result = e.fields["Result"]

    # ---- queue events -------------------------------------------------------------------

    def _on_join(self, e: ev.QueueJoin, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call is None:
            return
        if call.uniqueid != e.chan.uniqueid and not call.visits:
            call.uniqueid = e.chan.uniqueid  # the queued channel is the callid in queue_log
        call.caller_number = call.caller_number or e.chan.caller_number
        call.caller_name = call.caller_name or e.chan.caller_name
        call.dialled = call.dialled or (e.chan.exten if _is_number(e.chan.exten) else None)
        self._pending_queue.pop((call.server, call.linkedid), None)
        for earlier in call.visits:
            # Redirected while connected: Asterisk keeps the first visit open (it completes
            # when the caller hangs up) — note where the caller went.
            if earlier.open and earlier.answered_at is not None and not earlier.transferred_to:
                earlier.transferred_to = e.queue
        visit = Visit(queue=e.queue, entered_at=e.ts, position=e.position)
        call.visits.append(visit)
        effects.append(QueueJoined(call, visit))

    def _on_leave(self, e: ev.QueueLeave, effects: list[Effect]) -> None:
        found = self._visit_for(e.server, e.chan, e.queue, e.ts, effects)
        if found and found[1].left_at is None:
            found[1].left_at = e.ts

    def _on_abandon(self, e: ev.QueueAbandon, effects: list[Effect]) -> None:
        found = self._visit_for(e.server, e.chan, e.queue, e.ts, effects)
        if found is None:
            return
        _, visit = found
        visit.left_at = visit.left_at or e.ts
        visit.asterisk_wait_s = e.holdtime
        if visit.entered_at is None and e.holdtime is not None:
            visit.entered_at = e.ts - e.holdtime
        # Provisional: a QUEUESTATUS=TIMEOUT that follows turns it into a timeout.
        if visit.outcome is None:
            visit.outcome = "abandoned"

    def _agent_visit(self, e: ev.AgentEvent, effects: list[Effect]) -> tuple[Call, Visit] | None:
        """The visit an agent event is about: by the caller's channel, else by the agent."""
        if e.chan is not None:
            return self._visit_for(e.server, e.chan, e.queue, e.ts, effects)
        found = self._connected.get((e.server, e.queue, e.interface))
        if found is None:
            self._anomaly(
                effects,
                "orphan_agent_event",
                f"{type(e).__name__} {e.queue}/{e.agent} without caller",
                e.server,
            )
            return None
        key, visit = found
        call = self.calls.get(key)
        return (call, visit) if call else None

    def _on_agent_ring(self, e: ev.AgentRing, effects: list[Effect]) -> None:
        found = self._agent_visit(e, effects)
        if found is None:
            return
        call, visit = found
        offer = Offer(agent=e.agent, interface=e.interface, rang_at=e.ts)
        visit.offers.append(offer)
        effects.append(AgentOffered(call, visit, offer))

    def _ringing_offer(self, visit: Visit, interface: str) -> Offer | None:
        for offer in reversed(visit.offers):
            if offer.interface == interface and offer.result == "ringing":
                return offer
        return None

    def _on_agent_no_answer(self, e: ev.AgentNoAnswer, effects: list[Effect]) -> None:
        found = self._agent_visit(e, effects)
        if found is None:
            return
        ring_s = e.ring_ms / 1000 if e.ring_ms is not None else None
        offer = self._ringing_offer(found[1], e.interface)
        if offer is None:  # it started ringing before we were listening
            offer = Offer(agent=e.agent, interface=e.interface, rang_at=e.ts - (ring_s or 0.0))
            found[1].offers.append(offer)
        offer.result, offer.ended_at = "no_answer", e.ts
        offer.ring_s = ring_s if ring_s is not None else round(e.ts - offer.rang_at, 3)

    def _on_agent_answer(self, e: ev.AgentAnswer, effects: list[Effect]) -> None:
        found = self._agent_visit(e, effects)
        if found is None:
            return
        call, visit = found
        visit.answered_at = e.ts
        visit.left_at = visit.left_at or e.ts
        visit.agent, visit.interface = e.agent, e.interface
        visit.outcome = "answered"
        visit.asterisk_wait_s = e.holdtime
        if visit.entered_at is None and e.holdtime is not None:
            visit.entered_at = e.ts - e.holdtime
        offer = self._ringing_offer(visit, e.interface)
        if offer is None:
            offer = Offer(agent=e.agent, interface=e.interface, rang_at=e.ts - (e.ringtime or 0))
            visit.offers.append(offer)
        offer.result, offer.ended_at = "answered", e.ts
        offer.ring_s = round(e.ts - offer.rang_at, 3)
        for other in visit.offers:
            if other.result == "ringing":
                other.result, other.ended_at = "canceled", e.ts
                other.ring_s = round(e.ts - other.rang_at, 3)
        self._connected[(e.server, e.queue, e.interface)] = ((call.server, call.linkedid), visit)
        effects.append(CallAnswered(call, visit))

    def _on_agent_done(self, e: ev.AgentDone, effects: list[Effect]) -> None:
        found = self._agent_visit(e, effects)
        if found is None:
            return
        call, visit = found
        if visit.answered_at is None:
            # We never saw the connect (started before a gap): Asterisk's figures fill in.
            call.reconstructed = True
            visit.answered_at = e.ts - (e.talktime or 0)
            visit.agent, visit.interface, visit.outcome = e.agent, e.interface, "answered"
            if visit.entered_at is None:
                visit.entered_at = visit.answered_at - (e.holdtime or 0)
            visit.asterisk_wait_s = e.holdtime
        visit.asterisk_talk_s = e.talktime
        visit.hangup_by = e.reason or visit.hangup_by
        self._end_visit(call, visit, e.ts, effects)
        key = (call.server, call.linkedid)
        if key in self._finishing and not self._awaits_complete(call):
            self._finish(call, e.ts, effects)
        member = self.members.get((e.server, e.queue, e.interface))
        if member is not None:
            member.last_call_end = e.ts
        # The agent's other queues see the same wrap-up.
        for (srv, _, iface), other in self.members.items():
            if srv == e.server and iface == e.interface:
                other.last_call_end = e.ts

    def _on_transfer(self, e: ev.Transfer, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects)
        if call is None:
            return
        for visit in reversed(call.visits):
            if visit.open and visit.answered_at is not None:
                visit.transferred_to = e.target or e.kind
                break

    def _on_hold(self, e: ev.Hold, effects: list[Effect]) -> None:
        call = self._call_for(e.server, e.chan, e.ts, effects, create=False)
        if call is None:
            return
        for visit in reversed(call.visits):
            if visit.open and visit.answered_at is not None:
                if e.on and visit.hold_started_at is None:
                    visit.hold_started_at = e.ts
                elif not e.on and visit.hold_started_at is not None:
                    visit.hold_s += max(0.0, e.ts - visit.hold_started_at)
                    visit.hold_started_at = None
                break

    # ---- agents -------------------------------------------------------------------------

    def _on_member(self, e: ev.MemberUpdate, effects: list[Effect]) -> None:
        key = (e.server, e.queue, e.interface)
        if e.kind == "snapshot":
            rs = self._resync.get(e.server)
            if rs is not None:
                rs.members.add(key)
        member = self.members.get(key)
        if e.kind == "removed":
            if member is not None:
                self._logoff(key, member, e.ts, effects)
            return
        if member is None:
            member = Member(
                interface=e.interface, agent=e.agent, queue=e.queue, since=e.ts, server=e.server
            )
            self.members[key] = member
        if key not in self.sessions:
            started = e.login_time if e.kind == "snapshot" and e.login_time else e.ts
            self.sessions[key] = AgentSession(
                e.interface, e.agent, e.queue, started, static=e.static, server=e.server
            )
        changed = (member.status, member.paused, member.paused_reason, member.in_call) != (
            e.status,
            e.paused,
            e.paused_reason,
            e.in_call,
        )
        if e.paused and not member.paused:
            started = e.last_pause if e.kind == "snapshot" and e.last_pause else e.ts
            self.pauses[key] = Pause(
                e.interface, e.agent, e.queue, e.paused_reason, started, server=e.server
            )
        elif not e.paused and member.paused:
            self._end_pause(key, e.ts, effects)
        elif e.paused and key in self.pauses and e.paused_reason != member.paused_reason:
            self._end_pause(key, e.ts, effects)  # a new reason is a new pause
            self.pauses[key] = Pause(
                e.interface, e.agent, e.queue, e.paused_reason, e.ts, server=e.server
            )
        member.agent = e.agent
        member.status, member.paused = e.status, e.paused
        member.paused_reason, member.in_call = e.paused_reason, e.in_call
        if changed or e.kind == "added":
            member.since = e.ts
            effects.append(MemberChanged(member))

    def _end_pause(self, key: MemberKey, ts: float, effects: list[Effect]) -> None:
        pause = self.pauses.pop(key, None)
        if pause is not None:
            pause.ended_at = ts
            effects.append(PauseEnded(pause))

    def _logoff(self, key: MemberKey, member: Member, ts: float, effects: list[Effect]) -> None:
        """The agent left the queue: end the pause and the session, forget the member."""
        self._end_pause(key, ts, effects)
        session = self.sessions.pop(key, None)
        if session is not None:
            session.ended_at = ts
            effects.append(SessionEnded(session))
        del self.members[key]
        effects.append(MemberChanged(member, removed=True))

    def _on_queue_snapshot(self, e: ev.QueueSnapshot, effects: list[Effect]) -> None:
        self.queue_stats[(e.server, e.queue)] = e
        rs = self._resync.get(e.server)
        if rs is not None:
            rs.saw_queue_status = True

    # ---- resync: reconcile with what Asterisk says is live ------------------------------

    def _resync_state(self, server: str, ts: float) -> _Resync:
        rs = self._resync.get(server)
        if rs is None:
            rs = self._resync[server] = _Resync(started_at=ts)
        return rs

    def _on_resync_begin(self, e: ev.ResyncBegin, effects: list[Effect]) -> None:
        self._resync[e.server] = _Resync(started_at=e.ts)

    def _on_link_down(self, e: ev.LinkDown, effects: list[Effect]) -> None:
        # Every call in flight may miss events until the resync: it can no longer be exact.
        for (srv, _), call in self.calls.items():
            if srv == e.server:
                call.reconstructed = True

    def _on_waiting_entry(self, e: ev.WaitingEntry, effects: list[Effect]) -> None:
        self._resync_state(e.server, e.ts).entries.append(e)

    def _on_channel_snapshot(self, e: ev.ChannelSnapshot, effects: list[Effect]) -> None:
        self._resync_state(e.server, e.ts).channels[e.chan.uniqueid] = e

    def _on_resync_end(self, e: ev.ResyncEnd, effects: list[Effect]) -> None:
        rs = self._resync.pop(e.server, None)
        if rs is None:
            return
        if not e.complete:
            self._anomaly(effects, "resync_incomplete", f"not recovered: {e.failed}", e.server)
            return
        live_links = {snap.chan.linkedid for snap in rs.channels.values()}
        # 1. Calls we hold that Asterisk no longer has ended during the gap.
        for key, call in list(self.calls.items()):
            if key[0] != e.server or key in rs.touched:
                continue
            if call.linkedid not in live_links:
                call.reconstructed = True
                self._anomaly(
                    effects, "closed_by_resync", "ended while disconnected", e.server, call.linkedid
                )
                self._finish(call, rs.started_at, effects)
            else:
                # Channels that hung up during the gap count as gone, so _finish forgets their
                # uniqueids too (dropping them from live_channels alone leaked _by_uniqueid).
                vanished = call.live_channels - set(rs.channels)
                call.live_channels -= vanished
                self._gone.setdefault(key, set()).update(vanished)
        # 2. Live channels of calls we have never seen (we started mid-call).
        for snap in sorted(rs.channels.values(), key=lambda s: -s.duration_s):
            key = (e.server, snap.chan.linkedid)
            if key in self._ended:
                continue
            if key not in self.calls:
                fresh = Call(
                    server=e.server,
                    linkedid=snap.chan.linkedid,
                    uniqueid=snap.chan.linkedid,
                    started_at=snap.ts - snap.duration_s,
                    reconstructed=True,
                )
                self.calls[key] = fresh
                effects.append(CallStarted(fresh))
            found = self._call_for(e.server, snap.chan, snap.ts, effects)
            if found is None or snap.chan.uniqueid != found.uniqueid:
                continue
            call = found
            if snap.application == "Queue":
                queue = snap.app_data.split(",", 1)[0]
                if queue and self._open_visit(call, queue) is None:
                    # Bridged means an agent has it: answered, at a time AgentComplete tells.
                    outcome = "answered" if snap.bridged else None
                    call.visits.append(Visit(queue=queue, entered_at=None, outcome=outcome))
                    call.reconstructed = True
        # 3. Callers waiting now: when they entered the queue.
        for entry in rs.entries:
            linkedid = self._by_uniqueid.get((e.server, entry.uniqueid), entry.uniqueid)
            waiting = self.calls.get((e.server, linkedid))
            if waiting is None:
                continue
            call = waiting
            call.caller_number = call.caller_number or entry.caller_number
            call.caller_name = call.caller_name or entry.caller_name
            visit = self._open_visit(call, entry.queue)
            if visit is None:
                visit = Visit(queue=entry.queue, entered_at=None)
                call.visits.append(visit)
            if visit.entered_at is None:
                visit.entered_at = entry.ts - entry.wait
                visit.position = entry.position
                call.reconstructed = True
        # 4. Agents Asterisk no longer lists logged off while we were away.
        if rs.saw_queue_status:
            for mkey, member in list(self.members.items()):
                if mkey[0] == e.server and mkey not in rs.members:
                    self._logoff(mkey, member, rs.started_at, effects)


def _is_number(value: str | None) -> bool:
    """Whether a dialplan extension is a dialled number (not s, h, i, a pattern…)."""
    return bool(value) and value.lstrip("+").isdigit()  # type: ignore[union-attr]
