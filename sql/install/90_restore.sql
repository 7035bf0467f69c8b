-- 90_restore: the end of a restore from pg_dump (doc/operations.md, Backup). The rows come back
-- as they were dumped, with dispatch.restoring on so the triggers let them in unchanged; what the
-- triggers would have kept as they went is rebuilt here once, from the restored tables.

CREATE FUNCTION dispatch.finish_restore() RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  counted bigint;
  agents_fixed int;
  log jsonb;
BEGIN
  -- The live counts are not dumped: count the live tasks once.
  counted := dispatch.rebuild_task_counts();
  -- Each agent holds what is claimed in its name (equal already when the dump was consistent).
  WITH held AS (
    SELECT a.agent_id, count(t.task_id)::int AS n
      FROM dispatch.agents AS a
      LEFT JOIN dispatch.tasks AS t ON t.agent_id = a.agent_id AND t.state = 'claimed'
     GROUP BY a.agent_id),
  fixed AS (
    UPDATE dispatch.agents AS a
       SET running = h.n,
           status = CASE WHEN a.status IN ('idle', 'busy') THEN CASE WHEN h.n > 0 THEN 'busy' ELSE 'idle' END
                         ELSE a.status END
      FROM held AS h
     WHERE a.agent_id = h.agent_id AND a.running <> h.n
    RETURNING 1)
  SELECT count(*) INTO agents_fixed FROM fixed;
  -- Which queues hold work, each tenant's weight and virtual start: from the restored rows.
  PERFORM dispatch.rebuild_queue_map();
  -- The restore is over for this session and the database; then the log's upkeep: partitions
  -- for the days ahead, and restored rows stranded in the default partition moved to their day.
  PERFORM set_config('dispatch.restoring', 'off', false);
  EXECUTE format('ALTER DATABASE %I RESET dispatch.restoring', current_database());
  log := dispatch.manage_decision_log();
  RETURN jsonb_build_object('live_tasks', counted, 'agents_corrected', agents_fixed, 'decision_log', log);
END
$$;
COMMENT ON FUNCTION dispatch.finish_restore() IS
  'Run once after restoring a pg_dump with dispatch.restoring on (doc/operations.md, Backup): recounts the live tasks, gives each agent the running count of its claimed tasks, rebuilds the queue map, turns dispatch.restoring off for the session and the database, and runs dispatch.manage_decision_log() (partitions ahead; restored rows of past or future days moved out of the default partition). Superuser (or the database owner with the extension''s privileges).';
