-- 45_dependencies: tasks that wait for other tasks (doc/fanout.md §1).
--
-- A task submitted with depends_on is scheduled (the row trigger sees to that) with run_at NULL,
-- so promote_due() never picks it; its wanted run_at waits in dispatch.task_waits. The pending
-- edges live in dispatch.task_deps, indexed both ways: "who waits for task A" is one index
-- descent when A finishes, never a scan of the tasks. The finishing transaction promotes or
-- cancels the dependents itself (dispatch.task_graph(), in C).

ALTER TABLE dispatch.tasks ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN dispatch.tasks.has_dependents IS
  'Some task waits (or waited) for this one: when it finishes, its dependents are promoted or cancelled in the same transaction.';

CREATE TABLE dispatch.task_deps (
  task_id     bigint NOT NULL,
  depends_on  bigint NOT NULL,
  PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_deps_depends_on_idx ON dispatch.task_deps (depends_on);
COMMENT ON TABLE dispatch.task_deps IS
  'Pending dependency edges: task_id waits for depends_on, which has not finished yet. An edge is removed when depends_on finishes; tasks.depends_on keeps the full list.';

CREATE TABLE dispatch.task_waits (
  task_id  bigint PRIMARY KEY,
  pending  int NOT NULL CONSTRAINT task_waits_pending_check CHECK (pending >= 0),
  run_at   timestamptz
);
COMMENT ON TABLE dispatch.task_waits IS
  'Tasks waiting for dependencies: how many are still unfinished, and the run_at the task asked for (the task row holds run_at NULL meanwhile, so the tick leaves it alone).';
-- Dumped: task_waits.run_at is kept nowhere else, and the edges go with it.
SELECT pg_catalog.pg_extension_config_dump('dispatch.task_deps', '');
SELECT pg_catalog.pg_extension_config_dump('dispatch.task_waits', '');

-- Internal: register a task's dependencies (AFTER INSERT, AFTER UPDATE OF depends_on).
CREATE FUNCTION dispatch.deps_register() RETURNS trigger
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  deps bigint[];
  found_ids bigint[];
  open_ids bigint[];
  missing bigint[];
  bad_id bigint;
  bad_state text;
  stash timestamptz := NEW.run_at;
  waiting boolean := false;
  reason text;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.state NOT IN ('scheduled', 'ready') THEN
      RAISE EXCEPTION 'cannot change the dependencies of task %: it is %', NEW.task_id, OLD.state
        USING ERRCODE = '55000', HINT = 'Dependencies can change only while the task waits (scheduled or ready).';
    END IF;
    DELETE FROM dispatch.task_deps AS d WHERE d.task_id = NEW.task_id;
    DELETE FROM dispatch.task_waits AS w WHERE w.task_id = NEW.task_id RETURNING w.run_at, true INTO stash, waiting;
    IF waiting IS NOT TRUE THEN
      -- It was not waiting: its own run_at stands (no row leaves both targets NULL).
      waiting := false;
      stash := NEW.run_at;
    END IF;
  END IF;

  IF array_position(NEW.depends_on, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'depends_on must not contain NULL elements' USING ERRCODE = '22004',
      HINT = 'List the task_ids this task waits for.';
  END IF;
  deps := ARRAY(SELECT DISTINCT d FROM unnest(coalesce(NEW.depends_on, '{}')) AS d ORDER BY d);
  IF NEW.task_id = ANY (deps) THEN
    RAISE EXCEPTION 'task % cannot depend on itself', NEW.task_id USING ERRCODE = '22023',
      HINT = 'Remove its own task_id from depends_on.';
  END IF;

  IF cardinality(deps) > 0 THEN
    -- Flag the dependencies first (an exclusive row lock, taken once per dependency), then
    -- hold them FOR SHARE: a dependency finishing concurrently either finished before we
    -- look (we see its final state) or waits for our commit and then sees our edges.
    UPDATE dispatch.tasks AS k SET has_dependents = true
     WHERE k.task_id = ANY (deps) AND NOT k.has_dependents;
    SELECT coalesce(array_agg(s.task_id), '{}'),
           coalesce(array_agg(s.task_id) FILTER (WHERE s.state IN ('scheduled', 'ready', 'claimed')), '{}'),
           (array_agg(s.task_id ORDER BY s.task_id) FILTER (WHERE s.state NOT IN ('scheduled', 'ready', 'claimed', 'done')))[1],
           (array_agg(s.state ORDER BY s.task_id) FILTER (WHERE s.state NOT IN ('scheduled', 'ready', 'claimed', 'done')))[1]
      INTO found_ids, open_ids, bad_id, bad_state
      FROM (SELECT k.task_id, k.state FROM dispatch.tasks AS k WHERE k.task_id = ANY (deps) FOR SHARE) AS s;
    missing := ARRAY(SELECT unnest(deps) EXCEPT SELECT unnest(found_ids) ORDER BY 1);
    IF cardinality(missing) > 0 THEN
      RAISE EXCEPTION 'task % depends on task %, which does not exist', NEW.task_id, missing[1]
        USING ERRCODE = '42704',
              HINT = 'depends_on lists task_ids returned by submit(); a task can only wait for tasks that already exist.';
    END IF;

    -- A cycle needs some task already waiting for this one: on insert that only happens when
    -- one statement inserts several tasks with explicit ids; an update can always make one.
    IF cardinality(open_ids) > 0
       AND (TG_OP = 'UPDATE' OR EXISTS (SELECT FROM dispatch.task_deps AS d WHERE d.depends_on = NEW.task_id))
       AND EXISTS (
         WITH RECURSIVE up(id) AS (
           SELECT unnest(open_ids)
           UNION
           SELECT d.depends_on FROM dispatch.task_deps AS d JOIN up ON d.task_id = up.id)
         SELECT FROM up WHERE up.id = NEW.task_id) THEN
      RAISE EXCEPTION 'depends_on would make a cycle: task % already waits, directly or through other tasks, for task %',
                      (SELECT min(x) FROM unnest(open_ids) AS x), NEW.task_id
        USING ERRCODE = '22023', HINT = 'A task cannot wait for a task that waits for it.';
    END IF;

    IF bad_id IS NOT NULL AND NEW.on_dependency_failure = 'cancel' THEN
      reason := format('dependency %s ended %s', bad_id, bad_state);
      UPDATE dispatch.tasks AS k
         SET state = 'cancelled', error = reason, finished_at = clock_timestamp(), run_at = stash
       WHERE k.task_id = NEW.task_id;
      PERFORM dispatch.log_decision('cancel', NEW.task_id, NULL, NEW.tenant, reason,
                                    jsonb_build_object('dependency', bad_id, 'state', bad_state));
      RETURN NULL;
    END IF;

    IF cardinality(open_ids) > 0 THEN
      INSERT INTO dispatch.task_deps (task_id, depends_on) SELECT NEW.task_id, unnest(open_ids);
      INSERT INTO dispatch.task_waits (task_id, pending, run_at) VALUES (NEW.task_id, cardinality(open_ids), stash);
      IF NEW.state <> 'scheduled' OR NEW.run_at IS NOT NULL THEN
        UPDATE dispatch.tasks AS k SET state = 'scheduled', run_at = NULL WHERE k.task_id = NEW.task_id;
      END IF;
      RETURN NULL;
    END IF;
  END IF;

  -- Nothing left to wait for: run now, or at the run_at it asked for.
  IF NEW.state = 'scheduled' AND (TG_OP = 'INSERT' OR waiting) THEN
    IF stash IS NULL OR stash <= now() THEN
      UPDATE dispatch.tasks AS k SET state = 'ready', run_at = stash, ready_at = NULL
       WHERE k.task_id = NEW.task_id;
    ELSIF NEW.run_at IS DISTINCT FROM stash THEN
      UPDATE dispatch.tasks AS k SET run_at = stash WHERE k.task_id = NEW.task_id;
    END IF;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch.deps_register() IS
  'Internal, AFTER INSERT and AFTER UPDATE OF depends_on on dispatch.tasks: checks the dependencies (they exist, no cycle, not the task itself), records the unfinished ones, and keeps the task scheduled until they are done; a dependency that already failed cancels it (unless on_dependency_failure = run).';

-- Not while a dump is restored: task_deps and task_waits come with it.
CREATE TRIGGER deps_register AFTER INSERT ON dispatch.tasks
  FOR EACH ROW WHEN (NEW.depends_on IS NOT NULL AND pg_catalog.cardinality(NEW.depends_on) > 0
                     AND NOT dispatch.restoring())
  EXECUTE FUNCTION dispatch.deps_register();
CREATE TRIGGER deps_change AFTER UPDATE OF depends_on ON dispatch.tasks
  FOR EACH ROW WHEN (OLD.depends_on IS DISTINCT FROM NEW.depends_on)
  EXECUTE FUNCTION dispatch.deps_register();

CREATE FUNCTION dispatch.task_graph() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_task_graph';
COMMENT ON FUNCTION dispatch.task_graph() IS
  'Internal, AFTER UPDATE OF state and AFTER DELETE on dispatch.tasks: a task that others wait for finished, so its dependents are promoted (done, or on_dependency_failure = run) or cancelled with the reason, logged; a waiting task that stopped waiting forgets its pending edges.';

-- Acts only for tasks with dependents that finish, and for waiting tasks that stop waiting. The
-- function tests that itself, before any SPI: a WHEN clause here would be re-read by PostgreSQL
-- at every statement that changes a task's state, each claim included (src/deps.c).
CREATE TRIGGER task_graph AFTER UPDATE OF state ON dispatch.tasks
  FOR EACH ROW EXECUTE FUNCTION dispatch.task_graph();
CREATE TRIGGER task_graph_delete AFTER DELETE ON dispatch.tasks
  FOR EACH ROW WHEN (dispatch.is_live_state(OLD.state)
                     AND (OLD.has_dependents OR OLD.depends_on IS NOT NULL))
  EXECUTE FUNCTION dispatch.task_graph();
