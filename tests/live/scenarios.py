"""The live suite's traffic: every kind of call a municipality's day has, on a real Asterisk.

``run_traffic`` places the calls in three phases and returns a ``Traffic`` record the tests
check against Asterisk's own queue_log and against PostgreSQL:

1. agents on real SIP phones (pjsua registered as ``pjsip.conf``'s 1001, 1004, 1005, 1006,
   answering and hanging up after a talk time) with their screen-pop WebSockets open: calls to
   every queue through the IVR, an English caller, a withheld number, a request-status
   self-service that then asks for an agent, and the survey after each call;
2. agents on Local channels (``harness-agent``): pauses with reasons, a ring-no-answer, an
   abandon while ``/metrics`` and ``queue show`` are sampled, a blind transfer, a redirect;
   then every key path of the menu that leads to a queue (derived from the menu itself), a
   step back with ``*`` and three wrong keys, each caller hanging up once queued;
3. the PBX side's fixes: a caller whose IVR ends with AGISTATUS=FAILURE (a missing prompt)
   after choosing a queue, and one after a table-and-chair booking (a ticket, then goodbye).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from callcenter.tickets import open_ticket
from callcenter.web.auth import create_token
from tests.live.ami import AmiDriver
from tests.live.calls import Caller, add_local_agent, pause, remove_local_agents, set_global
from tests.live.conftest import LivePbx, LiveService
from tests.live.pbx import AMI_SECRET, ROOT, Phone, pjsua_binary

# pjsip.conf's agents on SIP phones in phase 1, by extension: their queue member names.
SIP_AGENTS = {
    "1001": "Zeynep Kaya",
    "1004": "Burak Çelik",
    "1005": "Ayşe Demir",
    "1006": "Ali Yıldız",
}
SIP_TALK_S = 3  # the phones hang up this long after answering: the caller is then surveyed
LOCAL_AGENTS = {"9001": "Deniz Aydın", "9002": "Cem Kurt", "9003": "Selin Ak"}


@dataclass
class Expect:
    """What the IVR was asked for on one call, and what must follow from it."""

    queue: str | None = None  # the queue the caller chose (None: self-service only)
    result: str | None = None  # the self-service result (CC_IVR_RESULT)
    survey: tuple[int, bool | None] | None = None  # score, resolved
    language: str = "tr"
    sip: bool = False  # answered by a pjsua phone (the screen-pop check)


@dataclass
class Traffic:
    """Everything the run did, for the tests to check."""

    calls: dict[str, Caller] = field(default_factory=dict)
    expect: dict[str, Expect] = field(default_factory=dict)
    pops: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # agent name -> pops
    phone_output: dict[str, list[str]] = field(default_factory=dict)  # ext -> pjsua output
    metrics_samples: list[tuple[dict[str, int], dict[str, int]]] = field(default_factory=list)
    pauses: list[tuple[str, str]] = field(default_factory=list)  # (member name, reason)
    status_reference: str = ""
    booking_date: date | None = None
    agi_failed: set[str] = field(default_factory=set)  # linkedids with AGISTATUS=FAILURE
    trace: Path | None = None  # what `callcenter record` wrote during the run
    seconds: float = 0.0

    def add(self, label: str, caller: Caller, expect: Expect) -> Caller:
        """Records a call under a label."""
        self.calls[label] = caller
        self.expect[label] = expect
        return caller


async def metrics_waiting(base_url: str) -> dict[str, int]:
    """``callcenter_queue_calls_waiting`` per queue, from the service's ``/metrics``."""
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
        text = await resp.text()
    waiting: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "callcenter_queue_calls_waiting":
            for sample in family.samples:
                waiting[sample.labels["queue"]] = int(sample.value)
    return waiting


async def sample_metrics(pbx: LivePbx, live: LiveService, traffic: Traffic) -> None:
    """Samples ``/metrics`` and ``queue show`` until they agree (both are live: events lag)."""
    last: tuple[dict[str, int], dict[str, int]] = ({}, {})
    for _ in range(50):
        shown = await asyncio.to_thread(pbx.queue_counts)
        exported = await metrics_waiting(live.base_url)
        exported = {q: exported.get(q, 0) for q in shown}
        last = (shown, exported)
        if shown == exported:
            break
        await asyncio.sleep(0.1)
    traffic.metrics_samples.append(last)


async def _watch_pops(session: aiohttp.ClientSession, url: str, into: list[dict[str, Any]]) -> None:
    async with session.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "pop":
                    into.append(data)


async def _wait_registered(pbx: LivePbx, names: list[str], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while True:
            shown = await asyncio.to_thread(pbx.cli, "queue show genel")
            shown += await asyncio.to_thread(pbx.cli, "queue show sosyal-yardim")
            if all(
                any(name in line and "(Not in use)" in line for line in shown.splitlines())
                for name in names
            ):
                return
            await asyncio.sleep(0.2)


async def _survey(caller: Caller, score: int, resolved: bool | None) -> None:
    await caller.wait_prompt("callcenter/survey-q1")
    await caller.press(str(score))
    if resolved is not None:
        await caller.press("1" if resolved else "2")


async def _sip_call(
    traffic: Traffic,
    ami: AmiDriver,
    label: str,
    keys: str,
    queue: str,
    survey: tuple[int, bool | None],
    *,
    number: str | None = None,
    language: str = "tr",
    delay: float = 0.0,
) -> None:
    """A caller through the IVR to an agent on a SIP phone, then the survey."""
    await asyncio.sleep(delay)
    caller = await Caller.dial(ami, number=number, label=label)
    traffic.add(label, caller, Expect(queue=queue, survey=survey, language=language, sip=True))
    await caller.press(keys)
    await caller.wait_connected(90)
    await _survey(caller, *survey)
    await caller.wait_ended(60)


async def _status_then_agent(traffic: Traffic, ami: AmiDriver, reference: str) -> None:
    """Request status by the serial number, hears it, then asks for an agent (0)."""
    caller = await Caller.dial(ami, label="status")
    survey = (4, True)
    traffic.add(
        "status",
        caller,
        Expect(queue="genel", result="status_read", survey=survey, sip=True),
    )
    await caller.press("3")
    await caller.wait_prompt("callcenter/status-enter-reference")
    await caller.press(str(int(reference.split("-")[1])) + "#")
    await caller.wait_prompt("callcenter/after-flow")
    await caller.press("0")
    await caller.wait_connected(90)
    await _survey(caller, *survey)
    await caller.wait_ended(60)


async def phase_sip(pbx: LivePbx, live: LiveService, ami: AmiDriver, traffic: Traffic) -> None:
    """Phase 1: agents on pjsua phones, their screen-pops watched."""
    pjsua = pjsua_binary(pbx.layout.binary)
    assert pjsua is not None, "pjsua not found beside the Asterisk binary (set PJSUA)"
    phones = [Phone(pjsua, ext, pbx.layout, talk_s=SIP_TALK_S) for ext in SIP_AGENTS]
    watchers: list[asyncio.Task[None]] = []
    ticket = await open_ticket(
        live.pool, category="sosyal-yardim", caller_number="05321112233", channel="phone"
    )
    traffic.status_reference = ticket.reference
    async with aiohttp.ClientSession() as session:
        try:
            for ext, name in SIP_AGENTS.items():
                token, _ = await create_token(live.pool, role="agent", name=f"a{ext}", agent=name)
                traffic.pops[name] = []
                url = f"{live.base_url}/ws/agent?token={token}"
                watchers.append(asyncio.create_task(_watch_pops(session, url, traffic.pops[name])))
            for phone in phones:
                await phone.start()
            await _wait_registered(pbx, list(SIP_AGENTS.values()))
            await asyncio.gather(
                _sip_call(traffic, ami, "sip-genel", "0", "genel", (5, True)),
                _sip_call(traffic, ami, "sip-gida", "11", "sosyal-yardim", (4, False), delay=0.3),
                _sip_call(traffic, ami, "sip-deprem", "4", "depremzede", (3, True), delay=0.6),
                _sip_call(
                    traffic,
                    ami,
                    "english-cimer",
                    "952",
                    "sikayet-oneri",
                    (2, None),
                    language="en",
                    delay=0.9,
                ),
                _sip_call(
                    traffic,
                    ami,
                    "withheld",
                    "62",
                    "genel",
                    (5, True),
                    number="anonymous",
                    delay=1.2,
                ),
                _status_then_agent(traffic, ami, ticket.reference),
            )
            await asyncio.sleep(1.0)  # the last pops ("ended") reach the sockets
        finally:
            for phone in phones:
                await phone.stop()
                traffic.phone_output[phone.ext] = phone.output
            for task in watchers:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


async def _ring_no_answer(traffic: Traffic, ami: AmiDriver, deniz: str) -> None:
    """Genel: Cem's phone rings out (Deniz is paused), then Deniz, back, takes the call."""
    caller = await Caller.dial(ami, label="ring-no-answer")
    traffic.add("ring-no-answer", caller, Expect(queue="genel"))
    await caller.press("0")
    await caller.wait_event("AgentRingNoAnswer", 40)
    await pause(ami, deniz, False)
    await set_global(ami, "RD_9002", "1")  # if Cem is rung again, he answers
    await caller.wait_connected(60)
    await asyncio.sleep(2)
    await caller.hang_up()
    await caller.wait_ended()


async def _abandon(
    pbx: LivePbx, live: LiveService, traffic: Traffic, ami: AmiDriver, selin: str
) -> None:
    """Şikâyet: the only agent is paused; the caller waits, is counted, and gives up."""
    caller = await Caller.dial(ami, label="abandon")
    traffic.add("abandon", caller, Expect(queue="sikayet-oneri"))
    await caller.press("51")
    await caller.wait_event("QueueCallerJoin", 30)
    await asyncio.sleep(1.5)
    await sample_metrics(pbx, live, traffic)
    await asyncio.sleep(2)
    await sample_metrics(pbx, live, traffic)
    await caller.hang_up()
    await caller.wait_ended()
    await pause(ami, selin, False, "")


async def _blind_transfer(traffic: Traffic, ami: AmiDriver) -> None:
    """Sosyal yardım → Deniz answers and blind-transfers to şikâyet (2004) → Selin."""
    caller = await Caller.dial(ami, label="blind-transfer")
    traffic.add("blind-transfer", caller, Expect(queue="sosyal-yardim"))
    await caller.press("12")
    connect = await caller.wait_connected(60)
    await asyncio.sleep(2)
    reply = await ami.action(
        "BlindTransfer", Channel=connect["DestChannel"], Context="agent-phones", Exten="2004"
    )
    assert reply.get("Response") == "Success", reply
    await caller.wait_event("AgentConnect", 60, Queue="sikayet-oneri")
    await asyncio.sleep(2)
    await caller.hang_up()
    await caller.wait_ended()


async def _redirect(traffic: Traffic, ami: AmiDriver) -> None:
    """Masa-sandalye's agent key → Deniz; the supervisor redirects the caller to depremzede."""
    caller = await Caller.dial(ami, label="redirect")
    traffic.add("redirect", caller, Expect(queue="masa-sandalye"))
    await caller.press("20")
    await caller.wait_connected(60)
    await asyncio.sleep(2)
    reply = await ami.action(
        "Redirect", Channel=caller.channel, Context="agent-phones", Exten="2002", Priority="1"
    )
    assert reply.get("Response") == "Success", reply
    await caller.wait_event("AgentConnect", 60, Queue="depremzede")
    await asyncio.sleep(2)
    await caller.hang_up()
    await caller.wait_ended()


async def phase_local(pbx: LivePbx, live: LiveService, ami: AmiDriver, traffic: Traffic) -> None:
    """Phase 2: Local-channel agents; pauses, ring-no-answer, abandon, transfer, redirect."""
    deniz = await add_local_agent(
        ami, "9001", LOCAL_AGENTS["9001"], ["genel", "sosyal-yardim", "masa-sandalye"]
    )
    await set_global(ami, "RD_9002", "never")
    await add_local_agent(ami, "9002", LOCAL_AGENTS["9002"], ["genel"])
    selin = await add_local_agent(
        ami, "9003", LOCAL_AGENTS["9003"], ["sikayet-oneri", "depremzede"]
    )
    await pause(ami, deniz, True, "toplanti")
    traffic.pauses.append((LOCAL_AGENTS["9001"], "toplanti"))
    await pause(ami, selin, True, "egitim")
    traffic.pauses.append((LOCAL_AGENTS["9003"], "egitim"))
    await asyncio.gather(
        _ring_no_answer(traffic, ami, deniz),
        _abandon(pbx, live, traffic, ami, selin),
    )
    await asyncio.sleep(3.5)  # Deniz's wrap-up
    await _blind_transfer(traffic, ami)
    await asyncio.sleep(3.5)
    await _redirect(traffic, ami)
    await sample_metrics(pbx, live, traffic)


def menu_paths() -> dict[str, str]:
    """Every key sequence of the packaged menu that ends in a queue, with that queue."""
    from callcenter.ivr.menu import load_menu

    ivr = load_menu()
    paths: dict[str, str] = {}

    def walk(name: str, keys: str) -> None:
        menu = ivr.menus[name]
        paths[keys + ivr.agent_key] = menu.agent_queue or ivr.agent_queue
        for key, option in sorted(menu.options.items()):
            if option.action == "queue":
                paths[keys + key] = option.target
            elif option.action == "menu":
                walk(option.target, keys + key)

    walk(ivr.start, "")
    return paths


async def _path_call(traffic: Traffic, ami: AmiDriver, keys: str, queue: str, n: int) -> None:
    """Presses a path's keys, waits until the caller is in a queue, and hangs up."""
    await asyncio.sleep(n * 0.2)
    label = f"path-{keys}"
    caller = await Caller.dial(ami, label=label)
    traffic.add(label, caller, Expect(queue=queue))
    await caller.press(keys)
    await caller.wait_event("QueueCallerJoin", 60)
    await caller.hang_up()
    await caller.wait_ended()


async def phase_paths(ami: AmiDriver, traffic: Traffic) -> None:
    """Every path of the menu to a queue, plus a step back and three wrong keys."""
    paths = menu_paths()
    paths["1*4"] = "depremzede"  # into sosyal-yardım, back (*), then depremzede
    paths["777"] = "genel"  # three wrong keys: on_failure = agent (the main menu's queue)
    await asyncio.gather(
        *(_path_call(traffic, ami, keys, queue, n) for n, (keys, queue) in enumerate(paths.items()))
    )


def _remove_prompt(pbx: LivePbx, sound: str) -> None:
    # In every language: Asterisk falls back to "en" when the caller's language lacks a file.
    for path in pbx.layout.sounds.glob(f"*/{sound}.*"):
        path.unlink()


async def _failed_prompt_to_queue(traffic: Traffic, ami: AmiDriver) -> None:
    """Depremzede chosen, then the transfer prompt fails: the caller still goes to depremzede."""
    caller = await Caller.dial(ami, label="agi-failure-queue")
    traffic.add("agi-failure-queue", caller, Expect(queue="depremzede"))
    await caller.press("4")
    await caller.wait_connected(60)
    await asyncio.sleep(1)
    await caller.hang_up()
    await caller.wait_ended()


async def _booking_then_goodbye(traffic: Traffic, ami: AmiDriver, when: date) -> None:
    """A table-and-chair booking (a ticket), the after-flow prompt fails: goodbye, no queue."""
    caller = await Caller.dial(ami, label="booking")
    traffic.add("booking", caller, Expect(result="ticket_opened"))
    await caller.press("21")
    await caller.wait_prompt("callcenter/ms-enter-date")
    await caller.press(when.strftime("%d%m%Y"))
    await caller.wait_prompt("callcenter/ms-enter-neighbourhood")
    await caller.press("16")  # Sarıgazi
    await caller.wait_prompt("callcenter/ms-confirm")
    await caller.press("1")
    await caller.wait_prompt("callcenter/ms-repeat-reference")
    await caller.press("2")
    await caller.press("#")  # at the after-flow question: neither * nor 0 ends the call
    await caller.wait_ended(60)


async def phase_fixes(pbx: LivePbx, ami: AmiDriver, traffic: Traffic) -> None:
    """Phase 3: the IVR made its decision, then a prompt failed (AGISTATUS=FAILURE)."""
    _remove_prompt(pbx, "callcenter/transfer-agent")
    _remove_prompt(pbx, "callcenter/after-flow")
    traffic.booking_date = date.today() + timedelta(days=10)
    await asyncio.gather(
        _failed_prompt_to_queue(traffic, ami),
        _booking_then_goodbye(traffic, ami, traffic.booking_date),
    )
    for event in ami.events:
        if event.get("Event") == "VarSet" and event.get("Variable") == "AGISTATUS":
            if event.get("Value") == "FAILURE":
                traffic.agi_failed.add(event.get("Linkedid", ""))


async def start_recorder(pbx: LivePbx, trace: Path) -> asyncio.subprocess.Process:
    """``python -m callcenter record`` on the live PBX (the service's own AMI user)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CALLCENTER_AMI_HOST": "127.0.0.1",
        "CALLCENTER_AMI_PORT": str(pbx.layout.ports.ami),
        "CALLCENTER_AMI_SECRET": AMI_SECRET,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callcenter",
        "record",
        "--out",
        str(trace),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):  # logged in once the trace file has its first line
        while not await asyncio.to_thread(lambda: trace.exists() and trace.stat().st_size > 0):
            if proc.returncode is not None:
                raise AssertionError("the recorder stopped at once")
            await asyncio.sleep(0.1)
    return proc


async def stop_recorder(proc: asyncio.subprocess.Process) -> None:
    """Stops the recorder as Ctrl-C would; it must exit cleanly."""
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()


async def run_traffic(
    pbx: LivePbx, live: LiveService, ami: AmiDriver, trace: Path | None = None
) -> Traffic:
    """Runs the three phases (recorded to ``trace``); waits until PostgreSQL has every call."""
    traffic = Traffic()
    started = asyncio.get_running_loop().time()
    await remove_local_agents(ami)  # phase 1 is the SIP phones' alone
    recorder = await start_recorder(pbx, trace) if trace is not None else None
    await sample_metrics(pbx, live, traffic)
    await phase_sip(pbx, live, ami, traffic)
    await phase_local(pbx, live, ami, traffic)
    await phase_paths(ami, traffic)
    await phase_fixes(pbx, ami, traffic)
    if recorder is not None:
        await asyncio.sleep(1.0)  # the last events of the last calls
        await stop_recorder(recorder)
    linkedids = [c.linkedid for c in traffic.calls.values()]
    async with asyncio.timeout(30):
        while True:
            done = await live.pool.fetchval(
                "SELECT count(*) FROM calls"
                " WHERE linkedid = ANY($1::text[]) AND ended_at IS NOT NULL",
                linkedids,
            )
            if done == len(linkedids):
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    traffic.seconds = asyncio.get_running_loop().time() - started
    return traffic
