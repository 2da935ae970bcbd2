"""Least privilege for agents, and the access log of every read of personal data by a token.

An agent token sees the caller and the tickets of the call ringing or connected at its own
position, and of the calls that agent answered or closed in the last ``agent_recent_hours``;
nothing else (403, the same answer whether the thing exists or not, so references and numbers
cannot be enumerated). Supervisors, admins and integrations read what their role allows.

Every read of personal data (a ticket, the ticket list, a pop, survey candidates, webhook
deliveries) is written to ``access_log`` with who, what, whether it was allowed and the HTTP
status; supervisors and admins read it at ``GET /api/access-log``. Retention forgets it like
the rest (callcenter.retention).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from callcenter.model import CallAnswered, Effect
from callcenter.popup import normalize_number, number_variants
from callcenter.screenpop import topics_for
from callcenter.web.auth import Principal

log = structlog.get_logger(__name__)

# Calls remembered per agent screen (topic), and screens remembered, in memory.
_PER_TOPIC = 200
_TOPICS = 5000


@dataclass(frozen=True, slots=True)
class Handled:
    """A call an agent answered, as remembered in memory."""

    server: str
    linkedid: str
    number: str | None  # normalised
    at: float  # wall clock, seconds


class AgentCalls:
    """Effect subscriber that remembers, per agent, the calls they answered (bounded)."""

    def __init__(self, region: str = "TR") -> None:
        self.region = region
        self._by_topic: OrderedDict[str, OrderedDict[tuple[str, str], Handled]] = OrderedDict()

    def __call__(self, effects: list[Effect]) -> None:
        """Notes every answer; never blocks."""
        for effect in effects:
            if isinstance(effect, CallAnswered):
                call, visit = effect.call, effect.visit
                handled = Handled(
                    call.server,
                    call.linkedid,
                    normalize_number(call.caller_number, self.region),
                    time.time(),
                )
                for topic in topics_for(visit.agent, visit.interface):
                    self._note(topic, handled)

    def _note(self, topic: str, handled: Handled) -> None:
        calls = self._by_topic.pop(topic, None) or OrderedDict()
        calls[(handled.server, handled.linkedid)] = handled
        while len(calls) > _PER_TOPIC:
            calls.popitem(last=False)
        self._by_topic[topic] = calls
        while len(self._by_topic) > _TOPICS:
            self._by_topic.popitem(last=False)

    def recent(self, topics: Iterable[str], since: float) -> list[Handled]:
        """The calls these screens answered since ``since`` (wall clock)."""
        found = []
        for topic in topics:
            for handled in self._by_topic.get(topic, {}).values():
                if handled.at >= since:
                    found.append(handled)
        return found


class AgentScope:
    """What one agent token may read now: its position's calls and its recent ones."""

    def __init__(self, request: web.Request, principal: Principal) -> None:
        from callcenter.web.agent import AGENT_CALLS, SCREENPOP
        from callcenter.web.server import SERVICE

        self.service = request.app[SERVICE]
        self.screenpop = request.app.get(SCREENPOP)
        self.memory = request.app.get(AGENT_CALLS)
        self.principal = principal
        self.topics = topics_for(principal.agent, principal.interface)
        self.region = self.service.settings.phone_region
        self.window_s = max(0.0, float(self.service.settings.agent_recent_hours)) * 3600.0

    def at_position(self) -> list[tuple[str, str, str | None]]:
        """(server, linkedid, normalised number) of the calls ringing or connected here now."""
        found = []
        current = self.screenpop.current if self.screenpop is not None else {}
        for topic in self.topics:
            text = current.get(topic)
            if not text:
                continue
            try:
                pop = json.loads(text)
            except ValueError:
                continue
            key = (str(pop.get("server")), str(pop.get("linkedid")))
            call = self.service.tracker.calls.get(key)
            number = normalize_number(call.caller_number, self.region) if call else None
            found.append((key[0], key[1], number))
        return found

    def _remembered(self) -> list[Handled]:
        if self.memory is None:
            return []
        return self.memory.recent(self.topics, time.time() - self.window_s)

    async def may_see_call(self, linkedid: str, server: str | None = None) -> bool:
        """Whether the call is at this position now, or this agent handled it recently."""
        for srv, lid, _ in self.at_position():
            if lid == linkedid and server in (None, srv):
                return True
        for handled in self._remembered():
            if handled.linkedid == linkedid and server in (None, handled.server):
                return True
        return bool(
            await self.service.pool.fetchval(
                """
                SELECT EXISTS (
                  SELECT 1 FROM queue_visits
                  WHERE linkedid = $1 AND ($2::text IS NULL OR server = $2)
                    AND (agent = $3 OR interface = $4)
                    AND answered_at >= now() - make_interval(secs => $6)
                  UNION ALL
                  SELECT 1 FROM call_dispositions
                  WHERE linkedid = $1 AND ($2::text IS NULL OR server = $2) AND agent = $5
                    AND created_at >= now() - make_interval(secs => $6))
                """,
                linkedid,
                server,
                self.principal.agent,
                self.principal.interface,
                self.principal.agent or self.principal.interface or self.principal.name,
                self.window_s,
            )
        )

    async def may_see_number(self, number: str | None) -> bool:
        """Whether the number is the caller of a call at this position or handled recently."""
        key = normalize_number(number, self.region)
        if not key:
            return False
        if any(n == key for _, _, n in self.at_position()):
            return True
        if any(h.number == key for h in self._remembered()):
            return True
        return bool(
            await self.service.pool.fetchval(
                """
                SELECT EXISTS (
                  SELECT 1 FROM calls c JOIN queue_visits v
                    ON v.server = c.server AND v.linkedid = c.linkedid
                  WHERE c.caller_number = ANY($1::text[]) AND (v.agent = $2 OR v.interface = $3)
                    AND v.answered_at >= now() - make_interval(secs => $4))
                """,
                number_variants(number, self.region),
                self.principal.agent,
                self.principal.interface,
                self.window_s,
            )
        )

    async def may_see_ticket(self, ticket: dict[str, Any]) -> bool:
        """Whether the ticket belongs to a call or caller this agent may see."""
        for call in ticket.get("calls") or []:
            if await self.may_see_call(str(call.get("linkedid")), call.get("server")):
                return True
        return await self.may_see_number(ticket.get("caller_number"))


async def log_access(
    request: web.Request,
    principal: Principal | None,
    action: str,
    target: str = "",
    *,
    allowed: bool = True,
    status: int = 200,
) -> None:
    """Writes one line of the access log (who read what personal data, and the answer)."""
    from callcenter.web.server import SERVICE

    pool = request.app[SERVICE].pool
    if pool is None:
        return
    await pool.execute(
        """
        INSERT INTO access_log (token_id, principal, role, action, target, allowed, status, peer)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        principal.token_id if principal else None,
        principal.name if principal else "",
        principal.role if principal else "",
        action,
        _storable(target[:200]),
        allowed,
        status,
        request.remote or "",
    )


def _storable(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogate (a hostile query may carry them)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


async def read_access_log(
    pool: Any,
    *,
    principal: str | None = None,
    action: str | None = None,
    denied_only: bool = False,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Access-log lines, newest first, with filters and paging by ``before`` id."""
    rows = await pool.fetch(
        """
        SELECT id, at, token_id, principal, role, action, target, allowed, status, peer
        FROM access_log
        WHERE ($1::text IS NULL OR principal = $1) AND ($2::text IS NULL OR action = $2)
          AND (NOT $3 OR NOT allowed) AND ($4::bigint IS NULL OR id < $4)
        ORDER BY id DESC LIMIT $5
        """,
        principal,
        action,
        denied_only,
        before_id,
        limit,
    )
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]
