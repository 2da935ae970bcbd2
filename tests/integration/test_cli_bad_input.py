"""Every bad input to a command gives one clear line on stderr and a non-zero exit, no traceback.

Each case runs the real ``python -m callcenter`` as a subprocess.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TRACE = ROOT / "tests" / "traces" / "answered" / "ami.jsonl.gz"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs one command with a clean CALLCENTER_* environment (bounded against a hang)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    return subprocess.run(
        [sys.executable, "-m", "callcenter", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, exactly one stderr line containing every needle, no traceback."""
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_replay_of_a_gz_file_that_is_not_gzip(tmp_path: Path) -> None:
    fake = tmp_path / "trace.jsonl.gz"
    fake.write_text('{"t": 0, "raw": "Event: FullyBooted\\r\\n\\r\\n"}\n')
    assert_one_line(run("replay", str(fake)), "replay:", str(fake), "gzip")


def test_replay_of_a_binary_file(tmp_path: Path) -> None:
    blob = tmp_path / "photo.jpg"
    blob.write_bytes(bytes(range(256)) * 8)
    assert_one_line(run("replay", str(blob)), "replay:", "binary")


def test_replay_of_a_gzipped_binary_file(tmp_path: Path) -> None:
    blob = tmp_path / "blob.gz"
    blob.write_bytes(gzip.compress(bytes(range(128, 256)) * 8))
    assert_one_line(run("replay", str(blob)), "replay:", "binary")


@pytest.mark.parametrize("text", ["just some notes\nand more\n", "", '["a", "list"]\n'])
def test_replay_of_a_file_that_is_not_a_trace(tmp_path: Path, text: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(text)
    done = run("replay", str(notes))
    assert_one_line(done, "replay:", str(notes))
    assert done.stdout == ""


def test_replay_of_a_real_trace_still_works() -> None:
    done = run("replay", str(TRACE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") >= 1


def test_token_list_with_a_mysql_url() -> None:
    line = assert_one_line(
        run("token", "list", DATABASE_URL="mysql://user:hunter2@db.example/cc"),
        "database_url",
        "postgresql://",
    )
    assert "hunter2" not in line  # the password is never echoed


def test_run_with_an_unknown_log_level() -> None:
    assert_one_line(run("run", CALLCENTER_LOG_LEVEL="loud"), "log_level", "loud", "debug")


async def test_report_on_an_unknown_queue_lists_the_known_ones(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO calls (server, linkedid, uniqueid, started_at, queue, outcome) "
            "VALUES ('pbx1', 'bad-input-q', 'bad-input-q', now(), 'genel', 'answered') "
            "ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()
    done = run("report", "--from", "2026-01-01", "--queue", "no-such-queue", DATABASE_URL=db_url)
    line = assert_one_line(done, "unknown queue 'no-such-queue'", "known queues:", "genel")
    assert done.returncode == 2, line
    ok = run("report", "--from", "2026-01-01", "--queue", "genel", DATABASE_URL=db_url)
    assert ok.returncode == 0, ok.stderr
