-- 65_fire: firing schedules, the tick's step (doc/schedules.md). Due schedules come off
-- schedules_due_idx in next_fire_at order, locked with SKIP LOCKED; each slot is recorded in
-- dispatch.fires under its unique (schedule_id, scheduled_for) in the same transaction as the
-- task it submits, so no slot fires twice (two ticks, a restart, a crash) and none is lost.
-- Each fire runs in its own subtransaction: a failing fire is recorded and counted, the tick
-- goes on. Task outcomes come back through an AFTER UPDATE trigger that only scheduled tasks
-- fire. History of deleted schedules is removed after dispatch.history_retention.

-- Internal: the task of one fire, from the template, with the id the fire row already names.
-- The deadline is an offset from `due`. PL/pgSQL, so the INSERT's plan is kept between fires.
CREATE FUNCTION dispatch.fire_task(s dispatch.schedules, run uuid, due timestamptz, id bigint) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  INSERT INTO dispatch.tasks (task_id, kind, payload, tenant, priority, requires, deadline, est_duration,
                              session_ref, profile, sensitivity, region, max_attempts, outputs,
                              shed_if_busy, record_ref, run_id, schedule_id, owner_role)
  SELECT id, r.kind, coalesce(r.payload, '{}'), s.tenant, coalesce(r.priority, 'normal'),
         coalesce(r.requires, '{}'), due + (s.task ->> 'deadline')::interval, r.est_duration,
         r.session_ref, r.profile, coalesce(r.sensitivity, 0), r.region, coalesce(r.max_attempts, 3),
         r.outputs, coalesce(r.shed_if_busy, false), s.record_ref, run, s.schedule_id, s.owner_role
    FROM jsonb_populate_record(NULL::dispatch.tasks, s.task - 'deadline') AS r;
END
$$;
COMMENT ON FUNCTION dispatch.fire_task(dispatch.schedules, uuid, timestamptz, bigint) IS
  'Internal: submits the task of one fire from the schedule''s template, as its owner, with the schedule''s tenant and record_ref, the fire''s run_id, and the deadline offset counted from when the fire is due.';

-- Internal: the tasks of one fire of a sweep schedule; returns how many were placed.
-- dispatch.place_sweep() (sql/install/47_placement.sql) runs the query as the schedule's owner
-- with its stored search_path, renders the template's {{column}} placeholders from each row,
-- skips rows whose dispatch_key an unfinished task already has, and inserts the rest in one
-- statement. The schedule supplies tenant, record_ref, the fire's run_id and the absolute deadline.
CREATE FUNCTION dispatch.fire_sweep(s dispatch.schedules, run uuid, due timestamptz) RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  placed jsonb;
BEGIN
  placed := dispatch.place_sweep(
    s.owner_role, s.sweep_search_path, s.sweep,
    (s.task - 'deadline')
      || jsonb_build_object('tenant', s.tenant, 'run_id', run)
      || CASE WHEN s.record_ref IS NOT NULL THEN jsonb_build_object('record_ref', s.record_ref) ELSE '{}' END
      || CASE WHEN s.task ? 'deadline'
              THEN jsonb_build_object('deadline', due + (s.task ->> 'deadline')::interval) ELSE '{}' END,
    schedule_id => s.schedule_id);
  RETURN (placed ->> 'created')::int;
END
$$;
COMMENT ON FUNCTION dispatch.fire_sweep(dispatch.schedules, uuid, timestamptz) IS
  'Internal: one fire of a sweep schedule: dispatch.place_sweep() runs the sweep as the schedule''s owner (never as the extension''s owner) and places one task per row from the template; returns how many were placed.';

-- Internal: a fire's outcome reaches its schedule: done resets the failure count, failed adds
-- one, and max_failures in a row pause the schedule with the reason. Returns true when paused.
CREATE FUNCTION dispatch.schedule_outcome(schedule_id bigint, outcome text, detail text) RETURNS boolean
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  s dispatch.schedules;
  pause_now boolean;
BEGIN
  IF outcome = 'done' THEN
    -- Success in a row writes nothing: the row is only touched when there is a count to reset.
    UPDATE dispatch.schedules AS x SET consecutive_failures = 0
     WHERE x.schedule_id = schedule_outcome.schedule_id AND x.consecutive_failures <> 0
       AND x.deleted_at IS NULL;
    RETURN false;
  END IF;
  IF outcome IS DISTINCT FROM 'failed' THEN
    RETURN false;
  END IF;
  SELECT * INTO s FROM dispatch.schedules AS x
   WHERE x.schedule_id = schedule_outcome.schedule_id AND x.deleted_at IS NULL
     FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  pause_now := s.enabled AND s.max_failures > 0 AND s.consecutive_failures + 1 >= s.max_failures;
  UPDATE dispatch.schedules AS x
     SET consecutive_failures = x.consecutive_failures + 1,
         enabled = x.enabled AND NOT pause_now,
         pause_reason = CASE WHEN pause_now
                             THEN format('paused itself after %s consecutive failed fires (max_failures = %s); the last: %s',
                                         x.consecutive_failures + 1, x.max_failures, detail)
                             ELSE x.pause_reason END,
         paused_at = CASE WHEN pause_now THEN clock_timestamp() ELSE x.paused_at END
   WHERE x.schedule_id = s.schedule_id;
  IF pause_now THEN
    RAISE LOG 'dispatch: schedule "%" of tenant "%" paused itself after % consecutive failed fires; the last: %',
              s.name, s.tenant, s.consecutive_failures + 1, detail;
  END IF;
  RETURN NOT s.enabled OR pause_now;
END
$$;
COMMENT ON FUNCTION dispatch.schedule_outcome(bigint, text, text) IS
  'Internal: counts a fire''s outcome toward its schedule: done resets consecutive_failures, failed adds one and pauses the schedule (with the reason) at max_failures. Returns whether the schedule is paused.';

-- Internal: one slot of a schedule. Returns fired, skipped, failed, or duplicate (the slot was
-- already recorded: nothing done).
CREATE FUNCTION dispatch.fire_slot(s dispatch.schedules, slot timestamptz, late boolean,
                                   previous timestamptz)
  RETURNS text
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  due timestamptz := slot + s.jitter_offset;
  run uuid := gen_random_uuid();
  tid bigint;
  n int;
  msg text;
  code text;
BEGIN
  IF s.concurrency = 'skip' AND EXISTS (
      SELECT FROM dispatch.fires AS f
       WHERE f.schedule_id = s.schedule_id AND f.scheduled_for = previous AND f.open_tasks > 0) THEN
    INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, status, late, reason)
    VALUES (s.schedule_id, slot, due, 'skipped', late,
            format('the previous fire (%s) still has unfinished work (concurrency = skip)', previous))
    ON CONFLICT DO NOTHING;
    RETURN CASE WHEN FOUND THEN 'skipped' ELSE 'duplicate' END;
  END IF;
  BEGIN
    IF s.sweep IS NULL THEN
      -- The task's id is taken first, so the fire row is written once, complete.
      tid := nextval('dispatch.tasks_task_id_seq');
      INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, status, late, run_id, task_id,
                                  tasks, open_tasks)
      VALUES (s.schedule_id, slot, due, 'fired', late, run, tid, 1, 1)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        RETURN 'duplicate';
      END IF;
      PERFORM dispatch.fire_task(s, run, due, tid);
    ELSE
      INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, status, late, run_id)
      VALUES (s.schedule_id, slot, due, 'fired', late, run)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN
        RETURN 'duplicate';
      END IF;
      n := dispatch.fire_sweep(s, run, due);
      UPDATE dispatch.fires AS f
         SET tasks = n, open_tasks = n,
             outcome = CASE WHEN n = 0 THEN 'done' END,
             finished_at = CASE WHEN n = 0 THEN clock_timestamp() END
       WHERE f.schedule_id = s.schedule_id AND f.scheduled_for = slot;
    END IF;
    RETURN 'fired';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
  END;
  -- The subtransaction is gone, with whatever the fire had written: record the failure.
  INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, status, late, reason, sqlstate)
  VALUES (s.schedule_id, slot, due, 'failed', late, msg, code)
  ON CONFLICT DO NOTHING;
  PERFORM dispatch.schedule_outcome(s.schedule_id, 'failed', format('the fire for %s failed: %s', slot, msg));
  RETURN 'failed';
END
$$;
COMMENT ON FUNCTION dispatch.fire_slot(dispatch.schedules, timestamptz, boolean, timestamptz) IS
  'Internal: fires one slot in a subtransaction: records it in dispatch.fires (nothing when already recorded), submits its task or sweep, or records it skipped (concurrency = skip) or failed (with the error, counted toward max_failures).';

-- Internal: every due slot of one schedule at `at`, then its next fire.
--
-- Slots before `missed_before` were missed (more than grace late): their number and the last
-- few come from count_fires/fire_times, and the catch_up policy says which of them still fire.
-- The slots from there to `due_until` are on time: they are walked with next_fire, which also
-- gives the next fire once the walk passes `due_until`. In the common case (one slot, on time)
-- that is one next_fire call.
CREATE FUNCTION dispatch.fire_schedule(s dispatch.schedules, at timestamptz, grace interval,
                                       OUT fired int, OUT skipped bigint, OUT failed int)
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  eps constant interval := interval '1 microsecond';
  first timestamptz := s.next_fire_at - s.jitter_offset;  -- the slot that made it due
  missed_before timestamptz := at - grace - s.jitter_offset;
  due_until timestamptz := at - s.jitter_offset;
  n_missed bigint := 0;
  keep bigint := 0;
  tail timestamptz[] := '{}';
  skip_last timestamptz;
  slot timestamptz;
  result text;
  previous timestamptz := s.last_fired_for;
  walked int := 0;
  paused boolean := false;
  n bigint;
BEGIN
  fired := 0; skipped := 0; failed := 0;
  slot := first;
  IF first < missed_before THEN
    -- Plan (reads only, so its subtransaction costs no transaction id). A schedule that cannot
    -- even be planned pauses itself with the error instead of failing every tick.
    BEGIN
      n_missed := dispatch.count_fires(s.spec, first - eps, least(missed_before - eps, s.ends_at),
                                       s.timezone, s.anchor);
      slot := dispatch.schedule_slot_after(s, missed_before - eps);  -- the first on-time slot
      IF n_missed > 0 THEN
        keep := CASE s.catch_up WHEN 'all' THEN least(s.catch_up_limit, n_missed)
                                WHEN 'once' THEN CASE WHEN slot <= due_until THEN 0 ELSE 1 END
                                ELSE 0 END;
        -- The last keep + 1 missed slots: the ones replayed, and the last one skipped before them.
        tail := ARRAY(SELECT dispatch.fire_times(s.spec, first - eps, least(missed_before - eps, s.ends_at),
                                                 s.timezone, s.anchor, (keep + 1)::int, true));
        IF n_missed > keep THEN
          skip_last := tail[cardinality(tail) - keep];
        END IF;
        tail := tail[cardinality(tail) - keep + 1:];
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS result = MESSAGE_TEXT;
      UPDATE dispatch.schedules AS x
         SET enabled = false, paused_at = clock_timestamp(),
             pause_reason = format('paused itself: its due fires could not be worked out: %s', result)
       WHERE x.schedule_id = s.schedule_id;
      RAISE LOG 'dispatch: schedule "%" of tenant "%" paused: %', s.name, s.tenant, result;
      failed := 1;
      RETURN;
    END;
    -- Missed slots not caught up: one row for the whole run of them, with the reason.
    IF n_missed > keep THEN
      INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, status, slots, through, reason)
      VALUES (s.schedule_id, first, first + s.jitter_offset, 'skipped', n_missed - keep, skip_last,
              format('missed: %s fire(s) from %s through %s were due more than dispatch.misfire_grace (%s) before the scheduler got to them (catch_up = %s)',
                     n_missed - keep, first, skip_last, grace, s.catch_up))
      ON CONFLICT DO NOTHING;
      skipped := n_missed - keep;
    END IF;
  END IF;

  -- Replayed missed slots, then the on-time ones; at most 1000 on-time slots per tick.
  FOR i IN 1 .. cardinality(tail) + 1000 LOOP
    EXIT WHEN i > cardinality(tail) AND (slot IS NULL OR slot > due_until);
    IF i <= cardinality(tail) THEN
      result := dispatch.fire_slot(s, tail[i], true, previous);
    ELSE
      result := dispatch.fire_slot(s, slot, false, previous);
    END IF;
    CASE result
      WHEN 'fired' THEN
        fired := fired + 1;
        previous := CASE WHEN i <= cardinality(tail) THEN tail[i] ELSE slot END;
      WHEN 'skipped' THEN skipped := skipped + 1;
      WHEN 'failed' THEN
        failed := failed + 1;
        paused := NOT (SELECT x.enabled FROM dispatch.schedules AS x WHERE x.schedule_id = s.schedule_id);
      ELSE NULL;
    END CASE;
    IF i > cardinality(tail) THEN
      slot := dispatch.schedule_slot_after(s, slot);
    END IF;
    IF paused THEN
      -- It paused itself on a failure just now: the rest of this tick's due slots are recorded.
      IF i < cardinality(tail) THEN
        slot := tail[i + 1];
      ELSIF i = cardinality(tail) THEN
        NULL;  -- slot is already the first on-time slot
      END IF;
      IF slot IS NOT NULL AND slot <= due_until THEN
        n := dispatch.count_fires(s.spec, slot - eps, least(due_until, s.ends_at), s.timezone, s.anchor);
        skip_last := (SELECT t FROM dispatch.fire_times(s.spec, slot - eps, least(due_until, s.ends_at),
                                                        s.timezone, s.anchor, 1, true) AS t);
        INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, status, slots, through, reason)
        VALUES (s.schedule_id, slot, slot + s.jitter_offset, 'skipped', n, skip_last,
                'the schedule paused itself after too many failed fires')
        ON CONFLICT DO NOTHING;
        skipped := skipped + n;
        slot := dispatch.schedule_slot_after(s, skip_last);
      END IF;
      EXIT;
    END IF;
  END LOOP;

  -- `slot` is now the first slot not handled: the next fire (NULL: the schedule has ended).
  UPDATE dispatch.schedules AS x
     SET next_fire_at = slot + s.jitter_offset,
         last_fire_at = CASE WHEN fired > 0 THEN clock_timestamp() ELSE x.last_fire_at END,
         last_fired_for = previous,
         updated_at = clock_timestamp()
   WHERE x.schedule_id = s.schedule_id;
END
$$;
COMMENT ON FUNCTION dispatch.fire_schedule(dispatch.schedules, timestamptz, interval) IS
  'Internal: fires every slot of the schedule due at `at` (those missed by more than grace as its catch_up policy says, the rest recorded as one skipped run), then sets its next fire; ended when none is left.';

CREATE FUNCTION dispatch.fire_due(batch int DEFAULT NULL, at timestamptz DEFAULT NULL,
                                  grace interval DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  now_ timestamptz := coalesce(at, clock_timestamp());
  s dispatch.schedules;
  r record;
  n_schedules int := 0;
  n_fired int := 0;
  n_skipped bigint := 0;
  n_failed int := 0;
BEGIN
  batch := coalesce(batch, current_setting('dispatch.schedule_batch')::int);
  grace := coalesce(grace, current_setting('dispatch.misfire_grace')::interval);
  FOR s IN
    SELECT * FROM dispatch.schedules AS x
     WHERE x.status = 'active' AND x.next_fire_at <= now_
     ORDER BY x.next_fire_at
     LIMIT batch
       FOR UPDATE SKIP LOCKED
  LOOP
    r := dispatch.fire_schedule(s, now_, grace);
    n_schedules := n_schedules + 1;
    n_fired := n_fired + r.fired;
    n_skipped := n_skipped + r.skipped;
    n_failed := n_failed + r.failed;
  END LOOP;
  RETURN jsonb_build_object('schedules', n_schedules, 'fired', n_fired, 'fires_skipped', n_skipped,
                            'fires_failed', n_failed);
END
$$;
COMMENT ON FUNCTION dispatch.fire_due(int, timestamptz, interval) IS
  'Tick step: fires the schedules due at `at` (default now), at most batch (default dispatch.schedule_batch) of them, earliest first, skipping those another session holds; grace defaults to dispatch.misfire_grace. Returns {"schedules", "fired", "fires_skipped", "fires_failed"}.';

CREATE FUNCTION dispatch.next_due() RETURNS timestamptz
  LANGUAGE sql STABLE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT x.next_fire_at FROM dispatch.schedules AS x WHERE x.status = 'active'
   ORDER BY x.next_fire_at LIMIT 1
$$;
COMMENT ON FUNCTION dispatch.next_due() IS
  'When the next active schedule is due (one index probe); NULL when none is. The worker sleeps until then when it comes before dispatch.naptime.';

-- Task outcomes --------------------------------------------------------------------------------

-- A finished task of a schedule, counted on its fire. Called, as the extension's owner, by the
-- trigger below for the tasks it concerns: those a schedule made that just left a live state.
CREATE FUNCTION dispatch.schedule_fire_task_finished(task_id bigint, schedule_id bigint, run_id uuid,
                                                     state text, error text) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  verdict text := CASE WHEN state = 'done' THEN 'done'
                       WHEN state IN ('dead', 'failed', 'aborted', 'timeout') THEN 'failed'
                       ELSE 'cancelled' END;
  fire_outcome text;
BEGIN
  -- The fire row is the counter for all of a fire's tasks; its row lock orders concurrent finishers.
  UPDATE dispatch.fires AS f
     SET open_tasks = f.open_tasks - 1,
         done_tasks = f.done_tasks + (verdict = 'done')::int,
         failed_tasks = f.failed_tasks + (verdict = 'failed')::int,
         outcome = CASE WHEN f.open_tasks > 1 THEN NULL
                        WHEN f.failed_tasks + (verdict = 'failed')::int > 0 THEN 'failed'
                        WHEN f.done_tasks + (verdict = 'done')::int > 0 THEN 'done'
                        ELSE 'cancelled' END,
         finished_at = CASE WHEN f.open_tasks > 1 THEN NULL ELSE clock_timestamp() END
   WHERE f.run_id = schedule_fire_task_finished.run_id
     AND f.schedule_id = schedule_fire_task_finished.schedule_id AND f.open_tasks > 0
  RETURNING f.outcome INTO fire_outcome;
  IF fire_outcome IN ('done', 'failed') THEN
    PERFORM dispatch.schedule_outcome(schedule_id, fire_outcome,
      format('task %s ended %s%s', task_id, state,
             CASE WHEN error IS NOT NULL THEN ': ' || error ELSE '' END));
  END IF;
END
$$;
COMMENT ON FUNCTION dispatch.schedule_fire_task_finished(bigint, bigint, uuid, text, text) IS
  'Internal, called by the schedule_task_finished trigger: counts a finished task of a schedule on its fire, and once the fire''s tasks are all finished, its outcome on the schedule (done resets the failure count, failed may pause it).';

CREATE FUNCTION dispatch.schedule_task_finished() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_schedule_task_finished';
COMMENT ON FUNCTION dispatch.schedule_task_finished() IS
  'AFTER UPDATE OF state trigger of dispatch.tasks: a task a schedule made that just finished is counted on its fire (dispatch.schedule_fire_task_finished). It tests that in C (src/schedfinish.c) rather than in a WHEN clause, which PostgreSQL would re-read at every claim and completion.';

CREATE TRIGGER schedule_task_finished AFTER UPDATE OF state ON dispatch.tasks
  FOR EACH ROW EXECUTE FUNCTION dispatch.schedule_task_finished();

-- Retention ------------------------------------------------------------------------------------

CREATE FUNCTION dispatch.purge_schedule_history(batch int DEFAULT 10000, retention interval DEFAULT NULL)
  RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  cutoff timestamptz := clock_timestamp()
                        - coalesce(retention, current_setting('dispatch.history_retention')::interval);
  old bigint[];
  n int;
  m int;
BEGIN
  old := ARRAY(SELECT s.schedule_id FROM dispatch.schedules AS s
                WHERE s.deleted_at < cutoff ORDER BY s.deleted_at LIMIT 100);
  IF cardinality(old) = 0 THEN
    RETURN 0;
  END IF;
  DELETE FROM dispatch.fires AS f
   USING (SELECT g.schedule_id, g.scheduled_for FROM dispatch.fires AS g
           WHERE g.schedule_id = ANY (old) LIMIT batch) AS d
   WHERE f.schedule_id = d.schedule_id AND f.scheduled_for = d.scheduled_for;
  GET DIAGNOSTICS n = ROW_COUNT;
  -- A schedule row goes once its fires are gone.
  DELETE FROM dispatch.schedules AS s
   WHERE s.schedule_id = ANY (old)
     AND NOT EXISTS (SELECT FROM dispatch.fires AS f WHERE f.schedule_id = s.schedule_id);
  GET DIAGNOSTICS m = ROW_COUNT;
  RETURN n + m;
END
$$;
COMMENT ON FUNCTION dispatch.purge_schedule_history(int, interval) IS
  'Tick step: removes, in batches of at most batch fires, the fires of schedules deleted longer than retention ago (default dispatch.history_retention), then the schedule rows themselves. Returns how many rows went.';
