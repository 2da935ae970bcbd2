"""The agent's own controls (pure): pause reasons, the AMI actions, and the desk's state.

An agent pauses with a reason, unpauses, joins and leaves queues and calls back a citizen
through AMI actions built here (QueuePause, QueueAdd, QueueRemove, Originate). Nothing here
changes state by itself: Asterisk answers with QueueMember* events that the tracker folds,
so the desk, the wallboard and Prometheus all show what the PBX says, not what was asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from callcenter.categories import Category, parse_labelled
from callcenter.config import ConfigError, Settings
from callcenter.model import WRAPUP_REASON, Member

__all__ = ["WRAPUP_REASON", "PauseReason", "pause_reasons"]


# A reason an agent may pause for: the code sent to Asterisk and its Turkish and English names
# (the same shape, configuration syntax and API form as a ticket category).
PauseReason = Category


DEFAULT_PAUSE_REASONS = (
    PauseReason("mola", "Mola", "Break"),
    PauseReason("yemek", "Yemek arası", "Lunch"),
    PauseReason("egitim", "Eğitim", "Training"),
    PauseReason("toplanti", "Toplantı", "Meeting"),
    PauseReason("evrak", "Evrak işi", "Paperwork"),
    PauseReason("teknik", "Teknik sorun", "Technical problem"),
)
WRAPUP = PauseReason(WRAPUP_REASON, "Görüşme sonrası işlem", "After-call work")


def pause_reasons(settings: Settings | None = None) -> tuple[PauseReason, ...]:
    """The configured pause reasons, or the defaults when none are configured."""
    if settings is None or not settings.pause_reasons:
        return DEFAULT_PAUSE_REASONS
    found = parse_labelled("pause_reasons", settings.pause_reasons)
    if any(r.code == WRAPUP_REASON for r in found):
        raise ConfigError(f"setting 'pause_reasons': {WRAPUP_REASON!r} is reserved")
    return found


def pause_action(interface: str, paused: bool, reason: str = "") -> dict[str, str]:
    """QueuePause of an interface in every queue it is a member of."""
    action = {"Action": "QueuePause", "Interface": interface, "Paused": str(paused).lower()}
    if paused and reason:
        action["Reason"] = reason
    return action


def join_action(
    queue: str, interface: str, member_name: str | None, state_interface: str | None = None
) -> dict[str, str]:
    """QueueAdd: the agent logs in to a queue as a dynamic member."""
    action = {"Action": "QueueAdd", "Queue": queue, "Interface": interface}
    if member_name:
        action["MemberName"] = member_name
    if state_interface:
        action["StateInterface"] = state_interface
    return action


def leave_action(queue: str, interface: str) -> dict[str, str]:
    """QueueRemove: the agent logs off a queue."""
    return {"Action": "QueueRemove", "Queue": queue, "Interface": interface}


def callback_action(
    *,
    interface: str,
    dial: str,
    context: str,
    caller_id: str,
    linkedid: str,
    agent: str,
    ticket: str | None,
) -> dict[str, Any]:
    """Originate: ring the agent's phone first; once they pick up, dial the citizen.

    ``dial`` is the number as the trunk wants it (``callcenter.ivr.dialer.dial_number``); the
    variables tie the new call to the abandoned one (and to the ticket) for the call log.
    """
    variables = [f"CC_CALLBACK_OF={linkedid}", f"CC_CALLBACK_AGENT={agent}"]
    if ticket:
        variables.append(f"CC_TICKET={ticket}")
    action: dict[str, Any] = {
        "Action": "Originate",
        "Channel": interface,
        "Context": context,
        "Exten": dial,
        "Priority": "1",
        "Timeout": "30000",
        "Async": "true",
        "Variable": variables,
    }
    if caller_id:
        action["CallerID"] = caller_id
    return action


def desk_queues(members: Iterable[Member], known: Iterable[str]) -> list[dict[str, Any]]:
    """Every queue the agent could be in, with the membership where they are one."""
    mine = {m.queue: m for m in members}
    rows = []
    for queue in sorted(set(known) | set(mine)):
        member = mine.get(queue)
        rows.append(
            {
                "queue": queue,
                "member": member is not None,
                "paused": bool(member and member.paused),
                "reason": member.paused_reason if member and member.paused else None,
            }
        )
    return rows


def desk_state(members: list[Member], states: Mapping[str, str]) -> dict[str, Any]:
    """The agent's overall state: paused (and why) if paused anywhere, else the busiest one."""
    if not members:
        return {"state": "logged_out", "paused": False, "reason": None}
    paused = [m for m in members if m.paused]
    if paused:
        reason = paused[0].paused_reason
        state = "wrapup" if reason == WRAPUP_REASON else "paused"
        return {"state": state, "paused": True, "reason": reason or None}
    order = ("on_call", "ringing", "wrapup", "available", "unavailable")
    found = set(states.values())
    state = next((s for s in order if s in found), "available")
    return {"state": state, "paused": False, "reason": None}
