"""The agent's controls over real AMI against the simulator: each API call becomes the AMI
action Asterisk expects, the simulated app_queue changes, and the change comes back through
the tracker to the desk, the wallboard and /metrics. Log-in: sessions and one-time links."""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest

from callcenter.web.auth import create_login_link, create_token, revoke_token
from tests.integration.api_support import call_json
from tests.integration.desk_support import (
    AGENT,
    IFACE,
    Desk,
    desk_running,
    seed_abandoned,
    wait_until,
)


async def agent_token(pool: Any) -> str:
    token, _ = await create_token(pool, role="agent", name="z", agent=AGENT, interface=IFACE)
    return token


async def desk_of(desk: Desk, token: str) -> dict[str, Any]:
    status, body = await call_json(desk.server, "GET", "/api/agent/desk", token)
    assert status == 200, body
    return dict(body)


async def metrics(desk: Desk) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(desk.server.make_url("/metrics")) as resp:
            return await resp.text()


async def test_pause_with_reason_unpause_and_queue_membership(pool: Any, db_url: str) -> None:
    async with desk_running(db_url) as desk:
        token = await agent_token(pool)
        state = await desk_of(desk, token)
        assert state["state"] == "available" and state["interface"] == IFACE
        assert {q["queue"]: q["member"] for q in state["queues"]} == {
            "genel": True,
            "sosyal-yardim": True,
        }
        assert "mola" in {r["code"] for r in state["pause_reasons"]}

        # Pause: one QueuePause for every queue, with the reason code.
        status, body = await call_json(
            desk.server, "POST", "/api/agent/pause", token, {"reason": "yemek"}
        )
        assert status == 202, body
        assert desk.received("QueuePause")[-1] == {
            "Action": "QueuePause",
            "Interface": IFACE,
            "Paused": "true",
            "Reason": "yemek",
            "ActionID": desk.received("QueuePause")[-1]["ActionID"],
        }
        assert all(m.paused and m.reason == "yemek" for m in desk.sim_members().values())
        # Back through the tracker: the desk, the wallboard's board, Prometheus.
        await wait_until(
            lambda: all(m.paused for k, m in desk.service.tracker.members.items() if k[2] == IFACE)
        )
        state = await desk_of(desk, token)
        assert (state["state"], state["reason"]) == ("paused", "yemek")
        from callcenter.web.wallboard import WALLBOARD

        board = desk.server.app[WALLBOARD].board()
        row = next(a for a in board["agents"] if a["name"] == AGENT)
        assert (row["state"], row["reason"]) == ("paused", "yemek")
        text = await metrics(desk)
        assert 'callcenter_agents_paused{queue="genel",reason="yemek"} 1.0' in text

        # A reason that is not configured is refused before anything reaches Asterisk.
        sent = len(desk.received("QueuePause"))
        status, body = await call_json(
            desk.server, "POST", "/api/agent/pause", token, {"reason": "uyku"}
        )
        assert status == 400 and body["error"]["code"] == "bad_reason"
        assert len(desk.received("QueuePause")) == sent

        # Unpause.
        status, _ = await call_json(desk.server, "POST", "/api/agent/unpause", token)
        assert status == 202
        assert desk.received("QueuePause")[-1]["Paused"] == "false"
        assert not any(m.paused for m in desk.sim_members().values())
        await wait_until(
            lambda: (
                not any(m.paused for k, m in desk.service.tracker.members.items() if k[2] == IFACE)
            )
        )
        assert 'reason="yemek"' not in await metrics(desk)

        # Leave and join a queue: QueueRemove, QueueAdd with the member name.
        status, _ = await call_json(
            desk.server, "POST", "/api/agent/queues/sosyal-yardim/leave", token
        )
        assert status == 202
        assert desk.received("QueueRemove")[-1]["Queue"] == "sosyal-yardim"
        assert set(desk.sim_members()) == {"genel"}
        await wait_until(lambda: (desk.service.settings and True) and len(
            [k for k in desk.service.tracker.members if k[2] == IFACE]) == 1)  # fmt: skip
        state = await desk_of(desk, token)
        assert {q["queue"]: q["member"] for q in state["queues"]}["sosyal-yardim"] is False
        status, body = await call_json(
            desk.server, "POST", "/api/agent/queues/sosyal-yardim/leave", token
        )
        assert status == 409 and "Not there" in body["error"]["message"]  # Asterisk's refusal
        status, _ = await call_json(
            desk.server, "POST", "/api/agent/queues/sosyal-yardim/join", token
        )
        assert status == 202
        add = desk.received("QueueAdd")[-1]
        assert (add["Queue"], add["Interface"], add["MemberName"]) == (
            "sosyal-yardim",
            IFACE,
            AGENT,
        )
        assert set(desk.sim_members()) == {"genel", "sosyal-yardim"}


async def test_supervisor_names_the_agent_and_an_agent_cannot(pool: Any, db_url: str) -> None:
    async with desk_running(db_url) as desk:
        supervisor, _ = await create_token(pool, role="supervisor", name="s")
        status, body = await call_json(desk.server, "POST", "/api/agent/unpause", supervisor)
        assert status == 400 and "?agent=" in body["error"]["message"]
        status, _ = await call_json(
            desk.server, "POST", f"/api/agent/pause?interface={IFACE}", supervisor,
            {"reason": "toplanti"},
        )  # fmt: skip
        assert status == 202
        assert all(m.reason == "toplanti" for m in desk.sim_members().values())
        # An agent token's ?interface= is ignored: it always acts on its own seat.
        other, _ = await create_token(
            pool, role="agent", name="o", agent="Ali Kaya", interface="Local/1002@agents/n"
        )
        status, _ = await call_json(
            desk.server, "POST", f"/api/agent/unpause?interface={IFACE}", other
        )
        assert status == 409  # Asterisk: Local/1002 is in no queue
        assert all(m.paused for m in desk.sim_members().values())


async def test_wrapup_pause_after_a_call_and_ending_it(pool: Any, db_url: str) -> None:
    async with desk_running(db_url, agent_wrapup_seconds=120.0) as desk:
        token = await agent_token(pool)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                desk.server.make_url("/ws/agent"), headers={"Authorization": f"Bearer {token}"}
            )
            assert (await ws.receive_json())["type"] == "hello"
            desk.ring(talk=5.0)
            for _ in range(20):  # 3 s of ringing, 5 s of talk, then the caller hangs up
                desk.advance(1.0)
            await wait_until(lambda: any(m.reason == "wrapup" for m in desk.sim_members().values()))
            pause = desk.received("QueuePause")[-1]
            assert (pause["Interface"], pause["Reason"]) == (IFACE, "wrapup")
            await wait_until(lambda: _state(desk) == "wrapup")
            state = await desk_of(desk, token)
            assert state["state"] == "wrapup" and state["wrapup"]["active"] is True
            assert 0 < state["wrapup"]["left_s"] <= 120
            # The desk was told, live.
            pushed = await _next_of(ws, "desk", lambda m: m["state"] == "wrapup")
            assert pushed["wrapup"]["active"] is True
            # The wallboard shows wrap-up, not a break.
            from callcenter.web.wallboard import WALLBOARD

            board = desk.server.app[WALLBOARD].board()
            assert next(a for a in board["agents"] if a["name"] == AGENT)["state"] == "wrapup"

            status, _ = await call_json(desk.server, "POST", "/api/agent/wrapup/end", token)
            assert status == 202
            assert desk.received("QueuePause")[-1]["Paused"] == "false"
            assert not any(m.paused for m in desk.sim_members().values())
            await wait_until(lambda: _state(desk) == "available")
            status, body = await call_json(desk.server, "POST", "/api/agent/wrapup/end", token)
            assert status == 409 and body["error"]["code"] == "not_in_wrapup"
            await ws.close()

        # Nobody at the desk: no wrap-up pause from the service (Asterisk's wrapuptime only).
        sent = len(desk.received("QueuePause"))
        desk.ring(number="05559876543", talk=5.0)
        for _ in range(20):
            desk.advance(1.0)
        await wait_until(lambda: desk.service.tracker.counters.get("calls_ended", 1))
        assert len(desk.received("QueuePause")) == sent


def _state(desk: Desk) -> str:
    from callcenter.calls import agent_state

    states = {
        agent_state(m, math.inf, 0.0)
        for k, m in desk.service.tracker.members.items()
        if k[2] == IFACE
    }
    return states.pop() if len(states) == 1 else ",".join(sorted(states))


async def _next_of(ws: Any, kind: str, accept: Any) -> dict[str, Any]:
    while True:
        message = await ws.receive_json(timeout=10)
        if message.get("type") == kind and accept(message):
            return dict(message)


async def test_callbacks_list_and_call_back(pool: Any, db_url: str) -> None:
    async with desk_running(db_url) as desk:
        token = await agent_token(pool)
        await seed_abandoned(pool, "cb.1", "05321112233", "Hasan Demir", 0.5)
        await seed_abandoned(pool, "cb.2", "05321112233", "Hasan Demir", 0.3)  # twice
        await seed_abandoned(pool, "cb.3", "05447778899", "Emine Koç", 0.4)
        await seed_abandoned(pool, "cb.4", "05447778899", "Emine Koç", 0.2, outcome="answered")
        await seed_abandoned(pool, "cb.5", "05051234567", "Ali Çelik", 0.1, outcome="timeout")
        await pool.execute(
            """
            INSERT INTO tickets (reference, category, channel, caller_number)
            VALUES ('2026-000777', 'sosyal-yardim', 'phone', '+905321112233')
            """
        )
        status, body = await call_json(desk.server, "GET", "/api/agent/callbacks", token)
        assert status == 200
        callers = body["callers"]
        # Emine was answered since; Hasan's latest abandoned call stands for both of his.
        assert [(c["linkedid"], c["missed_calls"]) for c in callers] == [("cb.5", 1), ("cb.2", 2)]

        status, body = await call_json(
            desk.server, "POST", "/api/agent/callbacks/cb.2/call?server=pbx1", token
        )
        assert status == 201, body
        assert body["ticket"] == "2026-000777" and body["result"] == "originated"
        # On the simulator's side: an Originate to Zeynep's phone, then the citizen.
        sent = desk.sim.pbx.agent_originates[-1]
        assert sent["Channel"] == IFACE
        assert (sent["Context"], sent["Exten"], sent["Priority"]) == (
            "agent-phones",
            "05321112233",
            "1",
        )
        assert "CC_CALLBACK_OF=cb.2" in sent["Variable"]
        assert "CC_TICKET=2026-000777" in sent["Variable"]
        row = await pool.fetchrow("SELECT * FROM agent_callbacks WHERE linkedid = 'cb.2'")
        assert (row["agent"], row["ticket_reference"], row["result"]) == (
            AGENT,
            "2026-000777",
            "originated",
        )
        # Called back: still listed (not proof they were reached), last, with the call-back.
        status, body = await call_json(desk.server, "GET", "/api/agent/callbacks", token)
        assert [c["linkedid"] for c in body["callers"]] == ["cb.5", "cb.2"]
        assert body["callers"][1]["callbacks"][0]["agent"] == AGENT

        status, body = await call_json(desk.server, "POST", "/api/agent/callbacks/cb.4/call", token)
        assert status == 404  # an answered call is nobody to call back

        # KVKK: the call-backs (a number, a name) go with the retention period.
        from datetime import UTC, datetime, timedelta

        from callcenter.retention import run_retention

        later = datetime.now(UTC) + timedelta(days=731)
        report = await run_retention(pool, days=730, mode="anonymise", now=later)
        assert report.rows["agent_callbacks.deleted"] == 1
        assert await pool.fetchval("SELECT count(*) FROM agent_callbacks") == 0


def jar_session() -> aiohttp.ClientSession:
    """A client that keeps cookies from 127.0.0.1 (aiohttp's jar refuses IP hosts by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_sessions_and_one_time_links(pool: Any, db_url: str) -> None:
    async with desk_running(db_url) as desk:
        token = await agent_token(pool)
        url = desk.server.make_url
        async with jar_session() as http:
            async with http.post(url("/agent/session"), json={"token": "cct_wrong"}) as resp:
                assert resp.status == 401
                assert "unknown or revoked" in (await resp.json())["error"]["message"]
            async with http.post(url("/agent/session"), json={"token": token}) as resp:
                assert resp.status == 201
                cookie = resp.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            async with http.get(url("/api/me")) as resp:  # the cookie alone
                assert resp.status == 200 and (await resp.json())["agent"] == AGENT
            # A state-changing request from another site's page is refused.
            headers = {"Origin": "http://evil.example"}
            async with http.post(url("/api/agent/unpause"), headers=headers) as resp:
                assert resp.status == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url("/ws/agent"), headers=headers)
            assert refused.value.status == 403
            same = {"Origin": f"http://{desk.server.host}:{desk.server.port}"}
            async with http.get(url("/api/agent/desk"), headers=same) as resp:
                assert resp.status == 200
            async with http.post(url("/agent/logout")) as resp:
                assert resp.status == 200
            async with http.get(url("/api/me")) as resp:
                assert resp.status == 401

        _, principal = await create_token(
            pool, role="agent", name="l", agent=AGENT, interface=IFACE
        )
        code = await create_login_link(pool, principal.token_id, 60)
        async with jar_session() as http:
            async with http.get(url(f"/agent/login?code={code}"), allow_redirects=False) as resp:
                assert resp.status == 303 and resp.headers["Location"] == "/agent"
                assert "HttpOnly" in resp.headers["Set-Cookie"]
            async with http.get(url("/api/me")) as resp:
                assert resp.status == 200
            # The same link twice: no session, and the page says the link is used up.
            async with jar_session() as other:
                async with other.get(
                    url(f"/agent/login?code={code}"), allow_redirects=False
                ) as resp:
                    assert resp.headers["Location"] == "/agent?login=expired"
                    assert "Set-Cookie" not in resp.headers
            # Revoking the token ends its sessions.
            await revoke_token(pool, principal.token_id)
            async with http.get(url("/api/me")) as resp:
                assert resp.status == 401


async def test_openapi_lists_the_controls(db_url: str) -> None:
    async with desk_running(db_url) as desk:
        status, doc = await call_json(desk.server, "GET", "/api/openapi.json")
        assert status == 200
        for path, method in (
            ("/api/agent/desk", "get"),
            ("/api/agent/pause", "post"),
            ("/api/agent/unpause", "post"),
            ("/api/agent/queues/{queue}/join", "post"),
            ("/api/agent/queues/{queue}/leave", "post"),
            ("/api/agent/wrapup/end", "post"),
            ("/api/agent/callbacks", "get"),
            ("/api/agent/callbacks/{linkedid}/call", "post"),
        ):
            assert method in doc["paths"][path], path
        assert doc["components"]["securitySchemes"]["session"]["in"] == "cookie"


def test_cli_prints_a_one_time_link(db_url: str) -> None:
    import subprocess
    import sys

    env = {
        "DATABASE_URL": db_url,
        "PATH": "/usr/bin:/bin",
        "CALLCENTER_PUBLIC_URL": "https://cagri.sancaktepe.example/",
    }
    cmd = [sys.executable, "-m", "callcenter", "token"]
    done = subprocess.run(
        [*cmd, "create", "--role", "agent", "--name", "cli-link", "--agent", AGENT, "--interface",
         IFACE, "--link"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token, link = done.stdout.split()
    assert token.startswith("cct_")
    assert link.startswith("https://cagri.sancaktepe.example/agent/login?code=ccl_")
    assert "valid 60 minutes, once" in done.stderr
    listed = subprocess.run(
        [*cmd, "list", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    token_id = str(next(r["id"] for r in rows if r["name"] == "cli-link"))
    again = subprocess.run(
        [*cmd, "link", token_id], capture_output=True, text=True, env=env, timeout=60
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() != link and "/agent/login?code=ccl_" in again.stdout
    missing = subprocess.run(
        [*cmd, "link", "99999"], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 1 and "no active token" in missing.stderr
