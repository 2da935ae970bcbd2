"""The batched, non-blocking call-log writer: memory buffer, background flush, disk spill."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import structlog

from callcenter.config import Settings
from callcenter.model import AgentSession, Call, Pause
from callcenter.store.calls import DATA_ERRORS, Batch, save_batch
from callcenter.store.serialize import (
    call_from_json,
    call_to_json,
    pause_from_json,
    pause_to_json,
    session_from_json,
    session_to_json,
)
from callcenter.webhooks.outbox import call_ended_row

log = structlog.get_logger(__name__)

Record = Call | Pause | AgentSession


@dataclass(slots=True)
class _Item:
    """One submitted record: kind is call (final), open (snapshot), pause or session."""

    kind: str
    server: str
    record: Record

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity in the database; a final call and its snapshot share one key."""
        r = self.record
        if isinstance(r, Call):
            return ("call", self.server, r.linkedid)
        return (self.kind, self.server, r.interface, r.queue, r.started_at)

    def to_json(self) -> dict[str, Any]:
        """The spill-file line for this item."""
        r = self.record
        if isinstance(r, Call):
            data = call_to_json(r)
        elif isinstance(r, Pause):
            data = pause_to_json(r)
        else:
            data = session_to_json(r)
        return {"kind": self.kind, "server": self.server, "data": data}

    @classmethod
    def from_json(cls, line: dict[str, Any]) -> _Item:
        """Reads a spill-file line back."""
        kind, data = line["kind"], line["data"]
        record: Record
        if kind in ("call", "open"):
            record = call_from_json(data)
        elif kind == "pause":
            record = pause_from_json(data)
        elif kind == "session":
            record = session_from_json(data)
        else:
            raise ValueError(f"unknown spill record kind {kind!r}")
        return cls(kind, str(line["server"]), record)


def _put(buffer: dict[tuple[Any, ...], _Item], item: _Item) -> None:
    """Adds an item, the later submit of a key winning, except that a final call stays final."""
    existing = buffer.get(item.key)
    if existing is not None and existing.kind == "call" and item.kind == "open":
        return
    buffer[item.key] = item


def _to_batch(items: list[_Item], region: str | None = None) -> Batch:
    """Sorts items into the lists ``save_batch`` takes; with a region, finished calls'
    call.ended rows too (ValueError for a call that cannot be encoded)."""
    batch = Batch()
    for item in items:
        r = item.record
        if item.kind == "call" and isinstance(r, Call):
            batch.calls.append(r)
            if region is not None:
                batch.announce.append(call_ended_row(r, region))
        elif item.kind == "open" and isinstance(r, Call):
            batch.opens.append(r)
        elif isinstance(r, Pause):
            batch.pauses.append((item.server, r))
        elif isinstance(r, AgentSession):
            batch.sessions.append((item.server, r))
    return batch


def private_dir(directory: Path) -> None:
    """Creates a directory for callers' data readable by the service's user only (0700)."""
    if not directory.is_dir():
        directory.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask; make sure
        return
    info = directory.stat()
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        # Ours, but readable by others (an older version made it 0755): narrow it.
        os.chmod(directory, 0o700)
        log.warning("spool directory narrowed to 0700", path=str(directory))


def open_private(path: Path, mode: str = "ab") -> IO[bytes]:
    """Opens a file of callers' data (spill, rejects) as 0600, also when it already existed."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file an older version left 0644
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def _dumps(obj: Any) -> bytes:
    """One JSON line."""
    return (json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


class CallWriter:
    """Writes call records to PostgreSQL in the background without the caller ever waiting.

    Submits go to a bounded in-memory buffer keyed by record identity (a later submit of the
    same key replaces the earlier one). A task flushes it every ``db_flush_interval`` seconds or
    as soon as ``db_batch_size`` records are queued, one transaction per batch. When the
    database fails the batch is kept and retried with backoff; when the buffer is full, new
    records go to a JSON-lines spill file that is written to the database, in order, once it is
    reachable again (also by the next process if this one stops first). The first failed
    flush moves what is in memory to the spill file at once, so a crash while the database
    is away loses nothing. With ``call_ended_region`` set, each finished call's call.ended
    webhook is queued in the transaction that writes its row; a call whose event cannot be
    encoded is written without it, and the event is set aside (``rejected_events``).
    Spill and reject files are 0600 in a 0700 directory: they hold callers' data.
    """

    def __init__(
        self,
        pool: Any,
        settings: Settings,
        *,
        spill_dir: str | os.PathLike[str] | None = None,
        name: str = "calls",
        server: str | None = None,
        retry_initial: float = 0.2,
        retry_max: float = 10.0,
        write_timeout: float = 30.0,
        call_ended_region: str | None = None,
    ) -> None:
        self._pool = pool
        self._batch_size = max(1, settings.db_batch_size)
        self._interval = max(0.001, settings.db_flush_interval)
        self._limit = max(1, settings.db_buffer_limit)
        # Pause and AgentSession carry no server name; the first configured one is the default.
        self._server = server or settings.asterisk[0].name
        directory = Path(spill_dir) if spill_dir else Path(tempfile.gettempdir()) / "callcenter"
        self.spill_path = directory / f"{name}.spill.jsonl"
        self.rejected_path = directory / f"{name}.rejected.jsonl"
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._write_timeout = write_timeout
        self._region = call_ended_region

        self._buffer: dict[tuple[Any, ...], _Item] = {}
        self._inflight: list[_Item] | None = None
        self._inflight_spill_end: int | None = None  # set when the in-flight batch came from disk
        self._inflight_spill_lines = 0
        self._spill_fh: IO[bytes] | None = None
        self._spill_offset = 0  # bytes of the spill file already in the database
        self._spill_lines = 0  # lines of the spill file not yet in the database
        self._spilling = False
        self._last_failed = False
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._idle = asyncio.Event()
        self._stopping = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None

        self.flushed_calls = 0
        self.flushed_opens = 0
        self.flushed_pauses = 0
        self.flushed_sessions = 0
        self.failed_flushes = 0
        self.spilled = 0
        self.rejected = 0
        self.rejected_events = 0  # call.ended events set aside (their call row was written)

        if self.spill_path.exists() and self.spill_path.stat().st_size > 0:
            # Left by a previous process that stopped while the database was away.
            with self.spill_path.open("rb") as fh:
                self._spill_lines = sum(1 for _ in fh)
            self._spilling = True
            log.warning("db spill file found", path=str(self.spill_path), lines=self._spill_lines)

    # ---- state -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records submitted but not yet in the database (memory, in flight and on disk)."""
        inflight = len(self._inflight or ()) if self._inflight_spill_end is None else 0
        return len(self._buffer) + inflight + self._spill_lines

    @property
    def failing(self) -> bool:
        """Whether the last flush to the database failed (it is unreachable or refusing)."""
        return self._last_failed

    @property
    def spilling(self) -> bool:
        """Whether records are waiting in the spill file (the buffer overflowed)."""
        return self._spilling

    @property
    def degraded(self) -> bool:
        """Whether the last flush failed or records are waiting on disk."""
        return self._last_failed or self._spilling

    # ---- the event path (synchronous, never waits for the database) ---------------------

    def submit_call(self, call: Call) -> None:
        """Queues the final record of a finished call."""
        self._submit(_Item("call", call.server, call))

    def submit_open(self, call: Call) -> None:
        """Queues a snapshot of a call in progress (written as of the flush)."""
        self._submit(_Item("open", call.server, call))

    def submit_pause(self, pause: Pause, server: str | None = None) -> None:
        """Queues an agent pause (started or ended)."""
        self._submit(_Item("pause", self._server_of(pause, server), pause))

    def submit_session(self, session: AgentSession, server: str | None = None) -> None:
        """Queues an agent's queue session (started or ended)."""
        self._submit(_Item("session", self._server_of(session, server), session))

    def _server_of(self, record: Record, server: str | None) -> str:
        """The server a pause or session belongs to (the record's own, once the model has it)."""
        return server or getattr(record, "server", None) or self._server

    def _submit(self, item: _Item) -> None:
        """Buffers an item, or spills it once the buffer is full."""
        if self._closed:
            raise RuntimeError("CallWriter is closed")
        self._ensure_started()
        self._idle.clear()
        # While anything waits on disk, newer records go there too: writing them first would
        # let an older spilled version overwrite them later.
        if self._spilling or (item.key not in self._buffer and len(self._buffer) >= self._limit):
            if self._spill(item):
                return
        _put(self._buffer, item)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    def _spill(self, item: _Item) -> bool:
        """Appends an item to the spill file; False if the disk refused it."""
        try:
            line = _dumps(item.to_json())
        except (TypeError, ValueError) as exc:
            self._reject(item, exc)
            return True
        try:
            if self._spill_fh is None:
                self._spill_fh = open_private(self.spill_path)
            self._spill_fh.write(line)
            # Flushed per line so the reader task (and a crash) sees whole records.
            self._spill_fh.flush()
        except OSError as exc:
            # Keeping it in memory beyond the limit beats losing it.
            log.error("db spill write failed", path=str(self.spill_path), error=repr(exc))
            return False
        if not self._spilling:
            log.warning("db buffer full, spilling to disk", path=str(self.spill_path))
            self._spilling = True
        self._spill_lines += 1
        self.spilled += 1
        return True

    def _reject(self, item: _Item, exc: BaseException, *, event_only: bool = False) -> None:
        """Sets aside a record the database refuses, so it never blocks the others.

        With ``event_only`` the call row was written and only its call.ended is set aside.
        """
        r = item.record
        ident = r.linkedid if isinstance(r, Call) else r.interface
        if event_only:
            self.rejected_events += 1
            log.error("call.ended rejected", server=item.server, id=ident, error=repr(exc))
        else:
            self.rejected += 1
            log.error(
                "db record rejected", kind=item.kind, server=item.server, id=ident, error=repr(exc)
            )
        try:
            line = {**item.to_json(), "error": repr(exc)}
            if event_only:
                line["kind"] = "call.ended"
            try:
                data = _dumps(line)
            except ValueError:  # a lone surrogate: ASCII escapes keep the record readable
                data = (json.dumps(line, allow_nan=True) + "\n").encode("ascii")
        except (TypeError, ValueError):
            data = _dumps(
                {"kind": item.kind, "server": item.server, "repr": repr(r), "error": repr(exc)}
            )
        try:
            with open_private(self.rejected_path) as fh:
                fh.write(data)
        except OSError as err:
            log.error("db rejected-record write failed", error=repr(err))

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Starts the flush task (done automatically by the first submit inside a loop)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="callcenter-db-writer"
            )

    def _ensure_started(self) -> None:
        """Starts the flush task if an event loop is running."""
        if self._task is None:
            with contextlib.suppress(RuntimeError):
                self.start()

    async def __aenter__(self) -> CallWriter:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def request_flush(self) -> None:
        """Asks the task to write what is buffered now instead of at the next interval."""
        self.start()
        self._wake.set()

    async def flush(self) -> None:
        """Waits until everything submitted so far is in the database (bound it with wait_for)."""
        if self._closed:
            return
        self.start()
        while self.pending:
            self._idle.clear()
            self._wake.set()
            await self._idle.wait()

    async def close(self, grace: float = 10.0) -> None:
        """Flushes everything; what the database cannot take within ``grace`` s goes to disk."""
        if self._closed:
            return
        self.start()
        assert self._task is not None
        self._stopping = True
        self._wake.set()
        self._kick.set()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._task.cancel()
            await asyncio.wait([self._task])  # our own cancellation still propagates
        except Exception as exc:  # the task died of a bug: still keep the records
            log.error("db writer task failed", error=repr(exc))
        finally:
            self._closed = True
            if self.pending:
                try:
                    self._save_leftovers()
                except OSError as exc:
                    log.error("db writer lost records", count=self.pending, error=repr(exc))
            if self._spill_fh is not None:
                self._spill_fh.close()
                self._spill_fh = None

    def _save_leftovers(self, event: str = "db writer closed with records on disk") -> int:
        """Rewrites the spill file as in-flight + buffered + unread records, oldest first."""
        head: list[_Item] = []
        if self._inflight and self._inflight_spill_end is None:
            head.extend(self._inflight)
        head.extend(self._buffer.values())
        if self._spill_fh is not None:
            self._spill_fh.close()
            self._spill_fh = None
        tmp = self.spill_path.with_suffix(".tmp")
        saved = 0
        with open_private(tmp, "wb") as out:
            for item in head:
                try:
                    out.write(_dumps(item.to_json()))
                    saved += 1
                except (TypeError, ValueError) as exc:
                    self._reject(item, exc)
            if self._spilling and self.spill_path.exists():
                with self.spill_path.open("rb") as old:
                    old.seek(self._spill_offset)
                    for line in old:
                        out.write(line)
                        saved += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.spill_path)
        log.warning(event, path=str(self.spill_path), count=saved)
        return saved

    # ---- the flush task ------------------------------------------------------------------

    def _has_work(self) -> bool:
        """Whether anything waits to be written."""
        return bool(self._inflight) or bool(self._buffer) or self._spilling

    async def _run(self) -> None:
        """Flushes on a timer or when woken, retrying failed batches with backoff."""
        delay = self._retry_initial
        while True:
            if not self._stopping:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that races the wake-up, and close() would then wait for this task forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            self._wake.clear()
            while self._has_work():
                try:
                    batch = self._next_batch()
                except OSError as exc:  # the spill file became unreadable: retry, keep it
                    log.error("db spill read failed", path=str(self.spill_path), error=repr(exc))
                    ok = False
                else:
                    if batch is None:
                        continue
                    ok = await self._flush(batch)
                if ok:
                    delay = self._retry_initial
                    continue
                # close() cuts one wait short so shutdown retries without the full delay.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._kick.wait()
                self._kick.clear()
                delay = min(delay * 2, self._retry_max)
            self._idle.set()
            if self._stopping:
                return

    def _next_batch(self) -> list[_Item] | None:
        """The batch to write next: a failed one again, then memory, then the spill file."""
        if self._inflight:
            return self._inflight
        if self._buffer:
            keys = list(itertools.islice(self._buffer, self._batch_size))
            self._inflight = [self._buffer.pop(k) for k in keys]
            self._inflight_spill_end = None
            return self._inflight
        items, end, lines = self._read_spill()
        if lines == 0:
            self._finish_spill()
            return None
        if not items:  # only unreadable lines: skip past them
            self._spill_offset = end
            self._spill_lines = max(0, self._spill_lines - lines)
            return None
        self._inflight = items
        self._inflight_spill_end = end
        self._inflight_spill_lines = lines
        return items

    def _read_spill(self) -> tuple[list[_Item], int, int]:
        """Reads up to a batch of spilled lines after the committed offset."""
        chunk: dict[tuple[Any, ...], _Item] = {}
        lines = 0
        try:
            with self.spill_path.open("rb") as fh:
                fh.seek(self._spill_offset)
                end = self._spill_offset
                while lines < self._batch_size:
                    raw = fh.readline()
                    if not raw:
                        break
                    end += len(raw)
                    lines += 1
                    try:
                        _put(chunk, _Item.from_json(json.loads(raw)))
                    except (ValueError, TypeError, KeyError) as exc:
                        # A torn last line after a crash, or a hand-edited file.
                        log.error("db spill line unreadable", error=repr(exc))
        except FileNotFoundError:
            return [], self._spill_offset, 0
        return list(chunk.values()), end, lines

    def _finish_spill(self) -> None:
        """Deletes the spill file once everything in it is in the database."""
        if self._spill_fh is not None:
            self._spill_fh.close()
            self._spill_fh = None
        with contextlib.suppress(FileNotFoundError):
            self.spill_path.unlink()
        self._spill_offset = 0
        self._spill_lines = 0
        self._spilling = False
        log.info("db spill drained", path=str(self.spill_path))

    async def _flush(self, items: list[_Item]) -> bool:
        """Writes one batch; False (batch kept) if the database is unavailable."""
        try:
            try:
                await asyncio.wait_for(
                    save_batch(self._pool, _to_batch(items, self._region), self._write_timeout),
                    self._write_timeout,
                )
                self._count(items)
            except DATA_ERRORS as exc:
                log.warning("db batch refused, writing records one by one", error=repr(exc))
                await self._isolate(items)
        except Exception as exc:
            self.failed_flushes += 1
            if not self._last_failed:
                log.error("db flush failed, will retry", error=repr(exc), pending=self.pending)
            else:
                log.warning("db flush failed again", error=repr(exc), pending=self.pending)
            self._last_failed = True
            self._spill_memory()
            return False
        self._inflight = None
        if self._inflight_spill_end is not None:
            self._spill_offset = self._inflight_spill_end
            self._spill_lines = max(0, self._spill_lines - self._inflight_spill_lines)
            self._inflight_spill_end = None
        if self._last_failed:
            log.info("db writes recovered", failed_flushes=self.failed_flushes)
            self._last_failed = False
        return True

    async def _isolate(self, items: list[_Item]) -> None:
        """Writes records one at a time, rejecting those the database refuses."""
        # Items leave the in-flight list as they are settled, so a connection failure midway
        # retries only the rest.
        while items:
            item = items[0]
            try:
                await self._save_one(item, self._region)
            except DATA_ERRORS as exc:
                if item.kind != "call" or self._region is None:
                    self._reject(item, exc)
                else:
                    # The call row alone, then: a bad event must not cost the call log.
                    try:
                        await self._save_one(item, None)
                    except DATA_ERRORS:
                        self._reject(item, exc)
                    else:
                        self._reject(item, exc, event_only=True)
            items.pop(0)

    async def _save_one(self, item: _Item, region: str | None) -> None:
        """Writes one record in its own transaction."""
        await asyncio.wait_for(
            save_batch(self._pool, _to_batch([item], region), self._write_timeout),
            self._write_timeout,
        )
        self._count([item])

    def _spill_memory(self) -> None:
        """Moves the failed batch and the buffer to the spill file, ahead of its unread lines.

        Called on every failed flush (a no-op once memory is empty), so a crash while the
        database is away loses nothing; the flush task then retries from the file. Memory
        holds older versions than the file, so it goes first (as on close).
        """
        if self._inflight_spill_end is not None or not (self._inflight or self._buffer):
            return
        try:
            saved = self._save_leftovers("db unavailable, records on disk")
        except OSError as exc:  # keep them in memory, retried as before
            log.error("db spill write failed", path=str(self.spill_path), error=repr(exc))
            return
        self._inflight = None
        self._buffer.clear()
        self._spill_offset = 0
        self._spill_lines = saved
        self._spilling = True

    def _count(self, items: list[_Item]) -> None:
        """Updates the flushed-record counters."""
        for item in items:
            if item.kind == "call":
                self.flushed_calls += 1
            elif item.kind == "open":
                self.flushed_opens += 1
            elif item.kind == "pause":
                self.flushed_pauses += 1
            else:
                self.flushed_sessions += 1
