-- deadlines.sql: the urgent lane (doc/design.md §4, §6). A task whose deadline is near
-- (now >= deadline - (1 + urgent_slack) * est_duration) overtakes normal work of its own tenant
-- and of others; one whose deadline is far does not; a tenant flooding deadline tasks gets at
-- most about (urgent_weight + max_age_credit) / fair_weight seconds of extra weighted service,
-- never the whole fleet. Past deadlines follow the policy: run late, or expire.
\ir helpers.psql
SELECT plan(21);

DO $$ BEGIN PERFORM dispatch.register_agent('solo', capacity => 100000); END $$;

-- 1. Derived columns: lst = deadline - est, urgent_at = deadline - 1.5 est (urgent_slack 0.5).
INSERT INTO dispatch.tasks (task_id, tenant, kind, est_duration, deadline)
VALUES (1, 'probe', 'job', '60 s', '2030-01-01 12:00:00+00');
SELECT is((SELECT (lst, urgent_at)::text FROM dispatch.tasks WHERE task_id = 1),
          '("2030-01-01 11:59:00+00","2030-01-01 11:58:30+00")',
          'lst is the deadline minus est_duration, urgent_at minus 1.5 x est_duration');
-- Without est_duration, the kind's running average is the cost, and deadlines use it.
INSERT INTO dispatch.kinds (kind, avg_seconds, completed) VALUES ('slow', 600, 50);
INSERT INTO dispatch.tasks (task_id, tenant, kind, deadline)
VALUES (2, 'probe', 'slow', '2030-01-01 12:00:00+00'), (3, 'probe', 'unknown', '2030-01-01 12:00:00+00');
SELECT is(ARRAY(SELECT (cost, urgent_at)::text FROM dispatch.tasks WHERE task_id IN (2, 3) ORDER BY task_id),
          ARRAY['(600,"2030-01-01 11:45:00+00")', '(60,"2030-01-01 11:58:30+00")'],
          'no est_duration: the kind''s average (600 s) is the cost, else the policy''s default_cost (60 s)');
DELETE FROM dispatch.tasks;
ALTER TABLE dispatch.tasks ALTER COLUMN task_id RESTART WITH 1000;

-- 2. Same tenant: 100 normal tasks waiting 10 minutes; a task due in 80 s (60 s of work: urgent
--    since 10 s, latest start in 20 s) is the next claim. One due in an hour waits its turn.
INSERT INTO dispatch.tasks (tenant, kind, est_duration, ready_at)
SELECT 'acme', 'job', '60 s', now() - interval '10 minutes' FROM generate_series(1, 100);
SELECT dispatch.submit('job', tenant => 'acme', est_duration => '60 s',
                       deadline => now() + interval '80 s') AS due_soon \gset
SELECT dispatch.submit('job', tenant => 'acme', est_duration => '60 s',
                       deadline => now() + interval '1 hour') AS due_later \gset
CALL claim_n('solo', 1);
SELECT is((SELECT task_id FROM claims ORDER BY seq DESC LIMIT 1), :due_soon::bigint,
          'same tenant: the task due in 80 s overtakes 100 tasks waiting for 10 minutes');
SELECT is((SELECT (factors ->> 'lane', factors ->> 'urgent') FROM dispatch.decisions
            WHERE task_id = :due_soon AND kind = 'claim')::text, '(urgent,600)',
          'the decision records the urgent lane and its 600 s');
CALL claim_n('solo', 50);
SELECT is((SELECT count(*) FROM claims WHERE task_id = :due_later), 0::bigint,
          'a task due in an hour is not urgent yet: it does not overtake older work');
DELETE FROM dispatch.tasks WHERE state = 'ready';

-- 3. Across tenants: 'heavy' (weight 100, so one claim costs it only 0.6 weighted seconds)
--    has old work and keeps the fair lead; another tenant's task due in an hour does not
--    overtake it, a task due in 80 s does.
INSERT INTO dispatch.tenants (tenant, weight) VALUES ('heavy', 100);
INSERT INTO dispatch.tasks (tenant, kind, est_duration, ready_at)
SELECT 'heavy', 'job', '60 s', now() - interval '10 minutes' FROM generate_series(1, 100);
CALL claim_n('solo', 5);
SELECT dispatch.submit('job', tenant => 'light', est_duration => '60 s',
                       deadline => now() + interval '1 hour') AS calm \gset
CALL claim_n('solo', 1);
SELECT is((SELECT tenant FROM claims ORDER BY seq DESC LIMIT 1), 'heavy',
          'across tenants: a task due in an hour does not overtake the old work of a tenant with the fair lead');
SELECT dispatch.submit('job', tenant => 'light', est_duration => '60 s',
                       deadline => now() + interval '80 s') AS rush \gset
CALL claim_n('solo', 1);
SELECT is((SELECT task_id FROM claims ORDER BY seq DESC LIMIT 1), :rush::bigint,
          'across tenants: a task due in 80 s does');
DELETE FROM dispatch.tasks WHERE state = 'ready';

-- 4. A tenant flooding deadline tasks cannot starve another. 'flood' submits 600 tasks, each
--    due in 80 s and waiting 20 minutes already (so urgent, with the full age credit); 'steady'
--    has 600 fresh normal tasks. Equal weights, 300 claims. The flood's lead in weighted
--    service is bounded by (urgent_weight + max_age_credit - steady's age credit) / fair_weight
--    = (600 + 300 - 60) / 10 = 84 s, plus the one task being charged: at most 2 tasks (120 s).
CREATE PROCEDURE deadline_flood() LANGUAGE sql AS $$
  DELETE FROM dispatch.tasks WHERE state = 'ready';
  INSERT INTO dispatch.tasks (tenant, kind, est_duration, ready_at, deadline)
  SELECT 'flood', 'job', '60 s', now() - interval '20 minutes', now() + interval '80 s'
    FROM generate_series(1, 600);
  INSERT INTO dispatch.tasks (tenant, kind, est_duration)
  SELECT 'steady', 'job', '60 s' FROM generate_series(1, 600);
$$;
-- The flood's largest lead over steady (weighted seconds) at any prefix since `since`.
CREATE FUNCTION flood_lead(since int) RETURNS float8 LANGUAGE sql AS $$
  SELECT max(lead) FROM (
    SELECT sum(CASE tenant WHEN 'flood' THEN cost WHEN 'steady' THEN -cost ELSE 0 END)
             OVER (ORDER BY seq) AS lead
      FROM claims WHERE seq > since) AS s
$$;
CALL deadline_flood();
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('solo', 300);
SELECT diag('deadline flood, defaults: steady got ' ||
            (SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'steady') ||
            ' of 300 claims; the flood''s largest lead: ' || flood_lead(:mark) || ' s');
SELECT cmp_ok((SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'steady')::int, '>=', 148,
              'deadline flood, defaults: the steady tenant still got at least 148 of 300 claims');
SELECT cmp_ok(flood_lead(:mark), '<=', 120::float8,
              'deadline flood, defaults: the flood never led by more than 120 weighted seconds (2 tasks)');
SELECT cmp_ok(flood_lead(:mark), '>=', 60::float8,
              'deadline flood, defaults: the urgent lane did put the flood ahead (by at least one task)');

-- The bound scales with urgent_weight / fair_weight: at urgent_weight 6000 it is
-- (6000 + 300 - 60) / 10 = 624 s, so at most 11 tasks.
SELECT dispatch.set_policy('{"urgent_weight": 6000}', 'deadline flood, 10x urgent weight') \g /dev/null
CALL deadline_flood();
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('solo', 300);
SELECT diag('deadline flood, urgent_weight 6000: steady got ' ||
            (SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'steady') ||
            ' of 300 claims; the flood''s largest lead: ' || flood_lead(:mark) || ' s');
SELECT cmp_ok(flood_lead(:mark), '<=', 660::float8,
              'deadline flood, urgent_weight 6000: the flood never led by more than 660 weighted seconds (11 tasks)');
SELECT cmp_ok(flood_lead(:mark), '>=', 480::float8,
              'deadline flood, urgent_weight 6000: and it did lead by at least 8 tasks');
SELECT cmp_ok((SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'steady')::int, '>=', 139,
              'deadline flood, urgent_weight 6000: the steady tenant still got at least 139 of 300 claims');
SELECT dispatch.set_policy('{}', 'defaults') \g /dev/null

-- 5. Too late to hurry: a task past its latest start time (due in 30 s, 60 s of work) would
--    miss its deadline whatever happens now. It gets no urgency (hurrying it would only make
--    the next urgent task late too), and the tick takes it out of the urgent lane.
DELETE FROM dispatch.tasks WHERE state = 'ready';
INSERT INTO dispatch.tasks (tenant, kind, est_duration, ready_at)
SELECT 'acme', 'job', '60 s', now() - interval '10 minutes' FROM generate_series(1, 10);
SELECT dispatch.submit('job', tenant => 'acme', est_duration => '60 s',
                       deadline => now() + interval '30 s') AS hopeless \gset
SELECT dispatch.submit('job', tenant => 'acme', est_duration => '60 s',
                       deadline => now() + interval '80 s') AS savable \gset
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('solo', 2);
SELECT is((SELECT array_agg(task_id = :savable ORDER BY seq) FROM claims WHERE seq > :mark), '{t,f}',
          'past its latest start: the hopeless task gets no urgency; the one that can still make it goes first');
SELECT is((SELECT count(*) FROM claims WHERE task_id = :hopeless), 0::bigint,
          'and the hopeless one waits in the fair order behind older work');
SELECT is(dispatch.tick() ->> 'urgency_dropped', '1', 'the tick takes it out of the urgent lane');
SELECT is((SELECT urgent_at FROM dispatch.tasks WHERE task_id = :hopeless), NULL,
          'its urgent_at is cleared; it still runs (past_deadline = run)');

-- 6. Past the deadline. Under past_deadline = run (default) a late task still runs (a miss);
--    under expire the tick ends it as expired and no agent gets it.
DELETE FROM dispatch.tasks WHERE state = 'ready';
SELECT dispatch.submit('job', tenant => 'late', est_duration => '60 s',
                       deadline => now() - interval '1 s') AS late_run \gset
CALL claim_n('solo', 1);
SELECT is((SELECT task_id FROM claims ORDER BY seq DESC LIMIT 1), :late_run::bigint,
          'past_deadline = run: a task past its deadline is still claimed');
SELECT dispatch.set_policy('{"past_deadline": "expire"}', 'expire late work') \g /dev/null
SELECT dispatch.submit('job', tenant => 'late', est_duration => '60 s',
                       deadline => now() - interval '1 s') AS late_expire \gset
CALL claim_n('solo', 1);
SELECT is((SELECT count(*) FROM claims WHERE task_id = :late_expire), 0::bigint,
          'past_deadline = expire: no agent gets a task past its deadline');
SELECT is(dispatch.tick() ->> 'expired', '1', 'past_deadline = expire: the tick expires one task');
SELECT is((SELECT state FROM dispatch.tasks WHERE task_id = :late_expire), 'expired',
          'past_deadline = expire: the late task ends as expired');

SELECT * FROM finish();
