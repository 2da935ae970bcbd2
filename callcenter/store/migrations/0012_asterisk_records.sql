-- Asterisk's own records, written by Asterisk itself into the service's database, read by
-- the reconciliation after an AMI gap (callcenter/reconcile.py, asterisk_conf/README.md):
--   queue_log  through res_config_pgsql realtime (extconfig.conf: queue_log => pgsql,...);
--   cel        through cel_pgsql (cel_pgsql.conf).
-- Column names are the ones those modules write. Times are UTC (queue_log_realtime_use_gmt
-- and cel_pgsql's usegmtime are on in asterisk_conf/), stored without a zone as Asterisk
-- sends them. Asterisk needs only INSERT on these two tables (see asterisk_conf/README.md).
-- IF NOT EXISTS: Compose also runs this file when PostgreSQL is first initialised
-- (docker/compose.yaml), so that the tables are there before Asterisk first writes to them.

CREATE TABLE IF NOT EXISTS queue_log (
    id          bigserial PRIMARY KEY,
    time        timestamp NOT NULL,
    callid      text NOT NULL DEFAULT '',
    queuename   text NOT NULL DEFAULT '',
    agent       text NOT NULL DEFAULT '',
    event       text NOT NULL DEFAULT '',
    data1       text NOT NULL DEFAULT '',
    data2       text NOT NULL DEFAULT '',
    data3       text NOT NULL DEFAULT '',
    data4       text NOT NULL DEFAULT '',
    data5       text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queue_log_time_idx ON queue_log (time);
CREATE INDEX IF NOT EXISTS queue_log_callid_idx ON queue_log (callid);

CREATE TABLE IF NOT EXISTS cel (
    id          bigserial PRIMARY KEY,
    eventtype   text NOT NULL,
    eventtime   timestamp NOT NULL,
    userdeftype text NOT NULL DEFAULT '',
    cid_name    text NOT NULL DEFAULT '',
    cid_num     text NOT NULL DEFAULT '',
    cid_ani     text NOT NULL DEFAULT '',
    cid_rdnis   text NOT NULL DEFAULT '',
    cid_dnid    text NOT NULL DEFAULT '',
    exten       text NOT NULL DEFAULT '',
    context     text NOT NULL DEFAULT '',
    channame    text NOT NULL DEFAULT '',
    appname     text NOT NULL DEFAULT '',
    appdata     text NOT NULL DEFAULT '',
    amaflags    integer NOT NULL DEFAULT 0,
    accountcode text NOT NULL DEFAULT '',
    peeraccount text NOT NULL DEFAULT '',
    uniqueid    text NOT NULL DEFAULT '',
    linkedid    text NOT NULL DEFAULT '',
    userfield   text NOT NULL DEFAULT '',
    peer        text NOT NULL DEFAULT '',
    extra       text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cel_eventtime_idx ON cel (eventtime);
CREATE INDEX IF NOT EXISTS cel_linkedid_idx ON cel (linkedid);
