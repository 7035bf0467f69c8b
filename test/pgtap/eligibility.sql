-- eligibility.sql: a randomized property test of the hard filters (doc/design.md §6 step 2).
-- 30 agents with random capabilities, clearance, region and traits; 3,000 tasks with random
-- requires, sensitivity, region and profiles (trait_max risk is a hard limit), over 10 tenants.
-- Random agents claim until none can claim more. Properties: no agent ever gets a task it lacks
-- a capability, the clearance, the region or the trait limit for; no task is claimed twice; and
-- nothing is left that some agent could have taken (no agent returns NULL while work it may
-- take is ready). The seed is fixed, so a failure reproduces.
\ir helpers.psql
SELECT plan(8);

SELECT setseed(0.42);
SELECT dispatch.set_policy('{"trait_max": ["risk"]}', 'risk is a hard limit') \g /dev/null
DO $$
BEGIN
  FOR i IN 1..30 LOOP
    PERFORM dispatch.register_agent(
      'ag' || i,
      capabilities => ARRAY(SELECT c FROM unnest('{a,b,c,d,e}'::text[]) AS c WHERE random() < 0.5),
      capacity => 100000,
      clearance => floor(random() * 4)::int,
      region => (ARRAY[NULL, 'eu', 'us'])[1 + floor(random() * 3)::int],
      traits => CASE WHEN random() < 0.7 THEN ARRAY[random(), random(), random()]::real[] END);
  END LOOP;
END $$;
INSERT INTO dispatch.tasks (tenant, kind, priority, requires, sensitivity, region, profile, ready_at)
SELECT 'ten' || floor(random() * 10)::int, 'job',
       (ARRAY['critical', 'high', 'normal', 'low'])[1 + floor(random() * 4)::int],
       ARRAY(SELECT c FROM unnest('{a,b,c,d,e}'::text[]) AS c WHERE random() < 0.2),
       (ARRAY[0, 0, 0, 1, 2, 3])[1 + floor(random() * 6)::int],
       (ARRAY[NULL, NULL, NULL, 'eu', 'us'])[1 + floor(random() * 5)::int],
       CASE WHEN random() < 0.5 THEN ARRAY[random(), random(), random()]::real[] END,
       now() - make_interval(secs => floor(random() * 600)::int)
  FROM generate_series(1, 3000);

-- May this agent take this task? The filters, written out in SQL.
CREATE FUNCTION may_take(a dispatch.agents, t dispatch.tasks) RETURNS boolean LANGUAGE sql AS $$
  SELECT a.capabilities @> t.requires AND a.clearance >= t.sensitivity
     AND (t.region IS NULL OR t.region = a.region)
     AND (a.traits IS NULL OR t.profile IS NULL OR a.traits[1] <= t.profile[1])
$$;

-- 4,000 claims by random agents, then sweeps over every agent until a sweep claims nothing.
CREATE TABLE nulls (agent_id text, ready_it_may_take bigint);
CREATE PROCEDURE random_claims(n int) LANGUAGE plpgsql AS $$
DECLARE
  ag text;
  r dispatch.tasks;
  got int;
BEGIN
  FOR i IN 1..n LOOP
    ag := 'ag' || (1 + floor(random() * 30)::int);
    r := dispatch.dispatch_next(ag);
    IF r.task_id IS NOT NULL THEN
      INSERT INTO claims (agent_id, task_id, tenant, priority, cost) VALUES (ag, r.task_id, r.tenant, r.priority, r.cost);
    END IF;
    COMMIT;
  END LOOP;
  LOOP
    got := 0;
    FOR i IN 1..30 LOOP
      r := dispatch.dispatch_next('ag' || i);
      IF r.task_id IS NOT NULL THEN
        INSERT INTO claims (agent_id, task_id, tenant, priority, cost) VALUES ('ag' || i, r.task_id, r.tenant, r.priority, r.cost);
        got := got + 1;
      ELSE
        -- A NULL answer: record whether work this agent may take was ready.
        INSERT INTO nulls SELECT 'ag' || i, count(*) FROM dispatch.tasks AS t, dispatch.agents AS a
         WHERE a.agent_id = 'ag' || i AND t.state = 'ready' AND may_take(a, t);
      END IF;
      COMMIT;
    END LOOP;
    EXIT WHEN got = 0;
  END LOOP;
END
$$;
CALL random_claims(4000);

SELECT diag('claims: ' || (SELECT count(*) FROM claims) || ', left ready: ' ||
            (SELECT count(*) FROM dispatch.tasks WHERE state = 'ready'));
SELECT cmp_ok((SELECT count(*) FROM claims)::int, '>=', 2500, 'most of the 3,000 tasks were claimed');
SELECT is((SELECT count(*) FROM claims c JOIN dispatch.agents a USING (agent_id) JOIN dispatch.tasks t USING (task_id)
            WHERE NOT a.capabilities @> t.requires), 0::bigint, 'no claim lacked a capability');
SELECT is((SELECT count(*) FROM claims c JOIN dispatch.agents a USING (agent_id) JOIN dispatch.tasks t USING (task_id)
            WHERE a.clearance < t.sensitivity), 0::bigint, 'no claim lacked clearance');
SELECT is((SELECT count(*) FROM claims c JOIN dispatch.agents a USING (agent_id) JOIN dispatch.tasks t USING (task_id)
            WHERE t.region IS NOT NULL AND t.region IS DISTINCT FROM a.region), 0::bigint, 'no claim crossed regions');
SELECT is((SELECT count(*) FROM claims c JOIN dispatch.agents a USING (agent_id) JOIN dispatch.tasks t USING (task_id)
            WHERE a.traits[1] > t.profile[1]), 0::bigint, 'no claim broke the risk limit');
SELECT is((SELECT count(*) - count(DISTINCT task_id) FROM claims), 0::bigint, 'no task was claimed twice');
SELECT is((SELECT count(*) FROM dispatch.tasks t WHERE t.state = 'ready'
              AND EXISTS (SELECT FROM dispatch.agents a WHERE may_take(a, t))), 0::bigint,
          'nothing is left that some agent could take');
SELECT is((SELECT count(*) FROM nulls WHERE ready_it_may_take > 0), 0::bigint,
          'no agent got NULL while work it may take was ready');

SELECT * FROM finish();
