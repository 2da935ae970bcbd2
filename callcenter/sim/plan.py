"""What one simulated caller will do, in the terms of the reference dialplan's variables.

A plan comes either from an AMI ``Originate`` of ``Local/cust@callers`` with ``Variable:``
headers (exactly what the recording driver sent) or from the traffic model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callcenter.sim.config import GENEL_DID


@dataclass(slots=True)
class CallPlan:
    """A caller's behaviour: line dialled, IVR keys, patience, talk time, who hangs up."""

    name: str
    number: str
    did: str = GENEL_DID
    talk: float | None = None  # TALK; None = the global
    hangup_by: str | None = None  # HANGUPBY (caller | agent); None = the global
    patience: float | None = None  # PATIENCE, counted after the last IVR key
    ivr_digits: tuple[str, ...] = ()  # IVRDIGITS split on "-"
    ivr_delay: float | None = None  # IVRDELAY between keys
    queue: str | None = None  # QNAME for the direct line
    queue_timeout: float | None = None  # QTIMEOUT
    category: str | None = None  # the service the caller wants (traffic model only)
    # The Originate ``Variable:`` pairs as sent, for the VarSet events they cause.
    variables: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_variables(
        cls, name: str, number: str, did: str, variables: list[tuple[str, str]]
    ) -> CallPlan:
        """Builds a plan from Originate variables (``__TALK=8``, ``PATIENCE=7``, …)."""
        plan = cls(name=name, number=number, did=did, variables=list(variables))
        for raw, value in variables:
            key = raw.lstrip("_").upper()
            if key == "TALK":
                plan.talk = _num(value)
            elif key == "HANGUPBY":
                plan.hangup_by = value
            elif key == "PATIENCE":
                plan.patience = _num(value)
            elif key == "IVRDIGITS":
                plan.ivr_digits = tuple(d for d in value.split("-") if d)
            elif key == "IVRDELAY":
                plan.ivr_delay = _num(value)
            elif key == "QNAME":
                plan.queue = value or None
            elif key == "QTIMEOUT":
                plan.queue_timeout = _num(value)
            elif key == "CATEGORY":
                plan.category = value
        return plan

    def with_variables(self) -> CallPlan:
        """Fills ``variables`` from the plan's fields, as a driver would send them."""
        if self.variables:
            return self
        pairs: list[tuple[str, str]] = []
        if self.queue:
            pairs.append(("QNAME", self.queue))
        if self.ivr_digits:
            pairs.append(("IVRDIGITS", "-".join(self.ivr_digits)))
        if self.ivr_delay is not None:
            pairs.append(("IVRDELAY", _fmt(self.ivr_delay)))
        if self.patience is not None:
            pairs.append(("PATIENCE", _fmt(self.patience)))
        if self.queue_timeout is not None:
            pairs.append(("__QTIMEOUT", _fmt(self.queue_timeout)))
        if self.talk is not None:
            pairs.append(("__TALK", _fmt(self.talk)))
        if self.hangup_by is not None:
            pairs.append(("__HANGUPBY", self.hangup_by))
        if self.category is not None:
            pairs.append(("CATEGORY", self.category))
        self.variables = pairs
        return self


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _fmt(value: float) -> str:
    """Seconds as the dialplan would print them (integers without a fraction)."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
