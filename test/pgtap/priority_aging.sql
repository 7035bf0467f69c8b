-- priority_aging.sql: priority and aging as one stored key, skey = ready_at - bonus(priority)
-- (doc/design.md §4). Within a tenant an old low task overtakes a new high one once it has
-- waited longer than the bonus gap (high 600 s - low 0 s); across tenants priority and age
-- count only up to max_age_credit (fair share leads); critical_strict puts critical first.
\ir helpers.psql
SELECT plan(12);

DO $$ BEGIN PERFORM dispatch.register_agent('solo', capacity => 100000); END $$;

-- skey is ready_at minus the bonus: critical 3600, high 600, normal 60, low 0.
INSERT INTO dispatch.tasks (tenant, kind, priority, ready_at)
SELECT 'keys', 'job', p, '2030-01-01 12:00:00+00' FROM unnest('{critical,high,normal,low}'::text[]) AS p;
SELECT is(ARRAY(SELECT extract(epoch FROM '2030-01-01 12:00:00+00' - skey)::int FROM dispatch.tasks
                 WHERE tenant = 'keys' ORDER BY task_id),
          ARRAY[3600, 600, 60, 0], 'skey = ready_at - bonus: 3600, 600, 60 and 0 s of head start');
DELETE FROM dispatch.tasks;

-- One tenant, a low task that has waited 590 s and a high task that has just arrived.
CREATE FUNCTION low_vs_high(waited interval) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r dispatch.tasks;
BEGIN
  DELETE FROM dispatch.tasks WHERE state = 'ready';
  INSERT INTO dispatch.tasks (tenant, kind, priority, ready_at)
  VALUES ('one', 'job', 'low', now() - waited), ('one', 'job', 'high', now());
  r := dispatch.dispatch_next('solo');
  RETURN r.priority;
END
$$;
SELECT is(low_vs_high('590 s'), 'high', 'a low task 590 s old: the new high task goes first (gap 600 s)');
SELECT is(low_vs_high('610 s'), 'low', 'a low task 610 s old: it overtakes the new high task');
SELECT is(low_vs_high('1 day'), 'low', 'a day-old low task: it is never starved by new high work');

-- A stream of new high tasks does not starve an old low one: once it is 600 s old it is next.
DELETE FROM dispatch.tasks WHERE state = 'ready';
INSERT INTO dispatch.tasks (tenant, kind, priority, ready_at)
VALUES ('one', 'job', 'low', now() - interval '601 s');
INSERT INTO dispatch.tasks (tenant, kind, priority) SELECT 'one', 'job', 'high' FROM generate_series(1, 50);
CALL claim_n('solo', 1);
SELECT is((SELECT priority FROM claims ORDER BY seq DESC LIMIT 1), 'low',
          'a 601 s old low task goes before 50 new high tasks');

-- Priorities in the same tenant, same age: critical, high, normal, low.
DELETE FROM dispatch.tasks WHERE state = 'ready';
SELECT max(seq) AS mark FROM claims \gset
INSERT INTO dispatch.tasks (tenant, kind, priority)
SELECT 'one', 'job', p FROM unnest('{low,normal,high,critical}'::text[]) AS p;
CALL claim_n('solo', 4);
SELECT is(ARRAY(SELECT priority FROM claims WHERE seq > :mark ORDER BY seq),
          '{critical,high,normal,low}', 'same age: critical, high, normal, low');

-- Across tenants age and priority count only up to max_age_credit (300 s): a critical task
-- (3600 s of bonus) of a tenant one task ahead in fair share (-600 s) waits for another
-- tenant's high task (600 s of bonus), where uncapped bonuses would have put it first.
DELETE FROM dispatch.tasks WHERE state = 'ready';
INSERT INTO dispatch.tasks (tenant, kind) VALUES ('x1', 'job');
CALL claim_n('solo', 1);
INSERT INTO dispatch.tasks (tenant, kind, priority) VALUES ('x1', 'job', 'critical'), ('x2', 'job', 'high');
SELECT is((SELECT array_agg(tenant || ':' || priority || ':' || round(score::numeric) || ':' || round(fair::numeric) ORDER BY rank)
             FROM dispatch.explain_next('solo')),
          '{x2:high:300:0,x1:critical:-300:-600}',
          'across tenants: both bonuses count as 300 s, so fair share decides (the critical task scores 300 - 600)');
CALL claim_n('solo', 1);
SELECT is((SELECT tenant || ':' || priority FROM claims ORDER BY seq DESC LIMIT 1), 'x2:high',
          'and the claim follows: the other tenant''s high task');

-- critical_strict: critical work goes first, whatever the age or tenant of the rest.
SELECT dispatch.set_policy('{"critical_strict": true}', 'strict critical') \g /dev/null
DELETE FROM dispatch.tasks WHERE state = 'ready';
INSERT INTO dispatch.tasks (tenant, kind, priority, ready_at)
VALUES ('y1', 'job', 'low', now() - interval '10 hours'), ('y1', 'job', 'high', now() - interval '2 hours');
INSERT INTO dispatch.tasks (tenant, kind, priority) VALUES ('y2', 'job', 'critical');
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('solo', 1);
SELECT is((SELECT tenant || ':' || priority FROM claims WHERE seq > :mark), 'y2:critical',
          'critical_strict: a new critical task goes before 2- and 10-hour-old work of another tenant');
-- Even when its tenant is far ahead in fair share.
INSERT INTO dispatch.tasks (tenant, kind, priority) SELECT 'y2', 'job', 'normal' FROM generate_series(1, 20);
CALL claim_n('solo', 12);
INSERT INTO dispatch.tasks (tenant, kind, priority) VALUES ('y2', 'job', 'critical');
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('solo', 1);
SELECT is((SELECT priority FROM claims WHERE seq > :mark), 'critical',
          'critical_strict: it goes first even for a tenant ahead in fair share');
SELECT cmp_ok((SELECT score FROM dispatch.decisions WHERE kind = 'claim' ORDER BY decision_id DESC LIMIT 1),
              '>', 9e8::float8, 'the decision''s score includes the strict class (10^9 s, here 10^9 + 300 - 600)');
-- Without it, critical is worth an hour of queueing within the tenant, and no more.
SELECT dispatch.set_policy('{}', 'defaults') \g /dev/null
DELETE FROM dispatch.tasks WHERE state = 'ready';
INSERT INTO dispatch.tasks (tenant, kind, priority, ready_at)
VALUES ('z', 'job', 'low', now() - interval '3601 s'), ('z', 'job', 'critical', now());
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('solo', 1);
SELECT is((SELECT priority FROM claims WHERE seq > :mark), 'low',
          'without critical_strict: a low task older than 3600 s goes before a new critical one');

SELECT * FROM finish();
