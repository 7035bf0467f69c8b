-- 72_health: the tick steps that keep an overloaded or stuck fleet healthy: per-kind timeouts of
-- running claims, and shedding waiting work under overload (lowest priority first, never critical).
-- Both work in bounded batches through partial indexes and skip rows another session holds.

-- Internal: the retry delay after a failed attempt, as dispatch.fail() computes it: exponential
-- from dispatch.retry_base, at most dispatch.retry_max, half fixed and half random.
CREATE FUNCTION dispatch.retry_delay(attempts int) RETURNS double precision
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT d / 2 + random() * d / 2
    FROM (SELECT least(extract(epoch FROM current_setting('dispatch.retry_max')::interval),
                       extract(epoch FROM current_setting('dispatch.retry_base')::interval)
                       * 2 ^ (greatest(attempts, 1) - 1))::float8 AS d) AS x
$$;
COMMENT ON FUNCTION dispatch.retry_delay(int) IS
  'Internal: seconds to wait before retrying after the given number of attempts: dispatch.retry_base doubled per attempt, at most dispatch.retry_max, with half of it random.';

-- Timeouts. The claimed tasks are found through tasks_claimed_idx (WHERE state = 'claimed'): their
-- number is bounded by the fleet's capacity, not by the history, so reading all of them is cheap.
CREATE FUNCTION dispatch.timeout_claims(batch int DEFAULT 10000) RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  n int;
BEGIN
  IF NOT EXISTS (SELECT FROM dispatch.kinds WHERE timeout IS NOT NULL) THEN
    RETURN 0;
  END IF;
  WITH over AS (
    SELECT t.task_id, t.agent_id, t.claimed_at, k.timeout
      FROM dispatch.tasks AS t
      JOIN dispatch.kinds AS k ON k.kind = t.kind
     WHERE t.state = 'claimed' AND k.timeout IS NOT NULL
       AND t.claimed_at < clock_timestamp() - k.timeout
     ORDER BY t.claimed_at
     LIMIT batch
       FOR UPDATE OF t SKIP LOCKED),
  moved AS (
    UPDATE dispatch.tasks AS t
       SET state = CASE WHEN t.attempts < t.max_attempts THEN 'scheduled' ELSE 'dead' END,
           run_at = CASE WHEN t.attempts < t.max_attempts
                         THEN clock_timestamp() + make_interval(secs => dispatch.retry_delay(t.attempts))
                         ELSE t.run_at END,
           ready_at = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE t.ready_at END,
           agent_id = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE t.agent_id END,
           finished_at = CASE WHEN t.attempts < t.max_attempts THEN NULL ELSE clock_timestamp() END,
           lease_until = NULL,
           error = format('timed out: ran longer than %s, the timeout of kind %s', over.timeout, t.kind)
      FROM over
     WHERE t.task_id = over.task_id
    RETURNING t.task_id, t.state, t.tenant, t.attempts, t.max_attempts, t.run_at, t.error,
              over.agent_id, over.timeout, over.claimed_at),
  logged AS (
    INSERT INTO dispatch.decisions (kind, task_id, agent_id, tenant, policy_version, reason, factors, actor)
    SELECT 'timeout', m.task_id, m.agent_id, m.tenant, dispatch.policy_version(), m.error,
           jsonb_build_object('attempt', m.attempts, 'max_attempts', m.max_attempts,
                              'timeout_seconds', extract(epoch FROM m.timeout)::float8,
                              'ran_seconds', round(extract(epoch FROM clock_timestamp() - m.claimed_at)::numeric, 3),
                              'next', CASE WHEN m.state = 'dead' THEN 'dead' ELSE 'retry' END,
                              'retry_at', CASE WHEN m.state = 'dead' THEN NULL ELSE m.run_at END),
           dispatch.caller()
      FROM moved AS m)
  SELECT count(*) INTO n FROM moved;
  RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch.timeout_claims(int) IS
  'Tick step: a claim running longer than its kind''s timeout (dispatch.kinds.timeout) ends as a failed attempt: the task is retried after a backoff (scheduled) while attempts remain, else it is dead; each is logged as a timeout decision.';

-- Overload -------------------------------------------------------------------------------------
-- shed_after (policy, seconds per priority; never for critical) is how long a ready task of that
-- priority may wait. A priority is overdue when its oldest ready task has waited longer. While a
-- priority is overdue, no lower-priority task may wait longer than that priority's shed_after
-- either: it could not run before the overdue work anyway. So a priority's effective limit is the
-- least of its own shed_after and that of every overdue priority above it.

CREATE FUNCTION dispatch.overload_state(at timestamptz DEFAULT pg_catalog.now())
  RETURNS TABLE (priority text, ready_oldest_at timestamptz, oldest_wait_seconds double precision,
                 shed_after_seconds double precision, overdue boolean,
                 effective_shed_after_seconds double precision)
  LANGUAGE sql STABLE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  WITH pol AS (SELECT weights->'shed_after' AS sa FROM dispatch.policies WHERE active),
  prio AS (
    SELECT p.priority, p.rank,
           (SELECT min(t.ready_at) FROM dispatch.tasks AS t
             WHERE t.state = 'ready' AND t.priority = p.priority) AS oldest,
           (SELECT (sa->>p.priority)::float8 FROM pol) AS lim
      FROM (VALUES ('critical', 0), ('high', 1), ('normal', 2), ('low', 3)) AS p (priority, rank)),
  flagged AS (
    SELECT prio.*, coalesce(lim IS NOT NULL AND oldest < at - make_interval(secs => lim), false) AS late
      FROM prio)
  SELECT f.priority, f.oldest, extract(epoch FROM at - f.oldest)::float8, f.lim, f.late,
         CASE WHEN f.priority = 'critical' THEN NULL
              ELSE least(f.lim, (SELECT min(h.lim) FROM flagged AS h WHERE h.rank < f.rank AND h.late)) END
    FROM flagged AS f
   ORDER BY f.rank
$$;
COMMENT ON FUNCTION dispatch.overload_state(timestamptz) IS
  'Per priority at the given time: the oldest ready task (tasks_waiting_idx, one index descent each), how long it has waited, the policy''s shed_after, whether the priority is overdue, and the effective limit past which its ready tasks are shed (never for critical).';

CREATE VIEW dispatch.overload AS SELECT * FROM dispatch.overload_state(pg_catalog.now());
COMMENT ON VIEW dispatch.overload IS
  'Per priority now: the oldest ready task and its wait, shed_after, whether the priority is overdue, and the wait past which its tasks are shed. An overdue row is the warning that shedding has begun.';

CREATE FUNCTION dispatch.shed_overload(batch int DEFAULT 10000) RETURNS int
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  at timestamptz := clock_timestamp();
  late text[];
  s record;
  n int;
  total int := 0;
BEGIN
  SELECT array_agg(o.priority ORDER BY CASE o.priority WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END)
         FILTER (WHERE o.overdue) INTO late
    FROM dispatch.overload_state(at) AS o;
  IF late IS NULL THEN
    RETURN 0;
  END IF;

  -- Work submitted with shed_if_busy goes first, whatever its age.
  WITH victims AS (
    SELECT task_id FROM dispatch.tasks
     WHERE state = 'ready' AND shed_if_busy
     ORDER BY ready_at
     LIMIT batch
       FOR UPDATE SKIP LOCKED),
  shed AS (
    UPDATE dispatch.tasks AS t
       SET state = 'shed', finished_at = at, error = 'shed under overload (shed_if_busy)'
      FROM victims WHERE t.task_id = victims.task_id
    RETURNING t.task_id, t.tenant, t.priority, t.ready_at),
  logged AS (
    INSERT INTO dispatch.decisions (kind, task_id, tenant, policy_version, reason, factors, actor)
    SELECT 'shed', task_id, tenant, dispatch.policy_version(), 'overload: submitted with shed_if_busy',
           jsonb_build_object('priority', priority, 'overdue', to_jsonb(late),
                              'waited_seconds', round(extract(epoch FROM at - ready_at)::numeric, 3)),
           dispatch.caller()
      FROM shed)
  SELECT count(*) INTO n FROM shed;
  total := n;

  -- Then each priority's tasks past its effective limit: low first, oldest first.
  FOR s IN SELECT * FROM dispatch.overload_state(at) AS o
            WHERE o.priority <> 'critical' AND o.effective_shed_after_seconds IS NOT NULL
            ORDER BY CASE o.priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END
  LOOP
    EXIT WHEN total >= batch;
    WITH victims AS (
      SELECT task_id FROM dispatch.tasks
       WHERE state = 'ready' AND priority = s.priority
         AND ready_at < at - make_interval(secs => s.effective_shed_after_seconds)
       ORDER BY ready_at
       LIMIT batch - total
         FOR UPDATE SKIP LOCKED),
    shed AS (
      UPDATE dispatch.tasks AS t
         SET state = 'shed', finished_at = at,
             error = format('shed under overload: waited longer than %s s', s.effective_shed_after_seconds)
        FROM victims WHERE t.task_id = victims.task_id
      RETURNING t.task_id, t.tenant, t.ready_at),
    logged AS (
      INSERT INTO dispatch.decisions (kind, task_id, tenant, policy_version, reason, factors, actor)
      SELECT 'shed', task_id, tenant, dispatch.policy_version(),
             format('overload: %s task waited %s s, longer than %s s', s.priority,
                    round(extract(epoch FROM at - ready_at)::numeric), s.effective_shed_after_seconds),
             jsonb_build_object('priority', s.priority, 'overdue', to_jsonb(late),
                                'waited_seconds', round(extract(epoch FROM at - ready_at)::numeric, 3),
                                'shed_after', s.shed_after_seconds,
                                'effective_shed_after', s.effective_shed_after_seconds),
             dispatch.caller()
        FROM shed)
    SELECT count(*) INTO n FROM shed;
    total := total + n;
  END LOOP;
  RETURN total;
END
$$;
COMMENT ON FUNCTION dispatch.shed_overload(int) IS
  'Tick step: while any priority is overdue (its oldest ready task waited longer than the policy''s shed_after), sheds ready work: first every task submitted with shed_if_busy, then, lowest priority first and oldest first, the tasks that waited longer than their priority''s effective limit (see dispatch.overload). Critical work is never shed. Each shed task ends as shed and is logged with the reason. At most batch tasks per tick.';
