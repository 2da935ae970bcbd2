"""Lossless Call <-> JSON conversion for open-call snapshots and the spill file; pure."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from callcenter.model import AgentSession, Call, Offer, Pause, Visit

# Bumped if the shape changes in a way old snapshots cannot be read with defaults.
SNAPSHOT_VERSION = 1


def _plain(obj: Any) -> dict[str, Any]:
    """The dataclass fields of a slotted record as a dict (no nested records)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _build(cls: Any, data: dict[str, Any]) -> Any:
    """Builds a record from known keys only, so old snapshots read after a model change."""
    known = {f.name for f in fields(cls)}
    missing = [
        f.name
        for f in fields(cls)
        if f.name not in data and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise ValueError(f"{cls.__name__} snapshot lacks {missing}")
    return cls(**{k: v for k, v in data.items() if k in known})


def call_to_json(call: Call) -> dict[str, Any]:
    """The call, its visits and offers as JSON-ready data (floats kept as epoch seconds)."""
    data = _plain(call)
    data["ivr_path"] = list(call.ivr_path)
    data["ivr_vars"] = dict(call.ivr_vars)
    # A set is not JSON; sorted so equal calls give equal snapshots.
    data["live_channels"] = sorted(call.live_channels)
    visits = []
    for visit in call.visits:
        v = _plain(visit)
        v["offers"] = [_plain(o) for o in visit.offers]
        visits.append(v)
    data["visits"] = visits
    data["_v"] = SNAPSHOT_VERSION
    return data


def call_from_json(data: dict[str, Any]) -> Call:
    """Rebuilds a Call from ``call_to_json`` output; raises ValueError if it is unusable."""
    d = dict(data)
    d.pop("_v", None)
    visits = []
    for raw in d.pop("visits", None) or []:
        v = dict(raw)
        offers = [_build(Offer, o) for o in v.pop("offers", None) or []]
        visit = _build(Visit, v)
        visit.offers = offers
        visits.append(visit)
    d["live_channels"] = set(d.get("live_channels") or ())
    d["ivr_path"] = list(d.get("ivr_path") or ())
    d["ivr_vars"] = dict(d.get("ivr_vars") or {})
    call: Call = _build(Call, d)
    call.visits = visits
    return call


def pause_to_json(pause: Pause) -> dict[str, Any]:
    """A pause as JSON-ready data."""
    return _plain(pause)


def pause_from_json(data: dict[str, Any]) -> Pause:
    """Rebuilds a Pause from ``pause_to_json`` output."""
    pause: Pause = _build(Pause, data)
    return pause


def session_to_json(session: AgentSession) -> dict[str, Any]:
    """An agent session as JSON-ready data."""
    return _plain(session)


def session_from_json(data: dict[str, Any]) -> AgentSession:
    """Rebuilds an AgentSession from ``session_to_json`` output."""
    session: AgentSession = _build(AgentSession, data)
    return session
