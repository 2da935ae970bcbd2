"""Screen-pop glue: tracker effects in, pops out to the ringing agent's WebSocket clients.

The caller's history is fetched as soon as the caller's number is known (usually when they
join the queue), so it is ready by the time an agent's phone rings. If it is not, the pop goes
out at once without it (``history_pending``) and again when the history arrives.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from callcenter.config import Settings
from callcenter.history import HistoryLoader
from callcenter.ivr.menu import IvrMenu, MenuError, load_menu
from callcenter.model import (
    AgentOffered,
    Call,
    CallAnswered,
    CallEnded,
    CallStarted,
    Effect,
    Offer,
    QueueJoined,
    Visit,
    VisitEnded,
)
from callcenter.popup import build_pop, normalize_number, number_variants
from callcenter.web.hub import Hub

log = structlog.get_logger(__name__)

History = tuple[list[dict[str, Any]], list[dict[str, Any]]]

# Times as ISO 8601 UTC with milliseconds, the model's format. The call limit is one more than
# shown, as the current call may be among them.
_HISTORY = """
SELECT
  (SELECT json_agg(c ORDER BY c.sort DESC) FROM (
     SELECT c.server, c.linkedid, c.caller_name, c.outcome, c.agent, c.queue, c.wait_s,
            c.talk_s, c.started_at AS sort,
            to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
              AS started_at,
            (SELECT d.kind FROM call_dispositions d
             WHERE d.server = c.server AND d.linkedid = c.linkedid
             ORDER BY d.created_at LIMIT 1) AS disposition
     FROM calls c WHERE c.caller_number = ANY($1::text[])
     ORDER BY c.started_at DESC LIMIT $2) c) AS calls,
  (SELECT json_agg(t ORDER BY t.sort DESC) FROM (
     SELECT reference, category, status, channel, note, caller_name, created_at AS sort,
            to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
              AS created_at
     FROM tickets WHERE caller_number = $3 AND status IN ('open', 'in_progress')
     ORDER BY created_at DESC LIMIT 10) t) AS tickets
"""
# History fetches in flight ahead of the ring (see ScreenPop._prefetch).
PREFETCH_LIMIT = 50
_STAGE_ORDER = {"ringing": 0, "connected": 1, "ended": 2, "cancel": 2}


async def caller_history(
    pool: Any, number: str | None, region: str = "TR", limit: int = 5
) -> History:
    """The caller's latest calls (with the agent's disposition) and open tickets."""
    variants = number_variants(number, region)
    if not variants:
        return [], []
    # One round trip: the history is on the path of the pop.
    row = await pool.fetchrow(_HISTORY, variants, limit + 1, normalize_number(number, region))
    recent = json.loads(row["calls"]) if row["calls"] else []
    open_tickets = json.loads(row["tickets"]) if row["tickets"] else []
    return recent, open_tickets


def topics_for(agent: str | None, interface: str | None) -> list[str]:
    """The hub topics an agent's screens listen on: their member name and their interface."""
    found = []
    if agent:
        found.append(f"agent:{agent}")
    if interface:
        found.append(f"iface:{interface}")
    return found


class ScreenPop:
    """Subscriber that pushes ringing, connected and ended pops to agents' screens."""

    def __init__(
        self,
        hub: Hub,
        pool: Callable[[], Any],
        settings: Settings,
        *,
        recent_limit: int = 10_000,
    ) -> None:
        self.hub = hub
        self._pool = pool
        self.settings = settings
        self.region = settings.phone_region
        self._history: dict[tuple[str, str], asyncio.Future[History]] = {}
        self.loader = HistoryLoader(pool, self.region)
        self.batched = True  # False: one query per caller (bench/screenpop.py's baseline)
        self._stage: dict[tuple[str, str, str], str] = {}  # (server, linkedid, agent) -> stage
        self.current: dict[str, str] = {}  # topic -> the last pop sent there (for reconnects)
        self.ended: OrderedDict[tuple[str, str], Call] = OrderedDict()
        self._recent_limit = recent_limit
        self.pops = 0
        self.menu = _ivr_menu(settings)
        # Live calls by their caller's number as received (digits only: parsing every new
        # number would cost a flood dearly), so /pop?number= is O(spellings), never a scan of
        # every open call on the event loop; a lookup tries every spelling of the number.
        self._by_number: dict[str, dict[tuple[str, str], Call]] = {}
        self._number_of: dict[tuple[str, str], str] = {}
        self._fetching = 0  # history fetches in flight

    # ---- effects in --------------------------------------------------------------------

    def __call__(self, effects: list[Effect]) -> None:
        """Handles a batch of effects; never blocks."""
        for effect in effects:
            if isinstance(effect, CallStarted | QueueJoined | AgentOffered | CallAnswered):
                self._index(effect.call)
            if isinstance(effect, CallStarted | QueueJoined):
                self._prefetch(effect.call)
            elif isinstance(effect, AgentOffered):
                self._prefetch(effect.call, ringing=True)
                self._cancel_others(effect.call, effect.visit, ended_only=True)
                self._push("ringing", effect.call, effect.visit, effect.offer)
            elif isinstance(effect, CallAnswered):
                self._push("connected", effect.call, effect.visit, None)
                self._cancel_others(effect.call, effect.visit)
            elif isinstance(effect, VisitEnded):
                if effect.visit.agent:
                    self._push("ended", effect.call, effect.visit, None)
                self._cancel_others(effect.call, effect.visit)
            elif isinstance(effect, CallEnded):
                self._finish(effect.call)

    def _index(self, call: Call) -> None:
        """Files a live call under its caller's number (again, if the number changed)."""
        key = (call.server, call.linkedid)
        number = _digits(call.caller_number)
        old = self._number_of.get(key)
        if old == number:
            return
        if old is not None:
            self._unindex(key)
        if number:
            self._by_number.setdefault(number, {})[key] = call
            self._number_of[key] = number

    def _unindex(self, key: tuple[str, str]) -> None:
        number = self._number_of.pop(key, None)
        if number is not None:
            calls = self._by_number.get(number, {})
            calls.pop(key, None)
            if not calls:
                self._by_number.pop(number, None)

    def live_by_number(self, number: str | None) -> list[Call]:
        """The live calls from this number (any spelling), newest first."""
        found: dict[tuple[str, str], Call] = {}
        for spelling in {_digits(v) for v in number_variants(number, self.region)}:
            for key, call in self._by_number.get(spelling, {}).items():
                if call.ended_at is None:
                    found[key] = call
        return sorted(found.values(), key=lambda c: c.started_at, reverse=True)

    def _prefetch(self, call: Call, *, ringing: bool = False) -> None:
        """Starts fetching the caller's history once their number is known.

        Ahead of the ring, at most ``PREFETCH_LIMIT`` fetches run at once: a flood of calls
        (a hostile PBX) must not become a flood of queries and tasks. A ringing call always
        gets its fetch.
        """
        key = (call.server, call.linkedid)
        if key in self._history or not call.caller_number or self._pool() is None:
            return
        if self.batched:
            # A burst of callers costs a few queries, not one round trip each; ahead of the
            # ring a flood is still capped (callers waiting plus batches in flight).
            if not ringing and self.loader.pending >= PREFETCH_LIMIT:
                return
            self._history[key] = self.loader.get(call.caller_number)
            return
        if not ringing and self._fetching >= PREFETCH_LIMIT:
            return
        task = asyncio.get_running_loop().create_task(
            caller_history(self._pool(), call.caller_number, self.region)
        )
        self._fetching += 1
        task.add_done_callback(self._fetched)
        self._history[key] = task

    def _fetched(self, task: asyncio.Task[History]) -> None:
        self._fetching -= 1
        _log_failure(task)

    def _ready_history(self, call: Call) -> tuple[History, bool]:
        """The history if it has arrived, and whether it is still pending."""
        task = self._history.get((call.server, call.linkedid))
        if task is None:
            return ([], []), False
        if not task.done():
            return ([], []), True
        if task.cancelled() or task.exception() is not None:
            return ([], []), False
        return task.result(), False

    # ---- pops out ----------------------------------------------------------------------

    def _push(self, stage: str, call: Call, visit: Visit, offer: Offer | None) -> None:
        agent = offer.agent if offer else visit.agent
        interface = offer.interface if offer else visit.interface
        key = (call.server, call.linkedid, agent or interface or "")
        previous = self._stage.get(key)
        if previous is not None and _STAGE_ORDER[previous] > _STAGE_ORDER[stage]:
            return
        self._stage[key] = stage
        (recent, tickets), pending = self._ready_history(call)
        pop = build_pop(
            call,
            visit,
            offer,
            stage=stage,
            recent_calls=recent,
            open_tickets=tickets,
            history_pending=pending,
            region=self.region,
            menu=self.menu,
        )
        self._send(topics_for(agent, interface), pop, stage)
        if pending:
            task = self._history[(call.server, call.linkedid)]
            task.add_done_callback(lambda _: self._resend(stage, key, call, visit, offer))

    def _resend(
        self, stage: str, key: tuple[str, str, str], call: Call, visit: Visit, offer: Offer | None
    ) -> None:
        """Sends the pop again with the history, unless the call has moved on meanwhile."""
        if self._stage.get(key) == stage:
            self._stage.pop(key)
            self._push(stage, call, visit, offer)

    def _send(self, topics: list[str], message: dict[str, Any], stage: str) -> None:
        text = json.dumps(message, ensure_ascii=False)
        for topic in topics:
            if stage in ("ended", "cancel"):
                self.current.pop(topic, None)
            else:
                self.current[topic] = text
        self.pops += 1
        self.hub.publish(topics, text)

    def _cancel_others(self, call: Call, visit: Visit, *, ended_only: bool = False) -> None:
        """Tells agents whose phone rang for this visit but who did not take it to clear it.

        With ``ended_only``, only offers that are already over (no answer, cancelled) count:
        the next agent is being rung, so the previous one has stopped ringing.
        """
        for offer in visit.offers:
            if offer.agent == visit.agent and visit.agent is not None:
                continue
            if ended_only and offer.result == "ringing":
                continue
            key = (call.server, call.linkedid, offer.agent or offer.interface)
            if self._stage.get(key) != "ringing":
                continue
            self._stage[key] = "cancel"
            if offer.result not in ("ringing", "answered"):
                reason = offer.result
            else:
                reason = "answered_elsewhere" if visit.agent else (visit.outcome or "ended")
            message = {
                "type": "cancel",
                "server": call.server,
                "linkedid": call.linkedid,
                "reason": reason,
            }
            self._send(topics_for(offer.agent, offer.interface), message, "cancel")

    def _finish(self, call: Call) -> None:
        """Forgets a finished call's pop state and keeps it for dispositions and /pop."""
        self._unindex((call.server, call.linkedid))
        task = self._history.pop((call.server, call.linkedid), None)
        if task is not None and not task.done():
            task.cancel()
        for visit in call.visits:
            self._cancel_others(call, visit)
        for key in [k for k in self._stage if k[:2] == (call.server, call.linkedid)]:
            del self._stage[key]
        self.ended[(call.server, call.linkedid)] = call
        while len(self.ended) > self._recent_limit:
            self.ended.popitem(last=False)

    # ---- lookups -----------------------------------------------------------------------

    def lookup(
        self,
        live: Mapping[tuple[str, str], Call],
        servers: Iterable[str],
        linkedid: str,
        server: str | None = None,
    ) -> Call | None:
        """A live (from the tracker's ``live`` map) or recently ended call, by key: no scan."""
        names = [server] if server else list(servers)
        for name in names:
            call = live.get((name, linkedid)) or self.ended.get((name, linkedid))
            if call is not None:
                return call
        return None

    def find(self, calls: Iterable[Call], linkedid: str, server: str | None = None) -> Call | None:
        """A live (from ``calls``) or recently ended call by linkedid."""
        for call in calls:
            if call.linkedid == linkedid and server in (None, call.server):
                return call
        for (srv, lid), call in reversed(self.ended.items()):
            if lid == linkedid and server in (None, srv):
                return call
        return None


def _ivr_menu(settings: Settings) -> IvrMenu | None:
    """The IVR menu whose labels name the caller's way in pops; None if it cannot be read."""
    try:
        return load_menu(getattr(settings, "ivr_menu", "") or None)
    except MenuError as exc:
        log.warning("screenpop_menu_unreadable", error=str(exc).splitlines()[0])
        return None


def _digits(raw: str | None) -> str:
    """A number as its digits (and a leading +), the key of the live-call index."""
    return "".join(ch for ch in raw or "" if ch.isdigit() or ch == "+")


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("caller_history_failed", error=repr(task.exception()))
