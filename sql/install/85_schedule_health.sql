-- 85_schedule_health: the health of the standing orders, for dispatch.schedule_health and the
-- dashboard's "schedules" key. Reads dispatch.schedules and dispatch.fires (60_schedules.sql).

CREATE VIEW dispatch.schedule_health AS
  SELECT s.schedule_id, s.name, s.tenant, s.spec, s.status, s.enabled,
         last.scheduled_for AS last_fire_for, last.fired_at AS last_fired_at,
         last.status AS last_fire_status, last.task_id AS last_task_id,
         s.next_fire_at, s.consecutive_failures,
         coalesce(day.fires, 0) AS fires_last_day,
         coalesce(day.failures, 0) AS failures_last_day,
         s.enabled AND s.status = 'active' AND s.next_fire_at < pg_catalog.now() - interval '1 minute'
           AS overdue
    FROM dispatch.schedules AS s
    LEFT JOIN LATERAL (
      SELECT f.scheduled_for, f.fired_at, f.status, f.task_id
        FROM dispatch.fires AS f
       WHERE f.schedule_id = s.schedule_id
       ORDER BY f.scheduled_for DESC
       LIMIT 1) AS last ON true
    LEFT JOIN LATERAL (
      SELECT count(*) AS fires,
             count(*) FILTER (WHERE f.status NOT IN ('fired', 'skipped') OR f.outcome = 'failed'
                                 OR t.state IN ('dead', 'failed', 'aborted', 'expired', 'timeout')) AS failures
        FROM dispatch.fires AS f
        LEFT JOIN dispatch.tasks AS t ON t.task_id = f.task_id
       WHERE f.schedule_id = s.schedule_id AND f.scheduled_for >= pg_catalog.now() - interval '1 day') AS day ON true
   WHERE s.deleted_at IS NULL;
COMMENT ON VIEW dispatch.schedule_health IS
  'Per schedule (soft-deleted ones aside): status (active, paused, ended), the last fire (its slot, when it fired, its status and task), the next fire, consecutive failures, fires and failures in the last day (a fire that failed, or whose work ended failed: a task dead, failed, aborted, expired or timed out), and overdue: active but its next fire is more than a minute late (is the worker running?).';
