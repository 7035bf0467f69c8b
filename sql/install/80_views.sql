-- 80_views: what an operator reads at 3 a.m. Each view costs the same with 10 thousand or 10
-- million tasks in history. Where each one reads from:
--   live counts        dispatch.live_counts (folded counters + one tick of deltas), never the tasks;
--   running work       tasks_claimed_idx: bounded by the fleet's capacity;
--   recent history     tasks_finished_idx over the window only (finished_at >= now() - window);
--   agents, tenants    their own tables, one row per agent or tenant.
-- The window functions take the window as an argument; the views of the same name use one hour.
-- They are PL/pgSQL so that each query is planned with the window's value (a SQL function's
-- generic plan guesses a third of the table, and JIT-compiles a 5 ms query for a second), and
-- run with jit = off: a window is small by design.
-- All of it is read-only SQL, so it runs on a hot standby too.

CREATE VIEW dispatch.queue_depth AS
  SELECT tenant, priority,
         coalesce(sum(n) FILTER (WHERE state = 'ready'), 0)::bigint AS ready,
         coalesce(sum(n) FILTER (WHERE state = 'scheduled'), 0)::bigint AS scheduled,
         coalesce(sum(n) FILTER (WHERE state = 'claimed'), 0)::bigint AS claimed
    FROM dispatch.live_counts
   GROUP BY tenant, priority
   ORDER BY tenant, CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END;
COMMENT ON VIEW dispatch.queue_depth IS
  'Tasks ready, scheduled (waiting for run_at, a retry or dependencies) and claimed, per tenant and priority; sum over tenant for the totals by priority. Exact for committed work, read from maintained counters (never a scan of the tasks).';

-- Agents --------------------------------------------------------------------------------------

CREATE FUNCTION dispatch.agent_utilization(window_length interval)
  RETURNS TABLE (agent_id text, status text, running int, capacity int, utilization_pct numeric,
                 current_tasks bigint[], idle_since timestamptz, last_seen timestamptz,
                 silent_seconds double precision, zombie boolean, tasks_in_window bigint,
                 busy_seconds_in_window double precision, busy_pct_in_window numeric)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp SET jit = off AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH w AS (SELECT now() - window_length AS since,
                    extract(epoch FROM window_length)::float8 AS secs,
                    current_setting('dispatch.agent_timeout')::interval AS timeout),
  held AS (
    SELECT t.agent_id, array_agg(t.task_id ORDER BY t.claimed_at) AS tasks,
           sum(extract(epoch FROM now() - greatest(t.claimed_at, w.since)))::float8 AS busy
      FROM dispatch.tasks AS t, w
     WHERE t.state = 'claimed'
     GROUP BY t.agent_id),
  done AS (
    SELECT t.agent_id, count(*) AS n,
           sum(extract(epoch FROM t.finished_at - greatest(t.claimed_at, w.since)))::float8 AS busy
      FROM dispatch.tasks AS t, w
     WHERE t.finished_at >= w.since AND t.agent_id IS NOT NULL AND t.claimed_at IS NOT NULL
     GROUP BY t.agent_id)
  SELECT a.agent_id, a.status, a.running, a.capacity,
         CASE WHEN a.capacity > 0 THEN round(100.0 * a.running / a.capacity, 1) END,
         coalesce(held.tasks, '{}'), a.idle_since, a.last_seen,
         extract(epoch FROM now() - a.last_seen)::float8,
         a.status = 'lost' OR (a.status IN ('idle', 'busy', 'draining') AND a.last_seen < now() - w.timeout),
         coalesce(done.n, 0),
         coalesce(held.busy, 0) + coalesce(done.busy, 0),
         CASE WHEN a.capacity > 0 AND w.secs > 0
              THEN round((100 * (coalesce(held.busy, 0) + coalesce(done.busy, 0)) / (w.secs * a.capacity))::numeric, 1) END
    FROM dispatch.agents AS a CROSS JOIN w
    LEFT JOIN held ON held.agent_id = a.agent_id
    LEFT JOIN done ON done.agent_id = a.agent_id
   ORDER BY a.agent_id;
END
$$;
COMMENT ON FUNCTION dispatch.agent_utilization(interval) IS
  'Per agent: status, running/capacity, the tasks it holds, idle since, last heartbeat and silence, zombie (lost, or silent past dispatch.agent_timeout and not yet marked), and over the window: tasks it finished and its busy seconds (claimed time inside the window) as a share of its capacity.';

CREATE VIEW dispatch.agent_utilization AS
  SELECT * FROM dispatch.agent_utilization(interval '1 hour');
COMMENT ON VIEW dispatch.agent_utilization IS
  'dispatch.agent_utilization(interval) over the last hour: per agent status, running/capacity, current tasks, idle since, last heartbeat, zombie flag, tasks and busy time in the last hour.';

CREATE VIEW dispatch.fleet AS
  SELECT count(*) FILTER (WHERE status <> 'offline') AS total,
         count(*) FILTER (WHERE status <> 'offline' AND running > 0) AS busy,
         count(*) FILTER (WHERE status <> 'offline' AND running = 0 AND NOT zombie) AS idle,
         count(*) FILTER (WHERE status <> 'offline' AND running = 0 AND zombie) AS lost,
         count(*) FILTER (WHERE zombie) AS zombies,
         count(*) FILTER (WHERE status = 'draining') AS draining,
         count(*) FILTER (WHERE status = 'offline') AS offline,
         coalesce(sum(capacity) FILTER (WHERE taking), 0) AS capacity,
         coalesce(sum(running) FILTER (WHERE taking), 0) AS running,
         CASE WHEN sum(capacity) FILTER (WHERE taking) > 0
              THEN round(100.0 * sum(running) FILTER (WHERE taking)
                         / sum(capacity) FILTER (WHERE taking), 1) END AS utilization_pct
    FROM (SELECT z.*, z.status IN ('idle', 'busy') AND NOT z.zombie AS taking
            FROM (SELECT g.status, g.running, g.capacity,
                         g.status = 'lost' OR (g.status IN ('idle', 'busy', 'draining')
                           AND g.last_seen < now() - current_setting('dispatch.agent_timeout')::interval) AS zombie
                    FROM dispatch.agents AS g) AS z) AS a;
COMMENT ON VIEW dispatch.fleet IS
  'Fleet totals: total (registered, not offline) = busy (holding any task) + idle + lost (holding nothing, and silent past dispatch.agent_timeout or marked lost); zombies (lost or silent, holding tasks or not), draining, offline; and capacity, running and their ratio over the agents taking work (idle or busy, not silent).';

-- Waiting and running times -------------------------------------------------------------------

CREATE FUNCTION dispatch.wait_times(window_length interval)
  RETURNS TABLE (priority text, kind text, claimed bigint, wait_p50 double precision,
                 wait_p95 double precision, wait_p99 double precision, wait_avg double precision,
                 done bigint, duration_p50 double precision, duration_p95 double precision,
                 duration_p99 double precision, duration_avg double precision)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp SET jit = off AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH w AS (SELECT now() - window_length AS since),
  recent AS (
    -- Claimed in the window: still running, or finished since (a task finishes after its claim).
    SELECT t.priority, t.kind, t.state,
           CASE WHEN t.claimed_at >= w.since THEN extract(epoch FROM t.claimed_at - t.ready_at)::float8 END AS wait,
           NULL::float8 AS duration
      FROM dispatch.tasks AS t, w
     WHERE t.state = 'claimed'
    UNION ALL
    SELECT t.priority, t.kind, t.state,
           CASE WHEN t.claimed_at >= w.since THEN extract(epoch FROM t.claimed_at - t.ready_at)::float8 END,
           CASE WHEN t.state = 'done' THEN extract(epoch FROM t.finished_at - t.claimed_at)::float8 END
      FROM dispatch.tasks AS t, w
     WHERE t.finished_at >= w.since AND t.claimed_at IS NOT NULL)
  SELECT priority, kind,
         count(wait),
         percentile_cont(0.5) WITHIN GROUP (ORDER BY wait),
         percentile_cont(0.95) WITHIN GROUP (ORDER BY wait),
         percentile_cont(0.99) WITHIN GROUP (ORDER BY wait),
         avg(wait),
         count(duration),
         percentile_cont(0.5) WITHIN GROUP (ORDER BY duration),
         percentile_cont(0.95) WITHIN GROUP (ORDER BY duration),
         percentile_cont(0.99) WITHIN GROUP (ORDER BY duration),
         avg(duration)
    FROM recent
   WHERE wait IS NOT NULL OR duration IS NOT NULL
   GROUP BY priority, kind
   ORDER BY CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END, kind;
END
$$;
COMMENT ON FUNCTION dispatch.wait_times(interval) IS
  'Per priority and kind over the window, in seconds: the wait from ready to claimed (p50, p95, p99, average) of the tasks claimed in the window, and the run time from claim to completion of the tasks done in the window. Reads the running tasks and the window''s finished ones only.';

CREATE VIEW dispatch.wait_times AS SELECT * FROM dispatch.wait_times(interval '1 hour');
COMMENT ON VIEW dispatch.wait_times IS
  'dispatch.wait_times(interval) over the last hour: wait and run-time percentiles per priority and kind, in seconds.';

-- Deadlines -------------------------------------------------------------------------------------

CREATE FUNCTION dispatch.sla(window_length interval)
  RETURNS TABLE (tenant text, kind text, with_deadline bigint, met bigint, missed bigint,
                 compliance_pct numeric)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp SET jit = off AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT t.tenant, t.kind, count(*),
         count(*) FILTER (WHERE t.state = 'done' AND t.finished_at <= t.deadline),
         count(*) FILTER (WHERE NOT (t.state = 'done' AND t.finished_at <= t.deadline)),
         round(100.0 * count(*) FILTER (WHERE t.state = 'done' AND t.finished_at <= t.deadline) / count(*), 2)
    FROM dispatch.tasks AS t
   WHERE t.finished_at >= now() - window_length AND t.deadline IS NOT NULL AND t.state <> 'cancelled'
   GROUP BY t.tenant, t.kind
   ORDER BY t.tenant, t.kind;
END
$$;
COMMENT ON FUNCTION dispatch.sla(interval) IS
  'Per tenant and kind, over the tasks with a deadline that ended in the window (cancelled ones aside): how many were done by their deadline (met), how many were not (late, dead, failed, aborted, shed, expired, timed out), and the share met.';

CREATE VIEW dispatch.sla AS SELECT * FROM dispatch.sla(interval '1 hour');
COMMENT ON VIEW dispatch.sla IS
  'dispatch.sla(interval) over the last hour: share of the tasks with deadlines done in time, by tenant and kind.';

-- Fair share ------------------------------------------------------------------------------------

CREATE FUNCTION dispatch.fairness(window_length interval)
  RETURNS TABLE (tenant text, weight real, backlogged boolean, ready bigint, served bigint,
                 service_seconds double precision, service_share numeric, weighted_share numeric,
                 fairness_ratio numeric, vstart double precision)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp SET jit = off AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH w AS (SELECT now() - window_length AS since),
  service AS (
    SELECT t.tenant, count(*) FILTER (WHERE t.state <> 'claimed') AS served,
           sum(extract(epoch FROM coalesce(t.finished_at, now()) - greatest(t.claimed_at, w.since)))::float8 AS secs
      FROM (SELECT tenant, state, claimed_at, NULL::timestamptz AS finished_at
              FROM dispatch.tasks WHERE state = 'claimed'
            UNION ALL
            SELECT tenant, state, claimed_at, finished_at
              FROM dispatch.tasks, w
             WHERE finished_at >= w.since AND claimed_at IS NOT NULL) AS t, w
     GROUP BY t.tenant),
  backlog AS (
    SELECT c.tenant, sum(c.n) AS ready FROM dispatch.live_counts AS c WHERE c.state = 'ready' GROUP BY c.tenant),
  active AS (
    SELECT n.tenant, n.weight, n.vstart, coalesce(b.ready, 0)::bigint AS ready,
           coalesce(s.served, 0) AS served, coalesce(s.secs, 0) AS secs
      FROM dispatch.tenants AS n
      LEFT JOIN service AS s ON s.tenant = n.tenant
      LEFT JOIN backlog AS b ON b.tenant = n.tenant
     WHERE s.tenant IS NOT NULL OR b.ready > 0),
  shares AS (
    SELECT a.*,
           CASE WHEN sum(a.secs) OVER () > 0 THEN a.secs / sum(a.secs) OVER () END AS sshare,
           a.weight / sum(a.weight) OVER () AS wshare
      FROM active AS a)
  SELECT tenant, weight, ready > 0, ready, served, secs,
         round(sshare::numeric, 4), round(wshare::numeric, 4),
         round((sshare / wshare)::numeric, 3), vstart
    FROM shares
   ORDER BY tenant;
END
$$;
COMMENT ON FUNCTION dispatch.fairness(interval) IS
  'Per tenant active in the window (served, or with ready work now): its share of the service (claimed seconds inside the window) against its weighted share (weight over the active tenants'' weights); fairness_ratio 1 is exact, below 1 is under-served. Only backlogged tenants are owed their full weighted share: one with little work rightly gets less. vstart is the fair-share virtual start saved by the last tick.';

CREATE VIEW dispatch.fairness AS SELECT * FROM dispatch.fairness(interval '1 hour');
COMMENT ON VIEW dispatch.fairness IS
  'dispatch.fairness(interval) over the last hour: each tenant''s share of service against its weighted share.';

-- Everything in one document ----------------------------------------------------------------------

CREATE FUNCTION dispatch.dashboard(window_length interval DEFAULT interval '1 hour') RETURNS jsonb
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp SET jit = off AS $$
DECLARE
  since timestamptz := now() - window_length;
  depth jsonb;
  oldest jsonb;
  overloaded boolean;
  fleet jsonb;
  win record;
  fair jsonb;
  sched jsonb;
BEGIN
  SELECT jsonb_object_agg(d.priority, jsonb_build_object('ready', d.ready, 'scheduled', d.scheduled,
                                                          'claimed', d.claimed))
    INTO depth
    FROM (SELECT p.priority,
                 coalesce(sum(c.n) FILTER (WHERE c.state = 'ready'), 0) AS ready,
                 coalesce(sum(c.n) FILTER (WHERE c.state = 'scheduled'), 0) AS scheduled,
                 coalesce(sum(c.n) FILTER (WHERE c.state = 'claimed'), 0) AS claimed
            FROM (VALUES ('critical'), ('high'), ('normal'), ('low')) AS p (priority)
            LEFT JOIN dispatch.live_counts AS c ON c.priority = p.priority
           GROUP BY p.priority) AS d;

  SELECT jsonb_object_agg(o.priority, round(o.oldest_wait_seconds::numeric, 3)), bool_or(o.overdue)
    INTO oldest, overloaded
    FROM dispatch.overload_state(now()) AS o;

  SELECT jsonb_build_object('busy', f.busy, 'idle', f.idle, 'lost', f.lost, 'total', f.total,
                            'draining', f.draining, 'capacity', f.capacity, 'running', f.running,
                            'utilization_pct', f.utilization_pct)
    INTO fleet FROM dispatch.fleet AS f;

  -- One pass over the window: the running tasks and those finished since.
  WITH recent AS (
    SELECT t.priority, t.state, t.tenant, t.deadline, t.claimed_at, t.ready_at,
           NULL::timestamptz AS finished_at
      FROM dispatch.tasks AS t WHERE t.state = 'claimed'
    UNION ALL
    SELECT t.priority, t.state, t.tenant, t.deadline, t.claimed_at, t.ready_at, t.finished_at
      FROM dispatch.tasks AS t WHERE t.finished_at >= since),
  by_prio AS (
    SELECT r.priority,
           round(avg(extract(epoch FROM r.claimed_at - r.ready_at))
                   FILTER (WHERE r.claimed_at >= since)::numeric, 3) AS avg_wait
      FROM recent AS r GROUP BY r.priority)
  SELECT
    (SELECT jsonb_object_agg(p.priority, b.avg_wait)
       FROM (VALUES ('critical'), ('high'), ('normal'), ('low')) AS p (priority)
       LEFT JOIN by_prio AS b ON b.priority = p.priority) AS avg_wait,
    (SELECT round(avg(extract(epoch FROM r.finished_at - r.claimed_at))::numeric, 3)
       FROM recent AS r WHERE r.state = 'done') AS avg_duration,
    (SELECT round(100.0 * count(*) FILTER (WHERE r.state = 'done' AND r.finished_at <= r.deadline)
                  / nullif(count(*), 0), 2)
       FROM recent AS r WHERE r.finished_at IS NOT NULL AND r.deadline IS NOT NULL
        AND r.state <> 'cancelled') AS sla_pct,
    (SELECT coalesce(jsonb_object_agg(s.state, s.n), '{}')
       FROM (SELECT r.state, count(*) AS n FROM recent AS r
              WHERE r.finished_at IS NOT NULL GROUP BY r.state) AS s) AS finished
    INTO win;

  SELECT coalesce(jsonb_object_agg(f.tenant, jsonb_build_object(
           'weight', f.weight, 'ready', f.ready, 'served', f.served,
           'service_share', f.service_share, 'weighted_share', f.weighted_share,
           'fairness_ratio', f.fairness_ratio)), '{}')
    INTO fair FROM dispatch.fairness(window_length) AS f;

  -- Schedules, once that part of dispatch is installed (sql/install/85_schedule_health.sql).
  IF to_regclass('dispatch.schedule_health') IS NOT NULL THEN
    EXECUTE 'SELECT coalesce(jsonb_object_agg(status, n), ''{}'') FROM '
            '(SELECT status, count(*) AS n FROM dispatch.schedule_health GROUP BY status) AS s'
      INTO sched;
  END IF;

  RETURN jsonb_build_object(
    'generated_at', now(),
    'window_seconds', extract(epoch FROM window_length)::float8,
    'queue_depth', depth,
    'oldest_wait_seconds', oldest,
    'overloaded', coalesce(overloaded, false),
    'agent_utilization', fleet,
    'avg_wait_time_seconds', win.avg_wait,
    'avg_task_duration_seconds', win.avg_duration,
    'sla_compliance_pct', win.sla_pct,
    'finished', win.finished,
    'fairness_distribution', fair)
    || CASE WHEN sched IS NULL THEN '{}' ELSE jsonb_build_object('schedules', sched) END;
END
$$;
COMMENT ON FUNCTION dispatch.dashboard(interval) IS
  'The fleet in one jsonb document, over the window (default one hour): queue_depth (ready, scheduled, claimed by priority), oldest_wait_seconds and overloaded, agent_utilization (busy, idle, lost, total, draining, capacity, running, utilization_pct), avg_wait_time_seconds (by priority), avg_task_duration_seconds, sla_compliance_pct, finished (by state), fairness_distribution (by tenant) and, when schedules are installed, schedules (by status). Costs the same with 10 thousand or 10 million tasks in history.';
