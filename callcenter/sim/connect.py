"""An answered queue call: the connect (bridge up), and the AgentComplete at its end.

app_queue's side of the agent picking up: DialEnd ANSWER, the member and queue variables,
QueueCallerLeave before AgentConnect, the two-party bridge; and at the end AgentComplete
with the queue's running averages updated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim import agentleg
from callcenter.sim import queue as q
from callcenter.sim.channels import Bridge, Channel
from callcenter.sim.engine import AGENT, CALL, Pbx
from callcenter.sim.hooks import AnsweredCallEnd

if TYPE_CHECKING:
    from callcenter.sim.queue import Attempt


def answered(pbx: Pbx, attempt: Attempt) -> None:
    """The ringing agent picks up: the caller leaves the queue and is bridged to the agent."""
    entry, leg = attempt.entry, attempt.leg
    call, queue, member = entry.call, entry.queue, leg.member
    c1, a1 = call.c1, leg.a1
    now = pbx.now_epoch()
    agentleg.answer(pbx, leg)
    pbx.chan_event("DialEnd", c1, a1.block("Dest") + "DialStatus: ANSWER\r\n")
    pbx.chan_event("MusicOnHoldStop", c1)
    member_vars: list[tuple[str, object]] = [
        ("MEMBERINTERFACE", member.interface),
        ("MEMBERNAME", member.name),
        ("MEMBERCALLS", member.calls_taken),
        ("MEMBERLASTCALL", member.device.last_call),
        ("MEMBERPENALTY", member.penalty),
        ("MEMBERDYNAMIC", int(member.dynamic)),
        ("MEMBERREALTIME", 0),
    ]
    pbx.varsets(c1, member_vars)
    pbx.varsets(a1, member_vars)
    hold = int(now) - int(entry.joined)
    attempt.hold = hold
    entry_vars: list[tuple[str, object]] = [("QEHOLDTIME", hold), ("QEORIGINALPOS", entry.orig_pos)]
    pbx.varsets(c1, entry_vars)
    pbx.varsets(a1, entry_vars)
    queue.holdtime = average(queue.holdtime, hold, queue.completed + queue.abandoned == 0)
    pbx.varsets(c1, queue.variables())
    pbx.varsets(a1, queue.variables())
    pbx.newexten(leg.a2, 9, "Set", f"DEVICE_STATE(Custom:{member.device.ext})=INUSE")
    entry.pending = False
    entry.attempt = None
    q.leave(pbx, entry)
    pbx.varsets(c1, [("QUEUEWAIT", hold), ("QUEUEWAIT_MS", hold * 1000)])
    tail = (
        f"Queue: {queue.name}\r\nInterface: {member.interface}\r\nMemberName: {member.name}\r\n"
        f"HoldTime: {hold}\r\nRingTime: {int(now) - int(attempt.started)}\r\n"
    )
    pbx.chan_event("AgentConnect", c1, a1.block("Dest") + tail, AGENT)
    bridge = Bridge(pbx.ids.bridge())
    attempt.bridge = bridge
    pbx.emit("BridgeCreate", CALL, bridge.block())
    _enter(pbx, bridge, a1)
    pbx.devstate(f"Local/{member.device.ext}@agents", "INUSE")
    pbx.devstate(f"Local/{member.device.ext}@agents", "INUSE")
    _enter(pbx, bridge, c1)
    pbx.varset(a1, "BRIDGEPEER", c1.name)
    pbx.varset(c1, "BRIDGEPEER", a1.name)
    member.in_call = True
    agentleg.mark_in_use(pbx, leg)
    attempt.connected = now
    if call.answered_at is None:
        call.answered_at = now
        call.result = "answered"
    call.connected(attempt)


def average(old: int, new: int, first: bool) -> int:
    """app_queue's running average: the first value as is, then 3/4 old + 1/4 new."""
    return new if first else ((old << 2) - old + new) >> 2


def _enter(pbx: Pbx, bridge: Bridge, ch: Channel) -> None:
    bridge.members.append(ch)
    ch.bridge = bridge.uniqueid
    pbx.emit("BridgeEnter", CALL, bridge.block() + ch.block())


def bridge_leave(pbx: Pbx, bridge: Bridge | None, ch: Channel) -> None:
    """BridgeLeave of one channel (and nothing if it is not in the bridge)."""
    if bridge is None or ch not in bridge.members:
        return
    bridge.members.remove(ch)
    ch.bridge = ""
    pbx.emit("BridgeLeave", CALL, bridge.block() + ch.block())


def agent_complete(
    pbx: Pbx, attempt: Attempt, reason: str, *, with_dest: bool = True
) -> AnsweredCallEnd:
    """AgentComplete plus the queue's completion statistics; returns the hook's record."""
    entry, leg = attempt.entry, attempt.leg
    call, queue, member = entry.call, entry.queue, leg.member
    now = pbx.now_epoch()
    talk = int(now) - int(attempt.connected or now)
    queue.talktime = average(queue.talktime, talk, queue.completed == 0)
    queue.completed += 1
    if attempt.hold <= queue.config.servicelevel:
        queue.completed_in_sl += 1
    tail = (
        f"Queue: {queue.name}\r\nInterface: {member.interface}\r\nMemberName: {member.name}\r\n"
        f"HoldTime: {attempt.hold}\r\nTalkTime: {talk}\r\nReason: {reason}\r\n"
    )
    call.talk_s += now - (attempt.connected or now)
    dest = leg.a1.block("Dest") if with_dest else ""
    pbx.chan_event("AgentComplete", call.c1, dest + tail, AGENT)
    return AnsweredCallEnd(
        linkedid=call.linkedid,
        uniqueid=call.c1.uniqueid,
        agent=member.name,
        interface=member.interface,
        queue=queue.name,
        caller_number=call.plan.number,
        caller_name=call.plan.name,
        ivr_choice=call.ivr_choice,
        category=call.category,
        talk_s=round(now - (attempt.connected or now), 3),
        ended_at=now,
        hangup_by=reason,
    )
