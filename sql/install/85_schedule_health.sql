-- 85_schedule_health: the health of the standing orders, for dispatch.schedule_health and the
-- dashboard's "schedules" key.
--
-- PENDING: dispatch.schedules and dispatch.fires are built by the schedules work (issue 4). Until
-- they are installed this file creates nothing; once an earlier install file creates them, the view
-- appears. It relies only on the column names of DESIGN.md §1 and assumes the schedules' key is
-- schedule_id (the column dispatch.fires and dispatch.tasks refer to). When schedules land, drop
-- the guard (keep the CREATE VIEW and the COMMENT) and test/pgtap/ops_schedule_health.sql's stubs.

DO $guard$
BEGIN
  IF pg_catalog.to_regclass('dispatch.schedules') IS NULL
     OR pg_catalog.to_regclass('dispatch.fires') IS NULL THEN
    RETURN;
  END IF;
  EXECUTE $view$
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
               count(*) FILTER (WHERE f.status NOT IN ('fired', 'skipped')
                                   OR t.state IN ('dead', 'failed', 'aborted', 'expired', 'timeout')) AS failures
          FROM dispatch.fires AS f
          LEFT JOIN dispatch.tasks AS t ON t.task_id = f.task_id
         WHERE f.schedule_id = s.schedule_id AND f.scheduled_for >= pg_catalog.now() - interval '1 day') AS day ON true
     WHERE s.deleted_at IS NULL
  $view$;
  EXECUTE $c$COMMENT ON VIEW dispatch.schedule_health IS
    'Per schedule (soft-deleted ones aside): status (active, paused, error, ended), the last fire (when it was due, when it fired, its status and task), the next fire, consecutive failures, fires and failures in the last day (a fire that failed, or whose task ended dead, failed, aborted, expired or timed out), and overdue: active but its next fire is more than a minute late (the worker is not running?).'$c$;
END
$guard$;
