-- 55_watch: tasks bound to a condition on a user table (doc/fanout.md §2).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
CREATE ROLE regress_crm_owner;
GRANT dispatch_agent TO regress_crm_owner;
CREATE ROLE regress_writer;          -- writes leads, has no rights in dispatch at all
CREATE ROLE regress_meddler;         -- may use dispatch, does not own leads
GRANT dispatch_agent TO regress_meddler;
CREATE TABLE leads (id int PRIMARY KEY, name text, stage text, score numeric);
ALTER TABLE leads OWNER TO regress_crm_owner;
GRANT SELECT, INSERT, UPDATE ON leads TO regress_writer;
SELECT agent_id FROM dispatch.register_agent('watch-agent', '{}', 10);
CREATE OR REPLACE FUNCTION claim(id bigint) RETURNS bigint LANGUAGE sql AS $$
  UPDATE dispatch.tasks SET state = 'claimed', agent_id = 'watch-agent',
         lease_until = now() + interval '5 minutes', claimed_at = now(), attempts = attempts + 1
   WHERE task_id = id RETURNING task_id
$$;

SET ROLE regress_crm_owner;
SELECT dispatch.watch('qualified-leads', 'leads', $$stage = 'qualified'$$,
                      '{"kind": "research", "payload": {"lead": "{{id}}", "about": "Research {{name}}"}}');
RESET ROLE;
SELECT name, source, condition, key, record_key, owner_role FROM dispatch.watches;
-- Two real triggers whose WHEN clauses PostgreSQL parsed: fire when the condition becomes true.
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'leads'::regclass ORDER BY tgname;

-- Written by a role that knows nothing of dispatch; the tasks belong to the watch's owner.
SET ROLE regress_writer;
INSERT INTO leads VALUES (1, 'Ann', 'new'), (2, 'Bob', 'qualified'), (3, 'Cy', NULL);
UPDATE leads SET stage = 'qualified' WHERE id = 1;      -- becomes true: fires
UPDATE leads SET name = 'Ann B.' WHERE id = 1;          -- stays true: does not fire
UPDATE leads SET stage = 'lost' WHERE id = 2;
UPDATE leads SET stage = 'qualified' WHERE id = 2;      -- true again, Bob's task still open: the key holds
BEGIN;
INSERT INTO leads VALUES (4, 'Di', 'qualified');
ROLLBACK;                                              -- rolled back: nothing placed
RESET ROLE;
SELECT task_id, kind, payload, record_ref, dispatch_key, owner_role, state FROM dispatch.tasks ORDER BY task_id;
-- Once Bob's task is done, the next transition places a new one.
SELECT claim(1);
SELECT dispatch.complete(1, '{}');
SET ROLE regress_writer;
UPDATE leads SET stage = 'lost' WHERE id = 2;
UPDATE leads SET stage = 'qualified' WHERE id = 2;
RESET ROLE;
SELECT task_id, record_ref, state FROM dispatch.tasks ORDER BY task_id;

-- The condition runs with the writer's privileges, as any WHEN clause does.
CREATE TABLE vips (id int);
ALTER TABLE vips OWNER TO regress_crm_owner;
CREATE FUNCTION is_vip(int) RETURNS boolean LANGUAGE sql STABLE AS 'SELECT EXISTS (SELECT FROM public.vips WHERE id = $1)';
SET ROLE regress_crm_owner;
SELECT dispatch.watch('vip-leads', 'leads', 'is_vip(id)', '{"kind": "vip"}', key => 'vip:{{id}}');
RESET ROLE;
SET ROLE regress_writer;
INSERT INTO leads VALUES (5, 'Ed', 'new');
RESET ROLE;
SELECT dispatch.unwatch('vip-leads');

-- A cascade from one transition, and a key template.
SET ROLE regress_crm_owner;
SELECT dispatch.watch('big-deals', 'leads', 'score > 100', $$[
  {"step": "check", "kind": "deal-check", "payload": {"lead": "{{id}}", "score": "{{score}}"}},
  {"step": "call", "kind": "call", "after": "check"},
  {"step": "mail", "kind": "mail", "after": "check"},
  {"kind": "report", "after": ["call", "mail"]}]$$, key => 'deal:{{id}}');
RESET ROLE;
UPDATE leads SET score = 150 WHERE id = 3;
SELECT task_id, kind, parent_id, depends_on, record_ref, dispatch_key, state, payload
  FROM dispatch.tasks WHERE kind IN ('deal-check', 'call', 'mail', 'report') ORDER BY task_id;
SELECT count(DISTINCT run_id) AS one_run FROM dispatch.tasks WHERE kind IN ('deal-check', 'call', 'mail', 'report');
UPDATE leads SET score = 50 WHERE id = 3;
UPDATE leads SET score = 200 WHERE id = 3;   -- the cascade's first step still holds the key
SELECT count(*) AS still_four FROM dispatch.tasks WHERE kind IN ('deal-check', 'call', 'mail', 'report');

-- A trigger made by hand cannot place tasks in a watch's name.
CREATE TABLE decoy (id int PRIMARY KEY, stage text);
CREATE TRIGGER fake AFTER INSERT ON decoy FOR EACH ROW EXECUTE FUNCTION dispatch.watch_fire('1');
INSERT INTO decoy VALUES (1, 'qualified');
DROP TABLE decoy;

-- Bad input: clear errors, nothing created.
CREATE TABLE nopk (email text, stage text);
ALTER TABLE nopk OWNER TO regress_crm_owner;
SELECT count(*) AS watches, (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'leads'::regclass) AS triggers
  FROM dispatch.watches \gset
SET ROLE regress_meddler;
SELECT dispatch.watch('not-mine', 'leads', $$stage = 'won'$$, '{"kind": "x"}');
RESET ROLE;
SET ROLE regress_writer;
SELECT dispatch.watch('not-allowed', 'leads', $$stage = 'won'$$, '{"kind": "x"}');
RESET ROLE;
SET ROLE regress_crm_owner;
SELECT dispatch.watch('w', 'leads', 'score + 1', '{"kind": "x"}');
SELECT dispatch.watch('w', 'leads', 'stag = 1', '{"kind": "x"}');
SELECT dispatch.watch('w', 'leads', $$stage IN (SELECT 'won')$$, '{"kind": "x"}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won') OR (true$$, '{"kind": "x"}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won' FROM pg_class$$, '{"kind": "x"}');
SELECT dispatch.watch('w', 'leads', 'other.stage = 1', '{"kind": "x"}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won'$$, '{"payload": {}}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won'$$, '{"kind": "x", "payload": {"a": "{{nope}}"}}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won'$$, '{"kind": "x"}', key => 'k:{{nope}}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won'$$, '{"kind": "x", "when": "now"}');
SELECT dispatch.watch('w', 'leads', $$stage = 'won'$$, '[{"kind": "x", "after": "y"}]');
SELECT dispatch.watch('qualified-leads', 'leads', $$stage = 'won'$$, '{"kind": "x"}');
SELECT dispatch.watch('w', 'no_such_table', $$stage = 'won'$$, '{"kind": "x"}');
SELECT dispatch.watch('w', 'nopk', $$stage = 'won'$$, '{"kind": "x"}');
RESET ROLE;
SELECT count(*) - :watches AS new_watches,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'leads'::regclass) - :triggers AS new_triggers
  FROM dispatch.watches;

-- unwatch: only the owner (or the table's owner, or dispatch_admin); the tasks stay.
SET ROLE regress_meddler;
SELECT dispatch.unwatch('qualified-leads');
RESET ROLE;
SET ROLE regress_crm_owner;
SELECT dispatch.unwatch('qualified-leads');
SELECT dispatch.unwatch('qualified-leads');
RESET ROLE;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'leads'::regclass ORDER BY tgname;
INSERT INTO leads VALUES (6, 'Flo', 'qualified');
SELECT count(*) AS research_tasks FROM dispatch.tasks WHERE kind = 'research';
