"""scripts/system-deps.sh fails when packages are missing and cannot be installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "system-deps.sh"


def fake_bin(tmp_path: Path, uid: int, apt_rc: int | None = None) -> Path:
    """A PATH with no promtool, chromium or docker-compose, an ``id`` saying ``uid``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ls = shutil.which("ls")
    assert ls is not None
    (bin_dir / "ls").symlink_to(ls)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    if apt_rc is not None:
        (bin_dir / "apt-get").write_text(f"#!/bin/sh\nexit {apt_rc}\n")
        (bin_dir / "apt-get").chmod(0o755)
    return bin_dir


def run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_packages_without_root_fail(tmp_path: Path) -> None:
    done = run(fake_bin(tmp_path, uid=1000))
    assert done.returncode == 1, done.stderr
    assert "cannot install" in done.stderr and "prometheus" in done.stderr


def test_a_failing_apt_get_fails(tmp_path: Path) -> None:
    done = run(fake_bin(tmp_path, uid=0, apt_rc=100))
    assert done.returncode == 1, done.stderr
    assert "apt-get could not install" in done.stderr


def test_a_silent_apt_get_that_installs_nothing_fails(tmp_path: Path) -> None:
    done = run(fake_bin(tmp_path, uid=0, apt_rc=0))
    assert done.returncode == 1, done.stderr
    assert "still missing" in done.stderr
