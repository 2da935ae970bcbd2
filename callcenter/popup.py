"""The screen-pop: who is calling and why, built from the call and the caller's history (pure).

No I/O and no clock: the moment of the pop comes from the event (the ring, the answer, the end),
and the history (earlier calls, open tickets) is handed in by the caller of ``build_pop``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import phonenumbers

from callcenter.ivr.labels import ivr_words
from callcenter.ivr.menu import IvrMenu
from callcenter.model import Call, Offer, Visit, iso

STAGES = ("ringing", "connected", "ended")
RECENT_CALLS = 5
# What Asterisk puts in CallerIDName/Num when the caller withheld it or nothing is known.
_NO_VALUE = {"", "<unknown>", "unknown", "anonymous", "restricted", "private", "null"}


def _plain(raw: str | None) -> str:
    """The number without spaces, dashes or brackets."""
    return "".join(ch for ch in (raw or "") if ch.isdigit() or ch == "+")


def parse_number(raw: str | None, region: str = "TR") -> phonenumbers.PhoneNumber | None:
    """The parsed number if it is a possible number of ``region`` (or international)."""
    text = _plain(raw)
    if not text or text.lower() in _NO_VALUE:
        return None
    # Trunks often drop the "+" of international numbers: 905321234567 is +90 532 123 45 67.
    candidates = [text]
    if not text.startswith(("+", "0")) and len(text) > 10:
        candidates.append("+" + text)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return number
    return None


def format_number(raw: str | None, region: str = "TR") -> dict[str, Any]:
    """The number as received, in E.164 and in national format (None when not parseable)."""
    return dict(_formats(raw, region))


# Parsing a number costs about a tenth of a millisecond and a caller's number is formatted at
# every stage of the call, so the results are cached.
@functools.lru_cache(maxsize=8192)
def _formats(raw: str | None, region: str) -> dict[str, Any]:
    number = parse_number(raw, region)
    if number is None:
        return {"number": raw or None, "e164": None, "national": None, "valid": False}
    fmt = phonenumbers.PhoneNumberFormat
    return {
        "number": raw,
        "e164": phonenumbers.format_number(number, fmt.E164),
        "national": phonenumbers.format_number(number, fmt.NATIONAL),
        "valid": phonenumbers.is_valid_number(number),
    }


def normalize_number(raw: str | None, region: str = "TR") -> str | None:
    """The key a number is stored and matched under: E.164 if parseable, else its digits."""
    e164: str | None = _formats(raw, region)["e164"]
    return e164 or _plain(raw) or None


@functools.lru_cache(maxsize=8192)
def _variants(raw: str | None, region: str) -> tuple[str, ...]:
    return tuple(_number_variants(raw, region))


def number_variants(raw: str | None, region: str = "TR") -> list[str]:
    """The spellings one number may have in the call log (as received, national, E.164…)."""
    return list(_variants(raw, region))


def _number_variants(raw: str | None, region: str) -> list[str]:
    plain = _plain(raw)
    if raw is None or not plain:
        return []
    found = {raw, plain}
    formats = _formats(raw, region)
    if formats["e164"]:
        e164, national = formats["e164"], _plain(formats["national"])
        found.update({e164, e164.lstrip("+"), national, national.lstrip("0")})
    return sorted(found)


def _known(name: str | None, number: str | None) -> str | None:
    """A caller name worth showing: not empty, not a placeholder, not the number again."""
    if name is None:
        return None
    text = name.strip()
    if text.lower() in _NO_VALUE or (_plain(text) and _plain(text) == _plain(number)):
        return None
    return text


def caller_name(
    call: Call,
    recent_calls: Sequence[Mapping[str, Any]],
    tickets: Sequence[Mapping[str, Any]],
) -> tuple[str | None, str | None]:
    """The caller's name and where it came from: caller ID, a ticket, then an earlier call."""
    name = _known(call.caller_name, call.caller_number)
    if name:
        return name, "callerid"
    for ticket in tickets:
        name = _known(ticket.get("caller_name"), call.caller_number)
        if name:
            return name, "ticket"
    for earlier in recent_calls:
        name = _known(earlier.get("caller_name"), call.caller_number)
        if name:
            return name, "history"
    return None, None


def _recent(call: Call, recent_calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Earlier calls as the pop lists them (the current call left out), newest first."""
    rows = []
    for earlier in recent_calls:
        if earlier.get("linkedid") == call.linkedid and earlier.get("server") == call.server:
            continue
        rows.append(
            {
                "date": earlier.get("started_at"),
                "outcome": earlier.get("outcome"),
                "agent": earlier.get("agent"),
                "queue": earlier.get("queue"),
                "wait_s": earlier.get("wait_s"),
                "talk_s": earlier.get("talk_s"),
                "disposition": earlier.get("disposition"),
            }
        )
    return rows[:RECENT_CALLS]


def _ticket(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """An open ticket as the pop lists it."""
    return {
        key: ticket.get(key)
        for key in ("reference", "category", "status", "channel", "created_at", "note")
    }


def _moment(stage: str, call: Call, visit: Visit | None, offer: Offer | None) -> float | None:
    """The event time the pop describes: the ring, the answer or the end of the call."""
    if stage == "ringing" and offer is not None:
        return offer.rang_at
    if stage == "connected" and visit is not None and visit.answered_at is not None:
        return visit.answered_at
    if stage == "ended":
        return call.ended_at or (visit.ended_at if visit else None)
    return None


def _wait(visit: Visit | None, at: float | None) -> float | None:
    """Seconds the caller has waited in the queue by ``at`` (or in all, once answered/left)."""
    if visit is None:
        return None
    if visit.answered_at is not None or visit.left_at is not None:
        return visit.wait_s
    if visit.entered_at is None or at is None:
        return None
    return round(max(0.0, at - visit.entered_at), 3)


def build_pop(
    call: Call,
    visit: Visit | None = None,
    offer: Offer | None = None,
    *,
    stage: str = "ringing",
    recent_calls: Sequence[Mapping[str, Any]] = (),
    open_tickets: Sequence[Mapping[str, Any]] = (),
    history_pending: bool = False,
    region: str = "TR",
    menu: IvrMenu | None = None,
) -> dict[str, Any]:
    """The screen-pop message for one agent at one stage of a call.

    With the IVR ``menu``, ``ivr.words`` gives the caller's way through it in the menu's
    labels per language ("Ana menü › Sosyal yardım › Gıda yardımı"); ``ivr.path`` keeps the
    dialplan contexts. A withheld (or absent) number has ``caller.withheld`` true.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown pop stage {stage!r}")
    visit = visit or (call.visits[-1] if call.visits else None)
    at = _moment(stage, call, visit, offer)
    name, name_source = caller_name(call, recent_calls, open_tickets)
    pop: dict[str, Any] = {
        "type": "pop",
        "stage": stage,
        "server": call.server,
        "linkedid": call.linkedid,
        "at": iso(at),
        "caller": {
            **format_number(call.caller_number, region),
            "withheld": not call.caller_number,
            "name": name,
            "name_source": name_source,
        },
        "dialled": call.dialled,
        "queue": visit.queue if visit else call.queue,
        "position": visit.position if visit else None,
        "agent": {
            "name": offer.agent if offer else (visit.agent if visit else None),
            "interface": offer.interface if offer else (visit.interface if visit else None),
        },
        "ivr": {
            "path": list(call.ivr_path),
            "words": ivr_words(menu, call.ivr_vars) if menu is not None else {},
            "digits": call.ivr_digits,
            "vars": dict(call.ivr_vars),
            "result": call.ivr_result,
        },
        "wait_s": _wait(visit, at),
        "entered_at": iso(visit.entered_at) if visit else None,
        "recent_calls": _recent(call, recent_calls),
        "open_tickets": [_ticket(t) for t in open_tickets],
        "history_pending": history_pending,
    }
    if stage == "ended":
        pop["outcome"] = call.outcome
        pop["talk_s"] = visit.talk_s if visit and visit.talk_s is not None else call.talk_s
        pop["hangup_by"] = (visit.hangup_by if visit else None) or call.hangup_by
    return pop
