"""The call log's records and the effects the call tracker emits; plain data, no I/O.

Times are float epoch seconds taken from the events (never from a clock).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def iso(ts: float | None) -> str | None:
    """Formats epoch seconds as ISO 8601 in UTC (millisecond precision)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _span(start: float | None, end: float | None) -> float | None:
    """Seconds between two event times, rounded to milliseconds; None if either is unknown."""
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


@dataclass(slots=True)
class Offer:
    """One time the queue rang an agent for this caller."""

    agent: str  # the member name Asterisk reports
    interface: str
    rang_at: float
    ended_at: float | None = None
    result: str = "ringing"  # ringing, answered, no_answer, canceled
    ring_s: float | None = None


@dataclass(slots=True)
class Visit:
    """One stay of the caller in one queue (a transferred call visits several)."""

    queue: str
    entered_at: float | None
    position: int | None = None
    agent: str | None = None  # member name of the agent who answered
    interface: str | None = None
    answered_at: float | None = None
    left_at: float | None = None  # left the waiting line (answered, abandoned, timed out…)
    ended_at: float | None = None  # end of the visit: end of talk, or left_at if unanswered
    outcome: str | None = None  # answered, abandoned, timeout, exit_empty, exit_key, full…
    hangup_by: str | None = None  # caller, agent, transfer (AgentComplete Reason)
    talk_s: float | None = None
    hold_s: float = 0.0
    # Asterisk's own whole-second figures, kept as a cross-check and a fallback.
    asterisk_wait_s: int | None = None
    asterisk_talk_s: int | None = None
    transferred_to: str | None = None
    offers: list[Offer] = field(default_factory=list)
    hold_started_at: float | None = None

    @property
    def wait_s(self) -> float | None:
        """Seconds from entering the queue to being answered or leaving it."""
        end = self.answered_at if self.answered_at is not None else self.left_at
        span = _span(self.entered_at, end)
        if span is None and self.asterisk_wait_s is not None:
            return float(self.asterisk_wait_s)
        return span

    @property
    def ring_s(self) -> float | None:
        """Seconds the answering agent's phone rang before pick-up."""
        for offer in self.offers:
            if offer.result == "answered":
                return offer.ring_s
        return None

    @property
    def open(self) -> bool:
        """Whether the visit has not ended yet."""
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        """The visit as the JSON shape of ``replay`` and the API."""
        return {
            "queue": self.queue,
            "agent": self.agent,
            "outcome": self.outcome,
            "hangup_by": self.hangup_by,
            "wait_s": self.wait_s,
            "talk_s": self.talk_s,
            "hold_s": round(self.hold_s, 3),
            "ring_s": self.ring_s,
            "entered_at": iso(self.entered_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "transferred_to": self.transferred_to,
            "offered": [o.agent for o in self.offers],
            "offers": [
                {
                    "agent": o.agent,
                    "result": o.result,
                    "ring_s": o.ring_s,
                    "rang_at": iso(o.rang_at),
                }
                for o in self.offers
            ],
        }


@dataclass(slots=True)
class Call:
    """Everything the service knows about one call, keyed by (server, linkedid)."""

    server: str
    linkedid: str
    uniqueid: str  # the caller channel's uniqueid: the callid of Asterisk's queue_log
    started_at: float
    caller_number: str | None = None
    caller_name: str | None = None
    dialled: str | None = None  # the number the caller dialled (DID)
    caller_channel: str | None = None
    ended_at: float | None = None
    hangup_cause: int | None = None
    hangup_by: str | None = None
    ivr_path: list[str] = field(default_factory=list)  # dialplan contexts/menus visited
    ivr_digits: str = ""  # keys the caller pressed
    ivr_vars: dict[str, str] = field(default_factory=dict)  # CC_* variables set by the IVR
    ivr_result: str | None = None  # outcome of a self-service flow (UserEvent)
    visits: list[Visit] = field(default_factory=list)
    live_channels: set[str] = field(default_factory=set)  # uniqueids not yet hung up
    rejected_queue: str | None = None  # Queue() refused the caller (FULL, JOINEMPTY…)
    rejected_status: str | None = None
    reconstructed: bool = False  # parts were inferred (gap in the stream, resync)

    @property
    def outcome(self) -> str:
        """The call's outcome: the first answered visit wins, else the last visit's."""
        if any(v.outcome == "answered" for v in self.visits):
            return "answered"
        if self.visits:
            return self.visits[-1].outcome or "unknown"
        if self.rejected_status:
            return self.rejected_status
        return "ivr_only"

    @property
    def first_answered(self) -> Visit | None:
        """The first visit an agent answered, if any."""
        return next((v for v in self.visits if v.answered_at is not None), None)

    @property
    def queue(self) -> str | None:
        """The first queue the caller entered (or was refused by)."""
        return self.visits[0].queue if self.visits else self.rejected_queue

    @property
    def agent(self) -> str | None:
        """The agent who answered first."""
        first = self.first_answered
        return first.agent if first else None

    @property
    def wait_s(self) -> float | None:
        """Wait of the first visit: what the caller waited before an agent (or giving up)."""
        return self.visits[0].wait_s if self.visits else None

    @property
    def talk_s(self) -> float | None:
        """Seconds the caller spent talking to agents (overlapping visits counted once).

        A caller redirected while connected stays "connected" in the first queue until the
        end (Asterisk's own accounting), so visit talk times can overlap.
        """
        spans = sorted(
            (v.answered_at, v.answered_at + v.talk_s)
            for v in self.visits
            if v.answered_at is not None and v.talk_s is not None
        )
        if not spans:
            return None
        total, (start, end) = 0.0, spans[0]
        for s, e in spans[1:]:
            if s > end:
                total, start, end = total + end - start, s, e
            else:
                end = max(end, e)
        return round(total + end - start, 3)

    @property
    def hold_s(self) -> float:
        """Total time the caller was put on hold by agents."""
        return round(sum(v.hold_s for v in self.visits), 3)

    def to_dict(self) -> dict[str, Any]:
        """The call as one JSON object (the ``replay`` output and the API shape)."""
        first = self.first_answered
        return {
            "server": self.server,
            "linkedid": self.linkedid,
            "uniqueid": self.uniqueid,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "dialled": self.dialled,
            "queue": self.queue,
            "agent": self.agent,
            "outcome": self.outcome,
            "hangup_by": self.hangup_by,
            "hangup_cause": self.hangup_cause,
            "wait_s": self.wait_s,
            "talk_s": self.talk_s,
            "hold_s": self.hold_s,
            "entered_at": iso(self.visits[0].entered_at) if self.visits else None,
            "answered_at": iso(first.answered_at) if first else None,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "ivr_path": list(self.ivr_path),
            "ivr_digits": self.ivr_digits,
            "ivr_result": self.ivr_result,
            "ivr_vars": dict(self.ivr_vars),
            "reconstructed": self.reconstructed,
            "visits": [v.to_dict() for v in self.visits],
        }


@dataclass(slots=True)
class Pause:
    """One pause of an agent (in one queue, or all queues), with its reason."""

    interface: str
    agent: str
    queue: str
    reason: str
    started_at: float
    ended_at: float | None = None
    server: str = ""

    @property
    def duration_s(self) -> float | None:
        """Seconds paused, once the pause has ended."""
        return _span(self.started_at, self.ended_at)


@dataclass(slots=True)
class AgentSession:
    """An agent's membership of a queue from login (QueueMemberAdded or resync) to logoff."""

    interface: str
    agent: str
    queue: str
    started_at: float
    ended_at: float | None = None
    static: bool = False
    server: str = ""


# The QueuePause reason of the service-managed wrap-up (after-call work): a pause that shows
# as wrap-up, not as a break (callcenter.agentdesk).
WRAPUP_REASON = "wrapup"


@dataclass(slots=True)
class Member:
    """The live state of one agent in one queue."""

    interface: str
    agent: str
    queue: str
    status: int = 1  # Asterisk device status: 1 NOT_INUSE, 2 INUSE, 5 UNAVAILABLE, 6 RINGING…
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    last_call_end: float | None = None
    since: float = 0.0  # when the current state began
    server: str = ""


# ---- effects: what the tracker tells the adapters -------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    call: Call


@dataclass(frozen=True, slots=True)
class QueueJoined:
    call: Call
    visit: Visit


@dataclass(frozen=True, slots=True)
class AgentOffered:
    """The queue is ringing an agent: the moment for the screen-pop."""

    call: Call
    visit: Visit
    offer: Offer


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call: Call
    visit: Visit


@dataclass(frozen=True, slots=True)
class VisitEnded:
    """A queue visit is over (answered and completed, abandoned, timed out…)."""

    call: Call
    visit: Visit


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call's last channel hung up: the record is final."""

    call: Call


@dataclass(frozen=True, slots=True)
class MemberChanged:
    """An agent's state in a queue changed (status, pause, login/logoff)."""

    member: Member
    removed: bool = False


@dataclass(frozen=True, slots=True)
class PauseEnded:
    pause: Pause


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session: AgentSession


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something in the stream the tracker could not use as it came (logged and counted)."""

    kind: str  # orphan_event, reconstructed_call, …
    detail: str
    server: str = ""
    linkedid: str | None = None


Effect = (
    Anomaly
    | CallStarted
    | QueueJoined
    | AgentOffered
    | CallAnswered
    | VisitEnded
    | CallEnded
    | MemberChanged
    | PauseEnded
    | SessionEnded
)


def as_plain(obj: Any) -> Any:
    """A dataclass as plain dicts and lists (for JSON snapshots)."""
    return asdict(obj)
