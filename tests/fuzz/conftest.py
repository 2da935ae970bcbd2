"""Fuzz tests run quietly, and report how many examples each property ran when asked."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.fuzz.budget import RAN


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Drops log lines below ERROR: bad input is logged by design, thousands of times here."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    try:
        yield
    finally:
        structlog.configure(**saved)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Dumps the example counters to ``CALLCENTER_FUZZ_REPORT`` (if set)."""
    target = os.environ.get("CALLCENTER_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps(dict(RAN), indent=2), encoding="utf-8")
