-- 53_runs: every task belongs to a run; children join their parent's (doc/fanout.md §5).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
SELECT agent_id FROM dispatch.register_agent('run-agent', '{}', 10);

SELECT dispatch.submit('root') AS root \gset
SELECT dispatch.submit('child', parent_id => :root) AS child \gset
SELECT dispatch.submit('grandchild', parent_id => :child) AS grandchild \gset
SELECT dispatch.submit('sibling', parent_id => :root) AS sibling \gset
SELECT dispatch.submit('other root') AS other \gset
SELECT run_id AS run FROM dispatch.tasks WHERE task_id = :root \gset
SELECT task_id, parent_id, run_id = :'run' AS in_root_run FROM dispatch.tasks ORDER BY task_id;
-- Run ids are time-ordered UUIDs, version 7.
SELECT bool_and(substr(run_id::text, 15, 1) = '7') AS version_7 FROM dispatch.tasks;
-- An explicit run_id wins over the parent's.
SELECT dispatch.submit('elsewhere', parent_id => :root, run_id => '00000000-0000-7000-8000-000000000001') AS elsewhere \gset
SELECT run_id FROM dispatch.tasks WHERE task_id = :elsewhere;
-- An unknown parent is refused.
SELECT dispatch.submit('orphan', parent_id => 99999);

-- The whole run as one unit: depth, order, state, agent and timings.
SELECT task_id FROM dispatch.dispatch_next('run-agent');
SELECT dispatch.complete(:root, '{}');
SELECT task_id, parent_id, depth, kind, state, agent_id, waited IS NOT NULL AS has_waited,
       ran IS NOT NULL AS has_ran
  FROM dispatch.run_tree(:'run');
SELECT count(*) AS unknown_run FROM dispatch.run_tree('00000000-0000-7000-8000-0000000000ff');
-- run_tree walks an index on run_id, then children through parent_id.
SELECT indexname FROM pg_indexes WHERE tablename = 'tasks' AND indexname IN ('tasks_run_idx', 'tasks_parent_idx') ORDER BY 1;

-- Roles that are not readers see the tasks they submitted.
CREATE ROLE regress_run_viewer;
GRANT dispatch_agent TO regress_run_viewer;
SET ROLE regress_run_viewer;
SELECT dispatch.submit('mine', parent_id => :root) AS mine \gset
SELECT task_id, depth, kind FROM dispatch.run_tree(:'run');
RESET ROLE;
SELECT count(*) AS all_of_it FROM dispatch.run_tree(:'run');
