-- 54_sweep: one task per row of a query (doc/fanout.md §3).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
CREATE TABLE accounts (id int PRIMARY KEY, name text, tier text, arr numeric, tags text[]);
INSERT INTO accounts
SELECT g, 'account ' || g, CASE WHEN g % 4 = 0 THEN 'top' ELSE 'small' END, g * 1000, ARRAY['t' || g % 3]
  FROM generate_series(1, 12) AS g;

-- Templates: a whole-string placeholder keeps its JSON type, an embedded one becomes text.
SELECT dispatch.render('{"kind": "brief", "payload": {"id": "{{id}}", "title": "Brief for {{ name }}", "tags": "{{tags}}", "n": [1, "{{arr}}"]}}',
                       to_jsonb(a)) FROM accounts AS a WHERE id = 4;
SELECT dispatch.placeholders('{"kind": "{{k}}", "payload": {"a": "{{x}} and {{y}}", "b": "{{x}}"}}'),
       dispatch.render_text('brief:{{id}}:{{tier}}', '{"id": 4, "tier": "top"}');

-- A sweep: one task per row, sharing one new run_id.
SELECT dispatch.sweep($$SELECT id, name FROM accounts WHERE tier = 'top' ORDER BY id$$,
                      '{"kind": "brief", "tenant": "acme", "priority": "high", "payload": {"account": "{{id}}", "name": "{{name}}"}}',
                      'brief:{{id}}') AS r \gset
SELECT (:'r'::jsonb) - 'run_id' AS result, (:'r'::jsonb ->> 'run_id') IS NOT NULL AS has_run;
SELECT task_id, kind, tenant, priority, payload, dispatch_key, state, owner_role, run_id = (:'r'::jsonb ->> 'run_id')::uuid AS same_run
  FROM dispatch.tasks ORDER BY task_id;
-- Again: every key is taken by an unfinished task, so nothing is placed.
SELECT dispatch.sweep($$SELECT id, name FROM accounts WHERE tier = 'top'$$,
                      '{"kind": "brief", "tenant": "acme", "payload": {"account": "{{id}}"}}', 'brief:{{id}}') - 'run_id';
-- Duplicate keys within one sweep count once.
SELECT dispatch.sweep('SELECT id % 2 AS parity FROM accounts', '{"kind": "parity"}', 'parity:{{parity}}') - 'run_id';
-- The template's own dispatch_key works as the key.
SELECT dispatch.sweep('SELECT 1 AS one', '{"kind": "single", "dispatch_key": "single-{{one}}"}') - 'run_id';
SELECT dispatch.sweep('SELECT 1 AS one', '{"kind": "single", "dispatch_key": "single-{{one}}"}') - 'run_id';
-- No rows, no tasks.
SELECT dispatch.sweep('SELECT id FROM accounts WHERE false', '{"kind": "none"}') - 'run_id';

-- spread: run_at evenly spread, with jitter, over the window from the template's run_at.
SELECT dispatch.sweep('SELECT g FROM generate_series(1, 100) AS g ORDER BY g',
                      '{"kind": "spread", "run_at": "2031-01-01T00:00:00Z", "payload": {"g": "{{g}}"}}', NULL, '100 minutes') - 'run_id';
SELECT min(run_at) >= '2031-01-01T00:00:00Z' AS after_start, max(run_at) < '2031-01-01T01:40:00Z' AS before_end,
       count(DISTINCT width_bucket(extract(epoch FROM run_at - '2031-01-01T00:00:00Z'), 0, 6000, 100)) AS one_per_minute,
       bool_and(state = 'scheduled') AS all_scheduled
  FROM dispatch.tasks WHERE kind = 'spread';
-- row g runs in minute g: the order of the query is the order in time
SELECT bool_and(floor(extract(epoch FROM run_at - '2031-01-01T00:00:00Z') / 60) = (payload ->> 'g')::int - 1) AS in_order
  FROM dispatch.tasks WHERE kind = 'spread';

-- The query runs as the caller, with the caller's search_path.
CREATE ROLE regress_sweeper;
GRANT dispatch_agent TO regress_sweeper;
CREATE SCHEMA regress_crm;
CREATE TABLE regress_crm.contacts (id int, email text);
INSERT INTO regress_crm.contacts VALUES (1, 'a@example.com'), (2, 'b@example.com');
GRANT USAGE ON SCHEMA regress_crm TO regress_sweeper;
GRANT SELECT ON regress_crm.contacts TO regress_sweeper;
CREATE TABLE secrets (id int, secret text);
INSERT INTO secrets VALUES (1, 'hunter2');
SET ROLE regress_sweeper;
SET search_path = regress_crm, public;
SELECT dispatch.sweep('SELECT id, email, current_user AS who FROM contacts ORDER BY id',
                      '{"kind": "follow-up", "payload": {"email": "{{email}}", "who": "{{who}}"}}') - 'run_id';
SELECT dispatch.sweep('SELECT secret FROM public.secrets', '{"kind": "leak", "payload": {"s": "{{secret}}"}}');
SELECT dispatch.sweep($$SELECT set_config('role', 'postgres', false)$$, '{"kind": "escalate"}');
RESET search_path;
RESET ROLE;
SELECT kind, payload, owner_role FROM dispatch.tasks WHERE kind IN ('follow-up', 'leak', 'escalate') ORDER BY task_id;

-- Bad input: clear errors, and nothing placed (a sweep is all or nothing).
SELECT count(*) AS before FROM dispatch.tasks \gset
SELECT dispatch.sweep('DELETE FROM accounts RETURNING id', '{"kind": "x"}');
SELECT dispatch.sweep('SELECT 1; SELECT 2', '{"kind": "x"}');
SELECT dispatch.sweep('WITH gone AS (DELETE FROM accounts RETURNING id) SELECT id FROM gone', '{"kind": "x"}');
SELECT dispatch.sweep('SELECT id INTO TEMP copied FROM accounts', '{"kind": "x"}');
SELECT dispatch.sweep('SELEC id FROM accounts', '{"kind": "x"}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"payload": {"a": 1}}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": ""}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": "x", "payload": {"a": "{{nope}}"}}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": "x"}', 'k:{{nope}}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": "x", "colour": "red"}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": "x", "sensitivity": "high"}');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": "x", "priority": "urgent"}');
SELECT dispatch.sweep('SELECT id FROM accounts', '[{"kind": "x"}]');
SELECT dispatch.sweep('SELECT id FROM accounts', '{"kind": "x"}', NULL, '-1 minute');
SELECT dispatch.sweep(NULL, '{"kind": "x"}');
-- A bad value in one row undoes the whole sweep.
SELECT dispatch.sweep($$SELECT id, CASE WHEN id = 7 THEN 'urgent' ELSE 'low' END AS prio FROM accounts$$,
                      '{"kind": "x", "priority": "{{prio}}"}');
SELECT count(*) - :before AS created FROM dispatch.tasks;
