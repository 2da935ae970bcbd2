"""The wallboard's picture of the floor at one moment, as plain JSON-ready data.

Per queue: callers waiting (with when each entered, so pages tick the waits themselves),
agents by state and today's figures; per agent: name, state across their queues, since when.
No caller numbers: a wallboard hangs where visitors can read it.
"""

from __future__ import annotations

from typing import Any

from callcenter.calls import Tracker, agent_state
from callcenter.config import Settings, per_queue
from callcenter.kpis import Tally
from callcenter.metrics.definitions import AGENT_STATES, STATE_PRIORITY
from callcenter.metrics.today import Today, figures
from callcenter.model import Member

_MAX_WAITS = 50  # waits listed per queue (the count is always exact)


def snapshot(tracker: Tracker, today: Today, settings: Settings, now: float) -> dict[str, Any]:
    """Builds the whole board; ``next_change`` is when a wrap-up ends without an event."""
    today.roll(now)
    wrap = {q: per_queue(settings.wrapup_seconds, q) for _, q, _ in tracker.members}
    queues: dict[str, dict[str, Any]] = {}

    def queue(name: str) -> dict[str, Any]:
        entry = queues.get(name)
        if entry is None:
            entry = queues[name] = {
                "name": name,
                "waiting": 0,
                "waits": [],
                "agents": dict.fromkeys(AGENT_STATES, 0),
                "sl_threshold_s": per_queue(settings.service_level_seconds, name),
                "alerts": alerts(settings, name),
            }
        return entry

    for _, visit in tracker.waiting():
        q = queue(visit.queue)
        q["waiting"] += 1
        if visit.entered_at is not None:
            q["waits"].append(visit.entered_at)
    by_agent: dict[tuple[str, str], list[tuple[Member, str]]] = {}
    next_change: float | None = None
    for (server, name, interface), member in tracker.members.items():
        state = agent_state(member, now, wrap[name])
        queue(name)["agents"][state] += 1
        by_agent.setdefault((server, interface), []).append((member, state))
        if state == "wrapup" and member.last_call_end is not None:
            end = member.last_call_end + wrap[name]
            next_change = end if next_change is None else min(next_change, end)
    tallies = today.tallies()
    for name in tallies:
        queue(name)
    totals = Tally()
    for name, q in queues.items():
        q["waits"] = sorted(q["waits"])[:_MAX_WAITS]
        q["oldest_entered_at"] = q["waits"][0] if q["waits"] else None
        tally = tallies.get(name, Tally())
        totals += tally
        q["today"] = figures(tally, q["waiting"])
        q["sl_level"] = sl_level(q["today"]["service_level"], q["alerts"])
        q["wait_level"] = wait_level(q["oldest_entered_at"], now, q["alerts"])
    agents = [_agent(members, wrap) for members in by_agent.values()]
    logged_in = any(a["state"] != "unavailable" for a in agents)
    waiting = sum(q["waiting"] for q in queues.values())
    agents.sort(key=lambda a: (STATE_PRIORITY.index(a["state"]), a["name"].casefold()))
    return {
        "type": "snapshot",
        "server_time": now,
        "day": today.day.isoformat() if today.day else None,
        "queues": [queues[n] for n in sorted(queues)],
        "agents": agents,
        # Nobody on the floor and nobody waiting: the day is over (or has not begun).
        "closed": not logged_in and not waiting,
        "compact_above": settings.wallboard_compact_above,
        "totals": {
            "waiting": waiting,
            "oldest_entered_at": min(
                (q["oldest_entered_at"] for q in queues.values() if q["oldest_entered_at"]),
                default=None,
            ),
            **figures(totals, waiting),
        },
        "next_change": next_change,
    }


def alerts(settings: Settings, queue: str) -> dict[str, float]:
    """A queue's wallboard thresholds: service level (percent) and longest wait (seconds)."""
    return {
        "sl_amber": per_queue(settings.wallboard_sl_amber, queue),
        "sl_red": per_queue(settings.wallboard_sl_red, queue),
        "wait_amber_s": per_queue(settings.wallboard_wait_amber, queue),
        "wait_red_s": per_queue(settings.wallboard_wait_red, queue),
    }


def sl_level(service_level: float | None, limits: dict[str, float]) -> str:
    """ "red" below the red threshold, "amber" below the amber one, else "ok" (none yet: ok)."""
    if service_level is None:
        return "ok"
    percent = 100 * service_level
    if percent < limits["sl_red"]:
        return "red"
    return "amber" if percent < limits["sl_amber"] else "ok"


def wait_level(oldest_entered_at: float | None, now: float, limits: dict[str, float]) -> str:
    """ "red" once the longest wait passes the red threshold, "amber" the amber one."""
    if oldest_entered_at is None:
        return "ok"
    age = now - oldest_entered_at
    if age >= limits["wait_red_s"]:
        return "red"
    return "amber" if age >= limits["wait_amber_s"] else "ok"


def _agent(members: list[tuple[Member, str]], wrap: dict[str, float]) -> dict[str, Any]:
    """One agent across their queues: the state that matters most, and since when."""
    state = min((s for _, s in members), key=STATE_PRIORITY.index)
    chosen = [m for m, s in members if s == state]
    first = chosen[0]
    if state == "wrapup":
        since = max(m.last_call_end or m.since for m in chosen)
    elif state == "available":
        since = max(
            max(m.since, (m.last_call_end + wrap[m.queue]) if m.last_call_end else m.since)
            for m in chosen
        )
    else:
        since = max(m.since for m in chosen)
    return {
        "name": first.agent,
        "state": state,
        "since": since,
        "reason": first.paused_reason if state == "paused" else "",
        "queues": sorted(m.queue for m, _ in members),
    }
