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
-- A task that starts a run of its own has a run id made from its task_id (version 8); run_root
-- reads it back, and says NULL for any other run id.
SELECT task_id, run_id, run_id = dispatch.own_run_id(task_id) AS own, dispatch.run_root(run_id)
  FROM dispatch.tasks WHERE parent_id IS NULL ORDER BY task_id;
SELECT dispatch.own_run_id(9007199254740993) AS big, dispatch.run_root(dispatch.own_run_id(9007199254740993)) AS back,
       dispatch.run_root('00000000-0000-7000-8000-000000000001') AS v7,
       dispatch.run_root('00000000-0000-8100-8000-000000000001') AS other_v8,
       dispatch.run_root('00000000-0001-8000-8000-000000000001') AS not_zero;
-- Shared run ids are time-ordered UUIDs, version 7.
SELECT substr(dispatch.new_run_id()::text, 15, 1) AS version;
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
-- run_tree walks an index on run_id, then children through parent_id. The run index holds only
-- the tasks that joined another's run: the root and 'other root' are not in it.
SELECT indexname FROM pg_indexes WHERE tablename = 'tasks' AND indexname IN ('tasks_run_idx', 'tasks_parent_idx') ORDER BY 1;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT task_id FROM dispatch.tasks
 WHERE run_id IS NOT NULL AND run_id IS DISTINCT FROM dispatch.own_run_id(task_id) ORDER BY run_id, task_id;
SELECT task_id FROM dispatch.tasks
 WHERE run_id IS NOT NULL AND run_id IS DISTINCT FROM dispatch.own_run_id(task_id) ORDER BY run_id, task_id;
EXPLAIN (COSTS OFF) SELECT task_id FROM dispatch.tasks
 WHERE run_id = '00000000-0000-7000-8000-000000000001' AND run_id IS DISTINCT FROM dispatch.own_run_id(task_id);
RESET enable_seqscan;
RESET enable_bitmapscan;
-- The run of a task alone in it is that task.
SELECT task_id, depth, kind FROM dispatch.run_tree(dispatch.own_run_id(:other));

-- Roles that are not readers see the tasks they submitted.
CREATE ROLE regress_run_viewer;
GRANT dispatch_agent TO regress_run_viewer;
SET ROLE regress_run_viewer;
SELECT dispatch.submit('mine', parent_id => :root) AS mine \gset
SELECT task_id, depth, kind FROM dispatch.run_tree(:'run');
RESET ROLE;
SELECT count(*) AS all_of_it FROM dispatch.run_tree(:'run');
