-- Report rollups: hourly sums kept current by triggers as calls land, so a year's report reads
-- thousands of rows instead of millions. The arithmetic mirrors callcenter/kpis.py (Tally);
-- tests/integration/test_reports.py checks that both give the same figures.
-- Buckets are UTC hours; the report groups them into local days, hours and months.

-- The thresholds the rollups were computed with; callcenter.reports keeps them equal to the
-- settings (rebuilding the rollups when they change). '*' is the default for other queues.
CREATE TABLE report_thresholds (
    queue            text PRIMARY KEY,
    service_level_s  double precision NOT NULL,
    short_abandon_s  double precision NOT NULL
);
INSERT INTO report_thresholds VALUES ('*', 20, 5);

-- One row per hour, server and queue: calls (by start, first queue; '' = no queue) and
-- queue visits (by entering the queue).
CREATE TABLE report_hourly (
    bucket           timestamptz NOT NULL,
    server           text NOT NULL,
    queue            text NOT NULL,
    calls            integer NOT NULL DEFAULT 0,
    calls_queued     integer NOT NULL DEFAULT 0,
    calls_wait_s     double precision NOT NULL DEFAULT 0,
    calls_answered   integer NOT NULL DEFAULT 0,
    calls_talk_s     double precision NOT NULL DEFAULT 0,
    offered          integer NOT NULL DEFAULT 0,
    answered         integer NOT NULL DEFAULT 0,
    abandoned        integer NOT NULL DEFAULT 0,
    short_abandoned  integer NOT NULL DEFAULT 0,
    timeouts         integer NOT NULL DEFAULT 0,
    other_exits      integer NOT NULL DEFAULT 0,
    answered_in_sl   integer NOT NULL DEFAULT 0,
    answer_wait_n    integer NOT NULL DEFAULT 0,
    answer_wait_s    double precision NOT NULL DEFAULT 0,
    talk_n           integer NOT NULL DEFAULT 0,
    talk_s           double precision NOT NULL DEFAULT 0,
    hold_s           double precision NOT NULL DEFAULT 0,
    wait_n           integer NOT NULL DEFAULT 0,
    wait_s           double precision NOT NULL DEFAULT 0,
    wait_max         double precision,
    -- the wait distribution: [0,5) [5,10) [10,20) [20,30) [30,60) [60,120) [120,300) [300,∞) s
    w0 integer NOT NULL DEFAULT 0, w1 integer NOT NULL DEFAULT 0,
    w2 integer NOT NULL DEFAULT 0, w3 integer NOT NULL DEFAULT 0,
    w4 integer NOT NULL DEFAULT 0, w5 integer NOT NULL DEFAULT 0,
    w6 integer NOT NULL DEFAULT 0, w7 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, server, queue)
);

-- One row per hour, server, queue and agent: calls the agent answered first (by start, the
-- call's first queue), the visits they answered and the times they were rung.
CREATE TABLE report_agent_hourly (
    bucket           timestamptz NOT NULL,
    server           text NOT NULL,
    queue            text NOT NULL,
    agent            text NOT NULL,
    calls            integer NOT NULL DEFAULT 0,
    calls_queued     integer NOT NULL DEFAULT 0,
    calls_wait_s     double precision NOT NULL DEFAULT 0,
    calls_talk_s     double precision NOT NULL DEFAULT 0,
    answered         integer NOT NULL DEFAULT 0,
    answered_in_sl   integer NOT NULL DEFAULT 0,
    answer_wait_n    integer NOT NULL DEFAULT 0,
    answer_wait_s    double precision NOT NULL DEFAULT 0,
    talk_n           integer NOT NULL DEFAULT 0,
    talk_s           double precision NOT NULL DEFAULT 0,
    hold_s           double precision NOT NULL DEFAULT 0,
    rang             integer NOT NULL DEFAULT 0,
    missed           integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, server, queue, agent)
);

-- Requests (call-ticket attachments) per hour of the call's start, its first queue and the
-- ticket's category; and per agent who answered the call first. Two tables, because a table
-- keyed by both would have nearly a row per request. Only the fold writes them, never the
-- call writer's triggers, so the two never wait on (or deadlock over) each other's rows.
CREATE TABLE report_request_hourly (
    bucket    timestamptz NOT NULL,
    server    text NOT NULL,
    queue     text NOT NULL,
    category  text NOT NULL,
    n         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, server, queue, category)
);

CREATE TABLE report_request_agent_hourly (
    bucket    timestamptz NOT NULL,
    server    text NOT NULL,
    queue     text NOT NULL,
    agent     text NOT NULL,
    n         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, server, queue, agent)
);

-- What has been counted per call, so a call whose tickets change is recounted exactly.
CREATE TABLE report_request_calls (
    server    text NOT NULL,
    linkedid  text NOT NULL,
    category  text NOT NULL,
    bucket    timestamptz NOT NULL,
    queue     text NOT NULL,
    agent     text NOT NULL,
    n         integer NOT NULL,
    PRIMARY KEY (server, linkedid, category)
);

-- Calls whose requests must be recounted. Ticket transactions only append here (no lock on
-- shared rows, nothing to deadlock on); report_fold_requests() applies them.
CREATE TABLE report_request_dirty (
    id        bigserial PRIMARY KEY,
    server    text NOT NULL,
    linkedid  text NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX report_request_calls_bucket_idx ON report_request_calls (bucket);
CREATE INDEX agent_sessions_started_at_idx ON agent_sessions (started_at);
CREATE INDEX agent_pauses_started_at_idx ON agent_pauses (started_at);
-- Visits with no entry time are placed by a later time: the max-wait recount finds them here.
CREATE INDEX queue_visits_no_entry_idx ON queue_visits (queue) WHERE entered_at IS NULL;

-- ---- the definitions, once in SQL (mirrors of callcenter.kpis) ------------------------------

CREATE FUNCTION report_sl(q text) RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT service_level_s FROM report_thresholds WHERE queue = q),
        (SELECT service_level_s FROM report_thresholds WHERE queue = '*'),
        20)
$$;

CREATE FUNCTION report_short(q text) RETURNS double precision LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT short_abandon_s FROM report_thresholds WHERE queue = q),
        (SELECT short_abandon_s FROM report_thresholds WHERE queue = '*'),
        5)
$$;

-- NULL for an unknown wait. Not STRICT, so the planner inlines it (a call per row is slow).
CREATE FUNCTION report_wait_bin(w double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN w IS NULL THEN NULL WHEN w < 5 THEN 0 WHEN w < 10 THEN 1 WHEN w < 20 THEN 2
                WHEN w < 30 THEN 3 WHEN w < 60 THEN 4 WHEN w < 120 THEN 5 WHEN w < 300 THEN 6
                ELSE 7 END
$$;

-- When a visit counts: entering the queue, else the first time known about it.
CREATE FUNCTION report_visit_at(v queue_visits) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(v.entered_at, v.answered_at, v.left_at, v.ended_at)
$$;

-- ---- keeping the rollups current ------------------------------------------------------------

-- Adds (s = 1) or removes (s = -1) one call's contribution.
CREATE FUNCTION report_call_apply(c calls, s integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    b timestamptz := date_trunc('hour', c.started_at, 'UTC');
    q text := coalesce(c.queue, '');
    queued integer := (c.wait_s IS NOT NULL)::integer * s;
    ans boolean := c.outcome = 'answered';
BEGIN
    INSERT INTO report_hourly AS r
        (bucket, server, queue, calls, calls_queued, calls_wait_s, calls_answered, calls_talk_s)
    VALUES (b, c.server, q, s, queued, s * coalesce(c.wait_s, 0), ans::integer * s,
            CASE WHEN ans THEN s * coalesce(c.talk_s, 0) ELSE 0 END)
    ON CONFLICT (bucket, server, queue) DO UPDATE SET
        calls = r.calls + EXCLUDED.calls,
        calls_queued = r.calls_queued + EXCLUDED.calls_queued,
        calls_wait_s = r.calls_wait_s + EXCLUDED.calls_wait_s,
        calls_answered = r.calls_answered + EXCLUDED.calls_answered,
        calls_talk_s = r.calls_talk_s + EXCLUDED.calls_talk_s;
    IF ans AND c.agent IS NOT NULL THEN
        INSERT INTO report_agent_hourly AS r
            (bucket, server, queue, agent, calls, calls_queued, calls_wait_s, calls_talk_s)
        VALUES (b, c.server, q, c.agent, s, queued, s * coalesce(c.wait_s, 0),
                s * coalesce(c.talk_s, 0))
        ON CONFLICT (bucket, server, queue, agent) DO UPDATE SET
            calls = r.calls + EXCLUDED.calls,
            calls_queued = r.calls_queued + EXCLUDED.calls_queued,
            calls_wait_s = r.calls_wait_s + EXCLUDED.calls_wait_s,
            calls_talk_s = r.calls_talk_s + EXCLUDED.calls_talk_s;
    END IF;
END
$$;

-- Adds (s = 1) or removes (s = -1) one queue visit's contribution.
CREATE FUNCTION report_visit_apply(v queue_visits, s integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := report_visit_at(v);
    b timestamptz := date_trunc('hour', at, 'UTC');
    o text := coalesce(v.outcome, '');
    ans boolean := o = 'answered';
    waited boolean := v.wait_s IS NOT NULL;
    wb integer := coalesce(report_wait_bin(v.wait_s), -1);
    short boolean := o = 'abandoned' AND waited AND v.wait_s < report_short(v.queue);
    in_sl boolean := ans AND waited AND v.wait_s <= report_sl(v.queue);
    cur_max double precision;
BEGIN
    IF at IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO report_hourly AS r (
        bucket, server, queue, offered, answered, abandoned, short_abandoned, timeouts,
        other_exits, answered_in_sl, answer_wait_n, answer_wait_s, talk_n, talk_s, hold_s,
        wait_n, wait_s, wait_max, w0, w1, w2, w3, w4, w5, w6, w7)
    VALUES (
        b, v.server, v.queue, s, ans::integer * s,
        (o = 'abandoned' AND NOT short)::integer * s, short::integer * s,
        (o = 'timeout')::integer * s,
        (o NOT IN ('answered', 'abandoned', 'timeout'))::integer * s,
        in_sl::integer * s, (ans AND waited)::integer * s,
        CASE WHEN ans AND waited THEN s * v.wait_s ELSE 0 END,
        (ans AND v.talk_s IS NOT NULL)::integer * s,
        CASE WHEN ans THEN s * coalesce(v.talk_s, 0) ELSE 0 END,
        CASE WHEN ans THEN s * v.hold_s ELSE 0 END,
        waited::integer * s, s * coalesce(v.wait_s, 0),
        CASE WHEN s > 0 THEN v.wait_s END,
        (wb = 0)::integer * s, (wb = 1)::integer * s, (wb = 2)::integer * s,
        (wb = 3)::integer * s, (wb = 4)::integer * s, (wb = 5)::integer * s,
        (wb = 6)::integer * s, (wb = 7)::integer * s)
    ON CONFLICT (bucket, server, queue) DO UPDATE SET
        offered = r.offered + EXCLUDED.offered,
        answered = r.answered + EXCLUDED.answered,
        abandoned = r.abandoned + EXCLUDED.abandoned,
        short_abandoned = r.short_abandoned + EXCLUDED.short_abandoned,
        timeouts = r.timeouts + EXCLUDED.timeouts,
        other_exits = r.other_exits + EXCLUDED.other_exits,
        answered_in_sl = r.answered_in_sl + EXCLUDED.answered_in_sl,
        answer_wait_n = r.answer_wait_n + EXCLUDED.answer_wait_n,
        answer_wait_s = r.answer_wait_s + EXCLUDED.answer_wait_s,
        talk_n = r.talk_n + EXCLUDED.talk_n,
        talk_s = r.talk_s + EXCLUDED.talk_s,
        hold_s = r.hold_s + EXCLUDED.hold_s,
        wait_n = r.wait_n + EXCLUDED.wait_n,
        wait_s = r.wait_s + EXCLUDED.wait_s,
        wait_max = greatest(r.wait_max, EXCLUDED.wait_max),
        w0 = r.w0 + EXCLUDED.w0, w1 = r.w1 + EXCLUDED.w1, w2 = r.w2 + EXCLUDED.w2,
        w3 = r.w3 + EXCLUDED.w3, w4 = r.w4 + EXCLUDED.w4, w5 = r.w5 + EXCLUDED.w5,
        w6 = r.w6 + EXCLUDED.w6, w7 = r.w7 + EXCLUDED.w7
    RETURNING r.wait_max INTO cur_max;
    -- A maximum cannot be decremented: when the longest wait leaves, find the next one.
    IF s < 0 AND waited AND cur_max IS NOT NULL AND v.wait_s >= cur_max THEN
        UPDATE report_hourly SET wait_max = (
            SELECT max(x.wait_s) FROM queue_visits x
            WHERE x.server = v.server AND x.queue = v.queue AND x.wait_s IS NOT NULL
              AND ((x.entered_at >= b AND x.entered_at < b + interval '1 hour')
                   OR (x.entered_at IS NULL AND report_visit_at(x) >= b
                       AND report_visit_at(x) < b + interval '1 hour'))
              AND NOT (x.linkedid = v.linkedid AND x.seq = v.seq))
        WHERE bucket = b AND server = v.server AND queue = v.queue;
    END IF;
    IF ans AND v.agent IS NOT NULL THEN
        INSERT INTO report_agent_hourly AS r (
            bucket, server, queue, agent, answered, answered_in_sl, answer_wait_n,
            answer_wait_s, talk_n, talk_s, hold_s)
        VALUES (
            b, v.server, v.queue, v.agent, s, in_sl::integer * s, waited::integer * s,
            s * coalesce(v.wait_s, 0), (v.talk_s IS NOT NULL)::integer * s,
            s * coalesce(v.talk_s, 0), s * v.hold_s)
        ON CONFLICT (bucket, server, queue, agent) DO UPDATE SET
            answered = r.answered + EXCLUDED.answered,
            answered_in_sl = r.answered_in_sl + EXCLUDED.answered_in_sl,
            answer_wait_n = r.answer_wait_n + EXCLUDED.answer_wait_n,
            answer_wait_s = r.answer_wait_s + EXCLUDED.answer_wait_s,
            talk_n = r.talk_n + EXCLUDED.talk_n,
            talk_s = r.talk_s + EXCLUDED.talk_s,
            hold_s = r.hold_s + EXCLUDED.hold_s;
    END IF;
    IF jsonb_typeof(v.offers) = 'array' AND jsonb_array_length(v.offers) > 0 THEN
        INSERT INTO report_agent_hourly AS r (bucket, server, queue, agent, rang, missed)
        SELECT b, v.server, v.queue, o.agent, s * count(*),
               s * count(*) FILTER (WHERE o.result = 'no_answer')
        FROM jsonb_to_recordset(v.offers) AS o(agent text, result text)
        WHERE o.agent IS NOT NULL
        GROUP BY o.agent
        ORDER BY o.agent
        ON CONFLICT (bucket, server, queue, agent) DO UPDATE SET
            rang = r.rang + EXCLUDED.rang,
            missed = r.missed + EXCLUDED.missed;
    END IF;
END
$$;

CREATE FUNCTION report_calls_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_call_apply(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM report_call_apply(NEW, 1);
        -- A ticket attached before the call row landed is counted now.
        IF EXISTS (SELECT 1 FROM ticket_calls t
                   WHERE t.server = NEW.server AND t.linkedid = NEW.linkedid) THEN
            INSERT INTO report_request_dirty (server, linkedid) VALUES (NEW.server, NEW.linkedid);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION report_visits_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM report_visit_apply(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM report_visit_apply(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION report_ticket_calls_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO report_request_dirty (server, linkedid) VALUES (OLD.server, OLD.linkedid);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO report_request_dirty (server, linkedid) VALUES (NEW.server, NEW.linkedid);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION report_tickets_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_request_dirty (server, linkedid)
    SELECT server, linkedid FROM ticket_calls WHERE ticket_id = NEW.id;
    RETURN NULL;
END
$$;

-- The writer re-submits calls unchanged (retries, replays): only a real change is re-counted.
CREATE TRIGGER report_calls_ins_del AFTER INSERT OR DELETE ON calls
    FOR EACH ROW EXECUTE FUNCTION report_calls_trg();
CREATE TRIGGER report_calls_upd AFTER UPDATE ON calls FOR EACH ROW
    WHEN ((OLD.server, OLD.started_at, OLD.queue, OLD.agent, OLD.outcome, OLD.wait_s, OLD.talk_s)
          IS DISTINCT FROM
          (NEW.server, NEW.started_at, NEW.queue, NEW.agent, NEW.outcome, NEW.wait_s, NEW.talk_s))
    EXECUTE FUNCTION report_calls_trg();
CREATE TRIGGER report_visits_ins_del AFTER INSERT OR DELETE ON queue_visits
    FOR EACH ROW EXECUTE FUNCTION report_visits_trg();
CREATE TRIGGER report_visits_upd AFTER UPDATE ON queue_visits FOR EACH ROW
    WHEN ((OLD.server, OLD.queue, OLD.agent, OLD.outcome, OLD.entered_at, OLD.answered_at,
           OLD.left_at, OLD.ended_at, OLD.wait_s, OLD.talk_s, OLD.hold_s, OLD.offers)
          IS DISTINCT FROM
          (NEW.server, NEW.queue, NEW.agent, NEW.outcome, NEW.entered_at, NEW.answered_at,
           NEW.left_at, NEW.ended_at, NEW.wait_s, NEW.talk_s, NEW.hold_s, NEW.offers))
    EXECUTE FUNCTION report_visits_trg();
CREATE TRIGGER report_ticket_calls AFTER INSERT OR UPDATE OR DELETE ON ticket_calls
    FOR EACH ROW EXECUTE FUNCTION report_ticket_calls_trg();
CREATE TRIGGER report_tickets AFTER UPDATE OF category ON tickets
    FOR EACH ROW WHEN (OLD.category IS DISTINCT FROM NEW.category)
    EXECUTE FUNCTION report_tickets_trg();

-- ---- requests: folding the marked calls -------------------------------------------------------

-- Recounts the requests of the marked calls that have landed; returns how many calls.
CREATE FUNCTION report_fold_requests() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    srv text[];
    lid text[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('report_fold_requests'));
    -- Marks of calls not in the table yet stay until the call row lands (or a month passes).
    DELETE FROM report_request_dirty WHERE marked_at < now() - interval '31 days';
    WITH taken AS (
        DELETE FROM report_request_dirty d USING calls c
        WHERE c.server = d.server AND c.linkedid = d.linkedid
        RETURNING d.server, d.linkedid
    )
    SELECT array_agg(server), array_agg(linkedid) INTO srv, lid
    FROM (SELECT DISTINCT server, linkedid FROM taken) k;
    IF srv IS NULL THEN
        RETURN 0;
    END IF;
    WITH old AS (
        DELETE FROM report_request_calls r USING unnest(srv, lid) AS k(server, linkedid)
        WHERE r.server = k.server AND r.linkedid = k.linkedid
        RETURNING r.bucket, r.server, r.queue, r.agent, r.category, r.n
    ), by_agent AS (
        INSERT INTO report_request_agent_hourly AS h (bucket, server, queue, agent, n)
        SELECT bucket, server, queue, agent, -sum(n) FROM old
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, server, queue, agent) DO UPDATE SET n = h.n + EXCLUDED.n
    )
    INSERT INTO report_request_hourly AS h (bucket, server, queue, category, n)
    SELECT bucket, server, queue, category, -sum(n) FROM old
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, server, queue, category) DO UPDATE SET n = h.n + EXCLUDED.n;
    INSERT INTO report_request_calls (server, linkedid, category, bucket, queue, agent, n)
    SELECT c.server, c.linkedid, t.category, date_trunc('hour', c.started_at, 'UTC'),
           coalesce(c.queue, ''), coalesce(c.agent, ''), count(*)
    FROM unnest(srv, lid) AS k(server, linkedid)
    JOIN calls c ON c.server = k.server AND c.linkedid = k.linkedid
    JOIN ticket_calls tc ON tc.server = c.server AND tc.linkedid = c.linkedid
    JOIN tickets t ON t.id = tc.ticket_id
    GROUP BY 1, 2, 3, 4, 5, 6;
    WITH new AS (
        SELECT r.* FROM report_request_calls r JOIN unnest(srv, lid) AS k(server, linkedid)
          ON r.server = k.server AND r.linkedid = k.linkedid
    ), by_agent AS (
        INSERT INTO report_request_agent_hourly AS h (bucket, server, queue, agent, n)
        SELECT bucket, server, queue, agent, sum(n) FROM new
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, server, queue, agent) DO UPDATE SET n = h.n + EXCLUDED.n
    )
    INSERT INTO report_request_hourly AS h (bucket, server, queue, category, n)
    SELECT bucket, server, queue, category, sum(n) FROM new
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, server, queue, category) DO UPDATE SET n = h.n + EXCLUDED.n;
    RETURN cardinality(srv);
END
$$;

-- ---- rebuilding from the base tables ----------------------------------------------------------

-- Recomputes every rollup from calls, visits and tickets: after a bulk load, a change of
-- thresholds, or a TRUNCATE. Takes the rollups' locks so triggers of concurrent writers wait.
CREATE FUNCTION report_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE report_hourly, report_agent_hourly, report_request_hourly,
        report_request_agent_hourly, report_request_calls IN EXCLUSIVE MODE;
    -- Hash aggregates over millions of rows instead of sorts spilling to disk (the planner
    -- guesses 100 offers per visit); JIT costs more to compile than it saves here.
    PERFORM set_config('work_mem', '256MB', true);
    PERFORM set_config('enable_sort', 'off', true);
    PERFORM set_config('jit', 'off', true);
    DELETE FROM report_hourly;
    DELETE FROM report_agent_hourly;
    DELETE FROM report_request_hourly;
    DELETE FROM report_request_agent_hourly;
    DELETE FROM report_request_calls;
    DELETE FROM report_request_dirty d USING calls c
        WHERE c.server = d.server AND c.linkedid = d.linkedid;

    -- Each source is aggregated on its own, then the small results are merged: one insert,
    -- no upserts (a conflict per row costs more than the aggregation).
    INSERT INTO report_hourly (
        bucket, server, queue, calls, calls_queued, calls_wait_s, calls_answered, calls_talk_s,
        offered, answered, abandoned, short_abandoned, timeouts, other_exits, answered_in_sl,
        answer_wait_n, answer_wait_s, talk_n, talk_s, hold_s, wait_n, wait_s, wait_max,
        w0, w1, w2, w3, w4, w5, w6, w7)
    SELECT bucket, server, queue, sum(calls), sum(calls_queued), sum(calls_wait_s),
        sum(calls_answered), sum(calls_talk_s), sum(offered), sum(answered), sum(abandoned),
        sum(short_abandoned), sum(timeouts), sum(other_exits), sum(answered_in_sl),
        sum(answer_wait_n), sum(answer_wait_s), sum(talk_n), sum(talk_s), sum(hold_s),
        sum(wait_n), sum(wait_s), max(wait_max), sum(w0), sum(w1), sum(w2), sum(w3), sum(w4),
        sum(w5), sum(w6), sum(w7)
    FROM (
        SELECT date_trunc('hour', x.at, 'UTC') AS bucket, x.server, x.queue,
            0 AS calls, 0 AS calls_queued, 0 AS calls_wait_s, 0 AS calls_answered,
            0 AS calls_talk_s,
            count(*) AS offered,
            count(*) FILTER (WHERE x.ans) AS answered,
            count(*) FILTER (WHERE x.outcome = 'abandoned' AND NOT x.short) AS abandoned,
            count(*) FILTER (WHERE x.short) AS short_abandoned,
            count(*) FILTER (WHERE x.outcome = 'timeout') AS timeouts,
            count(*) FILTER (WHERE x.outcome IS NULL
                             OR x.outcome NOT IN ('answered', 'abandoned', 'timeout'))
                AS other_exits,
            count(*) FILTER (WHERE x.ans AND x.wait_s <= x.sl) AS answered_in_sl,
            count(*) FILTER (WHERE x.ans AND x.wait_s IS NOT NULL) AS answer_wait_n,
            coalesce(sum(x.wait_s) FILTER (WHERE x.ans), 0) AS answer_wait_s,
            count(*) FILTER (WHERE x.ans AND x.talk_s IS NOT NULL) AS talk_n,
            coalesce(sum(x.talk_s) FILTER (WHERE x.ans), 0) AS talk_s,
            coalesce(sum(x.hold_s) FILTER (WHERE x.ans), 0) AS hold_s,
            count(x.wait_s) AS wait_n, coalesce(sum(x.wait_s), 0) AS wait_s,
            max(x.wait_s) AS wait_max,
            count(*) FILTER (WHERE x.wb = 0) AS w0, count(*) FILTER (WHERE x.wb = 1) AS w1,
            count(*) FILTER (WHERE x.wb = 2) AS w2, count(*) FILTER (WHERE x.wb = 3) AS w3,
            count(*) FILTER (WHERE x.wb = 4) AS w4, count(*) FILTER (WHERE x.wb = 5) AS w5,
            count(*) FILTER (WHERE x.wb = 6) AS w6, count(*) FILTER (WHERE x.wb = 7) AS w7
        FROM (
            SELECT v.server, v.queue, v.outcome, v.wait_s, v.talk_s, v.hold_s,
                   report_visit_at(v) AS at, v.outcome = 'answered' AS ans,
                   report_wait_bin(v.wait_s) AS wb, t.sl,
                   coalesce(v.outcome = 'abandoned' AND v.wait_s < t.short, false) AS short
            FROM queue_visits v
            LEFT JOIN report_thresholds tq ON tq.queue = v.queue
            LEFT JOIN report_thresholds td ON td.queue = '*'
            CROSS JOIN LATERAL (
                SELECT coalesce(tq.service_level_s, td.service_level_s, 20) AS sl,
                       coalesce(tq.short_abandon_s, td.short_abandon_s, 5) AS short
            ) t
            OFFSET 0  -- each row's values once, not once per aggregate that uses them
        ) x
        WHERE x.at IS NOT NULL
        GROUP BY 1, 2, 3
        UNION ALL
        SELECT date_trunc('hour', started_at, 'UTC'), server, coalesce(queue, ''), count(*),
            count(wait_s), coalesce(sum(wait_s), 0), count(*) FILTER (WHERE outcome = 'answered'),
            coalesce(sum(talk_s) FILTER (WHERE outcome = 'answered'), 0),
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0, 0, 0, 0, 0, 0
        FROM calls GROUP BY 1, 2, 3
    ) u
    GROUP BY 1, 2, 3;

    INSERT INTO report_agent_hourly (
        bucket, server, queue, agent, calls, calls_queued, calls_wait_s, calls_talk_s, answered,
        answered_in_sl, answer_wait_n, answer_wait_s, talk_n, talk_s, hold_s, rang, missed)
    SELECT bucket, server, queue, agent, sum(calls), sum(calls_queued), sum(calls_wait_s),
        sum(calls_talk_s), sum(answered), sum(answered_in_sl), sum(answer_wait_n),
        sum(answer_wait_s), sum(talk_n), sum(talk_s), sum(hold_s), sum(rang), sum(missed)
    FROM (
        SELECT date_trunc('hour', report_visit_at(v), 'UTC') AS bucket, v.server, v.queue,
            v.agent, 0 AS calls, 0 AS calls_queued, 0 AS calls_wait_s, 0 AS calls_talk_s,
            count(*) AS answered, count(*) FILTER (WHERE v.wait_s <= t.sl) AS answered_in_sl,
            count(v.wait_s) AS answer_wait_n, coalesce(sum(v.wait_s), 0) AS answer_wait_s,
            count(v.talk_s) AS talk_n, coalesce(sum(v.talk_s), 0) AS talk_s,
            sum(v.hold_s) AS hold_s, 0 AS rang, 0 AS missed
        FROM queue_visits v
        LEFT JOIN report_thresholds tq ON tq.queue = v.queue
        LEFT JOIN report_thresholds td ON td.queue = '*'
        CROSS JOIN LATERAL (SELECT coalesce(tq.service_level_s, td.service_level_s, 20) AS sl) t
        WHERE v.outcome = 'answered' AND v.agent IS NOT NULL AND report_visit_at(v) IS NOT NULL
        GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT date_trunc('hour', report_visit_at(v), 'UTC'), v.server, v.queue, o.agent,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*),
            count(*) FILTER (WHERE o.result = 'no_answer')
        FROM queue_visits v,
             jsonb_to_recordset(CASE WHEN jsonb_typeof(v.offers) = 'array' THEN v.offers
                                     ELSE '[]' END) AS o(agent text, result text)
        WHERE o.agent IS NOT NULL AND report_visit_at(v) IS NOT NULL
        GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT date_trunc('hour', started_at, 'UTC'), server, coalesce(queue, ''), agent,
            count(*), count(wait_s), coalesce(sum(wait_s), 0), coalesce(sum(talk_s), 0),
            0, 0, 0, 0, 0, 0, 0, 0, 0
        FROM calls WHERE outcome = 'answered' AND agent IS NOT NULL
        GROUP BY 1, 2, 3, 4
    ) u
    GROUP BY 1, 2, 3, 4;

    INSERT INTO report_request_calls (server, linkedid, category, bucket, queue, agent, n)
    SELECT c.server, c.linkedid, t.category, date_trunc('hour', c.started_at, 'UTC'),
           coalesce(c.queue, ''), coalesce(c.agent, ''), count(*)
    FROM ticket_calls tc
    JOIN calls c ON c.server = tc.server AND c.linkedid = tc.linkedid
    JOIN tickets t ON t.id = tc.ticket_id
    GROUP BY 1, 2, 3, 4, 5, 6;

    INSERT INTO report_request_hourly (bucket, server, queue, category, n)
    SELECT bucket, server, queue, category, sum(n) FROM report_request_calls GROUP BY 1, 2, 3, 4;

    INSERT INTO report_request_agent_hourly (bucket, server, queue, agent, n)
    SELECT bucket, server, queue, agent, sum(n) FROM report_request_calls GROUP BY 1, 2, 3, 4;
END
$$;

CREATE FUNCTION report_truncate_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_rebuild();
    RETURN NULL;
END
$$;

CREATE TRIGGER report_calls_truncate AFTER TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION report_truncate_trg();
CREATE TRIGGER report_visits_truncate AFTER TRUNCATE ON queue_visits
    FOR EACH STATEMENT EXECUTE FUNCTION report_truncate_trg();
CREATE TRIGGER report_ticket_calls_truncate AFTER TRUNCATE ON ticket_calls
    FOR EACH STATEMENT EXECUTE FUNCTION report_truncate_trg();
