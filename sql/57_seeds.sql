-- 57_seeds: the three seeds of real use, end to end (doc/fanout.md §8).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
SELECT agent_id FROM dispatch.register_agent('sales-agent', '{}', 10);
-- Work through the fleet as an agent would: take what dispatch_next gives, complete it.
CREATE OR REPLACE FUNCTION work_one(result jsonb DEFAULT '{}') RETURNS text LANGUAGE plpgsql AS $$
DECLARE t dispatch.tasks;
BEGIN
  t := dispatch.dispatch_next('sales-agent');
  IF t.task_id IS NULL THEN RETURN 'nothing'; END IF;
  PERFORM dispatch.complete(t.task_id, result);
  RETURN t.kind;
END $$;

-- 1. New-lead cascade: a lead reaching stage 'qualified' fires research -> qualification ->
--    strategy -> notify, each waiting for the previous; research scores the lead.
CREATE TABLE crm_leads (id int PRIMARY KEY, company text, stage text, score numeric);
SELECT dispatch.watch('new-lead', 'crm_leads', $$stage = 'qualified'$$, $$[
  {"step": "research", "kind": "research", "payload": {"lead": "{{id}}", "company": "{{company}}"},
   "outputs": [{"name": "score", "type": "number", "required": true,
                "bind": {"table": "crm_leads", "column": "score", "key": "record_ref"}}]},
  {"step": "qualification", "kind": "qualification", "after": "research"},
  {"step": "strategy", "kind": "strategy", "after": "qualification"},
  {"step": "notify", "kind": "notify", "after": "strategy", "payload": {"to": "owner of {{company}}"}}]$$);
INSERT INTO crm_leads VALUES (1, 'Acme', 'new'), (2, 'Globex', 'new');
UPDATE crm_leads SET stage = 'qualified' WHERE id = 1;
SELECT run_id AS lead_run FROM dispatch.tasks WHERE kind = 'research' \gset
SELECT task_id, parent_id, depth, kind, state FROM dispatch.run_tree(:'lead_run');
SELECT work_one('{"score": 87}');     -- only research is ready
SELECT id, stage, score FROM crm_leads ORDER BY id;
-- Each completion promotes the next step at once (one statement each: a task made ready in
-- a transaction can be claimed once that transaction commits).
SELECT work_one();
SELECT work_one();
SELECT work_one();
SELECT work_one();
SELECT task_id, depth, kind, state, agent_id FROM dispatch.run_tree(:'lead_run');

-- 2. Monday-morning fleet: each Monday one brief per top account. The schedule's sweep is run
--    here by hand; running it again in the same week places nothing new.
CREATE TABLE sales_accounts (account_id int PRIMARY KEY, name text, arr numeric);
INSERT INTO sales_accounts SELECT g, 'account ' || g, g * 1000 FROM generate_series(1, 20) AS g;
\set monday_query 'SELECT account_id, name, to_char(date ''2031-01-06'', ''IYYY-"W"IW'') AS week FROM sales_accounts ORDER BY arr DESC LIMIT 5'
\set brief '{"kind": "brief", "tenant": "sales", "payload": {"account": "{{account_id}}", "name": "{{name}}", "week": "{{week}}"}}'
SELECT dispatch.sweep(:'monday_query', :'brief', 'brief:{{account_id}}:{{week}}', '10 minutes') - 'run_id' AS first_run;
SELECT dispatch.sweep(:'monday_query', :'brief', 'brief:{{account_id}}:{{week}}', '10 minutes') - 'run_id' AS re_run;
SELECT dispatch_key, state FROM dispatch.tasks WHERE kind = 'brief' ORDER BY dispatch_key;
-- The next Monday is another week: five new briefs.
\set next_monday 'SELECT account_id, name, to_char(date ''2031-01-13'', ''IYYY-"W"IW'') AS week FROM sales_accounts ORDER BY arr DESC LIMIT 5'
SELECT dispatch.sweep(:'next_monday', :'brief', 'brief:{{account_id}}:{{week}}') - 'run_id' AS next_week;
SELECT count(*) AS briefs, count(DISTINCT run_id) AS runs FROM dispatch.tasks WHERE kind = 'brief';

-- 3. Churn watch: a sweep over weekly usage places a risk check only for accounts whose
--    active users dropped by more than 30% from the week before.
CREATE TABLE usage_weekly (account_id int, week date, active_users int, PRIMARY KEY (account_id, week));
INSERT INTO usage_weekly VALUES
  (1, '2031-01-06', 100), (1, '2031-01-13', 95),
  (2, '2031-01-06', 100), (2, '2031-01-13', 40),
  (3, '2031-01-06', 50),  (3, '2031-01-13', 60),
  (4, '2031-01-06', 80),  (4, '2031-01-13', 20);
\set churn_query 'SELECT account_id, week, prev, active_users FROM (SELECT account_id, week, active_users, lag(active_users) OVER (PARTITION BY account_id ORDER BY week) AS prev FROM usage_weekly) AS u WHERE week = ''2031-01-13'' AND active_users < 0.7 * prev'
\set risk '{"kind": "churn-risk", "priority": "high", "payload": {"account": "{{account_id}}", "from": "{{prev}}", "to": "{{active_users}}"}}'
SELECT dispatch.sweep(:'churn_query', :'risk', 'churn:{{account_id}}:{{week}}') - 'run_id' AS churn;
SELECT dispatch.sweep(:'churn_query', :'risk', 'churn:{{account_id}}:{{week}}') - 'run_id' AS churn_again;
SELECT payload, priority, dispatch_key FROM dispatch.tasks WHERE kind = 'churn-risk' ORDER BY task_id;
