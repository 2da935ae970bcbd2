-- Call log, queue visits, agent sessions and pauses, and snapshots of calls in progress.
-- Times are timestamptz (UTC); durations are seconds as double precision.

CREATE TABLE calls (
    server          text NOT NULL,
    linkedid        text NOT NULL,
    uniqueid        text NOT NULL,
    caller_number   text,
    caller_name     text,
    dialled         text,
    queue           text,              -- first queue entered (or refused by)
    agent           text,              -- first agent who answered
    outcome         text NOT NULL,
    hangup_by       text,
    hangup_cause    integer,
    started_at      timestamptz NOT NULL,
    entered_at      timestamptz,       -- entered the first queue
    answered_at     timestamptz,       -- first answer
    ended_at        timestamptz,
    wait_s          double precision,
    talk_s          double precision,
    hold_s          double precision NOT NULL DEFAULT 0,
    ivr_path        text[] NOT NULL DEFAULT '{}',
    ivr_digits      text NOT NULL DEFAULT '',
    ivr_result      text,
    ivr_vars        jsonb NOT NULL DEFAULT '{}',
    reconstructed   boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server, linkedid)
);

CREATE INDEX calls_ended_at_idx ON calls (ended_at);
CREATE INDEX calls_queue_entered_at_idx ON calls (queue, entered_at);
CREATE INDEX calls_caller_number_started_at_idx ON calls (caller_number, started_at);

-- One row per stay of the caller in one queue; seq is 1 for the first visit of the call.
CREATE TABLE queue_visits (
    server          text NOT NULL,
    linkedid        text NOT NULL,
    seq             integer NOT NULL,
    queue           text NOT NULL,
    agent           text,
    interface       text,
    outcome         text,
    hangup_by       text,
    position        integer,
    entered_at      timestamptz,
    answered_at     timestamptz,
    left_at         timestamptz,       -- left the waiting line
    ended_at        timestamptz,
    wait_s          double precision,
    talk_s          double precision,
    hold_s          double precision NOT NULL DEFAULT 0,
    ring_s          double precision,
    transferred_to  text,
    -- [{agent, interface, result, ring_s, rang_at, ended_at}] in the order the agents were rung
    offers          jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (server, linkedid, seq),
    FOREIGN KEY (server, linkedid) REFERENCES calls (server, linkedid) ON DELETE CASCADE
);

CREATE INDEX queue_visits_queue_entered_at_idx ON queue_visits (queue, entered_at);
CREATE INDEX queue_visits_agent_entered_at_idx ON queue_visits (agent, entered_at);

CREATE TABLE agent_sessions (
    server          text NOT NULL,
    interface       text NOT NULL,
    queue           text NOT NULL,
    started_at      timestamptz NOT NULL,
    agent           text NOT NULL,
    ended_at        timestamptz,
    static          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (server, interface, queue, started_at)
);

CREATE INDEX agent_sessions_agent_started_at_idx ON agent_sessions (agent, started_at);

CREATE TABLE agent_pauses (
    server          text NOT NULL,
    interface       text NOT NULL,
    queue           text NOT NULL,
    started_at      timestamptz NOT NULL,
    agent           text NOT NULL,
    reason          text NOT NULL DEFAULT '',
    ended_at        timestamptz,
    duration_s      double precision,
    PRIMARY KEY (server, interface, queue, started_at)
);

CREATE INDEX agent_pauses_agent_started_at_idx ON agent_pauses (agent, started_at);

-- Calls still in progress, so a restarted service can resume them; deleted when the call ends.
CREATE TABLE open_calls (
    server          text NOT NULL,
    linkedid        text NOT NULL,
    state           jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server, linkedid)
);
