"""AMI actions that change the simulated PBX: member log-in/out and pauses, Originate,
Setvar/Getvar, transfers and hangups. Each returns the response text Asterisk 22 sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from callcenter.sim import lists, members, talk, wire
from callcenter.sim.engine import Pbx
from callcenter.sim.plan import CallPlan

Headers = list[tuple[str, str]]
Handler = Callable[[Pbx, Headers, str | None], str]

_CALLERID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<num>[^>]*)>\s*$')
_TRUE = ("1", "true", "yes", "on")


def get(h: Headers, key: str, default: str = "") -> str:
    """The first value of a header (case-insensitive), as astman_get_header does."""
    low = key.lower()
    for k, v in h:
        if k.lower() == low:
            return v
    return default


def get_all(h: Headers, key: str) -> list[str]:
    """Every value of a repeated header (``Variable:``)."""
    low = key.lower()
    return [v for k, v in h if k.lower() == low]


def queue_add(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """QueueAdd: a dynamic member logs in (QueueMemberAdded)."""
    queue = pbx.queues.get(get(h, "Queue"))
    interface = get(h, "Interface")
    if not interface or queue is None:
        return wire.error(
            aid,
            "Unable to add interface: No such queue" if interface else "'Interface' not specified.",
        )
    member = members.add_member(
        pbx,
        queue,
        interface,
        get(h, "MemberName") or None,
        penalty=int(get(h, "Penalty", "0") or 0),
        paused=get(h, "Paused").lower() in _TRUE,
        reason=get(h, "Reason"),
        state_interface=get(h, "StateInterface") or None,
    )
    if member is None:
        return wire.error(aid, "Unable to add interface: Already there")
    return wire.success(aid, "Added interface to queue")


def queue_remove(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """QueueRemove: a dynamic member logs off (QueueMemberRemoved)."""
    queue = pbx.queues.get(get(h, "Queue"))
    if queue is None:
        return wire.error(aid, "Unable to remove interface from queue: No such queue")
    if not members.remove_member(pbx, queue, get(h, "Interface")):
        return wire.error(aid, "Unable to remove interface: Not there")
    return wire.success(aid, "Removed interface from queue")


def queue_pause(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """QueuePause: pause or unpause an interface in one queue or all (QueueMemberPause)."""
    interface = get(h, "Interface")
    paused = get(h, "Paused").lower() in _TRUE
    if not interface:
        return wire.error(aid, "Need 'Interface' and 'Paused' parameters.")
    done = members.pause_members(pbx, interface, paused, get(h, "Queue") or None, get(h, "Reason"))
    if not done:
        return wire.error(aid, "Interface not found")
    return wire.success(aid, f"Interface {'paused' if paused else 'unpaused'} successfully")


def _agent_originate(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """Originate whose first leg is an agent's phone (a call-back): recorded and answered.

    The simulator has no outbound trunk: it records the action, answers Success and sends the
    OriginateResponse Asterisk sends once the agent picks up; the citizen's leg is not played.
    """
    channel = get(h, "Channel")
    fields = {k: v for k, v in h if k.lower() not in ("action", "actionid", "variable")}
    fields["Variable"] = ",".join(get_all(h, "Variable"))
    pbx.agent_originates.append(fields)
    reply = wire.success(aid, "Originate successfully queued")
    pbx.emit(
        "OriginateResponse",
        "call,all",
        (f"ActionID: {aid}\r\n" if aid else "")
        + f"Response: Success\r\nChannel: {channel}\r\nContext: {get(h, 'Context')}\r\n"
        f"Exten: {get(h, 'Exten')}\r\nReason: 4\r\nUniqueid: <null>\r\n"
        f"CallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n",
    )
    return reply


def originate(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """Originate of ``Local/cust@callers`` into ``incoming,<DID>``: a simulated inbound call."""
    channel = get(h, "Channel")
    if not channel:
        return wire.error(aid, "Channel not specified")
    if channel in pbx.devices:
        return _agent_originate(pbx, h, aid)
    if not channel.startswith("Local/"):
        return wire.error(aid, "Originate failed")  # the simulator only has Local channels
    match = _CALLERID.match(get(h, "CallerID"))
    name, number = (match["name"], match["num"]) if match else ("", get(h, "CallerID"))
    variables: list[tuple[str, str]] = []
    for value in get_all(h, "Variable"):
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if sep:
                variables.append((key.strip(), val))
    did = get(h, "Exten") or "4441000"
    pbx.originate(CallPlan.from_variables(name, number, did, variables), aid)
    return wire.success(aid, "Originate successfully queued")


def setvar(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """Setvar: a dialplan global (VarSet on ``Channel: none``) or a channel variable."""
    name, value = get(h, "Variable"), get(h, "Value")
    if not name:
        return wire.error(aid, "No variable specified")
    channel = get(h, "Channel")
    if channel:
        ch = pbx.channels.get(channel)
        if ch is None:
            return wire.error(aid, "No such channel")
        pbx.varset(ch, name, value)
    else:
        pbx.globals[name] = value
        pbx.emit(
            "VarSet",
            "dialplan,all",
            f"Channel: none\r\nUniqueid: none\r\nVariable: {name}\r\nValue: {value}\r\n",
        )
    return wire.success(aid, "Variable Set")


def getvar(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """Getvar: a global or channel variable."""
    name = get(h, "Variable")
    channel = get(h, "Channel")
    if channel:
        ch = pbx.channels.get(channel)
        if ch is None:
            return wire.error(aid, "No such channel")
        value = ch.variables.get(name, "")
    else:
        value = pbx.globals.get(name, "")
    return wire.response("Success", aid, ("Variable", name), ("Value", value))


def _transfer_queue(pbx: Pbx, context: str, exten: str) -> str | None:
    """The queue a transfer target lands in (the reference [transfer] context)."""
    if context == "transfer" and exten == "sosyal":
        return "sosyal-yardim"
    if exten in pbx.queues:
        return exten
    return None


def blind_transfer(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """BlindTransfer of the agent's ``;1``: the caller goes to another queue."""
    name = get(h, "Channel")
    context, exten = get(h, "Context"), get(h, "Exten")
    attempt = next(
        (c.attempt for c in pbx.calls.values() if c.attempt and c.attempt.leg.a1.name == name),
        None,
    )
    if attempt is None:
        return wire.error(aid, "No such channel")
    queue = _transfer_queue(pbx, context, exten)
    if queue is None:
        return wire.error(aid, "Transfer failed")
    reply = wire.success(aid, "Transfer succeeded")
    talk.blind_transfer(pbx, attempt, context, exten, queue)
    return reply


def redirect(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """Redirect of the caller's ``;1`` out of a connected call into another queue."""
    name = get(h, "Channel")
    call = next((c for c in pbx.calls.values() if c.c1.name == name), None)
    if call is None or call.attempt is None:
        return wire.error(aid, "Channel does not exist: " + name)
    queue = _transfer_queue(pbx, get(h, "Context"), get(h, "Exten"))
    if queue is None:
        return wire.error(aid, "Redirect failed")
    reply = wire.success(aid, "Redirect successful")
    talk.redirect(pbx, call, get(h, "Context"), get(h, "Exten"), queue)
    return reply


def hangup(pbx: Pbx, h: Headers, aid: str | None) -> str:
    """Hangup: the caller (either half) or the connected agent hangs up now."""
    name = get(h, "Channel")
    for call in list(pbx.calls.values()):
        if name in (call.c1.name, call.c2.name):
            if call.attempt is not None:
                talk.caller_ends(pbx, call)
            else:
                call.give_up()
            return wire.success(aid, "Channel Hungup")
        if call.attempt is not None and name in (
            call.attempt.leg.a1.name,
            call.attempt.leg.a2.name,
        ):
            talk.agent_ends(pbx, call.attempt)
            return wire.success(aid, "Channel Hungup")
    return wire.error(aid, "No such channel")


HANDLERS: dict[str, Handler] = {
    "queueadd": queue_add,
    "queueremove": queue_remove,
    "queuepause": queue_pause,
    "originate": originate,
    "setvar": setvar,
    "getvar": getvar,
    "blindtransfer": blind_transfer,
    "redirect": redirect,
    "hangup": hangup,
    "queuestatus": lambda pbx, h, aid: lists.queue_status(
        pbx, aid, get(h, "Queue"), get(h, "Member")
    ),
    "queuesummary": lambda pbx, h, aid: lists.queue_summary(pbx, aid, get(h, "Queue")),
    "coreshowchannels": lambda pbx, h, aid: lists.core_show_channels(pbx, aid),
    "status": lambda pbx, h, aid: lists.status(pbx, aid, get(h, "Channel")),
}
