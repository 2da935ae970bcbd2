"""What the IVR leaves on the channel joins the call record, through AMI as Asterisk reports it.

The commands of a real session (our own Asterisk-side client against the pure engine) become
the AMI events Asterisk emits for them (VarSet for SET VARIABLE, UserEvent for EXEC
UserEvent, DTMFEnd for keys), and the call tracker folds them into the call.
"""

from __future__ import annotations

from datetime import date

from callcenter.ivr.client import user_events, variables_set
from callcenter.ivr.engine import IvrSession
from callcenter.ivr.menu import load_menu
from callcenter.ivr.steps import CallInfo, Done, Keys, Step
from callcenter.model import CallEnded
from callcenter.pipeline import Pipeline

CHANNEL = {
    "Channel": "PJSIP/trunk-00000001",
    "Uniqueid": "1795884499.0",
    "Linkedid": "1795884499.0",
    "CallerIDNum": "05321234567",
    "CallerIDName": "Ayşe Yılmaz",
    "Context": "incoming",
    "Exten": "s",
}


def commands_of(step: Step) -> list[str]:
    """The AGI commands the driver sends for a step's variables and events."""
    out = [f'SET VARIABLE {k} "{v}"' for k, v in step.variables]
    out += [f'EXEC UserEvent "CallcenterIvr,Flow: {f},Result: {r}"' for f, r in step.events]
    return out


def run_pure(entries: list[str]) -> tuple[list[str], list[str]]:
    """Runs the engine with a desk that opens ticket 2026-000042; returns keys and commands."""
    ivr = IvrSession(load_menu(), CallInfo(today=date(2026, 6, 1), linkedid="1795884499.0"))
    step: Step = ivr.start()
    pressed: list[str] = []
    commands = commands_of(step)
    for entry in entries:
        while step.request is not None:
            step = ivr.feed(Done("2026-000042"))
            commands += commands_of(step)
        if step.end is not None:
            break
        pressed.append(entry)
        step = ivr.feed(Keys(entry, timed_out=not entry))
        commands += commands_of(step)
    return pressed, commands


def test_menus_keys_and_flow_result_reach_the_call_record() -> None:
    pressed, commands = run_pure(["2", "1", "15062026", "16", "1", "", "0"])
    pipeline = Pipeline()
    ts = 1795884499.0
    pipeline.feed_headers("pbx1", {"Event": "Newchannel", **CHANNEL}, ts)
    for keys in pressed:
        for digit in keys:
            ts += 1
            event = {"Event": "DTMFEnd", **CHANNEL, "Context": "incoming", "Digit": digit}
            pipeline.feed_headers("pbx1", {**event, "Direction": "Received"}, ts)
    for name, value in variables_set(commands).items():
        ts += 0.1
        varset = {"Event": "VarSet", **CHANNEL, "Variable": name, "Value": value}
        pipeline.feed_headers("pbx1", varset, ts)
    for headers in user_events(commands):
        pipeline.feed_headers("pbx1", {"Event": "UserEvent", **CHANNEL, **headers}, ts)
    effects = pipeline.feed_headers("pbx1", {"Event": "Hangup", **CHANNEL, "Cause": "16"}, ts + 1)
    [call] = [e.call for e in effects if isinstance(e, CallEnded)]
    assert call.ivr_digits == "21150620261610"
    assert call.ivr_result == "ticket_opened"
    assert call.ivr_vars["CC_IVR_PATH"] == "main>masa-sandalye"
    assert call.ivr_vars["CC_IVR_CHOICE"] == "agent"  # 0 after the flow
    assert call.ivr_vars["CC_TICKET"] == "2026-000042"
    assert call.ivr_vars["CC_CATEGORY"] == "masa-sandalye"
    assert call.ivr_vars["CC_QUEUE"] == "genel"
