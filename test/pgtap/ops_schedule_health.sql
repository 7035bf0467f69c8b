-- ops_schedule_health: dispatch.schedule_health against stand-in schedules and fires tables with
-- the columns of DESIGN.md §1. While the schedules work is not installed, sql/install/85 creates
-- nothing; this suite creates the stand-ins, runs that file again, and checks the view's numbers.
-- Once dispatch.schedules exists for real this suite checks only that the view is there
-- (replace the stand-ins with real schedules then).
BEGIN;
SELECT plan(5);

SELECT (to_regclass('dispatch.schedules') IS NULL) AS standin \gset
\if :standin
CREATE TABLE dispatch.schedules (
  schedule_id bigint PRIMARY KEY, name text NOT NULL, tenant text NOT NULL DEFAULT 'default',
  spec text NOT NULL, enabled boolean NOT NULL DEFAULT true, next_fire_at timestamptz,
  consecutive_failures int NOT NULL DEFAULT 0, status text NOT NULL DEFAULT 'active', deleted_at timestamptz);
CREATE TABLE dispatch.fires (
  schedule_id bigint NOT NULL, scheduled_for timestamptz NOT NULL, fired_at timestamptz,
  task_id bigint, status text NOT NULL, PRIMARY KEY (schedule_id, scheduled_for));
\ir ../../sql/install/85_schedule_health.sql
-- What sql/install/99_grants.sql does for every view at install.
GRANT SELECT ON dispatch.schedule_health TO dispatch_reader;
\endif
SELECT has_view('dispatch', 'schedule_health', 'dispatch.schedule_health exists');

\if :standin
INSERT INTO dispatch.schedules (schedule_id, name, spec, next_fire_at, consecutive_failures, status, enabled, deleted_at) VALUES
  (1, 'hourly-report', '@hourly', now() + interval '30 min', 0, 'active', true, NULL),
  (2, 'flaky-sync', '*/5 * * * *', now() + interval '2 min', 2, 'active', true, NULL),
  (3, 'paused-one', '@daily', NULL, 3, 'paused', false, NULL),
  (4, 'late-one', '* * * * *', now() - interval '10 min', 0, 'active', true, NULL),
  (5, 'deleted-one', '@daily', NULL, 0, 'active', true, now());
-- flaky-sync: three fires in the last day; one task dead, one fire failed outright, one fine.
INSERT INTO dispatch.tasks (task_id, kind) VALUES (9001, 'sync'), (9002, 'sync');
UPDATE dispatch.tasks SET state = 'dead', finished_at = now() WHERE task_id = 9001;
INSERT INTO dispatch.fires (schedule_id, scheduled_for, fired_at, task_id, status) VALUES
  (1, now() - interval '30 min', now() - interval '30 min', NULL, 'fired'),
  (1, now() - interval '2 days', now() - interval '2 days', NULL, 'fired'),
  (2, now() - interval '13 min', now() - interval '13 min', 9001, 'fired'),
  (2, now() - interval '8 min', now() - interval '8 min', NULL, 'failed'),
  (2, now() - interval '3 min', now() - interval '3 min', 9002, 'fired');
SELECT results_eq(
  $$SELECT name, status, last_fire_for, last_fire_status, consecutive_failures, fires_last_day, failures_last_day, overdue
      FROM dispatch.schedule_health ORDER BY schedule_id$$,
  $$VALUES ('hourly-report', 'active', now() - interval '30 min', 'fired', 0, 1::bigint, 0::bigint, false),
           ('flaky-sync', 'active', now() - interval '3 min', 'fired', 2, 3, 2, false),
           ('paused-one', 'paused', NULL, NULL, 3, 0, 0, false),
           ('late-one', 'active', NULL, NULL, 0, 0, 0, true)$$,
  'schedule_health: last fire, failures in the last day (a failed fire, a dead task), overdue; deleted ones hidden');
SELECT is((dispatch.dashboard()->'schedules'), '{"active": 3, "paused": 1}'::jsonb,
          'the dashboard counts schedules by status once they exist');
SELECT is((SELECT next_fire_at FROM dispatch.schedule_health WHERE name = 'late-one'), now() - interval '10 min',
          'schedule_health shows the next fire');
SET LOCAL ROLE dispatch_reader;
SELECT lives_ok('SELECT count(*) FROM dispatch.schedule_health', 'a reader reads schedule_health');
RESET ROLE;
\else
SELECT pass('real schedules: the stand-in checks are skipped') FROM generate_series(1, 4);
\endif

SELECT * FROM finish();
ROLLBACK;
