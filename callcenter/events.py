"""AMI message text -> typed events: the only module that knows AMI header names.

Pure: no I/O, no clock. ``received_at`` is supplied by the caller (the adapter's receive time,
or a trace's timestamp) and is overridden by the ``Timestamp`` header when Asterisk sends one
(``timestampevents = yes``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Headers = Mapping[str, str]

# Variables worth a VarSet event: QUEUESTATUS tells a timeout from an abandon (Asterisk emits
# QueueCallerAbandon for both); CC_* are set by our own IVR. Everything else is dropped early.
_KEPT_VARIABLES = ("QUEUESTATUS",)
_KEPT_VARIABLE_PREFIX = "CC_"
_UNKNOWN = "<unknown>"


def parse_message(text: str) -> dict[str, str]:
    """Splits one AMI message (``Key: Value`` lines) into a header dictionary.

    A repeated header keeps its last value, except ``Output`` lines (the Command action's
    result), which are joined with newlines; a line without a colon is kept under the key
    ``"_garbage"`` so callers can count it.
    """
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            headers["_garbage"] = line
            continue
        value = value[1:] if value.startswith(" ") else value
        if key == "Output" and key in headers:
            headers[key] += "\n" + value
        else:
            headers[key] = value
    return headers


def is_noise(text: str) -> bool:
    """Says, from the raw text alone, whether a message can be dropped before parsing.

    VarSet is half of all AMI traffic; only the variables in ``_KEPT_VARIABLES`` and the
    ``CC_`` ones matter to the service.
    """
    if not text.startswith("Event: VarSet\r"):
        return False
    return (
        "\r\nVariable: QUEUESTATUS\r" not in text
        and f"\r\nVariable: {_KEPT_VARIABLE_PREFIX}" not in text
    )


@dataclass(frozen=True, slots=True)
class Chan:
    """The channel block of an event: which channel of which call, and its caller ID."""

    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str | None = None
    caller_name: str | None = None
    context: str | None = None
    exten: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every typed event: when it happened and on which Asterisk server."""

    ts: float
    server: str


@dataclass(frozen=True, slots=True)
class ChannelNew(Event):
    chan: Chan


@dataclass(frozen=True, slots=True)
class CallerIdSet(Event):
    chan: Chan


@dataclass(frozen=True, slots=True)
class ChannelHangup(Event):
    chan: Chan
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class DialplanStep(Event):
    """A Newexten: the channel runs one dialplan priority (context, exten, application)."""

    chan: Chan
    application: str = ""
    app_data: str = ""


@dataclass(frozen=True, slots=True)
class VarSet(Event):
    chan: Chan
    variable: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class Dtmf(Event):
    chan: Chan
    digit: str = ""


@dataclass(frozen=True, slots=True)
class UserEvent(Event):
    chan: Chan | None
    name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueJoin(Event):
    chan: Chan
    queue: str
    position: int | None = None


@dataclass(frozen=True, slots=True)
class QueueLeave(Event):
    chan: Chan
    queue: str


@dataclass(frozen=True, slots=True)
class QueueAbandon(Event):
    chan: Chan
    queue: str
    holdtime: int | None = None


@dataclass(frozen=True, slots=True)
class AgentEvent(Event):
    """Base of the queue's agent events; ``chan`` is None when Asterisk left it out."""

    chan: Chan | None
    queue: str
    agent: str
    interface: str


@dataclass(frozen=True, slots=True)
class AgentRing(AgentEvent):
    """AgentCalled: the queue rings an agent for a caller."""


@dataclass(frozen=True, slots=True)
class AgentNoAnswer(AgentEvent):
    """AgentRingNoAnswer (RingTime in milliseconds) or AgentDump."""

    ring_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AgentAnswer(AgentEvent):
    """AgentConnect: HoldTime and RingTime in whole seconds."""

    holdtime: int | None = None
    ringtime: int | None = None


@dataclass(frozen=True, slots=True)
class AgentDone(AgentEvent):
    """AgentComplete: the conversation ended; Reason is caller, agent or transfer."""

    holdtime: int | None = None
    talktime: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Transfer(Event):
    """A blind or attended transfer; ``chan`` is the transferred party (the caller)."""

    chan: Chan
    kind: str = "blind"
    target: str = ""


@dataclass(frozen=True, slots=True)
class Hold(Event):
    chan: Chan
    on: bool = True


@dataclass(frozen=True, slots=True)
class MemberUpdate(Event):
    """QueueMemberStatus/Added/Removed/Pause, and QueueMember from a QueueStatus snapshot."""

    kind: str  # status, added, removed, pause, snapshot
    queue: str
    agent: str
    interface: str
    status: int = 1
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    static: bool = False
    login_time: float | None = None
    last_pause: float | None = None


@dataclass(frozen=True, slots=True)
class QueueSnapshot(Event):
    """QueueParams from a QueueStatus snapshot: Asterisk's own queue counters."""

    queue: str
    waiting: int = 0
    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0
    service_level: int = 0
    service_level_perf: float = 0.0


@dataclass(frozen=True, slots=True)
class WaitingEntry(Event):
    """QueueEntry from a QueueStatus snapshot: a caller waiting now (no Linkedid in it)."""

    queue: str
    channel: str
    uniqueid: str
    caller_number: str | None
    caller_name: str | None
    position: int | None
    wait: int


@dataclass(frozen=True, slots=True)
class ChannelSnapshot(Event):
    """CoreShowChannel from a CoreShowChannels snapshot: a live channel."""

    chan: Chan
    application: str
    app_data: str
    duration_s: int
    bridged: bool


@dataclass(frozen=True, slots=True)
class ResyncBegin(Event):
    """The adapter starts re-reading live state after a (re)login."""


@dataclass(frozen=True, slots=True)
class ResyncEnd(Event):
    """The snapshot is complete (or not): the tracker may reconcile."""

    complete: bool = True
    failed: str = ""


@dataclass(frozen=True, slots=True)
class LinkDown(Event):
    """The AMI connection was lost: events until the next resync are missing."""


def _int(value: str | None) -> int | None:
    """Parses an integer header; None when absent or malformed."""
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _epoch(value: str | None) -> float | None:
    """Parses an epoch-seconds header where 0 means 'never'."""
    number = _int(value)
    return float(number) if number else None


def _known(value: str | None) -> str | None:
    """Asterisk sends ``<unknown>`` or an empty value for a missing caller ID."""
    return None if not value or value == _UNKNOWN or is_withheld(value) else value


# What trunks and phones put in CallerIDNum when the caller withheld the number. A withheld
# number is stored as NULL (never as the word), and shown as "Gizli numara / Withheld".
WITHHELD = frozenset({"anonymous", "restricted", "private", "unavailable", "withheld", "unknown"})


def is_withheld(value: str | None) -> bool:
    """Whether a caller ID value is a placeholder for a withheld number."""
    return bool(value) and value.strip().lower() in WITHHELD  # type: ignore[union-attr]


def _chan(h: Headers, prefix: str = "") -> Chan | None:
    """The channel block (optionally prefixed, e.g. ``Transferee``); None if absent."""
    uniqueid = h.get(prefix + "Uniqueid")
    if not uniqueid:
        return None
    return Chan(
        channel=h.get(prefix + "Channel", ""),
        uniqueid=uniqueid,
        linkedid=h.get(prefix + "Linkedid") or uniqueid,
        caller_number=_known(h.get(prefix + "CallerIDNum")),
        caller_name=_known(h.get(prefix + "CallerIDName")),
        context=h.get(prefix + "Context"),
        exten=h.get(prefix + "Exten"),
    )


class EventError(ValueError):
    """A known event lacks a header it cannot do without."""


def _need_chan(h: Headers) -> Chan:
    """The channel block of an event that is meaningless without one."""
    chan = _chan(h)
    if chan is None:
        raise EventError(f"{h.get('Event')} without Uniqueid")
    return chan


def _need(h: Headers, key: str) -> str:
    """A header the event is meaningless without."""
    value = h.get(key)
    if not value:
        raise EventError(f"{h.get('Event')} without {key}")
    return value


def _agent_fields(h: Headers) -> tuple[Chan | None, str, str, str]:
    """Channel, queue, member name and interface of a queue agent event."""
    interface = _need(h, "Interface")
    return _chan(h), _need(h, "Queue"), h.get("MemberName") or interface, interface


def _member(kind: str) -> Callable[[Headers, float, str], Event]:
    """Builds the parser of one of the QueueMember* events."""

    def parse(h: Headers, ts: float, server: str) -> Event:
        interface = h.get("Interface") or _need(h, "Location")
        return MemberUpdate(
            ts,
            server,
            kind=kind,
            queue=_need(h, "Queue"),
            agent=h.get("MemberName") or h.get("Name") or interface,
            interface=interface,
            status=_int(h.get("Status")) or 0,
            paused=h.get("Paused") == "1",
            paused_reason=h.get("PausedReason", ""),
            in_call=h.get("InCall") == "1",
            static=h.get("Membership") == "static",
            login_time=_epoch(h.get("LoginTime")),
            last_pause=_epoch(h.get("LastPause")),
        )

    return parse


def _user_event(h: Headers, ts: float, server: str) -> Event:
    """UserEvent: our IVR's results; custom headers come after the channel block."""
    standard = {
        "Event",
        "Privilege",
        "Timestamp",
        "Channel",
        "ChannelState",
        "ChannelStateDesc",
        "CallerIDNum",
        "CallerIDName",
        "ConnectedLineNum",
        "ConnectedLineName",
        "Language",
        "AccountCode",
        "Context",
        "Exten",
        "Priority",
        "Uniqueid",
        "Linkedid",
        "UserEvent",
    }
    fields = {k: v for k, v in h.items() if k not in standard}
    return UserEvent(ts, server, chan=_chan(h), name=h.get("UserEvent", ""), fields=fields)


def _duration(value: str | None) -> int:
    """Parses CoreShowChannel's ``HH:MM:SS`` duration into seconds."""
    try:
        hours, minutes, seconds = (int(p) for p in (value or "0:0:0").split(":"))
    except ValueError:
        return 0
    return hours * 3600 + minutes * 60 + seconds


def _float(value: str | None) -> float:
    """Parses a float header; 0.0 when absent or malformed."""
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


_PARSERS: dict[str, Callable[[Headers, float, str], Event]] = {
    "Newchannel": lambda h, ts, s: ChannelNew(ts, s, _need_chan(h)),
    "NewCallerid": lambda h, ts, s: CallerIdSet(ts, s, _need_chan(h)),
    "Hangup": lambda h, ts, s: ChannelHangup(ts, s, _need_chan(h), _int(h.get("Cause"))),
    "Newexten": lambda h, ts, s: DialplanStep(
        ts, s, _need_chan(h), h.get("Application", ""), h.get("AppData", "")
    ),
    "VarSet": lambda h, ts, s: VarSet(
        ts, s, _need_chan(h), _need(h, "Variable"), h.get("Value", "")
    ),
    "DTMFEnd": lambda h, ts, s: Dtmf(ts, s, _need_chan(h), h.get("Digit", "")),
    "UserEvent": _user_event,
    "QueueCallerJoin": lambda h, ts, s: QueueJoin(
        ts, s, _need_chan(h), _need(h, "Queue"), _int(h.get("Position"))
    ),
    "QueueCallerLeave": lambda h, ts, s: QueueLeave(ts, s, _need_chan(h), _need(h, "Queue")),
    "QueueCallerAbandon": lambda h, ts, s: QueueAbandon(
        ts, s, _need_chan(h), _need(h, "Queue"), _int(h.get("HoldTime"))
    ),
    "AgentCalled": lambda h, ts, s: AgentRing(ts, s, *_agent_fields(h)),
    "AgentRingNoAnswer": lambda h, ts, s: AgentNoAnswer(
        ts, s, *_agent_fields(h), ring_ms=_int(h.get("RingTime"))
    ),
    "AgentDump": lambda h, ts, s: AgentNoAnswer(ts, s, *_agent_fields(h)),
    "AgentConnect": lambda h, ts, s: AgentAnswer(
        ts, s, *_agent_fields(h), holdtime=_int(h.get("HoldTime")), ringtime=_int(h.get("RingTime"))
    ),
    "AgentComplete": lambda h, ts, s: AgentDone(
        ts,
        s,
        *_agent_fields(h),
        holdtime=_int(h.get("HoldTime")),
        talktime=_int(h.get("TalkTime")),
        reason=h.get("Reason", ""),
    ),
    "BlindTransfer": lambda h, ts, s: Transfer(
        ts,
        s,
        _transferee(h),
        "blind",
        f"{h.get('Extension', '')}@{h.get('Context', '')}",
    ),
    "AttendedTransfer": lambda h, ts, s: Transfer(
        ts, s, _transferee(h, "OrigTransferer"), "attended", h.get("DestType", "")
    ),
    "Hold": lambda h, ts, s: Hold(ts, s, _need_chan(h), True),
    "Unhold": lambda h, ts, s: Hold(ts, s, _need_chan(h), False),
    "QueueMemberStatus": _member("status"),
    "QueueMemberAdded": _member("added"),
    "QueueMemberRemoved": _member("removed"),
    "QueueMemberPause": _member("pause"),
    "QueueMemberPaused": _member("pause"),  # the pre-13 spelling, still seen in the wild
    "QueueMember": _member("snapshot"),
    "QueueParams": lambda h, ts, s: QueueSnapshot(
        ts,
        s,
        queue=_need(h, "Queue"),
        waiting=_int(h.get("Calls")) or 0,
        holdtime=_int(h.get("Holdtime")) or 0,
        talktime=_int(h.get("TalkTime")) or 0,
        completed=_int(h.get("Completed")) or 0,
        abandoned=_int(h.get("Abandoned")) or 0,
        service_level=_int(h.get("ServiceLevel")) or 0,
        service_level_perf=_float(h.get("ServicelevelPerf")),
    ),
    "QueueEntry": lambda h, ts, s: WaitingEntry(
        ts,
        s,
        queue=_need(h, "Queue"),
        channel=h.get("Channel", ""),
        uniqueid=_need(h, "Uniqueid"),
        caller_number=_known(h.get("CallerIDNum")),
        caller_name=_known(h.get("CallerIDName")),
        position=_int(h.get("Position")),
        wait=_int(h.get("Wait")) or 0,
    ),
    "CoreShowChannel": lambda h, ts, s: ChannelSnapshot(
        ts,
        s,
        chan=_need_chan(h),
        application=h.get("Application", ""),
        app_data=h.get("ApplicationData", ""),
        duration_s=_duration(h.get("Duration")),
        bridged=bool(h.get("BridgeId")),
    ),
    "CallcenterResyncBegin": lambda h, ts, s: ResyncBegin(ts, s),
    "CallcenterResyncEnd": lambda h, ts, s: ResyncEnd(
        ts, s, complete=h.get("Complete", "yes") == "yes", failed=h.get("Failed", "")
    ),
    "CallcenterLinkDown": lambda h, ts, s: LinkDown(ts, s),
}


def _transferee(h: Headers, fallback_prefix: str = "") -> Chan:
    """The party a transfer moves (the caller), from the Transferee block."""
    chan = _chan(h, "Transferee") or (_chan(h, fallback_prefix) if fallback_prefix else None)
    if chan is None:
        raise EventError(f"{h.get('Event')} without a transferee")
    return chan


# Events the service knows and deliberately ignores (not counted as unknown).
IGNORED = frozenset(
    {
        "FullyBooted",
        "SuccessfulAuth",
        "Cdr",
        "Newstate",
        "NewConnectedLine",
        "DeviceStateChange",
        "LocalBridge",
        "DialBegin",
        "DialEnd",
        "DialState",
        "BridgeCreate",
        "BridgeEnter",
        "BridgeLeave",
        "BridgeDestroy",
        "BridgeMerge",
        "SoftHangupRequest",
        "HangupRequest",
        "HangupHandlerPush",
        "HangupHandlerPop",
        "HangupHandlerRun",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "OriginateResponse",
        "DTMFBegin",
        "QueueStatusComplete",
        "QueueSummary",
        "QueueSummaryComplete",
        "CoreShowChannelsComplete",
        "NewAccountCode",
        "RTCPSent",
        "RTCPReceived",
        "PeerStatus",
        "ContactStatus",
        "Registry",
        "Reload",
        "Shutdown",
        "ChallengeSent",
        "Status",
        "StatusComplete",
        "AgentLogin",
        "AgentLogoff",
        "MixMonitorStart",
        "MixMonitorStop",
        "MessageWaiting",
    }
)


def known_event(name: str) -> bool:
    """Whether the service knows this AMI event name (parsed or deliberately ignored)."""
    return name in _PARSERS or name in IGNORED


def to_event(h: Headers, received_at: float, server: str) -> Event | None:
    """Turns one message's headers into a typed event, or None for what the service ignores.

    Raises EventError for a known event that lacks a header it cannot do without, and
    KeyError for an unknown event name (so the caller can count the two apart).
    """
    name = h.get("Event")
    if name is None:
        return None  # an action response: the adapter's business, not the tracker's
    parser = _PARSERS.get(name)
    if parser is None:
        if name in IGNORED:
            return None
        raise KeyError(name)
    if name == "VarSet":
        variable = h.get("Variable", "")
        if variable not in _KEPT_VARIABLES and not variable.startswith(_KEPT_VARIABLE_PREFIX):
            return None
    stamp = h.get("Timestamp")
    ts = received_at
    if stamp:
        try:
            ts = float(stamp)
        except ValueError:
            pass
    return parser(h, ts, server)
