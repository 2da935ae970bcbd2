"""A connected queue call: the talk, who ends it, and transfers.

On connect the agent's ``;2`` redirects the customer's phone to ``callers,talk``, where it
waits TALK seconds and hangs up (HANGUPBY=caller), or waits forever while the agent's
``;2`` hangs up after TALK (HANGUPBY=agent). Every connect restarts the phone's talk, as
the recorded transfer shows (the caller's talk restarts with the second agent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim import agentleg, connect
from callcenter.sim import queue as q
from callcenter.sim.engine import CALL, Pbx

if TYPE_CHECKING:
    from callcenter.sim.dialplan import InboundCall
    from callcenter.sim.queue import Attempt


def start_talk(pbx: Pbx, call: InboundCall, attempt: Attempt) -> None:
    """[agents] redirects the customer's phone to talk and schedules the end of the call."""
    leg, c2 = attempt.leg, call.c2
    a2 = leg.a2
    call.stop_phone()
    by_agent = call.hangup_by == "agent"
    pbx.newexten(a2, 10, "ExecIf", f"1?ChannelRedirect({c2.name},callers,talk,1)")
    c2.goto("callers", "talk", 1)
    talk = _fmt(call.talk)
    pbx.newexten(c2, 1, "NoOp", f"Customer connected, talk={talk} hangupby={call.hangup_by}")
    pbx.newexten(c2, 2, "GotoIf", f"{int(by_agent)}?forever")
    pbx.varset(a2, "CHANNELREDIRECT_STATUS", "SUCCESS")
    pbx.newexten(a2, 11, "GotoIf", f"{int(by_agent)}?agentend")
    if by_agent:
        pbx.newexten(c2, 5, "Wait", "3600")
        pbx.newexten(a2, 14, "Wait", talk)
        delay = call.talk + pbx.config.agent_talk_latency
        attempt.timer = pbx.sched.after(delay, agent_ends, pbx, attempt)
    else:
        pbx.newexten(c2, 3, "Wait", talk)
        pbx.newexten(a2, 12, "Wait", "3600")
        delay = call.talk + pbx.config.talk_latency
        call.set_phone_timer(pbx.sched.after(delay, caller_ends, pbx, call))
    call.attempt = attempt


def caller_ends(pbx: Pbx, call: InboundCall) -> None:
    """The customer's talk Wait is over: the phone hangs up."""
    attempt = call.attempt
    if call.ended:
        return
    if attempt is None:
        call.give_up()  # back in a queue after a transfer: hanging up there is an abandon
        return
    c1, c2 = call.c1, call.c2
    leg, bridge = attempt.leg, attempt.bridge
    a1 = leg.a1
    pbx.newexten(c2, 4, "Hangup")
    pbx.soft_hangup(c2)
    pbx.hangup_request(c1)
    call.cdr_c2()
    pbx.varset(c1, "BRIDGEPEER", "")
    pbx.varset(a1, "BRIDGEPEER", "")
    connect.bridge_leave(pbx, bridge, c1)
    queue = attempt.entry.queue
    pbx.varsets(c1, queue.variables())
    talk = pbx.now_epoch() - (attempt.connected or pbx.now_epoch())
    pbx.varsets(c1, _end_times(pbx, call, talk))
    pbx.varsets(c1, queue.variables())
    pbx.soft_hangup(c1)
    info = connect.agent_complete(pbx, attempt, "caller")
    pbx.hangup(c2)
    pbx.devstate("Local/cust@callers", "NOT_INUSE")
    call.cdr_c1("ANSWERED", a1.name)
    pbx.hangup(c1)
    connect.bridge_leave(pbx, bridge, a1)
    pbx.devstate("Local/cust@callers", "NOT_INUSE")
    if bridge is not None:
        pbx.emit("BridgeDestroy", CALL, bridge.block())
    pbx.hangup_request(leg.a2)
    pbx.hangup(a1)
    agentleg.hangup_handler(pbx, leg, completed=True)
    agentleg.hangup_a2(pbx, leg, answered=True, cause=16)
    call.attempt = None
    call.flush_redirected()
    pbx.hooks.call_answered_end(info)
    call.finish()


def agent_ends(pbx: Pbx, attempt: Attempt) -> None:
    """The agent's talk Wait is over: the agent hangs up and the caller is released."""
    call = attempt.entry.call
    if call.ended or call.attempt is not attempt:
        return
    c1, c2 = call.c1, call.c2
    leg, bridge = attempt.leg, attempt.bridge
    a1, a2 = leg.a1, leg.a2
    pbx.newexten(a2, 15, "Hangup")
    agentleg.hangup_handler(pbx, leg, completed=True)
    pbx.hangup_request(a1)
    info = connect.agent_complete(pbx, attempt, "agent")
    pbx.varset(a1, "BRIDGEPEER", "")
    pbx.cdr(a2, dest_channel="", disposition="ANSWERED", answer=a2.answered)
    pbx.hangup(a2)
    pbx.varset(c1, "BRIDGEPEER", "")
    connect.bridge_leave(pbx, bridge, a1)
    pbx.hangup(a1)
    connect.bridge_leave(pbx, bridge, c1)
    if bridge is not None:
        pbx.emit("BridgeDestroy", CALL, bridge.block())
    queue = attempt.entry.queue
    pbx.varsets(c1, queue.variables())
    talk = pbx.now_epoch() - (attempt.connected or pbx.now_epoch())
    pbx.varsets(c1, _end_times(pbx, call, talk))
    pbx.varsets(c1, queue.variables())
    call.stop_phone()
    pbx.soft_hangup(c1)
    pbx.hangup_request(c2)
    pbx.hangup(c1)
    pbx.soft_hangup(c2)
    pbx.hangup(c2)
    call.cdr_c1("ANSWERED", a1.name)
    call.cdr_c2()
    pbx.devstate(f"Local/{leg.member.device.ext}@agents", "NOT_INUSE")
    pbx.devstate("Local/cust@callers", "NOT_INUSE")
    pbx.devstate("Local/cust@callers", "NOT_INUSE")
    call.attempt = None
    call.flush_redirected()
    pbx.hooks.call_answered_end(info)
    call.finish()


def _end_times(pbx: Pbx, call: InboundCall, talk: float) -> list[tuple[str, object]]:
    dialed = pbx.now_epoch() - call.c1.created
    return [
        ("ANSWEREDTIME", int(talk)),
        ("ANSWEREDTIME_MS", int(talk * 1000)),
        ("DIALEDTIME", int(dialed)),
        ("DIALEDTIME_MS", int(dialed * 1000)),
    ]


def _release_agent(pbx: Pbx, attempt: Attempt, *, completed: bool) -> None:
    """The agent's pair leaves the bridge and hangs up (transfer and redirect)."""
    leg, bridge = attempt.leg, attempt.bridge
    connect.bridge_leave(pbx, bridge, leg.a1)
    if bridge is not None:
        pbx.emit("BridgeDestroy", CALL, bridge.block())
    pbx.hangup_request(leg.a2)
    pbx.hangup(leg.a1)
    agentleg.hangup_handler(pbx, leg, completed=completed)
    agentleg.hangup_a2(pbx, leg, answered=True, cause=16)


def blind_transfer(pbx: Pbx, attempt: Attempt, context: str, exten: str, queue: str) -> None:
    """AMI BlindTransfer on the agent's ``;1``: AgentComplete(transfer), caller re-queues."""
    call, leg, bridge = attempt.entry.call, attempt.leg, attempt.bridge
    c1, a1 = call.c1, leg.a1
    pbx.chan_event("Unhold", a1)
    pbx.varset(a1, "BLINDTRANSFER", c1.name)
    pbx.varset(c1, "BLINDTRANSFER", a1.name)
    pbx.varset(a1, "BRIDGEPEER", "")
    pbx.varset(c1, "BRIDGEPEER", "")
    old_app, old_data = c1.app, c1.appdata
    c1.goto(context, exten, 1)
    pbx.newexten(c1, 1, old_app, old_data)  # the snapshot still names the old application
    body = (
        "Result: Success\r\n"
        + a1.block("Transferer")
        + c1.block("Transferee")
        + (bridge.block() if bridge else "")
        + f"IsExternal: Yes\r\nContext: {context}\r\nExtension: {exten}\r\n"
    )
    pbx.emit("BlindTransfer", CALL, body)
    connect.bridge_leave(pbx, bridge, c1)
    pbx.varsets(c1, [("DIALEDTIME", int(pbx.now_epoch() - c1.created))])
    pbx.varsets(c1, [("ANSWEREDTIME", 0), ("ANSWEREDTIME_MS", 0)])
    info = connect.agent_complete(pbx, attempt, "transfer")
    pbx.varsets(c1, attempt.entry.queue.variables())
    _release_agent(pbx, attempt, completed=True)
    call.attempt = None
    pbx.hooks.call_answered_end(info)
    pbx.newexten(c1, 2, "Queue", queue)
    q.join(pbx, call, queue, None)


def redirect(pbx: Pbx, call: InboundCall, context: str, exten: str, queue: str) -> None:
    """AMI Redirect of the caller's ``;1`` out of the bridge into another queue.

    As recorded, app_queue logs no completion then: the first queue's AgentComplete
    (Reason caller, no agent block, talk counted to the very end) comes when the caller
    finally hangs up.
    """
    attempt = call.attempt
    c1 = call.c1
    if attempt is None:
        return
    pbx.varset(c1, "BRIDGEPEER", "")
    old_app, old_data = c1.app, c1.appdata
    c1.goto(context, exten, 1)
    pbx.newexten(c1, 1, old_app, old_data)
    pbx.varset(attempt.leg.a1, "BRIDGEPEER", "")
    connect.bridge_leave(pbx, attempt.bridge, c1)
    pbx.varsets(c1, [("DIALEDTIME", int(pbx.now_epoch() - c1.created))])
    pbx.varsets(c1, [("ANSWEREDTIME", 0), ("ANSWEREDTIME_MS", 0)])
    pbx.varsets(c1, attempt.entry.queue.variables())
    _release_agent(pbx, attempt, completed=False)
    call.attempt = None
    call.redirected.append(attempt)
    pbx.newexten(c1, 2, "Queue", queue)
    q.join(pbx, call, queue, None)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
