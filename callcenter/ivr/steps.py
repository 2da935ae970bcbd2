"""The vocabulary between the pure IVR (menus, flows) and its driver (the FastAGI adapter).

The pure side answers every reply with one ``Step``: set some channel variables, raise some
user events, say some sounds, then exactly one of: ask for keys, ask the driver to do some
I/O (look up a ticket, open one, store a survey), or end the IVR (to a queue, or hang up).
The driver does it and feeds back a ``Reply``. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Play:
    """Play an Asterisk sound by name (``callcenter/main-menu``), resolved per channel language."""

    sound: str


# Numbers, dates and references are Plays of the IVR's own building blocks
# (callcenter.ivr.say), never Asterisk's SAY NUMBER/SAY DIGITS/SAY DATE: Asterisk 22 has no
# Turkish rules and would say them in English.
Sound = Play


@dataclass(frozen=True, slots=True)
class Ask:
    """Collect keys after the step's sounds; the sounds can be interrupted by a key."""

    max_digits: int = 1
    timeout_s: float = 5.0  # for the first key, after the sounds end
    interdigit_s: float = 3.0  # for each further key
    terminator: str = "#"  # ends a multi-digit entry early
    agent: bool = True  # whether the agent key (0) leaves for an agent here


@dataclass(frozen=True, slots=True)
class LookupStatus:
    """Ask the ticket desk for the status of a ticket reference."""

    reference: str


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """Ask the ticket desk to open a ticket; the reply is its reference."""

    category: str
    note: str
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One caller's answers to the satisfaction survey."""

    kind: str  # after_call | callback
    score: int  # 1..5
    resolved: bool | None = None  # the optional second question; None = not answered
    language: str = "tr"
    caller_number: str | None = None
    linkedid: str | None = None
    queue: str | None = None
    agent: str | None = None
    ticket_reference: str | None = None
    callback_id: int | None = None


@dataclass(frozen=True, slots=True)
class RecordSurvey:
    """Ask the ticket desk to store survey answers (and announce them by webhook)."""

    answer: SurveyAnswer


Request = LookupStatus | OpenTicket | RecordSurvey


@dataclass(frozen=True, slots=True)
class ToQueue:
    """End the IVR: the dialplan puts the caller in this queue."""

    queue: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the IVR: the dialplan says goodbye and hangs up."""


End = ToQueue | Hangup


@dataclass(frozen=True, slots=True)
class Step:
    """What the driver does next: variables, events, sounds, then ask, request or end."""

    say: tuple[Sound, ...] = ()
    ask: Ask | None = None
    request: Request | None = None
    end: End | None = None
    variables: tuple[tuple[str, str], ...] = ()
    events: tuple[tuple[str, str], ...] = ()  # UserEvent Result headers: (flow, result)

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.ask, self.request, self.end)) != 1:
            raise ValueError("a step asks, requests or ends: exactly one of them")


@dataclass(frozen=True, slots=True)
class Keys:
    """The caller's keys; empty with ``timed_out`` when nothing was pressed in time."""

    digits: str
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """A request succeeded; ``value`` is its answer (a status, a reference, or None)."""

    value: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A request failed (the desk is down, the database refused)."""

    error: str


Reply = Keys | Done | Failed


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the IVR knows about the call, from the AGI environment and the driver's clock."""

    today: date
    channel: str = ""
    uniqueid: str = ""
    linkedid: str = ""
    caller_number: str | None = None
    caller_name: str | None = None
    language: str = ""
    args: tuple[str, ...] = field(default_factory=tuple)
