-- ops_schedule_health: dispatch.schedule_health over real schedules. Their fire history is
-- written directly into dispatch.fires (the suite runs in a database no worker serves, inside
-- one transaction), so the view's numbers are known: the last fire, failures in the last day
-- (a fire that failed outright, a fire whose task ended dead), overdue, soft-deleted ones hidden;
-- and the dashboard counts schedules by status.
BEGIN;
SELECT plan(5);

SELECT has_view('dispatch', 'schedule_health', 'dispatch.schedule_health exists');

SELECT dispatch.schedule('hourly-report', '@hourly', '{"kind": "report"}') AS s1 \gset
SELECT dispatch.schedule('flaky-sync', '*/5 * * * *', '{"kind": "sync"}') AS s2 \gset
SELECT dispatch.schedule('paused-one', '@daily', '{"kind": "x"}', enabled => false) AS s3 \gset
SELECT dispatch.schedule('late-one', '* * * * *', '{"kind": "x"}') AS s4 \gset
SELECT dispatch.schedule('deleted-one', '@daily', '{"kind": "x"}') AS s5 \gset
SELECT dispatch.unschedule('deleted-one');
UPDATE dispatch.schedules SET consecutive_failures = 2 WHERE schedule_id = :s2;
UPDATE dispatch.schedules SET consecutive_failures = 3 WHERE schedule_id = :s3;
UPDATE dispatch.schedules SET next_fire_at = now() - interval '10 min' WHERE schedule_id = :s4;
INSERT INTO dispatch.tasks (task_id, kind, schedule_id) VALUES (9001, 'sync', :s2), (9002, 'sync', :s2);
UPDATE dispatch.tasks SET state = 'dead', finished_at = now() WHERE task_id = 9001;
INSERT INTO dispatch.fires (schedule_id, scheduled_for, due_at, fired_at, task_id, status) VALUES
  (:s1, now() - interval '30 min', now() - interval '30 min', now() - interval '30 min', NULL, 'fired'),
  (:s1, now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', NULL, 'fired'),
  (:s2, now() - interval '13 min', now() - interval '13 min', now() - interval '13 min', 9001, 'fired'),
  (:s2, now() - interval '8 min', now() - interval '8 min', now() - interval '8 min', NULL, 'failed'),
  (:s2, now() - interval '3 min', now() - interval '3 min', now() - interval '3 min', 9002, 'fired');
SELECT results_eq(
  $$SELECT name, status, last_fire_for, last_fire_status, consecutive_failures, fires_last_day, failures_last_day, overdue
      FROM dispatch.schedule_health ORDER BY schedule_id$$,
  $$VALUES ('hourly-report', 'active', now() - interval '30 min', 'fired', 0, 1::bigint, 0::bigint, false),
           ('flaky-sync', 'active', now() - interval '3 min', 'fired', 2, 3, 2, false),
           ('paused-one', 'paused', NULL, NULL, 3, 0, 0, false),
           ('late-one', 'active', NULL, NULL, 0, 0, 0, true)$$,
  'schedule_health: last fire, failures in the last day (a failed fire, a dead task), overdue; deleted ones hidden');
SELECT is((dispatch.dashboard()->'schedules'), '{"active": 3, "paused": 1}'::jsonb,
          'the dashboard counts schedules by status');
SELECT is((SELECT next_fire_at FROM dispatch.schedule_health WHERE name = 'late-one'), now() - interval '10 min',
          'schedule_health shows the next fire');
SET LOCAL ROLE dispatch_reader;
SELECT lives_ok('SELECT count(*) FROM dispatch.schedule_health', 'a reader reads schedule_health');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
