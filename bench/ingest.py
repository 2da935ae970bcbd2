"""Ingestion benchmark: AMI bytes -> parse -> track -> PostgreSQL, end to end.

The recorded burst (283,238 messages from a real Asterisk 22) is repeated with fresh
uniqueids/linkedids until at least ``--events`` messages, then fed as 64 KiB chunks of bytes
through the service's own path (incremental UTF-8 decode, split, noise filter, parse, typed
events, call tracker, batched upserts into a throwaway PostgreSQL database). The baseline,
measured in the same run on the same bytes, is panoramisk's own parser alone
(``Message.from_line`` on each message, as its protocol does).

    make bench            # or: DATABASE_URL=... .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import gzip
import json
import os
import re
import time
import uuid
from pathlib import Path

import asyncpg
from panoramisk.message import Message

from callcenter.config import Settings
from callcenter.model import CallEnded
from callcenter.pipeline import Pipeline
from callcenter.store.migrations import migrate
from callcenter.store.writer import CallWriter

TRACE = Path(__file__).resolve().parent.parent / "tests" / "traces" / "burst" / "ami.jsonl.gz"
_ID = re.compile(r"\b1795(\d{6})\.(\d+)\b")
_CHUNK = 65536


def build_stream(min_events: int) -> tuple[bytes, int]:
    """The burst repeated with fresh ids until ``min_events`` messages; returns bytes, count."""
    with gzip.open(TRACE, "rt", encoding="utf-8") as fh:
        raws = [r["raw"] for r in map(json.loads, fh) if "raw" in r and ":" in r["raw"]]
    parts: list[str] = []
    count = 0
    round_ = 0
    while count < min_events:
        shift = round_ * 1000  # a fresh, non-overlapping id range per repetition

        def fresh(m: re.Match[str], shift: int = shift) -> str:
            return f"{1795000000 + int(m.group(1)) + shift}.{m.group(2)}"

        parts.extend(_ID.sub(fresh, raw) if round_ else raw for raw in raws)
        count += len(raws)
        round_ += 1
    return "".join(parts).encode("utf-8"), count


def chunks(data: bytes) -> list[bytes]:
    """The stream as TCP-sized reads (a UTF-8 character may straddle two)."""
    return [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)]


def baseline_panoramisk(pieces: list[bytes]) -> tuple[float, int]:
    """panoramisk's own parsing path on the same bytes: decode, split, Message.from_line."""
    started = time.perf_counter()
    pending = ""
    n = 0
    for piece in pieces:
        data = pending + piece.decode("utf-8", "ignore")
        lines = data.split("\r\n\r\n")
        pending = lines.pop()
        for line in lines:
            if Message.from_line(line.strip()) is not None:
                n += 1
    return time.perf_counter() - started, n


async def end_to_end(pieces: list[bytes], dsn: str) -> tuple[float, int, int, Pipeline]:
    """Our whole path into PostgreSQL; returns seconds, messages, calls written, pipeline."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    await migrate(pool)
    writer = CallWriter(pool, Settings(database_url=dsn))
    writer.start()
    pipe = Pipeline()
    decoder = codecs.getincrementaldecoder("utf-8")()
    calls = 0
    clock = 1795884000.0
    started = time.perf_counter()
    pending = ""
    for i, piece in enumerate(pieces):
        data = pending + decoder.decode(piece)
        messages = data.split("\r\n\r\n")
        pending = messages.pop()
        clock += 0.001
        for text in messages:
            for effect in pipe.feed_text("bench", text, clock):
                if isinstance(effect, CallEnded):
                    writer.submit_call(effect.call)
                    calls += 1
        if i % 64 == 0:
            await asyncio.sleep(0)  # let the writer flush, as the service's loop would
    for effect in pipe.tracker.close_all(clock + 10, "bench"):
        if isinstance(effect, CallEnded):
            writer.submit_call(effect.call)
            calls += 1
    await writer.close()
    elapsed = time.perf_counter() - started
    rows = await pool.fetchval("SELECT count(*) FROM calls WHERE server = 'bench'")
    await pool.close()
    if rows != calls:
        raise SystemExit(f"bench: {calls} calls ended but {rows} rows in PostgreSQL")
    return elapsed, pipe.counters["messages"], calls, pipe


async def main() -> None:
    """Builds the stream, runs baseline and end-to-end, prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = base.rsplit("/", 1)[0] + "/" + name
    try:
        data, count = build_stream(args.events)
        pieces = chunks(data)
        print(f"stream: {count:,} AMI messages, {len(data) / 1e6:.0f} MB")
        base_s, base_n = baseline_panoramisk(pieces)
        e2e_s, n, calls, pipe = await end_to_end(pieces, dsn)
        print(f"baseline  panoramisk parser alone: {base_n / base_s:>10,.0f} messages/s")
        print(
            f"callcenter end to end (parse, track, PostgreSQL): {n / e2e_s:>10,.0f} messages/s, "
            f"{pipe.counters['events'] / e2e_s:,.0f} typed events/s, {calls / e2e_s:,.0f} calls/s"
        )
        print(f"ratio end-to-end / baseline: {(n / e2e_s) / (base_n / base_s):.2f}")
        print(f"calls written: {calls:,}; counters: {pipe.counters}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
