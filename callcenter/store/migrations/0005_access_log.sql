-- The access log: every read of personal data through the API (a ticket, a pop, the ticket
-- list…) by whom, allowed or not, for a supervisor to audit (GET /api/access-log). KVKK
-- retention deletes lines older than the retention period.
CREATE TABLE access_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    bigint,                     -- api_tokens.id (no foreign key: tokens may go)
    principal   text NOT NULL DEFAULT '',   -- the token's name
    role        text NOT NULL DEFAULT '',
    action      text NOT NULL,              -- ticket.read, tickets.list, pop.read…
    target      text NOT NULL DEFAULT '',   -- the reference, linkedid or number asked for
    allowed     boolean NOT NULL,
    status      integer NOT NULL,           -- the HTTP status answered
    peer        text NOT NULL DEFAULT ''    -- the client address as the service saw it
);

CREATE INDEX access_log_at_idx ON access_log (at);
CREATE INDEX access_log_principal_idx ON access_log (principal, id);
