-- 10_schedule_errors: every bad input of the schedules issue gets a clear error (SQLSTATE,
-- lower-case message, hint) and stores nothing: malformed specs, unknown zones, templates
-- without a kind, duplicate names, sweeps that are not valid SQL, and the other arguments.
-- sched_check() runs a statement, shows the error, and compares the tables before and after.
\pset null '(null)'
SET client_min_messages = warning;
SET timezone = 'UTC';
DELETE FROM dispatch.fires;
DELETE FROM dispatch.schedules;
\i sql/include/try.sql

CREATE OR REPLACE FUNCTION public.sched_snapshot() RETURNS text LANGUAGE sql AS $$
  SELECT format('schedules=%s fires=%s tasks=%s tenants=%s rows=%s',
    (SELECT count(*) FROM dispatch.schedules), (SELECT count(*) FROM dispatch.fires),
    (SELECT count(*) FROM dispatch.tasks), (SELECT count(*) FROM dispatch.tenants),
    md5(coalesce((SELECT string_agg(s::text, ',' ORDER BY schedule_id) FROM dispatch.schedules s), '')))
$$;
CREATE OR REPLACE FUNCTION public.sched_check(stmt text, OUT error text, OUT nothing_stored boolean)
LANGUAGE plpgsql AS $$
DECLARE before text := public.sched_snapshot();
BEGIN
  error := public.try(stmt);
  nothing_stored := public.sched_snapshot() = before;
END $$;

-- One good schedule, for the duplicate-name cases.
SELECT dispatch.schedule('taken', '@daily', '{"kind": "x"}', tenant => 't10', starts_at => '2030-01-01') IS NOT NULL AS created;

-- Malformed specs (22023, the hint lists the accepted forms; shown once in full).
\set VERBOSITY default
SELECT dispatch.schedule('s', '61 * * * *', '{"kind": "x"}', tenant => 't10b');
\set VERBOSITY terse
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', 'cron(0 9 * * MON *)', '{"kind": "x"}', tenant => 't10b')$$);
SELECT regexp_replace(error, ' \(hint: .*', '') AS error, nothing_stored FROM (VALUES
  ('61 * * * *'), ('cron(0 9 * * MON *)'), ('rate(0 days)'), ('rate(-1 hour)'), ('rate(1.5 hours)'),
  ('*/0 * * * *'), ('0 9 * * MONDAY'), ('@reboot'), ('at 2026-02-29T09:00'), (''), ('  ')) AS v(spec),
  LATERAL public.sched_check(format($$SELECT dispatch.schedule('s', %L, '{"kind": "x"}', tenant => 't10b')$$, spec));
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', NULL, '{"kind": "x"}', tenant => 't10b')$$);
-- A spec that parses but never fires again.
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', 'at 2020-01-01T00:00:00Z', '{"kind": "x"}', tenant => 't10b')$$);
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', '0 0 30 2 *', '{"kind": "x"}', tenant => 't10b')$$);
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', starts_at => '2030-01-01 01:00', ends_at => '2030-01-01 02:00')$$);

-- Unknown time zones (22023).
SELECT regexp_replace(error, ' \(hint: .*', '') AS error, nothing_stored FROM (VALUES
  ('Mars/Olympus_Mons'), ('PST'), ('CEST'), ('UTC+3'), ('EST5EDT,M3.2.0,M11.1.0'), ('right/UTC'), ('')) AS v(tz),
  LATERAL public.sched_check(format($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', timezone => %L)$$, tz));

-- Task templates without a kind, or otherwise not a task (22023; NULL 22004).
SELECT error, nothing_stored FROM (VALUES
  ('{}'), ('{"payload": {"a": 1}}'), ('{"kind": ""}'), ('{"kind": 5}'), ('{"kind": null}'), ('[]'),
  ('"report"'), ('{"kind": "x", "colour": "red"}'), ('{"kind": "x", "tenant": "t"}'),
  ('{"kind": "x", "record_ref": "r"}'), ('{"kind": "x", "run_id": "00000000-0000-0000-0000-000000000000"}'),
  ('{"kind": "x", "priority": "urgent"}'), ('{"kind": "x", "deadline": "soon"}'),
  ('{"kind": "x", "deadline": "-1 hour"}'), ('{"kind": "x", "deadline": "2030-01-01"}'),
  ('{"kind": "x", "est_duration": 60}'), ('{"kind": "x", "max_attempts": "many"}'),
  ('{"kind": "x", "max_attempts": 0}'), ('{"kind": "x", "requires": "python"}'),
  ('{"kind": "x", "requires": ["python", null]}'), ('{"kind": "x", "sensitivity": -1}')) AS v(task),
  LATERAL public.sched_check(format($$SELECT dispatch.schedule('s', '@daily', %L, tenant => 't10b')$$, task));
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', '@daily', NULL, tenant => 't10b')$$);

-- Duplicate names (42710): among live schedules of the tenant, by schedule() and by INSERT.
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('taken', '@hourly', '{"kind": "y"}', tenant => 't10', starts_at => '2030-01-01')$$);
SELECT error, nothing_stored FROM public.sched_check($$INSERT INTO dispatch.schedules (name, tenant, spec, task) VALUES ('taken', 't10', '@hourly', '{"kind": "y"}')$$);
SELECT dispatch.schedule('other', '@daily', '{"kind": "x"}', tenant => 't10', starts_at => '2030-01-01') IS NOT NULL AS created;
SELECT error, nothing_stored FROM public.sched_check($$UPDATE dispatch.schedules SET name = 'taken' WHERE tenant = 't10' AND name = 'other'$$);
-- The same name in another tenant is another schedule.
SELECT error FROM public.sched_check($$SELECT dispatch.schedule('taken', '@daily', '{"kind": "x"}', tenant => 't10-other', starts_at => '2030-01-01')$$);

-- Sweeps that are not one valid SELECT its owner may run.
CREATE TABLE public.sched_accounts (id int, name text);
CREATE TABLE public.sched_hidden (id int);
CREATE ROLE regress_sched_owner IN ROLE dispatch_admin;
GRANT SELECT ON public.sched_accounts TO regress_sched_owner;
SET ROLE regress_sched_owner;
SELECT error, nothing_stored FROM (VALUES
  ('SELEC id FROM sched_accounts'),
  ('SELECT id FROM sched_accounts WHERE'),
  ('SELECT id FROM sched_accounts; SELECT 2'),
  ('DELETE FROM sched_accounts'),
  ('WITH d AS (DELETE FROM sched_accounts RETURNING id) SELECT id FROM d'),
  ('SELECT id INTO sched_copy FROM sched_accounts'),
  ('SELECT id FROM no_such_table'),
  ('SELECT no_such_column FROM sched_accounts'),
  ('SELECT id FROM sched_hidden'),
  ('SELECT id FROM sched_accounts FOR UPDATE'),
  ('EXPLAIN SELECT id FROM sched_accounts'),
  (''),
  ('-- nothing but a comment')) AS v(q),
  LATERAL public.sched_check(format($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', sweep => %L)$$, q));
-- A placeholder must name a column of the query (42703); a sweep's template may carry a
-- dispatch_key and placeholders, an ordinary template no dispatch_key.
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x", "payload": {"who": "{{nobody}}"}}', tenant => 't10b', sweep => 'SELECT id, name FROM sched_accounts')$$);
SELECT error, nothing_stored FROM public.sched_check($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x", "dispatch_key": "k"}', tenant => 't10b')$$);
-- The syntax error points into the sweep query.
\set VERBOSITY default
SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', sweep => 'SELECT id FROM sched_accounts WHERE');
\set VERBOSITY terse
-- A valid one is stored with the caller's search_path, and runs as the caller.
SET search_path = public;
SELECT dispatch.schedule('s', '@daily', '{"kind": "{{name}}", "priority": "{{name}}", "dispatch_key": "acct:{{id}}"}',
                         tenant => 't10s', starts_at => '2030-01-01',
                         sweep => 'SELECT id, name FROM sched_accounts') IS NOT NULL AS created;
RESET search_path;
RESET ROLE;
SELECT owner_role, sweep_search_path FROM dispatch.schedules WHERE tenant = 't10s';

-- The other arguments (22023; NULL where a value is needed 22004).
SELECT error, nothing_stored FROM (VALUES
  ($$SELECT dispatch.schedule('', '@daily', '{"kind": "x"}', tenant => 't10b')$$),
  ($$SELECT dispatch.schedule(NULL, '@daily', '{"kind": "x"}', tenant => 't10b')$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => '')$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => NULL)$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', concurrency => 'sometimes')$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', jitter => '-1 second')$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', jitter => '2 days')$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', starts_at => '2030-01-02', ends_at => '2030-01-01')$$),
  ($$SELECT dispatch.schedule('s', '@daily', '{"kind": "x"}', tenant => 't10b', cost_per_fire => -1)$$),
  ($$INSERT INTO dispatch.schedules (name, tenant, spec, task, catch_up) VALUES ('s', 't10b', '@daily', '{"kind": "x"}', 'sometimes')$$),
  ($$INSERT INTO dispatch.schedules (name, tenant, spec, task, catch_up_limit) VALUES ('s', 't10b', '@daily', '{"kind": "x"}', 0)$$),
  ($$INSERT INTO dispatch.schedules (name, tenant, spec, task, max_failures) VALUES ('s', 't10b', '@daily', '{"kind": "x"}', -1)$$)) AS v(stmt),
  LATERAL public.sched_check(stmt);

-- Nothing of tenant t10b was stored, not even the tenant.
SELECT (SELECT count(*) FROM dispatch.schedules WHERE tenant = 't10b') AS schedules,
       (SELECT count(*) FROM dispatch.tenants WHERE tenant = 't10b') AS tenants;

DELETE FROM dispatch.schedules;
DROP TABLE public.sched_accounts, public.sched_hidden;
DROP ROLE regress_sched_owner;
