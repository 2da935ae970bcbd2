"""The CI=true hook: a skip fails the run; outside CI it stays a skip; xfail is untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.ci_skips import in_ci

ROOT = Path(__file__).resolve().parent.parent.parent

SAMPLE = """
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("promtool is not installed")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
"""

SKIPPED_MODULE = """
import pytest
pytest.importorskip("no_such_module_anywhere")

def test_never_runs():
    assert True
"""


def pytest_in(tmp_path: Path, source: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    """Runs pytest with the hook as a plugin on one sample file."""
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.ci_skips",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_sample.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_fails_under_ci(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, SAMPLE, "true")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed, 1 xfailed" in done.stdout
    assert "promtool is not installed" in done.stdout  # the reason is kept


def test_a_skip_is_a_skip_outside_ci(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, SAMPLE, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in done.stdout


def test_a_module_skipped_at_import_fails_under_ci(tmp_path: Path) -> None:
    ci = pytest_in(tmp_path, SKIPPED_MODULE, "true")
    assert ci.returncode not in (0, 5), ci.stdout  # 5: "no tests ran", which would pass CI
    assert "no_such_module_anywhere" in ci.stdout
    local = pytest_in(tmp_path, SKIPPED_MODULE, "false")
    assert local.returncode == 5 and "1 skipped" in local.stdout, local.stdout


def test_ci_values() -> None:
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CI": "TRUE"})
    assert not in_ci({}) and not in_ci({"CI": "false"}) and not in_ci({"CI": ""})
