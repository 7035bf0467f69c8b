-- fair_share.sql: fair share between tenants (doc/design.md §6-7). Weighted service follows
-- the weights at every prefix of the claims, a flooding tenant cannot hold back a trickling
-- one, and a tenant back from idle banks no credit. One agent with a large capacity claims
-- without completing, so each claim charges exactly its estimate (est_duration / weight).
\ir helpers.psql
SELECT plan(13);

DO $$ BEGIN PERFORM dispatch.register_agent('solo', capacity => 100000); END $$;

-- 1. Weights 2:1, both backlogged with identical work: served 2:1 within one task.
INSERT INTO dispatch.tenants (tenant, weight) VALUES ('two', 2), ('one', 1);
INSERT INTO dispatch.tasks (tenant, kind, est_duration)
SELECT t, 'job', '60 s' FROM generate_series(1, 400), unnest('{two,one}'::text[]) AS t;
CALL claim_n('solo', 300);
SELECT is((SELECT count(*) FROM claims WHERE tenant = 'two'), 200::bigint,
          'weights 2:1: the weight-2 tenant got 200 of 300 claims');
SELECT is((SELECT count(*) FROM claims WHERE tenant = 'one'), 100::bigint,
          'weights 2:1: the weight-1 tenant got 100 of 300 claims');
SELECT diag('weights 2:1: largest weighted gap over the prefixes: ' || max_weighted_gap('{two,one}') || ' s');
SELECT cmp_ok(max_weighted_gap('{two,one}'), '<=', 60::float8,
              'weights 2:1: at every prefix of the 300 claims the weighted service differs by at most one task (60 s)');
DELETE FROM dispatch.tasks WHERE state = 'ready';

-- 2. Unequal task sizes, equal weights: service is counted in seconds, not tasks.
SELECT max(seq) AS mark FROM claims \gset
INSERT INTO dispatch.tasks (tenant, kind, est_duration)
SELECT 'small', 'job', '20 s' FROM generate_series(1, 400);
INSERT INTO dispatch.tasks (tenant, kind, est_duration)
SELECT 'large', 'job', '80 s' FROM generate_series(1, 400);
CALL claim_n('solo', 250);
SELECT is((SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'small'), 200::bigint,
          'equal weights, 20 s vs 80 s tasks: the small tenant got 200 of 250 claims (4 per large one)');
SELECT cmp_ok(max_weighted_gap('{small,large}', :mark), '<=', 80::float8,
              'equal weights, unequal sizes: at every prefix the service in seconds differs by at most one task (80 s)');
DELETE FROM dispatch.tasks WHERE state = 'ready';

-- 3. Three tenants 3:2:1.
SELECT max(seq) AS mark FROM claims \gset
INSERT INTO dispatch.tenants (tenant, weight) VALUES ('w3', 3), ('w2', 2), ('w1', 1);
INSERT INTO dispatch.tasks (tenant, kind, est_duration)
SELECT t, 'job', '60 s' FROM generate_series(1, 300), unnest('{w3,w2,w1}'::text[]) AS t;
CALL claim_n('solo', 300);
SELECT is(ARRAY(SELECT count(*) FROM claims WHERE seq > :mark GROUP BY tenant ORDER BY tenant),
          ARRAY[50, 100, 150]::bigint[], 'weights 3:2:1 over 300 claims: 150, 100 and 50');
SELECT cmp_ok(max_weighted_gap('{w3,w2,w1}', :mark), '<=', 60::float8,
              'weights 3:2:1: at every prefix the weighted service of any two differs by at most one task');
DELETE FROM dispatch.tasks WHERE state = 'ready';

-- 4. A flooding tenant (3,000 tasks, an hour old) and a trickling one (a new task every 10
--    claims): each trickled task is claimed at once, whatever the flood's age.
CREATE TABLE trickled (task_id bigint, after_seq int);
CREATE PROCEDURE flood_and_trickle(cost interval, rounds int, every int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..rounds LOOP
    INSERT INTO trickled
    SELECT dispatch.submit('job', tenant => 'trickle', est_duration => cost),
           coalesce((SELECT max(seq) FROM claims), 0);
    COMMIT;
    CALL claim_n('solo', every);
  END LOOP;
END
$$;
-- How many claims each trickled task waited for (1 = the very next claim; 999 = never).
CREATE FUNCTION trickle_delays() RETURNS int[] LANGUAGE sql AS $$
  SELECT array_agg(coalesce(c.seq - t.after_seq, 999) ORDER BY t.task_id)
    FROM trickled AS t LEFT JOIN claims AS c USING (task_id)
$$;
INSERT INTO dispatch.tasks (tenant, kind, est_duration, ready_at)
SELECT 'flood', 'job', '60 s', now() - interval '1 hour' FROM generate_series(1, 3000);
CALL claim_n('solo', 50);
CALL flood_and_trickle('60 s', 10, 10);
SELECT is(trickle_delays(), array_fill(1, ARRAY[10]),
          '60 s tasks: each of 10 trickled tasks was the very next claim, ahead of 3,000 hour-old flood tasks');

-- The same with 5 s tasks: one charge (5 s x fair_weight 10 = 50 s of score) is less than the
-- flood's age credit (max_age_credit 300 s), so the flood may lead by up to
-- (300 - 60) / 10 = 24 weighted seconds: about 5 claims, never more.
DELETE FROM trickled;
UPDATE dispatch.tasks SET est_duration = '5 s' WHERE tenant = 'flood' AND state = 'ready';
CALL claim_n('solo', 20);
CALL flood_and_trickle('5 s', 10, 10);
SELECT diag('5 s tasks: claims each trickled task waited: ' || trickle_delays()::text);
SELECT cmp_ok((SELECT max(d) FROM unnest(trickle_delays()) AS d), '<=', 6,
              '5 s tasks: no trickled task waited more than 6 claims behind the flood');
SELECT is((SELECT count(*) FROM trickled JOIN dispatch.tasks USING (task_id) WHERE state = 'claimed'),
          10::bigint, '5 s tasks: all 10 trickled tasks were claimed');
DELETE FROM dispatch.tasks WHERE state = 'ready';

-- 5. Back from idle, no banked credit: a tenant idle while another was served restarts at V,
--    so its 40 new tasks share the agent with the backlog instead of all going first.
SELECT max(seq) AS mark FROM claims \gset
INSERT INTO dispatch.tasks (tenant, kind, est_duration)
SELECT 'busy', 'job', '60 s' FROM generate_series(1, 200);
CALL claim_n('solo', 40);
INSERT INTO dispatch.tasks (tenant, kind, est_duration)
SELECT 'sleeper', 'job', '60 s' FROM generate_series(1, 40);
SELECT max(seq) AS mark2 FROM claims \gset
CALL claim_n('solo', 20);
SELECT cmp_ok((SELECT count(*) FROM claims WHERE seq > :mark2 AND tenant = 'sleeper')::int, '<=', 11,
              'back from idle: the returning tenant got at most 11 of the next 20 claims');
SELECT cmp_ok((SELECT count(*) FROM claims WHERE seq > :mark2 AND tenant = 'sleeper')::int, '>=', 9,
              'back from idle: and at least 9 (it restarts at V, level with the backlog)');
SELECT ok((SELECT vstart FROM dispatch.queue_map() WHERE tenant = 'sleeper') >=
          (SELECT vstart FROM dispatch.queue_map() WHERE tenant = 'busy') - 60,
          'back from idle: the returning tenant''s virtual start is within one task of the busy one');

SELECT * FROM finish();
