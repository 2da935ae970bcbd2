"""Under ``CI=true`` a skipped test is a failure: a missing package or server must not pass.

Loaded by ``tests/conftest.py`` (its hooks are imported there) and usable as a plugin
(``pytest -p tests.ci_skips``). Expected failures (xfail) stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

_TRUE = {"1", "true", "yes", "on"}


def in_ci(env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Whether the run is a CI run (``CI`` set to true, as GitHub Actions and others do)."""
    env = os.environ if env is None else env
    return env.get("CI", "").strip().lower() in _TRUE


def _fail(report: Any) -> None:
    """Turns a skipped report into a failed one that says why."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Fails a test that skipped (in set-up or in the test) when CI is true."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        _fail(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Fails a module that skipped itself at import (``importorskip``) when CI is true."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped and in_ci():
        _fail(report)
