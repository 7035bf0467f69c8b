-- assign.sql: push assignment, dispatch.assign(task_id) (issue 3 item 7). It reserves the best
-- available agent: able to take the task (capabilities, clearance, region, trait limits),
-- not draining, lost or full; the fastest when the deadline is tight; else the least loaded
-- relative to capacity (reserved tasks count as load), then the best personality fit. That
-- agent's next dispatch_next returns the task first; no other agent sees it meanwhile.
\ir helpers.psql
SELECT plan(21);

DO $$ BEGIN
  PERFORM dispatch.register_agent('a_idle', capabilities => '{x}', capacity => 4, speed => 1);
  PERFORM dispatch.register_agent('a_fast', capabilities => '{x}', capacity => 2, speed => 3);
  PERFORM dispatch.register_agent('a_nox', capabilities => '{}', capacity => 10, speed => 10);
  PERFORM dispatch.register_agent('a_drain', capabilities => '{x}', capacity => 10, speed => 10);
  PERFORM dispatch.drain_agent('a_drain');
END $$;
-- a_fast holds one task: load 1/2; a_idle holds none: load 0/4.
INSERT INTO dispatch.tasks (tenant, kind, requires) VALUES ('warmup', 'job', '{x}');
CALL claim_n('a_fast', 1);

-- Least loaded: a_idle, although a_fast is faster; a_nox cannot, a_drain is draining.
SELECT dispatch.submit('job', tenant => 'acme', requires => '{x}') AS t1 \gset
SELECT is(dispatch.assign(:t1), 'a_idle', 'no deadline: the least loaded capable agent (0/4 before 1/2)');
SELECT is((SELECT reserved_for || '/' || reservation FROM dispatch.tasks WHERE task_id = :t1), 'a_idle/assign',
          'the task is reserved for it');
SELECT is((SELECT (factors ->> 'load')::float8 || ' ' || (factors ->> 'tight_deadline')
             FROM dispatch.explain(:t1) WHERE kind = 'assign'), '0 false',
          'explain: the assign decision records load 0 and no tight deadline');
-- Nobody else sees it, even an agent that would otherwise take it.
SELECT is((SELECT count(*) FROM dispatch.explain_next('a_fast') WHERE task_id = :t1), 0::bigint,
          'a_fast does not see a task assigned to a_idle');
-- Its agent takes it first, before 10-minute-old work of another tenant.
INSERT INTO dispatch.tasks (tenant, kind, requires, ready_at)
SELECT 'old', 'job', '{x}', now() - interval '10 minutes' FROM generate_series(1, 5);
SELECT is((SELECT task_id FROM dispatch.explain_next('a_idle') WHERE winner), :t1::bigint,
          'explain_next: the assigned task is a_idle''s winner');
CALL claim_n('a_idle', 1);
SELECT is((SELECT task_id FROM claims ORDER BY seq DESC LIMIT 1), :t1::bigint,
          'a_idle''s next claim is the assigned task, before older work');
DELETE FROM dispatch.tasks WHERE tenant = 'old';

-- Tight deadline (urgent already): the fastest capable agent, although it is more loaded.
SELECT dispatch.submit('job', tenant => 'acme', requires => '{x}', est_duration => '60 s',
                       deadline => now() + interval '60 s') AS t2 \gset
SELECT is(dispatch.assign(:t2), 'a_fast', 'tight deadline: the fastest capable agent (speed 3, load 1/2)');
SELECT is((SELECT factors ->> 'tight_deadline' FROM dispatch.explain(:t2) WHERE kind = 'assign'), 'true',
          'explain: the decision says the deadline was tight');
-- The urgent lane respects the reservation: a_idle does not get it through that lane.
SELECT is((SELECT count(*) FROM dispatch.explain_next('a_idle') WHERE task_id = :t2), 0::bigint,
          'a task assigned to a_fast is not in a_idle''s urgent lane either');

-- Best fit: equal load and speed, different personalities.
DO $$ BEGIN
  PERFORM dispatch.register_agent('fit_bold', capabilities => '{y}', capacity => 2, traits => '{0.9,0.1,0.5}');
  PERFORM dispatch.register_agent('fit_careful', capabilities => '{y}', capacity => 2, traits => '{0.1,0.9,0.5}');
END $$;
SELECT dispatch.submit('job', tenant => 'acme', requires => '{y}', profile => '{0.2,0.8,0.5}') AS t3 \gset
SELECT is(dispatch.assign(:t3), 'fit_careful', 'equal load: the agent whose traits fit the profile');
SELECT is((SELECT round((factors ->> 'match_value')::numeric, 4) FROM dispatch.explain(:t3) WHERE kind = 'assign'),
          0.9184, 'explain: the decision records the match value (1 - sqrt(0.02) / sqrt(3))');

-- Load spreads, counting reserved tasks, until every capable agent is full.
DO $$ BEGIN
  PERFORM dispatch.register_agent('z1', capabilities => '{z}', capacity => 2);
  PERFORM dispatch.register_agent('z2', capabilities => '{z}', capacity => 2);
END $$;
CREATE TABLE z_tasks AS SELECT dispatch.submit('job', tenant => 'acme', requires => '{z}') AS task_id
  FROM generate_series(1, 5);
SELECT is(ARRAY(SELECT coalesce(dispatch.assign(task_id), '-') FROM z_tasks ORDER BY task_id),
          '{z1,z2,z1,z2,-}', 'five tasks, two agents of capacity 2: z1, z2, z1, z2, then none (NULL)');

-- Clearance and region are hard filters.
DO $$ BEGIN
  PERFORM dispatch.register_agent('eu_low', region => 'eu', clearance => 1, capacity => 5);
  PERFORM dispatch.register_agent('us_high', region => 'us', clearance => 3, capacity => 5);
  PERFORM dispatch.register_agent('eu_high', region => 'eu', clearance => 3, capacity => 5, speed => 0.5);
END $$;
SELECT dispatch.submit('job', tenant => 'acme', requires => '{}', sensitivity => 2, region => 'eu') AS t4 \gset
SELECT is(dispatch.assign(:t4), 'eu_high', 'sensitivity 2 in eu: the only agent with both clearance and region');
SELECT dispatch.submit('job', tenant => 'acme', requires => '{}', sensitivity => 5) AS t5 \gset
SELECT is(dispatch.assign(:t5), NULL, 'nobody has clearance 5: NULL, and nothing reserved');
SELECT is((SELECT reserved_for FROM dispatch.tasks WHERE task_id = :t5), NULL, 'the task stays free');

-- The hold ends after assign_hold (60 s): then anyone capable may take it.
SELECT is((SELECT extract(epoch FROM reserved_until - clock_timestamp())::int FROM dispatch.tasks WHERE task_id = :t4),
          60, 'the assignment holds for assign_hold (60 s)');
UPDATE dispatch.tasks SET reserved_until = now() - interval '1 s' WHERE task_id = :t4;
SELECT dispatch.tick() \g /dev/null
SELECT is((SELECT reserved_for FROM dispatch.tasks WHERE task_id = :t4), NULL, 'after the hold the tick frees the task');

-- Bad calls.
SELECT throws_ok('SELECT dispatch.assign(999999)', '42704', 'task 999999 does not exist', 'unknown task: 42704');
SELECT throws_ok('SELECT dispatch.assign(NULL)', '22004', 'task_id must not be null', 'NULL: 22004');
SELECT throws_ok(format('SELECT dispatch.assign(%s)', :t1), '55000', NULL, 'a claimed task: 55000');
SELECT is((SELECT count(*) FROM dispatch.decisions WHERE kind = 'assign'), 8::bigint,
          'one assign decision per reservation made (1 + 1 + 1 + 4 + 1), none for the refusals');

SELECT * FROM finish();
