-- 46_runs: fan-out as one unit (doc/fanout.md §4-5). Every task belongs to a run: a task with a
-- parent joins the parent's run, any other task without a run_id starts a new one (the row
-- trigger sees to it). dispatch_key makes placement idempotent among unfinished tasks.

-- One unfinished task per (tenant, dispatch_key): submit() returns the existing one, a sweep
-- counts it as a duplicate, a plain INSERT fails with unique_violation. COLLATE "C": keys are
-- compared byte for byte either way (deterministic collations), and memcmp is several times
-- cheaper than the database collation on a sweep's 100,000 probes and insertions. Look-ups must
-- say COLLATE "C" to use it.
CREATE UNIQUE INDEX tasks_dispatch_key_idx ON dispatch.tasks (tenant COLLATE "C", dispatch_key COLLATE "C")
  WHERE dispatch_key IS NOT NULL AND state IN ('scheduled', 'ready', 'claimed');
-- A task alone in its run has a run id made from its task_id (src/fanout.c): run_tree() finds it
-- by primary key, and the run index keeps only tasks whose run is another's (children, sweeps,
-- schedules). Each claim and completion of a task rewrites its index entries, so an index every
-- task is in costs every claim an insert on a random leaf page of a large queue.
CREATE FUNCTION dispatch.own_run_id(task_id bigint) RETURNS uuid
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_own_run_id';
COMMENT ON FUNCTION dispatch.own_run_id(bigint) IS
  'The run id of a task that starts a run of its own (no parent, no run_id given): a UUID of version 8 holding the task_id, 00000000-0000-80XX-80XX-XXXXXXXXXXXX.';
CREATE FUNCTION dispatch.run_root(run_id uuid) RETURNS bigint
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_run_root';
COMMENT ON FUNCTION dispatch.run_root(uuid) IS
  'The task_id a run id made by dispatch.own_run_id() holds; NULL for any other run id.';

-- run_tree(): the run's tasks, then children by parent.
CREATE INDEX tasks_run_idx ON dispatch.tasks (run_id)
  WHERE run_id IS DISTINCT FROM dispatch.own_run_id(task_id);
CREATE INDEX tasks_parent_idx ON dispatch.tasks (parent_id) WHERE parent_id IS NOT NULL;

COMMENT ON COLUMN dispatch.tasks.run_id IS
  'The run (fan-out unit) the task belongs to: its parent''s run, the run of the sweep or watch that placed it, or a new one of its own (dispatch.own_run_id(task_id)). dispatch.run_tree(run_id) shows the whole run.';
COMMENT ON COLUMN dispatch.tasks.parent_id IS 'The task that spawned this one; the child joins the parent''s run unless given a run_id.';
COMMENT ON COLUMN dispatch.tasks.record_ref IS 'The record the task is about, for example the primary key of the row a watch fired on.';

CREATE FUNCTION dispatch.new_run_id() RETURNS uuid
  LANGUAGE c VOLATILE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_new_run_id';
COMMENT ON FUNCTION dispatch.new_run_id() IS
  'A new run id for tasks to share (a sweep, a fire, your own fan-out): a time-ordered UUID (version 7), so the run index grows at its right edge.';

CREATE FUNCTION dispatch.run_tree(run_id uuid)
  RETURNS TABLE (task_id bigint, parent_id bigint, depth int, kind text, state text,
                 agent_id text, tenant text, record_ref text, depends_on bigint[],
                 created_at timestamptz, ready_at timestamptz, claimed_at timestamptz,
                 finished_at timestamptz, waited interval, ran interval, error text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH RECURSIVE
  members AS MATERIALIZED (
    SELECT t.* FROM (
      -- the tasks that joined the run (tasks_run_idx) ...
      SELECT k.* FROM dispatch.tasks AS k
       WHERE k.run_id = run_tree.run_id AND k.run_id IS DISTINCT FROM dispatch.own_run_id(k.task_id)
      UNION ALL
      -- ... and the task that started it, when the run is a task's own (primary key)
      SELECT k.* FROM dispatch.tasks AS k
       WHERE k.task_id = dispatch.run_root(run_tree.run_id) AND k.run_id = run_tree.run_id) AS t
     WHERE pg_has_role(dispatch.caller(), 'dispatch_reader', 'USAGE')
        OR dispatch.may_act_as(t.owner_role)),
  tree AS (
    SELECT m.task_id, 0 AS depth, ARRAY[m.task_id] AS path
      FROM members AS m
     WHERE m.parent_id IS NULL
        OR NOT EXISTS (SELECT FROM members AS p WHERE p.task_id = m.parent_id)
    UNION ALL
    SELECT m.task_id, tree.depth + 1, tree.path || m.task_id
      FROM tree JOIN members AS m ON m.parent_id = tree.task_id
     WHERE m.task_id <> ALL (tree.path))
  SELECT m.task_id, m.parent_id, tree.depth, m.kind, m.state, m.agent_id, m.tenant, m.record_ref,
         m.depends_on, m.created_at, m.ready_at, m.claimed_at, m.finished_at,
         m.claimed_at - m.ready_at, m.finished_at - m.claimed_at, m.error
    FROM tree JOIN members AS m ON m.task_id = tree.task_id
   ORDER BY tree.path
$$;
COMMENT ON FUNCTION dispatch.run_tree(uuid) IS
  'The whole run as a tree: each task with its parent, depth (0 for the run''s roots), kind, state, agent, timings (waited: ready to claimed; ran: claimed to finished) and error, children under their parent in task order. Readers and admins see every task; others see the tasks they submitted.';

CREATE FUNCTION dispatch.agent_channel(agent_id text) RETURNS text
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_agent_channel';
COMMENT ON FUNCTION dispatch.agent_channel(text) IS
  'The NOTIFY channel that wakes this agent when work it can take becomes ready: dispatch_agent_<agent_id>, or dispatch_agent_<md5 of the id> when the id is longer than 48 bytes. LISTEN to it quoted: EXECUTE format(''LISTEN %I'', dispatch.agent_channel(id)).';
