"""The caller's side of a call, following the reference dialplan (``extensions.conf``).

An inbound call is a Local pair ``Local/cust@callers-XXXXXXXX;1/;2``: ``;2`` plays the
customer's phone ([callers]: answer, send IVR keys, wait PATIENCE, talk), ``;1`` plays the
trunk channel the PBX sees ([incoming]: welcome prompt, then Queue() or the IVR menu).
Every method emits the events Asterisk emitted at that step, in the recorded order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.sim import connect
from callcenter.sim import queue as q
from callcenter.sim.channels import Channel, local_block
from callcenter.sim.config import IVR_DID
from callcenter.sim.engine import CALL, DTMF, USER, Pbx, Timer
from callcenter.sim.ivr import MENU, IvrOption
from callcenter.sim.plan import CallPlan

if TYPE_CHECKING:
    from callcenter.sim.queue import Attempt, Entry

_CALLING_PRES = "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n"


class InboundCall:
    """One simulated inbound call from Originate to the last Hangup."""

    def __init__(
        self, pbx: Pbx, plan: CallPlan, action_id: str | None = None, originated: bool = True
    ) -> None:
        self.pbx = pbx
        self.plan = plan
        self.action_id = action_id
        self.originated = originated  # an AMI Originate (gets an OriginateResponse)
        g = pbx.globals
        self.talk = plan.talk if plan.talk is not None else float(g.get("TALK", "8"))
        self.hangup_by = plan.hangup_by or g.get("HANGUPBY", "caller")
        self.patience = plan.patience if plan.patience is not None else float(g["PATIENCE"])
        self.ivr_delay = plan.ivr_delay if plan.ivr_delay is not None else float(g["IVRDELAY"])
        self.inherit: list[tuple[str, str]] = []  # inheritable (__) variables, oldest first
        self.entry: Entry | None = None
        self.attempt: Attempt | None = None  # the connected agent, while talking
        self.ivr_choice: str | None = None
        self.ivr_tries = 0
        self.ivr_waiting = False  # Background/WaitExten is listening for a key
        self.ended = False
        self.redirected: list[Attempt] = []  # agents left by Redirect, completed at the end
        # The call's result as the simulator knows it (for run summaries, not for AMI).
        self.result = "ivr_only"  # answered | abandoned | timeout | full | ivr_only …
        self.joined_at: float | None = None  # first Queue() join, epoch
        self.answered_at: float | None = None
        self.talk_s = 0.0
        self._timer: Timer | None = None  # c2's current Wait (patience or IVR delay)
        self._ivr_timer: Timer | None = None
        self._digit = 0
        c1_name, c2_name = pbx.ids.local_pair("cust", "callers")
        self.c1: Channel = pbx.new_channel(c1_name, "callers", "cust", None, 0)
        self.c2: Channel = pbx.new_channel(c2_name, "callers", "cust", self.c1.uniqueid, 4)
        self.linkedid = self.c1.uniqueid
        pbx.calls[self.linkedid] = self

    @property
    def via_agi(self) -> bool:
        """Whether this call's IVR is the service's, over FastAGI (not the built-in menu)."""
        return self.pbx.agi is not None and self.plan.did == IVR_DID

    @property
    def category(self) -> str | None:
        """The service the caller came for: the IVR option's category, else the plan's."""
        if self.ivr_choice and self.ivr_choice in MENU:
            return MENU[self.ivr_choice].category
        return self.plan.category

    # ---- origination ------------------------------------------------------------------

    def start(self) -> None:
        """The Originate: both halves come up, ;1 enters [incoming] and plays the welcome."""
        pbx, c1, c2, plan = self.pbx, self.c1, self.c2, self.plan
        pbx.newexten(c1, 1, "AppDial2", "(Outgoing Line)")
        for name, value in reversed(plan.variables):
            pbx.varset(c1, name, value)
        c1.cid_num, c1.cid_name = plan.number, plan.name
        pbx.chan_event("NewCallerid", c1, _CALLING_PRES)
        c1.conn_num, c1.conn_name = plan.number, plan.name
        pbx.chan_event("NewConnectedLine", c1)
        for name, value in plan.variables:
            pbx.varset(c2, name, value)
        c2.cid_num, c2.cid_name = plan.number, plan.name
        c2.conn_num, c2.conn_name = plan.number, plan.name
        pbx.chan_event("NewCallerid", c2, _CALLING_PRES)
        pbx.chan_event("NewConnectedLine", c2)
        pbx.emit("LocalBridge", CALL, local_block(c1, c2, "callers", "cust", True))
        pbx.emit("DialBegin", CALL, c1.block("Dest") + "DialString: cust@callers\r\n")
        digits = "-".join(plan.ivr_digits)
        pbx.newexten(
            c2,
            1,
            "NoOp",
            f"Customer phone {c2.callerid} patience={_fmt(self.patience)} ivr={digits}",
        )
        pbx.newexten(c2, 2, "Answer")
        pbx.newstate(c2, 6)
        if self.originated:
            pbx.emit(
                "OriginateResponse",
                CALL,
                (f"ActionID: {self.action_id}\r\n" if self.action_id else "")
                + f"Response: Success\r\nChannel: {c1.name}\r\nContext: incoming\r\n"
                + f"Exten: {plan.did}\r\nReason: 4\r\nUniqueid: {c1.uniqueid}\r\n"
                + f"CallerIDNum: {plan.number}\r\nCallerIDName: {plan.name}\r\n",
            )
        pbx.newstate(c1, 6)
        pbx.emit("DialEnd", CALL, c1.block("Dest") + "DialStatus: ANSWER\r\n")
        c1.goto("incoming", plan.did, 1)
        ivr = "IVR " if plan.did == IVR_DID else ""
        scenario = dict(plan.variables).get("SCENARIO", "")
        pbx.newexten(
            c1, 1, "NoOp", f"Inbound {ivr}{c1.callerid} DID {plan.did} scenario={scenario}"
        )
        pbx.newexten(c1, 2, "Set", f"__CUSTPHONE={c2.name}")
        self._inherit("__CUSTPHONE", c2.name)
        pbx.newexten(c1, 3, "Answer")
        pbx.newexten(c1, 4, "Playback", "callcenter/welcome")
        pbx.devstate("Local/cust@callers", "INUSE")
        pbx.devstate("Local/cust@callers", "INUSE")
        self._phone_start()
        pbx.sched.after(pbx.config.welcome_s, self._welcome_done)

    def _inherit(self, name: str, value: str) -> None:
        self.pbx.varset(self.c1, name, value)
        self.inherit = [(k, v) for k, v in self.inherit if k != name] + [(name, value)]

    def inherited(self) -> list[tuple[str, str]]:
        """The variables an agent channel inherits, newest first (Asterisk's list order)."""
        plan_vars = [(k, v) for k, v in self.plan.variables if k.startswith("_")]
        seen = {k for k, _ in self.inherit}
        pairs = [p for p in plan_vars if p[0] not in seen] + self.inherit
        return list(reversed(pairs))

    # ---- the customer's phone (;2) ------------------------------------------------------

    def _phone_start(self) -> None:
        if self.via_agi:
            return  # the caller keys in the AGI session; patience starts in the queue
        pbx, c2 = self.pbx, self.c2
        pbx.newexten(c2, 3, "Set", "I=1")
        pbx.varset(c2, "I", 1)
        more = bool(self.plan.ivr_digits)
        pbx.newexten(c2, 4, "While", "1" if more else "0")
        pbx.varset(c2, "callers_cust_4", 0)
        if more:
            pbx.varset(c2, "WHILE_0", "callers,cust,4")
            pbx.newexten(c2, 5, "Wait", _fmt(self.ivr_delay))
            self._timer = pbx.sched.after(self.ivr_delay, self._send_digit)
        else:
            pbx.varset(c2, "callers_cust_4", "")
            self._wait_patience()

    def _wait_patience(self) -> None:
        self.pbx.newexten(self.c2, 9, "Wait", _fmt(self.patience))
        delay = self.patience + self.pbx.config.patience_latency
        self._timer = self.pbx.sched.after(delay, self.give_up)

    def _send_digit(self) -> None:
        if self.ended:
            return
        digit = self.plan.ivr_digits[self._digit]
        self.pbx.newexten(self.c2, 6, "SendDTMF", f"{digit},250")
        self._timer = self.pbx.sched.after(0.1, self._dtmf, digit)

    def _dtmf(self, digit: str) -> None:
        if self.ended:
            return
        pbx, c1 = self.pbx, self.c1
        pbx.chan_event("DTMFBegin", c1, f"Digit: {digit}\r\nDirection: Received\r\n", DTMF)
        self._timer = pbx.sched.after(0.1, self._dtmf_end, digit)

    def _dtmf_end(self, digit: str) -> None:
        if self.ended:
            return
        pbx, c1 = self.pbx, self.c1
        pbx.chan_event(
            "DTMFEnd", c1, f"Digit: {digit}\r\nDurationMs: 100\r\nDirection: Received\r\n", DTMF
        )
        self._timer = pbx.sched.after(0.25, self._digit_sent)
        if self.ivr_waiting:
            self._ivr_key(digit)

    def _digit_sent(self) -> None:
        if self.ended:
            return
        pbx, c2 = self.pbx, self.c2
        self._digit += 1
        pbx.newexten(c2, 7, "Set", f"I={self._digit + 1}")
        pbx.varset(c2, "I", self._digit + 1)
        pbx.newexten(c2, 8, "EndWhile")
        more = self._digit < len(self.plan.ivr_digits)
        if more:
            pbx.varset(c2, "END_WHILE_0", "callers,cust,9")
            pbx.newexten(c2, 4, "While", "1")
            pbx.newexten(c2, 5, "Wait", _fmt(self.ivr_delay))
            self._timer = pbx.sched.after(self.ivr_delay, self._send_digit)
        else:
            pbx.newexten(c2, 4, "While", "0")
            pbx.varsets(c2, [("WHILE_0", ""), ("callers_cust_4", ""), ("END_WHILE_0", "")])
            self._wait_patience()

    def give_up(self) -> None:
        """PATIENCE is over: the customer hangs up wherever the call is."""
        if self.ended or self.attempt is not None:
            return
        pbx, c2 = self.pbx, self.c2
        pbx.newexten(c2, 10, "NoOp", "Customer gives up")
        self.cdr_c2()
        pbx.newexten(c2, 11, "Hangup")
        pbx.soft_hangup(c2)
        if self.entry is not None:
            q.abandon(pbx, self.entry)
            return
        # Hung up in the IVR or the welcome prompt: ;1 follows.
        self._cancel_ivr()
        pbx.hangup_request(self.c1)
        pbx.hangup(c2)
        pbx.soft_hangup(self.c1)
        self.cdr_c1("ANSWERED")
        pbx.hangup(self.c1)
        pbx.devstate("Local/cust@callers", "NOT_INUSE")
        pbx.devstate("Local/cust@callers", "NOT_INUSE")
        self.finish()

    def stop_phone(self) -> None:
        """Cancels the phone's pending Wait (the call was connected or ended)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def set_phone_timer(self, timer: Timer) -> None:
        """Replaces the phone's pending Wait."""
        self.stop_phone()
        self._timer = timer

    def connected(self, attempt: Attempt) -> None:
        """An agent answered: the phone is redirected to talk."""
        from callcenter.sim.talk import start_talk

        start_talk(self.pbx, self, attempt)

    def flush_redirected(self) -> None:
        """AgentComplete for agents the caller was redirected away from (see talk.redirect)."""
        for attempt in self.redirected:
            info = connect.agent_complete(self.pbx, attempt, "caller", with_dest=False)
            self.pbx.hooks.call_answered_end(info)
        self.redirected.clear()

    # ---- [incoming] after the welcome prompt --------------------------------------------

    def _welcome_done(self) -> None:
        if self.ended:
            return
        pbx, c1 = self.pbx, self.c1
        pbx.varset(c1, "PLAYBACKSTATUS", "SUCCESS")
        if self.pbx.agi is not None and self.via_agi:
            self.pbx.agi.start(self)
            return
        if self.plan.did == IVR_DID:
            pbx.newexten(c1, 5, "Goto", "ivr,s,1")
            c1.goto("ivr", "s", 1)
            pbx.newexten(c1, 1, "Set", "IVRTRIES=0")
            pbx.varset(c1, "IVRTRIES", 0)
            self._menu()
            return
        queue = self.plan.queue or "genel"
        timeout = self.plan.queue_timeout
        data = f"{queue},,,,{_fmt(timeout) if timeout is not None else ''}"
        pbx.newexten(c1, 5, "Queue", data)
        q.join(pbx, self, queue, timeout)

    def queue_after_ivr(self, queue: str) -> None:
        """``[to-queue]`` after the FastAGI IVR: Queue(${CC_QUEUE},c); patience starts here."""
        timeout = self.plan.queue_timeout
        self.pbx.newexten(self.c1, 2, "Queue", f"{queue},c,,,{_fmt(timeout)}")
        self._wait_patience()
        q.join(self.pbx, self, queue, timeout)

    def queue_result(self, status: str) -> None:
        """Queue() returned without a connected call: log the status and hang up (;1 first)."""
        pbx, c1 = self.pbx, self.c1
        if self.result != "answered":
            self.result = status.lower()
        pbx.varset(c1, "QUEUESTATUS", status)
        pbx.newexten(c1, c1.priority + 1, "NoOp", f"Queue result QUEUESTATUS={status}")
        pbx.newexten(c1, c1.priority + 1, "Hangup")
        self.hangup_from_c1()

    def hangup_from_c1(self) -> None:
        """The trunk side hangs up by dialplan; the customer's phone follows."""
        pbx, c1, c2 = self.pbx, self.c1, self.c2
        self.stop_phone()
        pbx.soft_hangup(c1)
        pbx.hangup_request(c2)
        pbx.hangup(c1)
        pbx.soft_hangup(c2)
        pbx.hangup(c2)
        self.cdr_c1("ANSWERED")
        self.cdr_c2()
        pbx.devstate("Local/cust@callers", "NOT_INUSE")
        pbx.devstate("Local/cust@callers", "NOT_INUSE")
        self.finish()

    # ---- the IVR menu ([ivr]) -------------------------------------------------------------

    def _menu(self) -> None:
        pbx, c1 = self.pbx, self.c1
        self.ivr_tries += 1
        pbx.newexten(c1, 2, "Set", f"IVRTRIES={self.ivr_tries}")
        pbx.varset(c1, "IVRTRIES", self.ivr_tries)
        pbx.newexten(c1, 3, "BackGround", "callcenter/ivr-menu")
        self.ivr_waiting = True
        self._ivr_timer = pbx.sched.after(pbx.config.menu_s, self._menu_played)

    def _menu_played(self) -> None:
        if self.ended:
            return
        pbx, c1 = self.pbx, self.c1
        pbx.varset(c1, "BACKGROUNDSTATUS", "SUCCESS")
        pbx.newexten(c1, 4, "WaitExten", "5")
        self._ivr_timer = pbx.sched.after(pbx.config.waitexten_s, self._menu_timeout)

    def _menu_timeout(self, exten: str = "t") -> None:
        """No key in time (``t``) or after the invalid-key prompt (``i``): menu again or bye."""
        if self.ended:
            return
        pbx, c1 = self.pbx, self.c1
        self.ivr_waiting = False
        priority = 1 if exten == "t" else 2
        c1.goto("ivr", exten, priority)
        pbx.newexten(c1, priority, "GotoIf", f"{int(self.ivr_tries < 3)}?s,menu")
        if self.ivr_tries < 3:
            c1.goto("ivr", "s", 2)
            self._menu()
        else:
            pbx.newexten(c1, priority + 1, "Hangup")
            self.hangup_from_c1()

    def _cancel_ivr(self) -> None:
        self.ivr_waiting = False
        if self._ivr_timer is not None:
            self._ivr_timer.cancel()
            self._ivr_timer = None

    def _ivr_key(self, digit: str) -> None:
        pbx, c1 = self.pbx, self.c1
        in_background = c1.app == "BackGround"
        self._cancel_ivr()
        if in_background:
            pbx.varset(c1, "BACKGROUNDSTATUS", "SUCCESS")
        option = MENU.get(digit)
        if option is None:
            c1.goto("ivr", "i", 1)
            pbx.newexten(c1, 1, "Playback", "callcenter/invalid")
            self._ivr_timer = pbx.sched.after(1.0, self._menu_timeout, "i")
            return
        c1.goto("ivr", digit, 1)
        pbx.newexten(c1, 1, "NoOp", option.noop)
        if option.kind == "repeat":
            pbx.newexten(c1, 2, "Goto", "s,menu")
            c1.goto("ivr", "s", 2)
            self._menu()
            return
        self.ivr_choice = digit
        pbx.newexten(c1, 2, "Set", f"__IVRCHOICE={digit}")
        self._inherit("__IVRCHOICE", digit)
        if option.kind == "queue":
            self._ivr_queue(option)
        else:
            self._self_service(option)

    def _ivr_queue(self, option: IvrOption) -> None:
        timeout = self.plan.queue_timeout
        data = f"{option.queue},,,,{_fmt(timeout) if timeout is not None else ''}"
        self.pbx.newexten(self.c1, 3, "Queue", data)
        q.join(self.pbx, self, option.queue, timeout)

    def _self_service(self, option: IvrOption) -> None:
        pbx, c1 = self.pbx, self.c1
        pbx.newexten(c1, 3, "Set", f"SELFSERVICE_RESULT={option.result}")
        pbx.varset(c1, "SELFSERVICE_RESULT", option.result)
        pbx.newexten(c1, 4, "Playback", "callcenter/selfservice")
        pbx.sched.after(pbx.config.selfservice_s, self._self_service_done, option)

    def _self_service_done(self, option: IvrOption) -> None:
        if self.ended:
            return
        pbx, c1 = self.pbx, self.c1
        pbx.varset(c1, "PLAYBACKSTATUS", "SUCCESS")
        data = f"SelfService,Result: {option.result},CallerNum: {c1.cid_num}"
        pbx.newexten(c1, 5, "UserEvent", data)
        pbx.chan_event(
            "UserEvent",
            c1,
            f"UserEvent: SelfService\r\nResult: {option.result}\r\nCallerNum: {c1.cid_num}\r\n",
            USER,
        )
        pbx.newexten(c1, 6, "Hangup")
        self.hangup_from_c1()

    # ---- the end ------------------------------------------------------------------------

    def cdr_c1(self, disposition: str, dest: str = "") -> None:
        """The trunk channel's CDR."""
        c1 = self.c1
        self.pbx.cdr(c1, dest_channel=dest, disposition=disposition, answer=c1.answered)

    def cdr_c2(self) -> None:
        """The customer phone's CDR."""
        c2 = self.c2
        self.pbx.cdr(c2, dest_channel="", disposition="ANSWERED", answer=c2.answered)

    def finish(self) -> None:
        """Forgets the call once its last channel is gone."""
        self.ended = True
        self.stop_phone()
        self._cancel_ivr()
        self.pbx.calls.pop(self.linkedid, None)
        self.pbx.hooks.call_ended(self)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
