"""The service's AMI user on the live PBX: least privilege, and VarSet filtered at the source."""

from __future__ import annotations

import pytest

from tests.live.ami import AmiDriver
from tests.live.calls import Caller, add_local_agent, remove_local_agents
from tests.live.conftest import LivePbx, LiveService
from tests.live.pbx import AMI_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_service_user_cannot_run_commands_and_sees_only_its_variables(
    live_pbx: LivePbx, live_service: LiveService, live_ami: AmiDriver
) -> None:
    user = AmiDriver("127.0.0.1", live_pbx.layout.ports.ami, "callcenter", AMI_SECRET)
    await user.connect()
    try:
        for action, headers in (
            ("Command", {"Command": "core show version"}),
            ("GetConfig", {"Filename": "manager.conf"}),
            ("Reload", {}),
        ):
            reply = await user.action(action, **headers)
            assert reply["Response"] == "Error" and "ermission" in reply["Message"], action
        # What the service needs works.
        assert len(await user.list_action("QueueStatus", Queue="genel")) >= 1
        since = user.mark()
        await remove_local_agents(live_ami)
        await add_local_agent(live_ami, "9021", "Oya Er", ["depremzede"])
        caller = await Caller.dial(live_ami, label="filter")
        await caller.press("4")
        await caller.wait_connected(60)
        await caller.hang_up()
        await caller.wait_ended()
        await user.wait_for(lambda e: e.get("Event") == "Hangup", 10, since)
        names = {e["Variable"] for e in user.events[since:] if e.get("Event") == "VarSet"}
        assert {"CC_QUEUE", "QUEUESTATUS"} <= names
        assert all(n.startswith("CC_") or n == "QUEUESTATUS" for n in names), names
        # The harness user (no filter) saw the variables the filter dropped.
        seen = {e.get("Variable") for e in live_ami.events if e.get("Event") == "VarSet"}
        assert "AGISTATUS" in seen
    finally:
        await user.close()
        await remove_local_agents(live_ami)
