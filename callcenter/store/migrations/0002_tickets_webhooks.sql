-- API tokens, agents' dispositions, tickets, and the webhook outbox with its delivery log.
-- Times are timestamptz (UTC). Phone numbers are stored in E.164 when they can be parsed.

-- Tokens are stored as the SHA-256 of a high-entropy random token: a leaked table grants nothing.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin', 'integration')),
    token_hash    text NOT NULL UNIQUE,
    prefix        text NOT NULL,                -- first characters, to recognise a token in lists
    agent         text,                         -- queue member name (agent tokens)
    interface     text,                         -- queue member interface (agent tokens)
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- One counter per year for the public references (2026-004217); the row lock serialises them.
CREATE TABLE ticket_sequences (
    year          integer PRIMARY KEY,
    last_value    integer NOT NULL
);

CREATE TABLE tickets (
    id                  bigserial PRIMARY KEY,
    reference           text NOT NULL UNIQUE,
    category            text NOT NULL,
    status              text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'in_progress', 'resolved', 'rejected')),
    channel             text NOT NULL,          -- phone, ivr, callback, api…
    caller_number       text,                   -- E.164 if parseable, else as received
    caller_name         text,
    note                text NOT NULL DEFAULT '',
    fields              jsonb NOT NULL DEFAULT '{}',
    agent               text,
    external_id         text,                   -- the ticketing backend's own id, once known
    requests            integer NOT NULL DEFAULT 1,  -- requests merged into this ticket
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    -- Set when the ticket is resolved: the feedback survey (IVR) may call the citizen back.
    survey_candidate_at timestamptz
);

-- The de-duplication lookup: same number, same category, still open.
CREATE INDEX tickets_open_number_category_idx ON tickets (caller_number, category, created_at)
    WHERE status IN ('open', 'in_progress');
CREATE INDEX tickets_created_at_idx ON tickets (created_at);
CREATE INDEX tickets_survey_idx ON tickets (survey_candidate_at)
    WHERE survey_candidate_at IS NOT NULL;

-- Calls attached to a ticket; no foreign key to calls: the call row is written asynchronously.
CREATE TABLE ticket_calls (
    ticket_id     bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    server        text NOT NULL,
    linkedid      text NOT NULL,
    channel       text NOT NULL,
    attached_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, server, linkedid)
);

CREATE INDEX ticket_calls_call_idx ON ticket_calls (server, linkedid);

-- The ticket's history: creation, merged requests, status changes (who, when, why).
CREATE TABLE ticket_events (
    id            bigserial PRIMARY KEY,
    ticket_id     bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL,                -- created, attached, status
    status        text,
    source        text NOT NULL,                -- agent name, ivr, backend, api…
    note          text NOT NULL DEFAULT ''
);

CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, id);

-- What the agent marked at the end of a call: information given, or a request (a ticket).
CREATE TABLE call_dispositions (
    server        text NOT NULL,
    linkedid      text NOT NULL,
    agent         text NOT NULL DEFAULT '',
    kind          text NOT NULL CHECK (kind IN ('info', 'request')),
    category      text,
    note          text NOT NULL DEFAULT '',
    ticket_id     bigint REFERENCES tickets (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server, linkedid, agent)
);

CREATE INDEX call_dispositions_created_at_idx ON call_dispositions (created_at);

-- The outbox: one row per event, written in the transaction that caused it.
CREATE TABLE webhook_outbox (
    id            bigserial PRIMARY KEY,
    msg_id        text NOT NULL UNIQUE,         -- the webhook-id header, stable across retries
    event_type    text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    fanned_out    boolean NOT NULL DEFAULT false
);

CREATE INDEX webhook_outbox_pending_idx ON webhook_outbox (id) WHERE NOT fanned_out;

-- State kept per configured subscription (by name): disabled after a 410 Gone.
CREATE TABLE webhook_subscriptions (
    name            text PRIMARY KEY,
    url             text NOT NULL,
    disabled_at     timestamptz,
    disabled_reason text
);

-- One delivery per (event, subscription); the worker leases it by moving next_attempt_at.
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    outbox_id       bigint NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    subscription    text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts        integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (outbox_id, subscription)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_state_idx ON webhook_deliveries (state, id);

-- The delivery log: every attempt with its answer.
CREATE TABLE webhook_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    at              timestamptz NOT NULL,
    status          integer,                    -- HTTP status, NULL if no answer
    error           text,
    duration_ms     double precision,
    response        text NOT NULL DEFAULT ''    -- the first bytes of the answer
);

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- Webhooks received from the ticketing backend, so a retried one is applied once.
CREATE TABLE webhook_inbox (
    msg_id        text PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    event_type    text,
    result        text NOT NULL DEFAULT ''
);
