"""FastAGI trusts nobody by default: peers, the URL secret, the call's existence (issue 15)."""

from __future__ import annotations

import asyncpg
import pytest

from callcenter.app import Service
from callcenter.ivr.client import agi_environment, run_agi_session
from tests.integration.api_support import Trace, event, running

LINKEDID = "1795884362.0"  # the answered trace: Zeynep Kaya answers Ayşe Yılmaz
SURVEY = ("genel", "Ahmet Koç")


async def survey(
    service: Service, linkedid: str, route: str = "survey", source: str = "127.0.0.1"
) -> list[str]:
    """A survey session (score 1) as a client bound to ``source`` plays it; [] when refused."""
    assert service.ivr is not None
    env = agi_environment(route, [linkedid, *SURVEY])
    try:
        return await run_agi_session(
            "127.0.0.1", service.ivr.server.port, env, ["1", "2"], local_addr=(source, 0)
        )
    except (ConnectionError, OSError):
        return []


async def stored(pool: asyncpg.Pool) -> tuple[int, int]:
    """Surveys stored and survey.completed webhooks written."""
    surveys = await pool.fetchval("SELECT count(*) FROM ivr_surveys")
    hooks = await pool.fetchval(
        "SELECT count(*) FROM webhook_outbox WHERE event_type = 'survey.completed'"
    )
    return int(surveys), int(hooks)


async def test_a_client_that_is_not_an_allowed_peer_is_closed_unread(
    db_url: str, pool: asyncpg.Pool
) -> None:
    async with running(db_url, fastagi_allowed_peers=("127.0.0.2",)) as (service, _):
        Trace(service, "answered").until(event("AgentConnect"))
        assert await survey(service, LINKEDID, source="127.0.0.3") == []
        assert service.ivr is not None
        assert service.ivr.stats.broken["peer_refused"] == 1
        assert await stored(pool) == (0, 0)
        # The same call from the PBX's address is served.
        assert await survey(service, LINKEDID, source="127.0.0.2") != []
        assert await stored(pool) == (1, 1)


async def test_a_local_client_cannot_store_a_survey_for_a_call_that_never_existed(
    db_url: str, pool: asyncpg.Pool
) -> None:
    async with running(db_url) as (service, _):
        # Default peers: loopback and the PBX hosts, so this client is let in: but no PBX
        # this service watches has this call.
        assert await survey(service, "1799999999.42") == []
        assert service.ivr is not None
        assert service.ivr.stats.broken["unknown_call"] == 1
        assert await stored(pool) == (0, 0)
        Trace(service, "answered").until(event("AgentConnect"))
        commands = await survey(service, LINKEDID)
        assert any(c.startswith("STREAM FILE") for c in commands)
        assert await stored(pool) == (1, 1)
        row = await pool.fetchrow("SELECT score, agent FROM ivr_surveys")
        assert (row["score"], row["agent"]) == (1, "Ahmet Koç")


@pytest.mark.parametrize("given", ["", "?secret=wrong"])
async def test_with_a_secret_the_agi_url_must_carry_it(
    db_url: str, pool: asyncpg.Pool, given: str
) -> None:
    async with running(db_url, fastagi_secret="s3cr3t-agi", fastagi_verify_call=False) as (
        service,
        _,
    ):
        assert await survey(service, LINKEDID, route=f"survey{given}") == []
        assert service.ivr is not None and service.ivr.stats.broken["bad_secret"] == 1
        assert await stored(pool) == (0, 0)
        assert await survey(service, LINKEDID, route="survey?secret=s3cr3t-agi") != []
        assert await stored(pool) == (1, 1)


def test_while_an_ami_link_is_down_unknown_calls_are_served() -> None:
    """The service cannot see new calls while its AMI link is down: the IVR must not refuse them."""
    from types import SimpleNamespace

    from callcenter.config import Settings
    from callcenter.ivr.service import _call_check

    link = SimpleNamespace(connected=True)
    service = SimpleNamespace(
        settings=Settings(), tracker=SimpleNamespace(calls={}), clients={"pbx1": link}
    )
    check = _call_check(service)
    assert check is not None
    call = SimpleNamespace(linkedid="1799999999.42", uniqueid="1799999999.42")
    assert check(call) is False
    link.connected = False
    assert check(call) is True
