-- The agent's desk: browser sessions (an HttpOnly cookie instead of a token in the page),
-- one-time login links, and agents' call-backs of abandoned callers.

-- A browser session: the cookie holds a random secret; its SHA-256 is stored here. It acts
-- as the token it was opened with, and ends when that token is revoked or it expires.
CREATE TABLE web_sessions (
    id            bigserial PRIMARY KEY,
    session_hash  text NOT NULL UNIQUE,
    token_id      bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_sessions_expires_at_idx ON web_sessions (expires_at);

-- A one-time login link (/agent/login?code=…): used once, before it expires, for a session.
CREATE TABLE login_links (
    id            bigserial PRIMARY KEY,
    code_hash     text NOT NULL UNIQUE,
    token_id      bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

-- An agent called back a caller who hung up waiting (AMI Originate: the agent's phone, then
-- the citizen), recorded against the abandoned call and, if one is open, the caller's ticket.
CREATE TABLE agent_callbacks (
    id               bigserial PRIMARY KEY,
    server           text NOT NULL,
    linkedid         text NOT NULL,             -- the abandoned call
    caller_number    text NOT NULL,             -- as the call log has it (calls.caller_number)
    agent            text NOT NULL,
    interface        text NOT NULL,
    ticket_reference text,
    action_id        text,
    result           text NOT NULL DEFAULT 'originated'
                     CHECK (result IN ('originated', 'failed')),
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_callbacks_number_idx ON agent_callbacks (caller_number, created_at);
CREATE INDEX agent_callbacks_call_idx ON agent_callbacks (server, linkedid);
CREATE INDEX agent_callbacks_created_at_idx ON agent_callbacks (created_at);  -- retention
CREATE INDEX login_links_expires_at_idx ON login_links (expires_at);
