"""A fresh render of asterisk_conf/ starts cleanly: the PBX side works the first time it runs."""

from __future__ import annotations

import re

from tests.live.conftest import LivePbx
from tests.live.pbx import AMI_SECRET


def test_a_fresh_render_starts_with_zero_error_lines(live_pbx: LivePbx) -> None:
    log = live_pbx.startup_log
    assert "Asterisk Ready" in log or "fully booted" in live_pbx.cli("core waitfullybooted")
    errors = [line for line in log.splitlines() if "] ERROR[" in line]
    assert errors == []
    warnings = [line for line in log.splitlines() if "] WARNING[" in line]
    print(f"start-up log: {len(errors)} ERROR, {len(warnings)} WARNING lines")
    assert warnings == []


def test_asterisk_conf_directories_are_honoured(live_pbx: LivePbx) -> None:
    # A "[directories](!)" template would be ignored: Asterisk would look in /etc/asterisk.
    settings = live_pbx.cli("core show settings")
    etc = live_pbx.layout.etc
    assert re.search(rf"Configuration directory:\s+{re.escape(str(etc))}", settings), settings
    assert re.search(rf"Log directory:\s+{re.escape(str(live_pbx.layout.log))}", settings)
    assert "[directories]\n" in (etc / "asterisk.conf").read_text(encoding="utf-8")


def test_the_ami_secret_is_never_in_a_comment(live_pbx: LivePbx) -> None:
    manager = (live_pbx.layout.etc / "manager.conf").read_text(encoding="utf-8")
    lines = [line for line in manager.splitlines() if AMI_SECRET in line]
    assert lines == [f"secret = {AMI_SECRET}"]


def test_the_modules_the_call_center_needs_are_running(live_pbx: LivePbx) -> None:
    modules = live_pbx.cli("module show")
    for module in ("app_queue.so", "res_agi.so", "chan_pjsip.so", "cdr_custom.so"):
        assert module in modules
    # Not configured, so not loaded (they were the ERROR lines of every start).
    for module in ("app_confbridge.so", "res_parking.so", "app_agent_pool.so"):
        assert module not in modules
