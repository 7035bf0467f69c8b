-- 56_outputs: a task's output contract, checked by complete(), and outputs bound to tables
-- (doc/fanout.md §6).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
CREATE ROLE regress_scorer;
GRANT dispatch_agent TO regress_scorer;
CREATE TABLE scores (lead_id int PRIMARY KEY, score numeric, notes jsonb, label text);
INSERT INTO scores (lead_id) VALUES (1), (2), (3);
GRANT SELECT, UPDATE (score, notes) ON scores TO regress_scorer;   -- not label
SELECT agent_id FROM dispatch.register_agent('scoring-agent', '{}', 10);
CREATE OR REPLACE FUNCTION claim(id bigint) RETURNS bigint LANGUAGE sql AS $$
  UPDATE dispatch.tasks SET state = 'claimed', agent_id = 'scoring-agent',
         lease_until = now() + interval '5 minutes', claimed_at = now(), attempts = attempts + 1
   WHERE task_id = id RETURNING task_id
$$;

SET ROLE regress_scorer;
SELECT dispatch.submit('score', record_ref => '1', outputs => $$[
  {"name": "score", "type": "number", "required": true,
   "bind": {"table": "scores", "column": "score", "key": "record_ref"}},
  {"name": "notes", "type": "object", "bind": {"table": "public.scores", "column": "notes"}},
  {"name": "summary", "type": "string"},
  {"name": "rank"}]$$) AS t1 \gset
RESET ROLE;
-- Stored complete: types, required, tables qualified, the key column found.
SELECT jsonb_pretty(outputs) FROM dispatch.tasks WHERE task_id = :t1;

SELECT claim(:t1);
SELECT lease_until AS lease FROM dispatch.tasks WHERE task_id = :t1 \gset
-- A result that breaks the contract is refused; the task keeps its lease.
SELECT dispatch.complete(:t1, '{"score": "high"}');
SELECT dispatch.complete(:t1, '{"summary": "fine"}');
SELECT dispatch.complete(:t1, '{"score": null}');
SELECT dispatch.complete(:t1, '"just text"');
SELECT dispatch.complete(:t1, NULL);
SELECT dispatch.complete(:t1, '{"score": 1, "summary": 5}');
SELECT dispatch.complete(:t1, '{"score": 1, "notes": [1, 2]}');
SELECT state, lease_until = :'lease' AS same_lease FROM dispatch.tasks WHERE task_id = :t1;
-- A result that fits completes it and writes the bound outputs, as the task's owner.
SELECT dispatch.complete(:t1, '{"score": 0.93, "notes": {"why": "big budget"}, "summary": "good", "rank": [1], "extra": true}');
SELECT state FROM dispatch.tasks WHERE task_id = :t1;
SELECT * FROM scores ORDER BY lead_id;

-- integer: whole numbers only. An optional output left out writes nothing.
SET ROLE regress_scorer;
SELECT dispatch.submit('count', record_ref => '2', outputs => '[{"name": "score", "type": "integer", "bind": {"table": "scores", "column": "score"}}]') AS t2 \gset
RESET ROLE;
SELECT claim(:t2);
SELECT dispatch.complete(:t2, '{"score": 1.5}');
SELECT dispatch.complete(:t2, '{"score": 2}');
SELECT * FROM scores WHERE lead_id = 2;
-- The record is gone: a warning, and the task completes.
SET ROLE regress_scorer;
SELECT dispatch.submit('count', record_ref => '99', outputs => '[{"name": "score", "bind": {"table": "scores", "column": "score"}}]') AS t3 \gset
RESET ROLE;
SELECT claim(:t3);
SELECT dispatch.complete(:t3, '{"score": 5}');
SELECT state FROM dispatch.tasks WHERE task_id = :t3;
-- The owner lost the privilege meanwhile: complete() fails, the task keeps its lease.
SET ROLE regress_scorer;
SELECT dispatch.submit('count', record_ref => '3', outputs => '[{"name": "score", "bind": {"table": "scores", "column": "score"}}]') AS t4 \gset
RESET ROLE;
SELECT claim(:t4);
REVOKE UPDATE (score) ON scores FROM regress_scorer;
SELECT dispatch.complete(:t4, '{"score": 7}');
SELECT state FROM dispatch.tasks WHERE task_id = :t4;
GRANT UPDATE (score) ON scores TO regress_scorer;
SELECT dispatch.complete(:t4, '{"score": 7}');
SELECT * FROM scores WHERE lead_id = 3;

-- Bad contracts are refused when the task is written (submit or a plain INSERT).
SELECT count(*) AS before FROM dispatch.tasks \gset
SET ROLE regress_scorer;
SELECT dispatch.submit('x', outputs => '{"name": "score"}');
SELECT dispatch.submit('x', outputs => '["score"]');
SELECT dispatch.submit('x', outputs => '[{"type": "number"}]');
SELECT dispatch.submit('x', outputs => '[{"name": "a"}, {"name": "a"}]');
SELECT dispatch.submit('x', outputs => '[{"name": "a", "type": "float"}]');
SELECT dispatch.submit('x', outputs => '[{"name": "a", "required": "yes"}]');
SELECT dispatch.submit('x', outputs => '[{"name": "a", "default": 1}]');
SELECT dispatch.submit('x', outputs => '[{"name": "a", "bind": {"table": "scores", "column": "score"}}]');
SELECT dispatch.submit('x', record_ref => '1', outputs => '[{"name": "a", "bind": {"table": "nosuch", "column": "score"}}]');
SELECT dispatch.submit('x', record_ref => '1', outputs => '[{"name": "a", "bind": {"table": "scores", "column": "nosuch"}}]');
SELECT dispatch.submit('x', record_ref => '1', outputs => '[{"name": "a", "bind": {"table": "scores", "column": "label"}}]');
SELECT dispatch.submit('x', record_ref => '1', outputs => '[{"name": "a", "bind": {"table": "scores", "column": "score", "key": "payload"}}]');
SELECT dispatch.submit('x', record_ref => '1', outputs => '[{"name": "a", "bind": {"table": "scores"}}]');
RESET ROLE;
INSERT INTO dispatch.tasks (kind, outputs) VALUES ('x', '[{"name": "a", "type": "text"}]');
SELECT count(*) - :before AS created FROM dispatch.tasks;
-- check_result() is usable on its own, to test a result before completing.
SELECT dispatch.check_result(0, '[{"name": "n", "type": "number", "required": true}]', '{"n": 1}');
SELECT dispatch.check_result(0, '[{"name": "n", "type": "number", "required": true}]', '{"m": 1}');
