-- IVR: satisfaction survey answers, and the list of resolved tickets whose callers are called
-- back for the survey. Times are timestamptz (UTC).

CREATE TABLE ivr_surveys (
    id                bigserial PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('after_call', 'callback')),
    score             smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    resolved          boolean,                  -- the optional second question; NULL = skipped
    language          text NOT NULL DEFAULT 'tr',
    caller_number     text,                     -- E.164 if parseable, else as received
    linkedid          text,                     -- the call the answers were keyed in
    queue             text,                     -- the queue and agent of the call rated
    agent             text,
    ticket_id         bigint REFERENCES tickets (id) ON DELETE SET NULL,
    ticket_reference  text,
    answered_at       timestamptz NOT NULL DEFAULT now()
);

-- One answer per call and kind: a retried store does not count twice.
CREATE UNIQUE INDEX ivr_surveys_call_idx ON ivr_surveys (linkedid, kind) WHERE linkedid IS NOT NULL;
CREATE INDEX ivr_surveys_answered_at_idx ON ivr_surveys (answered_at);
CREATE INDEX ivr_surveys_agent_idx ON ivr_surveys (agent, answered_at);

-- Resolved tickets (tickets.survey_candidate_at) whose caller the dialer will call back.
-- 'dialing' is a lease: a call-back nobody completed goes back to 'pending' when it runs out.
CREATE TABLE survey_callbacks (
    ticket_id         bigint PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    caller_number     text NOT NULL,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'dialing', 'reached', 'answered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    survey_id         bigint REFERENCES ivr_surveys (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX survey_callbacks_due_idx ON survey_callbacks (next_attempt_at)
    WHERE state IN ('pending', 'dialing');
