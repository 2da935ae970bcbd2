"""The AMI wire format as Asterisk 22 writes it: greeting, responses, events, list framing.

Everything here is plain string building; the simulator renders each message once and
writes the same bytes to every client that wants it.
"""

from __future__ import annotations

from collections.abc import Iterable

GREETING = "Asterisk Call Manager/11.0.0\r\n"
EOM = "\r\n\r\n"

# Event classes (manager.conf read= / Events: masks) as bits, so filtering is one AND.
CLASSES = {
    "system": 1,
    "call": 2,
    "log": 4,
    "verbose": 8,
    "command": 16,
    "agent": 32,
    "user": 64,
    "config": 128,
    "dtmf": 256,
    "reporting": 512,
    "cdr": 1024,
    "dialplan": 2048,
    "originate": 4096,
    "agi": 8192,
    "cc": 16384,
    "aoc": 32768,
    "test": 65536,
    "security": 131072,
    "message": 262144,
}
ALL_CLASSES = sum(CLASSES.values())


def event_mask(value: str) -> int | None:
    """The class bitmask an ``Events:`` value selects; None if the value is not valid."""
    text = value.strip().lower()
    if text in ("on", "yes", "true", "all", "1"):
        return ALL_CLASSES
    if text in ("off", "no", "false", "0", ""):
        return 0
    mask = 0
    for part in text.split(","):
        bit = CLASSES.get(part.strip())
        if bit is None and part.strip() != "all":
            return None
        mask |= ALL_CLASSES if part.strip() == "all" else (bit or 0)
    return mask


def privilege_mask(privilege: str) -> int:
    """The class bits of an event's ``Privilege:`` value (``all`` itself adds nothing)."""
    mask = 0
    for part in privilege.split(","):
        mask |= CLASSES.get(part, 0)
    return mask


def fmt_ts(epoch: float) -> str:
    """Formats epoch seconds as Asterisk's ``%ld.%06lu`` timestamp."""
    usec = round(epoch * 1_000_000)
    return f"{usec // 1_000_000}.{usec % 1_000_000:06d}"


def lines(pairs: Iterable[tuple[str, object]]) -> str:
    """Renders header pairs as ``Key: value\\r\\n`` lines (an empty value keeps the space)."""
    return "".join(f"{k}: {v}\r\n" for k, v in pairs)


def response(kind: str, action_id: str | None, *pairs: tuple[str, object]) -> str:
    """A complete action response (``Response: kind``, ActionID second, then ``pairs``)."""
    head = f"Response: {kind}\r\n"
    if action_id:
        head += f"ActionID: {action_id}\r\n"
    return head + lines(pairs) + "\r\n"


def success(action_id: str | None, message: str) -> str:
    """``Response: Success`` with a Message, as ``astman_send_ack`` writes it."""
    return response("Success", action_id, ("Message", message))


def error(action_id: str | None, message: str) -> str:
    """``Response: Error`` with a Message, as ``astman_send_error`` writes it."""
    return response("Error", action_id, ("Message", message))


def list_start(action_id: str | None, message: str) -> str:
    """The first answer to a list action: Success, ``EventList: start`` and the Message."""
    return response("Success", action_id, ("EventList", "start"), ("Message", message))


def list_complete(name: str, action_id: str | None, items: int, *extra: tuple[str, object]) -> str:
    """The closing ``…Complete`` event of a list action (no Privilege, as Asterisk sends it)."""
    head = f"Event: {name}\r\n"
    if action_id:
        head += f"ActionID: {action_id}\r\n"
    return head + f"EventList: Complete\r\nListItems: {items}\r\n" + lines(extra) + "\r\n"


def list_item(name: str, body: str, action_id: str | None, id_first: bool = False) -> str:
    """One event of a list answer: ActionID second (CoreShowChannel) or last (QueueMember…)."""
    aid = f"ActionID: {action_id}\r\n" if action_id else ""
    if id_first:
        return f"Event: {name}\r\n{aid}{body}\r\n"
    return f"Event: {name}\r\n{body}{aid}\r\n"


def parse_action(text: str) -> list[tuple[str, str]]:
    """Splits one action block into its header pairs, in order (repeated keys kept)."""
    pairs: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        pairs.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return pairs
