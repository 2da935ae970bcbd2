"""The ingestion path without a socket, recorded traces to perturb, and the tracker's invariants.

``Wire`` is the live path from TCP bytes on: the AMI adapter's own protocol (incremental UTF-8
decode, split on blank lines, noise filter, parse) hands each message to ``Service.process``
(pipeline, tracker, subscribers), exactly as ``Service.start_ami`` wires it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from callcenter import calls as calls_module
from callcenter import events
from callcenter.ami import AmiClient, _AmiProtocol
from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.model import CallEnded, CallStarted, Effect
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, trace_t0
from callcenter.store.serialize import call_from_json, call_to_json

TRACES = Path(__file__).resolve().parent.parent / "traces"
GREETING = b"Asterisk Call Manager/6.0.0\r\n"
# Every recorded scenario; the burst is long, so only its first messages take part.
SCENARIOS = sorted(p.name for p in TRACES.iterdir() if (p / "ami.jsonl.gz").exists())
_BURST_SLICE = 4000
_ID = re.compile(r"\b(\d{9,10})\.(\d+)\b")


class FakeTransport:
    """Stands in for the socket: collects what the protocol writes, notes an abort."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Wire:
    """One AMI link's receiving side, feeding a Service's pipeline, without a socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        service: Service | None = None,
        *,
        queued: bool = False,
    ) -> None:
        self.service = service or Service(Settings())
        self.delivered: list[dict[str, str]] = []
        # queued: through the service's queue and consumer task (a started service), as live.
        sink = self.service.ami_sink if queued else self._sink
        self.client = AmiClient(AsteriskServer(), sink, drop_raw=events.is_noise, loop=loop)
        self.protocol = _AmiProtocol(self.client, loop)
        self.transport = FakeTransport()
        self.protocol.connection_made(self.transport)

    def _sink(self, server: str, headers: dict[str, str], received_at: float) -> None:
        self.delivered.append(dict(headers))
        self.service.process(server, headers, received_at)

    def feed(self, chunks: Iterable[bytes]) -> None:
        """Hands chunks to the protocol as the event loop would, until the link is aborted."""
        for chunk in chunks:
            if self.transport.aborted:
                break  # asyncio delivers nothing after abort()
            self.protocol.data_received(chunk)

    def finish(self) -> None:
        """Retrieves a failed greeting, so asyncio does not warn about it."""
        if self.protocol.greeting.done() and not self.protocol.greeting.cancelled():
            self.protocol.greeting.exception()


def split(blob: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cuts ``blob`` at the given offsets (any order, repeats and out-of-range ones ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(blob)})
    edges = [0, *points, len(blob)]
    return [blob[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@cache
def trace(scenario: str) -> tuple[tuple[float, str], ...]:
    """A recorded trace's (epoch, message text) pairs, as the replay feeds them."""
    path = TRACES / scenario / "ami.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        messages = iter_trace(fh, trace_t0(path) or 0.0)
        if scenario == "burst":
            return tuple(m for _, m in zip(range(_BURST_SLICE), messages, strict=False))
        return tuple(messages)


def renumber(text: str, salt: int) -> str:
    """Gives every uniqueid/linkedid in a message a fresh, salted value (a new copy of a call)."""
    if not salt:
        return text
    return _ID.sub(lambda m: f"{int(m.group(1)) + salt * 100_000}.{m.group(2)}", text)


def perturb(
    messages: tuple[tuple[float, str], ...], rnd: random.Random, *, keep: float, mode: str
) -> list[tuple[float, str]]:
    """A subset of a trace in another order: ``keep`` is the share kept, ``mode`` the order."""
    out = [m for m in messages if keep >= 1.0 or rnd.random() < keep]
    if mode == "shuffle":
        rnd.shuffle(out)
    elif mode == "reverse":
        out.reverse()
    elif mode == "local":
        # Nearby messages swap places: what a racing sender or a resync interleaving looks like.
        for i in range(len(out) - 1):
            if rnd.random() < 0.3:
                j = min(len(out) - 1, i + rnd.randint(1, 8))
                out[i], out[j] = out[j], out[i]
    elif mode == "duplicate":
        out = [m for m in out for _ in range(2 if rnd.random() < 0.2 else 1)]
    return out


def frame(text: str) -> bytes:
    """One message as it travels on the wire."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n"


def check_effects(effects: list[Effect]) -> set[tuple[str, str]]:
    """Checks the calls in a run's effects; returns the keys of the calls that ended.

    A call starts at most once and ends at most once, only after it started, and every ended
    record survives what the store does with it (JSON, the open-call snapshot round trip).
    """
    started: Counter[tuple[str, str]] = Counter()
    ended: Counter[tuple[str, str]] = Counter()
    for effect in effects:
        if isinstance(effect, CallStarted):
            started[(effect.call.server, effect.call.linkedid)] += 1
        elif isinstance(effect, CallEnded):
            call = effect.call
            key = (call.server, call.linkedid)
            ended[key] += 1
            assert key in started, f"{key} ended without starting"
            assert call.ended_at is not None
            json.dumps(call.to_dict())
            assert call_from_json(json.loads(json.dumps(call_to_json(call)))) == call
    assert max(started.values(), default=0) <= 1, "a call started twice"
    assert max(ended.values(), default=0) <= 1, "a call ended twice"
    return set(ended)


# Tracker state that outlives calls on purpose: agents, queue figures, counters, the bounded
# memory of ended calls (late events), the dispatch table and a resync in progress.
_LASTING = {
    "members",
    "pauses",
    "sessions",
    "queue_stats",
    "counters",
    "_ended",
    "_handlers",
    "_resync",
}


def check_closed(pipe: Pipeline) -> None:
    """After ``close_all`` nothing about calls may be left in the tracker.

    Every other dict or set the tracker holds (whatever it is named) must be empty, so a map
    added later that forgets to drop ended calls is caught here too.
    """
    t = pipe.tracker
    assert pipe.counters["tracker_errors"] == 0
    for name, value in vars(t).items():
        if name not in _LASTING and isinstance(value, dict | set):
            assert not value, f"tracker.{name} keeps {len(value)} entries after close_all"
    assert len(t._ended) <= calls_module._ENDED_MEMORY
    assert set(t.pauses) <= set(t.members)
    assert set(t.sessions) == set(t.members)
