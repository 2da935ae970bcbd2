"""Survey answers and the call-back list in PostgreSQL (migration 0004_ivr_surveys.sql).

A stored answer and its ``survey.completed`` webhook are written in one transaction (the
outbox). The call-back list is fed from resolved tickets (``tickets.survey_candidate_at``);
the dialer claims due entries with a lease (``dialing``), so several service instances never
call one citizen twice, and a call-back nobody completed is retried when the lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from callcenter.ivr.steps import SurveyAnswer
from callcenter.popup import normalize_number

_INSERT_SURVEY = """
INSERT INTO ivr_surveys (kind, score, resolved, language, caller_number, linkedid, queue, agent,
                         ticket_id, ticket_reference)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
        COALESCE($9, (SELECT id FROM tickets WHERE reference = $10)), $10)
ON CONFLICT (linkedid, kind) WHERE linkedid IS NOT NULL DO NOTHING
RETURNING id, answered_at
"""

_REFRESH = """
INSERT INTO survey_callbacks (ticket_id, caller_number, next_attempt_at)
SELECT t.id, t.caller_number, GREATEST(t.survey_candidate_at, $1)
FROM tickets t
WHERE t.survey_candidate_at IS NOT NULL AND t.caller_number IS NOT NULL AND t.status = 'resolved'
  AND NOT EXISTS (SELECT 1 FROM ivr_surveys s WHERE s.ticket_id = t.id)
ON CONFLICT (ticket_id) DO NOTHING
"""

# A lease that ran out (nobody completed the call) counts as a failed attempt.
_CLAIM = """
WITH due AS (
    SELECT ticket_id FROM survey_callbacks
    WHERE state IN ('pending', 'dialing') AND next_attempt_at <= $1
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE survey_callbacks c SET state = 'failed', updated_at = $1
    FROM due WHERE c.ticket_id = due.ticket_id AND c.attempts >= $4
    RETURNING c.ticket_id
)
UPDATE survey_callbacks c
SET state = 'dialing', attempts = c.attempts + 1, last_attempt_at = $1,
    next_attempt_at = $1 + $3::interval, updated_at = $1
FROM due, tickets t
WHERE c.ticket_id = due.ticket_id AND t.id = c.ticket_id AND c.attempts < $4
RETURNING c.ticket_id, c.caller_number, c.attempts, t.reference
"""


@dataclass(frozen=True, slots=True)
class Callback:
    """A resolved ticket's caller to call back now."""

    ticket_id: int
    caller_number: str
    attempt: int
    reference: str


def survey_payload(answer: SurveyAnswer, survey_id: int, answered_at: datetime) -> dict[str, Any]:
    """The ``survey.completed`` webhook's data."""
    return {
        "survey_id": survey_id,
        "kind": answer.kind,
        "score": answer.score,
        "resolved": answer.resolved,
        "language": answer.language,
        "caller_number": normalize_number(answer.caller_number),
        "linkedid": answer.linkedid,
        "queue": answer.queue,
        "agent": answer.agent,
        "ticket_reference": answer.ticket_reference,
        "answered_at": answered_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


async def store_survey(conn: Any, answer: SurveyAnswer) -> int | None:
    """Stores answers and queues their webhook; None if this call's answers are already in.

    Run it inside a transaction: the answer and its webhook commit together.
    """
    row = await conn.fetchrow(
        _INSERT_SURVEY,
        answer.kind,
        answer.score,
        answer.resolved,
        answer.language,
        normalize_number(answer.caller_number),
        answer.linkedid,
        answer.queue,
        answer.agent,
        answer.callback_id,
        answer.ticket_reference,
    )
    if row is None:
        return None
    survey_id = int(row["id"])
    if answer.callback_id is not None:
        await conn.execute(
            "UPDATE survey_callbacks SET state = 'answered', survey_id = $2, updated_at = now() "
            "WHERE ticket_id = $1",
            answer.callback_id,
            survey_id,
        )
    from callcenter.webhooks import derived_msg_id, enqueue

    await enqueue(
        conn,
        "survey.completed",
        survey_payload(answer, survey_id, row["answered_at"]),
        msg_id=derived_msg_id("survey.completed", str(survey_id)),
    )
    return survey_id


async def mark_reached(pool: Any, ticket_id: int) -> None:
    """The citizen picked up: do not call again, whether or not they answer the survey."""
    await pool.execute(
        "UPDATE survey_callbacks SET state = 'reached', updated_at = now() "
        "WHERE ticket_id = $1 AND state IN ('pending', 'dialing')",
        ticket_id,
    )


async def claim_callbacks(
    pool: Any, now: datetime, *, limit: int, max_attempts: int, retry: timedelta
) -> list[Callback]:
    """Adds newly resolved tickets to the list, then leases the due call-backs to dial."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_REFRESH, now)
        rows = await conn.fetch(_CLAIM, now, limit, retry, max_attempts)
    return [
        Callback(r["ticket_id"], r["caller_number"], r["attempts"], r["reference"]) for r in rows
    ]
