-- 70_tick: one tick of the background worker, callable as SELECT dispatch.tick() (for hosts that
-- drive it from pg_cron). Each step works in bounded batches through an index, never a scan of
-- the tasks; rows another session holds are skipped, not waited for.

-- Scheduled tasks whose run_at has come become ready (in run_at order).
CREATE FUNCTION dispatch.promote_due(batch int DEFAULT 10000) RETURNS int
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH due AS (
    SELECT task_id FROM dispatch.tasks
     WHERE state = 'scheduled' AND run_at <= clock_timestamp()
     ORDER BY run_at
     LIMIT batch
       FOR UPDATE SKIP LOCKED),
  promoted AS (
    UPDATE dispatch.tasks AS t SET state = 'ready', ready_at = t.run_at
      FROM due WHERE t.task_id = due.task_id
    RETURNING 1)
  SELECT count(*)::int FROM promoted
$$;
COMMENT ON FUNCTION dispatch.promote_due(int) IS
  'Tick step: scheduled tasks whose run_at has come become ready, ranked from their run_at.';

-- Claims whose lease ran out: the attempt counts; requeued while attempts remain, else dead.
CREATE FUNCTION dispatch.requeue_expired(batch int DEFAULT 10000) RETURNS int
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH expired AS (
    SELECT task_id, agent_id FROM dispatch.tasks
     WHERE state = 'claimed' AND lease_until < clock_timestamp()
     ORDER BY lease_until
     LIMIT batch
       FOR UPDATE SKIP LOCKED),
  moved AS (
    UPDATE dispatch.tasks AS t
       SET state = CASE WHEN t.attempts < t.max_attempts THEN 'ready' ELSE 'dead' END,
           finished_at = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE clock_timestamp() END,
           error = 'lease expired', lease_until = NULL,
           agent_id = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE t.agent_id END
      FROM expired WHERE t.task_id = expired.task_id
    RETURNING t.task_id, t.state, t.tenant, t.attempts, t.max_attempts),
  logged AS (
    INSERT INTO dispatch.decisions (kind, task_id, agent_id, tenant, policy_version, reason, factors, actor)
    SELECT CASE WHEN m.state = 'ready' THEN 'requeue' ELSE 'dead' END, m.task_id, e.agent_id, m.tenant,
           dispatch.policy_version(), 'lease expired',
           jsonb_build_object('attempt', m.attempts, 'max_attempts', m.max_attempts), dispatch.caller()
      FROM moved AS m JOIN expired AS e ON e.task_id = m.task_id
    RETURNING 1)
  SELECT count(*)::int FROM moved
$$;
COMMENT ON FUNCTION dispatch.requeue_expired(int) IS
  'Tick step: claims whose lease ran out go back to ready (the attempt counts), or end dead after max_attempts; each move is logged.';

-- Agents silent for longer than dispatch.agent_timeout are lost; their tasks go back to ready.
CREATE FUNCTION dispatch.requeue_lost_agents() RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  timeout interval := current_setting('dispatch.agent_timeout')::interval;
  lost text[];
  n int;
BEGIN
  -- Lock the tasks before the agents (the lock order everywhere).
  SELECT array_agg(agent_id) INTO lost FROM dispatch.agents
   WHERE status IN ('idle', 'busy', 'draining') AND last_seen < clock_timestamp() - timeout;
  IF lost IS NULL THEN
    RETURN 0;
  END IF;
  WITH held AS (
    SELECT task_id, agent_id FROM dispatch.tasks
     WHERE state = 'claimed' AND agent_id = ANY (lost)
       FOR UPDATE),
  -- The attempt counts, as for an expired lease: a task that keeps killing its agents ends dead.
  back AS (
    UPDATE dispatch.tasks AS t
       SET state = CASE WHEN t.attempts < t.max_attempts THEN 'ready' ELSE 'dead' END,
           finished_at = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE clock_timestamp() END,
           error = 'agent lost', lease_until = NULL,
           agent_id = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE t.agent_id END
      FROM held WHERE t.task_id = held.task_id
    RETURNING t.task_id, t.state, t.tenant, t.attempts, t.max_attempts),
  logged AS (
    INSERT INTO dispatch.decisions (kind, task_id, agent_id, tenant, policy_version, reason, factors, actor)
    SELECT CASE WHEN b.state = 'ready' THEN 'lost' ELSE 'dead' END, b.task_id, h.agent_id, b.tenant,
           dispatch.policy_version(), 'agent stopped sending heartbeats',
           jsonb_build_object('attempt', b.attempts, 'max_attempts', b.max_attempts), dispatch.caller()
      FROM back AS b JOIN held AS h ON h.task_id = b.task_id)
  -- Count what moved, not what was logged: dispatch.log_decisions may filter the log.
  SELECT count(*) INTO n FROM back;
  -- Work that was waiting for a lost agent (session affinity, assignment) is free for anyone.
  UPDATE dispatch.tasks AS t SET reserved_for = NULL, reserved_until = NULL, reservation = NULL
   WHERE t.state = 'ready' AND t.reserved_for = ANY (lost);
  UPDATE dispatch.agents SET status = 'lost'
   WHERE agent_id = ANY (lost) AND status IN ('idle', 'busy', 'draining')
     AND last_seen < clock_timestamp() - timeout;
  RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch.requeue_lost_agents() IS
  'Tick step: agents silent for longer than dispatch.agent_timeout are marked lost and their tasks go back to ready (logged as lost), or end dead after max_attempts (the attempt counts, as for an expired lease).';

-- Reservations (session affinity, push assignment) that ran out: anyone capable may take the task.
CREATE FUNCTION dispatch.expire_reservations(batch int DEFAULT 10000) RETURNS int
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH due AS (
    SELECT task_id FROM dispatch.tasks
     WHERE state = 'ready' AND reserved_for IS NOT NULL AND reserved_until < clock_timestamp()
     LIMIT batch
       FOR UPDATE SKIP LOCKED),
  freed AS (
    UPDATE dispatch.tasks AS t SET reserved_for = NULL, reserved_until = NULL, reservation = NULL
      FROM due WHERE t.task_id = due.task_id
    RETURNING 1)
  SELECT count(*)::int FROM freed
$$;
COMMENT ON FUNCTION dispatch.expire_reservations(int) IS
  'Tick step: reservations past reserved_until are dropped, so any capable agent may take the task.';

-- Waiting work past its latest start time (deadline - cost) can no longer make its deadline:
-- it leaves the urgent lane, so the lane serves the tasks that still can. It still runs (in the
-- fair order), or expires at its deadline under past_deadline = expire.
CREATE FUNCTION dispatch.drop_lost_urgency(batch int DEFAULT 10000) RETURNS int
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH late AS (
    SELECT task_id FROM dispatch.tasks
     WHERE state = 'ready' AND urgent_at IS NOT NULL AND urgent_at < clock_timestamp()
       AND lst < clock_timestamp()
     LIMIT batch
       FOR UPDATE SKIP LOCKED),
  dropped AS (
    UPDATE dispatch.tasks AS t SET urgent_at = NULL
      FROM late WHERE t.task_id = late.task_id
    RETURNING 1)
  SELECT count(*)::int FROM dropped
$$;
COMMENT ON FUNCTION dispatch.drop_lost_urgency(int) IS
  'Tick step: waiting tasks past their latest start time (deadline - est_duration), which can no longer meet their deadline, leave the urgent lane (urgent_at becomes NULL) so it serves those that still can; they keep their place in the fair order.';

-- Under past_deadline = expire, waiting work whose deadline has passed ends as expired.
CREATE FUNCTION dispatch.expire_past_deadline(batch int DEFAULT 10000) RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  n int;
BEGIN
  IF (SELECT weights ->> 'past_deadline' FROM dispatch.policies WHERE active) IS DISTINCT FROM 'expire' THEN
    RETURN 0;
  END IF;
  WITH late AS (
    SELECT task_id FROM dispatch.tasks
     WHERE state IN ('scheduled', 'ready') AND deadline IS NOT NULL AND deadline < clock_timestamp()
     ORDER BY deadline
     LIMIT batch
       FOR UPDATE SKIP LOCKED),
  gone AS (
    UPDATE dispatch.tasks AS t SET state = 'expired', finished_at = clock_timestamp(),
           error = 'deadline passed before an agent took it'
      FROM late WHERE t.task_id = late.task_id
    RETURNING t.task_id, t.tenant)
  INSERT INTO dispatch.decisions (kind, task_id, tenant, policy_version, reason, actor)
  SELECT 'expire', g.task_id, g.tenant, dispatch.policy_version(), 'deadline passed', dispatch.caller()
    FROM gone AS g;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch.expire_past_deadline(int) IS
  'Tick step: under the policy past_deadline = expire, waiting tasks whose deadline has passed end as expired (logged). Under run (the default) they still run and count as misses.';

-- Each kind's average duration, folded from completions since the last fold (once a minute).
CREATE FUNCTION dispatch.update_kind_stats() RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  since timestamptz;
  n int;
BEGIN
  SELECT coalesce(max(updated_at), clock_timestamp() - interval '1 hour') INTO since FROM dispatch.kinds;
  IF since > clock_timestamp() - interval '1 minute' THEN
    RETURN 0;
  END IF;
  WITH batch AS (
    SELECT kind, count(*) AS n,
           sum(extract(epoch FROM finished_at - claimed_at)) AS total,
           max(finished_at) AS last
      FROM dispatch.tasks
     WHERE finished_at > since AND state = 'done' AND claimed_at IS NOT NULL
     GROUP BY kind),
  upserted AS (
    INSERT INTO dispatch.kinds AS k (kind, avg_seconds, completed, updated_at)
    SELECT b.kind, b.total / b.n, b.n, b.last FROM batch AS b
    ON CONFLICT (kind) DO UPDATE SET
      -- A running average that forgets slowly: history counts as at most 100 tasks.
      avg_seconds = (coalesce(k.avg_seconds, 0) * least(k.completed, 100) + EXCLUDED.avg_seconds * EXCLUDED.completed)
                    / (least(k.completed, 100) + EXCLUDED.completed),
      completed = k.completed + EXCLUDED.completed,
      updated_at = EXCLUDED.updated_at
    RETURNING 1)
  SELECT count(*) INTO n FROM upserted;
  RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch.update_kind_stats() IS
  'Tick step, at most once a minute: folds the durations of tasks completed since the last fold into dispatch.kinds.avg_seconds, the cost of tasks submitted without est_duration.';

-- The fair-share virtual starts, written back so a restart resumes them.
CREATE FUNCTION dispatch.persist_fair_share() RETURNS int
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH changed AS (
    UPDATE dispatch.tenants AS t SET vstart = m.vstart
      FROM dispatch.queue_map() AS m
     WHERE m.shared AND t.tenant = m.tenant AND t.vstart IS DISTINCT FROM m.vstart
    RETURNING 1)
  SELECT count(*)::int FROM changed
$$;
COMMENT ON FUNCTION dispatch.persist_fair_share() IS
  'Tick step: each tenant''s fair-share virtual start is written back to dispatch.tenants (shared queue map only).';

CREATE FUNCTION dispatch.tick() RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  report jsonb := '{}';
BEGIN
  -- A half-restored database is left alone until dispatch.finish_restore() (the worker also
  -- reads the database's setting, which its own session missed).
  IF dispatch.restoring() THEN
    RETURN jsonb_build_object('skipped', 'a dump is being restored (dispatch.restoring)');
  END IF;
  -- One tick at a time per database (the worker and pg_cron may both call it).
  IF NOT pg_try_advisory_xact_lock(hashtext('dispatch.tick')) THEN
    RETURN jsonb_build_object('skipped', 'another tick is running');
  END IF;
  -- A C function loads the library, so the dispatch.* settings the steps read exist even in a
  -- session that has not used dispatch yet (pg_cron's, without shared_preload_libraries).
  PERFORM dispatch.caller();
  report := report || jsonb_build_object('promoted', dispatch.promote_due());
  report := report || jsonb_build_object('requeued', dispatch.requeue_expired());
  report := report || jsonb_build_object('lost', dispatch.requeue_lost_agents());
  report := report || jsonb_build_object('timed_out', dispatch.timeout_claims());
  report := report || jsonb_build_object('reservations_expired', dispatch.expire_reservations());
  report := report || jsonb_build_object('urgency_dropped', dispatch.drop_lost_urgency());
  report := report || jsonb_build_object('expired', dispatch.expire_past_deadline());
  -- Schedules after the task steps: the schedule rows it locks are the last locks it takes
  -- (everyone locks a task before its schedule), so the tick never waits in a cycle.
  report := report || (dispatch.fire_due() - 'schedules');
  report := report || jsonb_build_object('history_removed', dispatch.purge_schedule_history());
  report := report || jsonb_build_object('kinds_updated', dispatch.update_kind_stats());
  report := report || jsonb_build_object('shed', dispatch.shed_overload());
  report := report || jsonb_build_object('fair_share_saved', dispatch.persist_fair_share());
  report := report || jsonb_build_object('counts_folded', dispatch.fold_task_counts());
  -- Last: a partition drop holds the log's lock until the tick commits.
  report := report || jsonb_build_object('decision_log', dispatch.manage_decision_log());
  RETURN report;
END
$$;
COMMENT ON FUNCTION dispatch.tick() IS
  'One tick of the background worker: promote due work, requeue expired leases, end claims past their kind''s timeout, requeue the work of lost agents, drop expired reservations, expire work past its deadline (policy past_deadline), fire due schedules, remove the history of long-deleted schedules, update kind averages, shed overload, save fair-share state, fold the live counts, keep the decision log''s partitions. Returns what it did. Run by the worker every dispatch.naptime; call it from pg_cron where the library cannot be preloaded.';

-- For hosts that drive the tick from pg_cron, whose 1.4 release schedules by the minute: one
-- job a minute runs this, which ticks until `duration` is over, committing after each tick and
-- sleeping until the next schedule is due (at most dispatch.naptime), like the worker does.
-- A procedure with transaction control cannot be SECURITY DEFINER or pin search_path: it runs
-- with the caller's rights (dispatch.tick() is the definer), and every name in it is qualified.
CREATE PROCEDURE dispatch.run_ticks(duration interval DEFAULT '55 seconds')
  LANGUAGE plpgsql AS $$
DECLARE
  stop timestamptz;
  due timestamptz;
  nap float8;
BEGIN
  IF duration IS NULL OR duration <= interval '0' OR duration > interval '1 hour' THEN
    RAISE EXCEPTION 'run_ticks needs a duration between 0 and 1 hour, not %', duration
      USING ERRCODE = '22023',
            HINT = 'Run it from a job every minute with a little less than a minute, for example ''55 seconds''.';
  END IF;
  stop := pg_catalog.clock_timestamp() + duration;
  LOOP
    PERFORM dispatch.tick();
    COMMIT;
    EXIT WHEN pg_catalog.clock_timestamp() >= stop;
    due := dispatch.next_due();
    nap := LEAST(
             pg_catalog.date_part('epoch', pg_catalog.current_setting('dispatch.naptime')::interval),
             pg_catalog.date_part('epoch', stop - pg_catalog.clock_timestamp()),
             pg_catalog.date_part('epoch', due - pg_catalog.clock_timestamp()));
    PERFORM pg_catalog.pg_sleep(GREATEST(nap, 0.01));
  END LOOP;
END
$$;
COMMENT ON PROCEDURE dispatch.run_ticks(interval) IS
  'Tick repeatedly for duration (at most 1 hour), committing after each tick and sleeping until the next schedule is due or dispatch.naptime, whichever comes first. For pg_cron 1.4, which schedules by the minute: cron.schedule(''dispatch-ticks'', ''* * * * *'', ''CALL dispatch.run_ticks(''''55 seconds'''')'').';
