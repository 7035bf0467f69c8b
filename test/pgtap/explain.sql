-- explain.sql: explanations (issue 3 item 9). explain_next(agent) shows, without claiming,
-- every candidate with its lane and each term of its score, and marks the winner, which is the
-- task dispatch_next then claims; explain(task) lists the task's decisions with each factor.
\ir helpers.psql
SELECT plan(17);

DO $$ BEGIN
  PERFORM dispatch.register_agent('bold', capabilities => '{x}', capacity => 1000, traits => '{0.9,0.1,0.5}');
  PERFORM dispatch.register_agent('tiny', capacity => 0);
END $$;
SELECT setseed(0.17);
-- A mixed queue: six tenants, priorities, ages, deadlines, profiles, two signatures.
INSERT INTO dispatch.tasks (tenant, kind, priority, requires, ready_at, est_duration, deadline, profile)
SELECT 'ten' || (i % 6), 'job',
       (ARRAY['critical', 'high', 'normal', 'low'])[1 + (i % 4)],
       CASE WHEN i % 3 = 0 THEN '{x}' ELSE '{}' END::text[],
       now() - make_interval(secs => (random() * 900)::int),
       make_interval(secs => 30 + (random() * 90)::int),
       CASE WHEN i % 7 = 0 THEN now() + make_interval(secs => (random() * 400)::int) END,
       CASE WHEN i % 2 = 0 THEN ARRAY[random(), random(), random()]::real[] END
  FROM generate_series(1, 120) AS i;

-- What explain_next shows.
CREATE TABLE shown AS SELECT * FROM dispatch.explain_next('bold');
SELECT cmp_ok((SELECT count(*) FROM shown)::int, '>=', 4, 'explain_next lists the candidates (at least one per fair tenant)');
SELECT is((SELECT array_agg(rank ORDER BY rank) FROM shown WHERE winner), '{1}', 'exactly one winner, ranked first');
SELECT is((SELECT count(*) FROM shown s1 JOIN shown s2 ON s2.rank = s1.rank + 1 WHERE s2.score > s1.score), 0::bigint,
          'ranked by score, best first');
SELECT is((SELECT count(*) FROM shown
            WHERE abs(score - (least(age, 300) + urgent + affinity + match + fair)) > 1e-6), 0::bigint,
          'each score is min(age, max_age_credit) + urgent + affinity + match + fair');
SELECT is((SELECT count(*) FROM shown WHERE lane NOT IN ('fair', 'urgent', 'reserved')), 0::bigint,
          'each candidate names its lane');
-- Nothing was claimed or logged.
SELECT is((SELECT count(*) FROM dispatch.tasks WHERE state <> 'ready') + (SELECT count(*) FROM dispatch.decisions),
          0::bigint, 'explain_next claims nothing and logs nothing');

-- The winner is what dispatch_next claims, step after step.
CREATE TABLE agree (step int, predicted bigint, claimed bigint);
CREATE PROCEDURE predict_and_claim(n int) LANGUAGE plpgsql AS $$
DECLARE
  p bigint;
  r dispatch.tasks;
BEGIN
  FOR i IN 1..n LOOP
    SELECT task_id INTO p FROM dispatch.explain_next('bold') WHERE winner;
    r := dispatch.dispatch_next('bold');
    INSERT INTO agree VALUES (i, p, r.task_id);
    COMMIT;
  END LOOP;
END
$$;
CALL predict_and_claim(60);
SELECT is((SELECT count(*) FROM agree WHERE predicted IS DISTINCT FROM claimed), 0::bigint,
          'over 60 claims, dispatch_next claimed explain_next''s winner every time');

-- explain(task): its decisions, each factor.
SELECT claimed AS t FROM agree WHERE step = 1 \gset
SELECT is((SELECT array_agg(kind ORDER BY at) FROM dispatch.explain(:t)), '{claim}', 'explain: one claim decision');
SELECT is((SELECT array_agg(k ORDER BY k) FROM dispatch.explain(:t), jsonb_object_keys(factors) AS k),
          '{affinity,age,age_credit,cost,fair,lane,match,match_value,priority,priority_bonus,probes,tenant_vstart,urgent,virtual_time}',
          'the claim''s factors: every term of the score and the facts behind it');
SELECT is((SELECT agent_id || ' v' || policy_version FROM dispatch.explain(:t)), 'bold v1', 'the agent and the policy version');
SELECT cmp_ok((SELECT candidates FROM dispatch.explain(:t)), '>=', 1, 'and how many candidates it weighed');
SELECT skey AS skey_before FROM dispatch.tasks WHERE task_id = :t \gset
SELECT dispatch.release(:t) \g /dev/null
SELECT is((SELECT array_agg(kind ORDER BY at) FROM dispatch.explain(:t)), '{claim,release}',
          'released: two decisions, oldest first');
SELECT is((SELECT state || ' ' || (skey = :'skey_before') FROM dispatch.tasks WHERE task_id = :t), 'ready true',
          'a released task is ready again at its old place in line (same skey)');

-- An agent that cannot take work now is shown its candidates, with no winner.
SELECT is((SELECT count(*) FILTER (WHERE winner) FROM dispatch.explain_next('tiny')), 0::bigint,
          'an agent at capacity (0) gets candidates but no winner');
SELECT throws_ok($$SELECT * FROM dispatch.explain_next('ghost')$$, '42704', 'agent "ghost" does not exist',
                 'unknown agent: 42704');
SELECT throws_ok($$SELECT * FROM dispatch.explain_next(NULL)$$, '22004', 'agent_id must not be null', 'NULL: 22004');
-- Only the agent's owner, dispatch_reader and dispatch_admin may look.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'match_stranger') THEN
    CREATE ROLE match_stranger IN ROLE dispatch_agent;
  END IF;
END $$;
SET ROLE match_stranger;
SELECT throws_ok($$SELECT * FROM dispatch.explain_next('bold')$$, '42501', NULL,
                 'a role that may not act as the agent: 42501');
RESET ROLE;

SELECT * FROM finish();
