-- ops_partitions: the decision log's daily partitions: created ahead, rows stranded in the default
-- partition moved into their day, whole days past dispatch.decision_retention dropped, the log
-- filter and the audit indexes carried onto every new partition.
BEGIN;
SELECT plan(19);

SET dispatch.decision_retention = '30d';
INSERT INTO dispatch.decisions (at, kind, task_id, reason) VALUES
  ('2030-01-09 10:00+00', 'claim', 1, 'yesterday'),
  ('2030-01-10 11:00+00', 'claim', 2, 'today'),
  ('2030-01-10 23:59:59.999+00', 'claim', 3, 'today, last instant'),
  ('2029-11-01 00:00+00', 'claim', 4, 'past the retention'),
  ('2030-03-01 08:00+00', 'claim', 5, 'far ahead');
SELECT is((SELECT count(*) FROM dispatch.decisions_default), 5::bigint, 'before any partition, the default partition holds every row');

SELECT is(dispatch.manage_decision_log('2030-01-10 12:00+00', 2),
  '{"created": ["decisions_p20300111", "decisions_p20300112", "decisions_p20300301"],
    "dropped": [], "moved": 1, "purged": 1}'::jsonb,
  'the two days ahead are created, and the future day of a stranded row; yesterday and today stay in the default partition (an ATTACH for a day inserts still reach could fail them); the row past retention is purged');
SELECT results_eq(
  'SELECT partition_name, from_at, to_at, is_default FROM dispatch.decision_partitions()',
  $$VALUES ('decisions_default', NULL::timestamptz, NULL::timestamptz, true),
           ('decisions_p20300111', '2030-01-11 00:00+00', '2030-01-12 00:00+00', false),
           ('decisions_p20300112', '2030-01-12 00:00+00', '2030-01-13 00:00+00', false),
           ('decisions_p20300301', '2030-03-01 00:00+00', '2030-03-02 00:00+00', false)$$,
  'one partition per UTC day, bounds from midnight to midnight');
SELECT results_eq('SELECT reason, tableoid::regclass::text FROM dispatch.decisions ORDER BY at',
  $$VALUES ('yesterday', 'dispatch.decisions_default'), ('today', 'dispatch.decisions_default'),
           ('today, last instant', 'dispatch.decisions_default'), ('far ahead', 'dispatch.decisions_p20300301')$$,
  'the future stranded row moved into its day; yesterday''s and today''s wait in the default partition, all read through the log');
SELECT is(dispatch.manage_decision_log('2030-01-12 12:00+00', 2),
  '{"created": ["decisions_p20300109", "decisions_p20300110", "decisions_p20300113", "decisions_p20300114"],
    "dropped": [], "moved": 3, "purged": 0}'::jsonb,
  'two days later, the days before yesterday get their partitions and their rows');
SELECT is((SELECT count(*) FROM dispatch.decisions_default), 0::bigint, 'the default partition is empty again');
SELECT is(dispatch.manage_decision_log('2030-01-12 13:00+00', 2),
  '{"created": [], "dropped": [], "moved": 0, "purged": 0}'::jsonb, 'a second run the same day does nothing');

INSERT INTO dispatch.decisions (at, kind, task_id, reason) VALUES ('2030-01-11 05:00+00', 'claim', 6, 'tomorrow');
SELECT is((SELECT tableoid::regclass::text FROM dispatch.decisions WHERE task_id = 6), 'dispatch.decisions_p20300111',
  'a new row goes straight into its day''s partition');
SELECT is((SELECT count(*) FROM pg_indexes WHERE schemaname = 'dispatch' AND tablename = 'decisions_p20300111'),
          (SELECT count(*) FROM pg_indexes WHERE schemaname = 'dispatch' AND tablename = 'decisions_default'),
          'a new partition has every index of the log');
-- The log's indexes belong to its partitions (10_tables.sql says why), so what matters is that a
-- question on the parent descends an index in each of them.
\ir ../../sql/include/plan_of.sql
SET LOCAL enable_seqscan = off;
SELECT is((SELECT count(*) FROM regexp_matches(
             pg_temp.plan_of('SELECT * FROM dispatch.decisions WHERE task_id = 6 ORDER BY at'),
             'Index Scan using (decisions_task_idx|decisions_p\d{8}_task_id_at_idx) on ', 'g')),
          (SELECT count(*) FROM dispatch.decision_partitions()),
          'everything one task went through is read through decisions_task_idx and its copy in every partition');
RESET enable_seqscan;
SET dispatch.log_decisions = 'errors';
INSERT INTO dispatch.decisions (at, kind, task_id) VALUES ('2030-01-11 06:00+00', 'claim', 7), ('2030-01-11 06:00+00', 'dead', 8);
RESET dispatch.log_decisions;
SELECT results_eq('SELECT task_id FROM dispatch.decisions_p20300111 ORDER BY task_id', $$VALUES (6::bigint), (8::bigint)$$,
  'the log filter applies in a new partition too');
SELECT throws_ok($$UPDATE dispatch.decisions SET reason = 'changed' WHERE task_id = 6$$, '42501',
  'the decision log is append-only', 'the log stays append-only across partitions');

-- Forty days later: every partition whose whole day is older than 30 days goes.
SELECT is(dispatch.manage_decision_log('2030-02-20 12:00+00', 1),
  '{"created": ["decisions_p20300221"],
    "dropped": ["decisions_p20300109", "decisions_p20300110", "decisions_p20300111", "decisions_p20300112",
                "decisions_p20300113", "decisions_p20300114"],
    "moved": 0, "purged": 0}'::jsonb,
  'retention drops the days older than dispatch.decision_retention and creates tomorrow''s');
SELECT results_eq('SELECT task_id FROM dispatch.decisions ORDER BY task_id', $$VALUES (5::bigint)$$,
  'only the rows within the retention remain');
SELECT hasnt_table('dispatch', 'decisions_p20300110', 'a dropped partition is gone, not merely detached');

-- A retention of 0 keeps everything.
SET dispatch.decision_retention = 0;
SELECT is(dispatch.manage_decision_log('2031-06-01 00:00+00', 1),
  '{"created": ["decisions_p20310602"], "dropped": [], "moved": 0, "purged": 0}'::jsonb,
  'dispatch.decision_retention = 0 keeps every partition');
RESET dispatch.decision_retention;

SELECT throws_ok($$SELECT dispatch.manage_decision_log(now(), -1)$$, '22023', NULL, 'days_ahead below 0 is refused');
SELECT throws_ok($$SET dispatch.decision_retention = -1$$, '22023', NULL, 'a negative retention is refused');
SELECT ok(dispatch.tick() ? 'decision_log', 'the tick keeps the partitions');

SELECT * FROM finish();
ROLLBACK;
