-- ops_counts: the live counts behind dispatch.queue_depth agree with a full count of the tasks
-- through every lifecycle move, survive rollbacks, folds, deletes and TRUNCATE; max_queued refuses
-- with 53400; shed_if_busy only for low tasks.
BEGIN;
SELECT plan(25);

-- The truth, by brute force, to compare the maintained counts with.
CREATE FUNCTION pg_temp.truth() RETURNS TABLE (tenant text, priority text, state text, n bigint)
  LANGUAGE sql AS $$
  SELECT tenant, priority, state, count(*) FROM dispatch.tasks
   WHERE state IN ('ready', 'scheduled', 'claimed') GROUP BY 1, 2, 3 $$;
CREATE FUNCTION pg_temp.counts() RETURNS TABLE (tenant text, priority text, state text, n bigint)
  LANGUAGE sql AS $$ SELECT tenant, priority, state, n FROM dispatch.live_counts $$;

SELECT dispatch.register_agent('cnt-1', capacity => 10);
SELECT dispatch.submit('k', tenant => 'a') FROM generate_series(1, 3);
SELECT dispatch.submit('k', tenant => 'a', priority => 'high', run_at => now() + interval '1 hour')
  FROM generate_series(1, 2);
SELECT dispatch.submit('k', tenant => 'b', priority => 'low', requires => '{special}');

SELECT results_eq(
  $$SELECT tenant, priority, ready, scheduled, claimed FROM dispatch.queue_depth$$,
  $$VALUES ('a', 'high', 0::bigint, 2::bigint, 0::bigint), ('a', 'normal', 3, 0, 0), ('b', 'low', 1, 0, 0)$$,
  'queue_depth counts what was submitted, by tenant and priority, before any fold');

-- Claim two (the claim path's own update), complete one, fail one (retry: back to scheduled).
-- The queue map learns of work at commit; this suite runs in one transaction, so rebuild it first.
SELECT dispatch.rebuild_queue_map();
SELECT is((SELECT count(*) FROM dispatch.dispatch_next('cnt-1', 2)), 2::bigint, 'two claimed');
SELECT dispatch.complete(min(task_id)) FROM dispatch.tasks WHERE state = 'claimed';
SELECT is(dispatch.fail(max(task_id), 'boom'), 'scheduled', 'a failed attempt is scheduled for retry')
  FROM dispatch.tasks WHERE state = 'claimed';
SELECT bag_eq('SELECT * FROM pg_temp.counts()', 'SELECT * FROM pg_temp.truth()',
              'after claim, complete and fail the counts equal a full count');
SELECT results_eq(
  $$SELECT tenant, priority, ready, scheduled, claimed FROM dispatch.queue_depth WHERE tenant = 'a'$$,
  $$VALUES ('a', 'high', 0::bigint, 2::bigint, 0::bigint), ('a', 'normal', 1, 1, 0)$$,
  'queue_depth after claim, complete and fail');

-- Cancel, change priority and tenant, delete.
SELECT dispatch.cancel(task_id) FROM dispatch.tasks WHERE tenant = 'b';
UPDATE dispatch.tasks SET priority = 'critical' WHERE task_id = (SELECT min(task_id) FROM dispatch.tasks WHERE state = 'scheduled' AND priority = 'high');
UPDATE dispatch.tasks SET tenant = 'c' WHERE task_id = (SELECT max(task_id) FROM dispatch.tasks WHERE state = 'scheduled' AND priority = 'high');
SELECT bag_eq('SELECT * FROM pg_temp.counts()', 'SELECT * FROM pg_temp.truth()',
              'after cancel and changes of priority and tenant the counts equal a full count');
DELETE FROM dispatch.tasks WHERE tenant = 'c';
SELECT bag_eq('SELECT * FROM pg_temp.counts()', 'SELECT * FROM pg_temp.truth()',
              'after a delete the counts equal a full count');

-- Work rolled back is never counted.
DO $$ BEGIN
  PERFORM dispatch.submit('k', tenant => 'a') FROM generate_series(1, 5);
  RAISE EXCEPTION 'roll back';
EXCEPTION WHEN raise_exception THEN NULL;
END $$;
SELECT bag_eq('SELECT * FROM pg_temp.counts()', 'SELECT * FROM pg_temp.truth()',
              'a rolled-back subtransaction leaves the counts alone');

-- The fold moves deltas into the totals and changes no figure.
SELECT cmp_ok(dispatch.fold_task_counts(), '>', 0, 'the fold changed some counters');
SELECT is((SELECT count(*) FROM dispatch.task_count_deltas), 0::bigint, 'the fold consumed every delta');
SELECT bag_eq('SELECT * FROM pg_temp.counts()', 'SELECT * FROM pg_temp.truth()',
              'after the fold the counts still equal a full count');
SELECT bag_eq('SELECT tenant, priority, state, n FROM dispatch.task_counts', 'SELECT * FROM pg_temp.truth()',
              'the folded table alone is exact once folded');
SELECT is((SELECT count(*) FROM dispatch.task_counts WHERE n = 0), 0::bigint, 'no zero rows are kept');

-- A bulk load with the triggers off, then rebuild_task_counts().
ALTER TABLE dispatch.tasks DISABLE TRIGGER USER;
INSERT INTO dispatch.tasks (kind, tenant, priority, state, sig, skey, ready_at)
SELECT 'k', 'bulk', 'normal', 'ready', 1, now(), now() FROM generate_series(1, 50);
INSERT INTO dispatch.tasks (kind, tenant, priority, state, finished_at)
SELECT 'k', 'bulk', 'normal', 'done', now() FROM generate_series(1, 70);
ALTER TABLE dispatch.tasks ENABLE TRIGGER USER;
SELECT is(dispatch.rebuild_task_counts(),
          (SELECT count(*) FROM dispatch.tasks WHERE state IN ('ready', 'scheduled', 'claimed')),
          'rebuild_task_counts() returns the number of live tasks');
SELECT bag_eq('SELECT * FROM pg_temp.counts()', 'SELECT * FROM pg_temp.truth()',
              'after rebuild_task_counts() the counts equal a full count, the finished bulk rows aside');

-- max_queued: waiting = ready + scheduled; claimed work does not count.
INSERT INTO dispatch.tenants (tenant, max_queued) VALUES ('capped', 2);
SELECT dispatch.submit('k', tenant => 'capped', requires => '{cap}');
SELECT dispatch.submit('k', tenant => 'capped', requires => '{cap}', run_at => now() + interval '1 day');
SELECT throws_ok($$SELECT dispatch.submit('k', tenant => 'capped', requires => '{cap}')$$, '53400',
                 'tenant "capped" already has 2 tasks waiting, its max_queued',
                 'submit over max_queued is refused with 53400');
SELECT throws_ok($$INSERT INTO dispatch.tasks (kind, tenant, requires) VALUES ('k', 'capped', '{cap}')$$, '53400', NULL,
                 'a plain INSERT over max_queued is refused too');
SELECT is((SELECT count(*) FROM dispatch.tasks WHERE tenant = 'capped'), 2::bigint,
          'the refused submits left nothing behind');
SELECT count(dispatch.cancel(task_id)) FROM dispatch.tasks WHERE state = 'ready' AND tenant <> 'capped';
SELECT dispatch.register_agent('cnt-2', capabilities => '{cap}', capacity => 10);
SELECT dispatch.rebuild_queue_map();
SELECT is((dispatch.dispatch_next('cnt-2')).tenant, 'capped', 'one of the capped tenant''s tasks is claimed');
SELECT lives_ok($$SELECT dispatch.submit('k', tenant => 'capped', requires => '{cap}')$$,
                'a claim makes room: claimed work is not waiting');
SELECT throws_ok($$INSERT INTO dispatch.tasks (kind, tenant) SELECT 'k', 'capped' FROM generate_series(1, 3)$$,
                 '53400', NULL, 'a bulk insert is counted row by row');
UPDATE dispatch.tenants SET max_queued = NULL WHERE tenant = 'capped';
SELECT lives_ok($$INSERT INTO dispatch.tasks (kind, tenant) SELECT 'k', 'capped' FROM generate_series(1, 3)$$,
                'with the limit lifted the same insert goes through (the limit cache follows)');

-- shed_if_busy is for low work only.
SELECT throws_ok($$SELECT dispatch.submit('k', shed_if_busy => true)$$, '22023',
                 'only a low task may be submitted with shed_if_busy, not a normal one',
                 'submit refuses shed_if_busy on a normal task');
SELECT throws_ok($$INSERT INTO dispatch.tasks (kind, priority, shed_if_busy) VALUES ('k', 'high', true)$$,
                 '23514', NULL, 'the table refuses it too');

-- TRUNCATE empties the counts.
TRUNCATE dispatch.tasks;
SELECT is((SELECT count(*) FROM dispatch.live_counts), 0::bigint, 'after TRUNCATE the counts are empty');

SELECT * FROM finish();
ROLLBACK;
