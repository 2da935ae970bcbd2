"""The agent's controls as pure functions: pause reasons, the AMI actions, the desk state."""

from __future__ import annotations

import pytest

from callcenter import agentdesk
from callcenter.calls import agent_state
from callcenter.config import ConfigError, Settings
from callcenter.model import Member


def test_default_and_configured_pause_reasons() -> None:
    codes = [r.code for r in agentdesk.pause_reasons(Settings())]
    assert codes[:2] == ["mola", "yemek"] and "wrapup" not in codes
    found = agentdesk.pause_reasons(
        Settings(pause_reasons=("namaz=Namaz|Prayer", {"code": "saha", "tr": "Saha ziyareti"}))
    )
    assert [r.to_dict() for r in found] == [
        {"code": "namaz", "tr": "Namaz", "en": "Prayer"},
        {"code": "saha", "tr": "Saha ziyareti", "en": "Saha ziyareti"},
    ]


@pytest.mark.parametrize(
    "bad",
    [("mola",), ("=Mola",), ("wrapup=Sonrası",), ("a=A", "a=B"), ("a\nb=X",)],
)
def test_bad_pause_reasons_name_the_setting(bad: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="pause_reasons"):
        agentdesk.pause_reasons(Settings(pause_reasons=bad))


def test_actions_are_what_asterisk_expects() -> None:
    iface = "Local/1001@agents/n"
    assert agentdesk.pause_action(iface, True, "mola") == {
        "Action": "QueuePause", "Interface": iface, "Paused": "true", "Reason": "mola",
    }  # fmt: skip
    assert agentdesk.pause_action(iface, False, "mola") == {
        "Action": "QueuePause", "Interface": iface, "Paused": "false",
    }  # fmt: skip
    assert agentdesk.join_action("genel", iface, "Zeynep Kaya") == {
        "Action": "QueueAdd", "Queue": "genel", "Interface": iface, "MemberName": "Zeynep Kaya",
    }  # fmt: skip
    assert agentdesk.leave_action("genel", iface) == {
        "Action": "QueueRemove", "Queue": "genel", "Interface": iface,
    }  # fmt: skip
    action = agentdesk.callback_action(
        interface=iface, dial="05321234567", context="agent-phones", caller_id="",
        linkedid="1700.5", agent="Zeynep Kaya", ticket="2026-000001",
    )  # fmt: skip
    assert (action["Channel"], action["Context"], action["Exten"]) == (
        iface,
        "agent-phones",
        "05321234567",
    )
    assert action["Async"] == "true" and "CallerID" not in action
    assert action["Variable"] == [
        "CC_CALLBACK_OF=1700.5",
        "CC_CALLBACK_AGENT=Zeynep Kaya",
        "CC_TICKET=2026-000001",
    ]


def _member(queue: str, **kw: object) -> Member:
    return Member(interface="Local/1001@agents/n", agent="Zeynep Kaya", queue=queue, **kw)  # type: ignore[arg-type]


def test_desk_state_and_queues() -> None:
    assert agentdesk.desk_state([], {})["state"] == "logged_out"
    genel = _member("genel")
    paused = _member("sosyal-yardim", paused=True, paused_reason="mola")
    state = agentdesk.desk_state([genel, paused], {"genel": "available"})
    assert (state["state"], state["reason"]) == ("paused", "mola")
    busy = _member("genel", in_call=True)
    assert agentdesk.desk_state([busy], {"genel": "on_call"})["state"] == "on_call"
    rows = agentdesk.desk_queues([genel], ["depremzede", "genel"])
    assert [(r["queue"], r["member"]) for r in rows] == [("depremzede", False), ("genel", True)]


def test_the_wrapup_pause_shows_as_wrapup_not_as_a_break() -> None:
    wrap = _member("genel", paused=True, paused_reason=agentdesk.WRAPUP_REASON)
    assert agent_state(wrap, 0.0, 0.0) == "wrapup"
    assert agentdesk.desk_state([wrap], {"genel": "wrapup"})["state"] == "wrapup"
    assert agent_state(_member("genel", paused=True, paused_reason="mola"), 0.0, 0.0) == "paused"
