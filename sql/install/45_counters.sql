-- 45_counters: live task counts per (tenant, priority, state) that cost the same with 10 thousand
-- or 10 million tasks, and the indexes the overload step and the views descend.
-- src/counters.c says why deltas are appended and folded rather than counted or updated in place.
-- The counts are derived from dispatch.tasks, so they are not dumped: dispatch.finish_restore()
-- recounts them after a restore (one scan of the live tasks, as rebuild_task_counts() does).

CREATE TABLE dispatch.task_counts (
  tenant    text NOT NULL,
  priority  text NOT NULL,
  state     text NOT NULL,
  n         bigint NOT NULL,
  PRIMARY KEY (tenant, priority, state)
);
COMMENT ON TABLE dispatch.task_counts IS
  'Folded live task counts per (tenant, priority, state) for the states scheduled, ready and claimed. Written only by dispatch.fold_task_counts() (each tick); add dispatch.task_count_deltas for the exact figure (dispatch.live_counts does).';

CREATE TABLE dispatch.task_count_deltas (
  tenant      text NOT NULL,
  priority    text NOT NULL,
  from_state  text,
  to_state    text
);
-- The max_queued check sums one tenant's unfolded deltas.
CREATE INDEX task_count_deltas_tenant_idx ON dispatch.task_count_deltas (tenant);
COMMENT ON TABLE dispatch.task_count_deltas IS
  'Append-only: one row per change of a task''s live state (scheduled, ready, claimed; NULL = any other), tenant or priority, written in the same transaction as the change. Folded into dispatch.task_counts by each tick.';

CREATE FUNCTION dispatch.task_count() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_task_count';
COMMENT ON FUNCTION dispatch.task_count() IS
  'AFTER row trigger of dispatch.tasks: appends the change to dispatch.task_count_deltas, and refuses a new waiting task of a tenant at its max_queued (SQLSTATE 53400).';

CREATE TRIGGER task_count_insert AFTER INSERT ON dispatch.tasks
  FOR EACH ROW EXECUTE FUNCTION dispatch.task_count();
-- No WHEN clause: every claim and completion changes the state, so a WHEN would always pass,
-- and PostgreSQL re-reads a WHEN expression at each statement. The function itself does nothing
-- when state, tenant and priority are unchanged. (Not UPDATE OF state: the row trigger may change
-- the state of an UPDATE that did not name it.)
CREATE TRIGGER task_count_update AFTER UPDATE ON dispatch.tasks
  FOR EACH ROW EXECUTE FUNCTION dispatch.task_count();
CREATE TRIGGER task_count_delete AFTER DELETE ON dispatch.tasks
  FOR EACH ROW WHEN (dispatch.is_live_state(OLD.state))
  EXECUTE FUNCTION dispatch.task_count();

-- A TRUNCATE of the tasks empties the counts too (the statement trigger runs in its transaction).
CREATE FUNCTION dispatch.task_counts_truncate() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  TRUNCATE dispatch.task_counts, dispatch.task_count_deltas;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch.task_counts_truncate() IS
  'AFTER TRUNCATE trigger of dispatch.tasks: the live counts start again from zero.';
CREATE TRIGGER task_counts_truncate AFTER TRUNCATE ON dispatch.tasks
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.task_counts_truncate();

-- Tick step. One writer at a time (tick() holds its advisory lock); deltas committed after the
-- DELETE's snapshot stay for the next fold, so nothing is lost or counted twice.
CREATE FUNCTION dispatch.fold_task_counts() RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  n int;
BEGIN
  WITH taken AS (
    DELETE FROM dispatch.task_count_deltas RETURNING tenant, priority, from_state, to_state),
  moves AS (
    SELECT tenant, priority, from_state AS state, -1 AS d FROM taken WHERE from_state IS NOT NULL
    UNION ALL
    SELECT tenant, priority, to_state, 1 FROM taken WHERE to_state IS NOT NULL),
  summed AS (
    SELECT tenant, priority, state, sum(d)::bigint AS d FROM moves
     GROUP BY tenant, priority, state HAVING sum(d) <> 0)
  INSERT INTO dispatch.task_counts AS c (tenant, priority, state, n)
  SELECT tenant, priority, state, d FROM summed
  ON CONFLICT (tenant, priority, state) DO UPDATE SET n = c.n + EXCLUDED.n;
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM dispatch.task_counts WHERE task_counts.n = 0;
  RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch.fold_task_counts() IS
  'Tick step: folds the appended deltas into dispatch.task_counts; returns how many counters changed.';

-- The exact live counts: folded totals plus what was appended since.
CREATE VIEW dispatch.live_counts AS
  SELECT tenant, priority, state, sum(n)::bigint AS n
    FROM (SELECT tenant, priority, state, n FROM dispatch.task_counts
          UNION ALL
          SELECT tenant, priority, from_state, -1 FROM dispatch.task_count_deltas
           WHERE from_state IS NOT NULL
          UNION ALL
          SELECT tenant, priority, to_state, 1 FROM dispatch.task_count_deltas
           WHERE to_state IS NOT NULL) AS c
   GROUP BY tenant, priority, state
  HAVING sum(n) <> 0;
COMMENT ON VIEW dispatch.live_counts IS
  'Tasks per (tenant, priority, state) for the live states (scheduled, ready, claimed), exact for everything committed: the folded dispatch.task_counts plus the unfolded deltas. Costs the number of (tenant, priority, state) groups plus one tick of deltas, never a scan of the tasks.';

-- Recount from the tasks, for after a load with triggers disabled. Reads only the live partial
-- indexes' rows (never finished history), and blocks task writes while it counts.
CREATE FUNCTION dispatch.rebuild_task_counts() RETURNS bigint
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  total bigint;
BEGIN
  LOCK TABLE dispatch.tasks IN SHARE MODE;
  TRUNCATE dispatch.task_count_deltas;
  DELETE FROM dispatch.task_counts;
  INSERT INTO dispatch.task_counts (tenant, priority, state, n)
  SELECT tenant, priority, state, count(*) FROM (
    SELECT tenant, priority, state FROM dispatch.tasks WHERE state = 'ready'
    UNION ALL
    SELECT tenant, priority, state FROM dispatch.tasks WHERE state = 'scheduled'
    UNION ALL
    SELECT tenant, priority, state FROM dispatch.tasks WHERE state = 'claimed') AS live
  GROUP BY tenant, priority, state;
  SELECT coalesce(sum(n), 0) INTO total FROM dispatch.task_counts;
  RETURN total;
END
$$;
COMMENT ON FUNCTION dispatch.rebuild_task_counts() IS
  'Recount the live tasks into dispatch.task_counts (needed only after writing dispatch.tasks with its triggers disabled). Locks dispatch.tasks against writes while it counts; returns the number of live tasks.';

-- Overload and the views: the oldest ready task of each priority, and shed_if_busy work.
CREATE INDEX tasks_waiting_idx ON dispatch.tasks (priority, ready_at) WHERE state = 'ready';
CREATE INDEX tasks_shed_if_busy_idx ON dispatch.tasks (ready_at) WHERE state = 'ready' AND shed_if_busy;

COMMENT ON INDEX dispatch.tasks_waiting_idx IS
  'The oldest ready task of each priority, one descent each: overload detection and shedding, oldest first.';
COMMENT ON INDEX dispatch.tasks_shed_if_busy_idx IS
  'Ready tasks submitted with shed_if_busy, shed first under overload.';
COMMENT ON INDEX dispatch.task_count_deltas_tenant_idx IS
  'One tenant''s unfolded deltas, for the max_queued check.';
