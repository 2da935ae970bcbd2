"""Fixtures of the live-PBX suite: one real Asterisk and one service for the whole session.

The suite needs an Asterisk 22 binary named by the ``ASTERISK`` setting (environment). Without
it the suite is skipped with one clear line at the end of the run — except under ``CI=true``,
where a missing Asterisk fails every live test (as does an ``ASTERISK`` that is not executable).
Fixtures (all session-scoped):

* ``asterisk_binary`` — the binary (or the skip/failure above).
* ``live_pbx`` — ``pbx.Pbx``: ``asterisk_conf/`` rendered and relocated, prompts installed,
  Asterisk started (``live_pbx.startup_log`` is its console right after booting).
* ``live_service`` — ``LiveService``: the service (PostgreSQL, AMI through a cuttable
  ``TcpProxy``, FastAGI, HTTP) started against ``live_pbx``, with a pool and base URL.
* ``live_ami`` — an ``AmiDriver`` logged in as the all-powerful ``harness`` user.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.web.server import default_features, make_app, serve
from tests.live.ami import AmiDriver
from tests.live.pbx import (
    AMI_SECRET,
    HARNESS_SECRET,
    HARNESS_USER,
    Pbx,
    Ports,
    TcpProxy,
    find_asterisk,
    install_prompts,
    render_conf,
)

HOW_TO_RUN = (
    "live-PBX suite (tests/live) NOT RUN: no Asterisk. Run it with "
    "ASTERISK=/path/to/asterisk make test (install one with "
    "`bash ../shared/asterisk/install.sh DIR`, then ASTERISK=DIR/asterisk/bin/asterisk)."
)
_skipped: list[str] = []


def _asterisk_problem() -> str | None:
    """Why the live suite cannot run here, or None."""
    if os.environ.get("ASTERISK", "").strip() == "":
        return HOW_TO_RUN
    if find_asterisk() is None:
        return f"ASTERISK={os.environ['ASTERISK']} is not an executable file"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips the live tests (outside CI) when there is no Asterisk to run them against."""
    here = Path(__file__).parent
    live = [item for item in items if here in Path(str(item.fspath)).parents]
    # Skipped only when no Asterisk is named at all, and never in CI; a wrong ASTERISK fails.
    if os.environ.get("ASTERISK", "").strip() or not live or os.environ.get("CI") == "true":
        return
    _skipped.append(HOW_TO_RUN)
    for item in live:
        item.add_marker(pytest.mark.skip(reason="no Asterisk (set ASTERISK)"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says once, at the end, that the live suite did not run and how to run it."""
    if _skipped:
        terminalreporter.write_line(_skipped[0], yellow=True, bold=True)


@pytest.fixture(scope="session")
def asterisk_binary() -> Path:
    """The Asterisk binary of the ``ASTERISK`` setting; a failure under CI=true if missing."""
    problem = _asterisk_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)  # CI=true, or a wrong ASTERISK (else skipped)
    binary = find_asterisk()
    assert binary is not None
    return binary


class LivePbx(Pbx):
    """A started PBX with what the suite learned while starting it."""

    startup_log: str = ""
    prompts: str = ""


@pytest.fixture(scope="session")
def live_pbx(
    asterisk_binary: Path, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivePbx]:
    """``asterisk_conf/`` rendered, relocated and running as a child of the test session.

    Asterisk writes its queue_log and CEL into the session's database, as in the deployment.
    """
    work = tmp_path_factory.mktemp("pbx")
    layout = render_conf(work, Ports.free(), asterisk_binary, db_url)
    pbx = LivePbx(layout)
    pbx.prompts = install_prompts(layout.sounds)
    try:
        pbx.start()
        pbx.startup_log = pbx.console_text()
        yield pbx
    finally:
        pbx.stop()


@dataclass
class LiveService:
    """The service running against the live PBX."""

    service: Service
    pool: asyncpg.Pool
    base_url: str
    ami_proxy: TcpProxy


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live_service(
    live_pbx: LivePbx, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveService]:
    """The service (real PostgreSQL, AMI via a proxy, FastAGI, HTTP) on the live PBX."""
    ports = live_pbx.layout.ports
    proxy = await TcpProxy("127.0.0.1", ports.ami).start()
    settings = Settings(
        database_url=db_url,
        asterisk=(
            AsteriskServer(
                name="pbx1",
                host="127.0.0.1",
                port=proxy.port,
                username="callcenter",
                secret=AMI_SECRET,
                ping_interval=2.0,
                action_timeout=5.0,
            ),
        ),
        fastagi_host="127.0.0.1",
        fastagi_port=ports.fastagi,
        http_host="127.0.0.1",
        http_port=ports.http,
        db_flush_interval=0.05,
        spool_dir=str(tmp_path_factory.mktemp("spool")),
        wallboard_requires_token=False,
        reconcile="pgsql",  # after a cut link: from the tables Asterisk writes (above)
    )
    service = Service(settings)
    await service.start()
    runner = await serve(make_app(service, default_features()), "127.0.0.1", ports.http)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    try:
        yield LiveService(service, pool, f"http://127.0.0.1:{ports.http}", proxy)
    finally:
        await pool.close()
        await runner.cleanup()
        await service.stop()
        await proxy.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live_ami(live_pbx: LivePbx) -> AsyncIterator[AmiDriver]:
    """The test's own AMI session (the ``harness`` user: every right)."""
    driver = AmiDriver("127.0.0.1", live_pbx.layout.ports.ami, HARNESS_USER, HARNESS_SECRET)
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()
