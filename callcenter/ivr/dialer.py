"""Calls resolved tickets' citizens back for the satisfaction survey (AMI Originate).

Within the configured local hours on working days, it leases due call-backs from PostgreSQL
and originates each into the ``survey-callback`` dialplan context, which runs the survey over
FastAGI. It never waits for the outcome: a survey stored, or a pick-up, closes the call-back;
an unanswered one is retried when its lease runs out, up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

import phonenumbers
import structlog

from callcenter.ivr.menu import CallbackConfig
from callcenter.ivr.surveys import Callback, claim_callbacks
from callcenter.logs import mask_number

log = structlog.get_logger(__name__)

Originate = Callable[[Mapping[str, Any]], Awaitable[Any]]
# How long a callee may ring, and how many call-backs one round starts.
RING_MS = 30_000
BATCH = 5


def dial_number(number: str, region: str = "TR") -> str:
    """The number as the trunk wants it: national digits (05321234567) for a local number."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return "".join(ch for ch in number if ch.isdigit())
    if phonenumbers.region_code_for_number(parsed) == region:
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in national if ch.isdigit())
    return "00" + phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def within_hours(local: datetime, config: CallbackConfig) -> bool:
    """Whether citizens may be called now: working days, between the configured hours."""
    start, end = config.hours
    return local.weekday() < 5 and start <= local.hour < end


def originate_action(callback: Callback, config: CallbackConfig) -> dict[str, Any]:
    """The AMI Originate that calls a citizen back into the survey context."""
    fields: dict[str, Any] = {
        "Action": "Originate",
        "Channel": config.dial.format(number=dial_number(callback.caller_number)),
        "Context": config.context,
        "Exten": "s",
        "Priority": "1",
        "Timeout": str(RING_MS),
        "Async": "true",
        "Variable": [f"CC_CALLBACK_ID={callback.ticket_id}", f"CC_TICKET={callback.reference}"],
    }
    if config.caller_id:
        fields["CallerID"] = config.caller_id
    return fields


async def dial_due(pool: Any, originate: Originate, config: CallbackConfig, now: datetime) -> int:
    """Leases the due call-backs and originates them; returns how many were started."""
    retry = timedelta(minutes=config.retry_minutes)
    due = await claim_callbacks(
        pool, now, limit=BATCH, max_attempts=config.max_attempts, retry=retry
    )
    for callback in due:
        try:
            await originate(originate_action(callback, config))
            log.info(
                "survey_callback_dialled",
                reference=callback.reference,
                number=mask_number(callback.caller_number),
                attempt=callback.attempt,
            )
        except Exception as exc:  # the lease brings it back for the next attempt
            log.warning("survey_callback_failed", reference=callback.reference, error=repr(exc))
    return len(due)


async def run_callback_dialer(
    pool: Any,
    originate: Originate,
    config: CallbackConfig,
    zone: tzinfo,
    stop: asyncio.Event,
    interval_s: float = 60.0,
) -> None:
    """Dials due call-backs every ``interval_s`` seconds until ``stop`` is set."""
    while not stop.is_set():
        now = datetime.now(zone)
        if within_hours(now, config):
            try:
                await dial_due(pool, originate, config, now)
            except Exception:
                log.exception("survey_dialer_error")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await stop.wait()
