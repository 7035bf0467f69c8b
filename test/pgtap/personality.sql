-- personality.sql: the personality match (doc/design.md §6, issue 3 item 5). agents.traits and
-- tasks.profile are vectors over the policy's trait dimensions; the match (1 - weighted
-- distance, in [0, 1]) is worth up to match_weight seconds of head start among the candidates;
-- a dimension listed in trait_max is a hard limit (the task's value is the agent's maximum).
\ir helpers.psql
SELECT plan(14);

DO $$ BEGIN
  PERFORM dispatch.register_agent('bold', capacity => 1000, traits => '{0.9,0.1,0.5}');
  PERFORM dispatch.register_agent('careful', capacity => 1000, traits => '{0.1,0.9,0.5}');
  PERFORM dispatch.register_agent('plain', capacity => 1000);
END $$;

-- The match itself.
SELECT is(dispatch.personality_match('{0.9,0.1,0.5}', '{0.9,0.1,0.5}'), 1::float8, 'identical vectors match 1');
SELECT is(dispatch.personality_match('{0,0,0}', '{1,1,1}'), 0::float8, 'opposite corners match 0');
SELECT is(round(dispatch.personality_match('{0.9,0.1,0.5}', '{0.1,0.9,0.5}')::numeric, 4), 0.3468,
          'bold vs careful: 1 - sqrt(0.64 + 0.64 + 0) / sqrt(3) = 0.3468');
SELECT is(dispatch.personality_match(NULL, '{1,1,1}'), NULL, 'no traits: no match value');

-- Two tenants level in fair share, tasks of the same age: each agent's best candidate is the
-- one wanting its personality.
INSERT INTO dispatch.tasks (tenant, kind, profile)
VALUES ('wants_bold', 'job', '{0.9,0.1,0.5}'), ('wants_careful', 'job', '{0.1,0.9,0.5}');
SELECT is((SELECT tenant FROM dispatch.explain_next('bold') WHERE winner), 'wants_bold',
          'explain_next: the bold agent would take the task that wants boldness');
SELECT is((SELECT tenant FROM dispatch.explain_next('careful') WHERE winner), 'wants_careful',
          'explain_next: the careful agent would take the other');
SELECT is((SELECT array_agg(round(match::numeric, 1) ORDER BY rank) FROM dispatch.explain_next('bold')),
          '{60.0,20.8}', 'the match terms: 60 s for the fit, 20.8 s for the misfit (match_weight 60)');
CALL claim_n('careful', 1);
CALL claim_n('bold', 1);
SELECT is((SELECT array_agg(agent_id || ':' || tenant ORDER BY seq) FROM claims),
          '{careful:wants_careful,bold:wants_bold}', 'and the claims follow the fit');
SELECT is((SELECT (factors ->> 'match_value')::float8 FROM dispatch.decisions
            WHERE kind = 'claim' AND agent_id = 'bold'), 1::float8, 'the decision records the match value');

-- The match is worth match_weight (60 s) of waiting: a perfect fit 50 s younger than a
-- misfit of another tenant still wins, one 70 s younger does not.
CREATE TABLE fit_winner (younger interval, tenant text);
CREATE PROCEDURE fit_vs_older(younger interval) LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM dispatch.tasks WHERE state = 'ready';
  -- Fresh tenants each time, so both start level at V.
  INSERT INTO dispatch.tasks (tenant, kind, profile, ready_at) VALUES
    ('fit ' || younger, 'job', '{0.9,0.1,0.5}', now() - interval '100 s' + younger),
    ('misfit ' || younger, 'job', '{0.1,0.9,0.5}', now() - interval '100 s');
  COMMIT;  -- the queue map learns of new work at commit
  INSERT INTO fit_winner SELECT younger, split_part(tenant, ' ', 1)
    FROM dispatch.explain_next('bold') WHERE winner;
END
$$;
CALL fit_vs_older('30 s');
CALL fit_vs_older('45 s');
SELECT is((SELECT tenant FROM fit_winner WHERE younger = '30 s'), 'fit',
          'a fit 30 s younger than a misfit of another tenant wins (39.2 s of match difference)');
SELECT is((SELECT tenant FROM fit_winner WHERE younger = '45 s'), 'misfit',
          'a fit 45 s younger loses: the match difference is only 60 x (1 - 0.3468) = 39.2 s');

-- trait_max: risk is a hard limit. A task with risk 0.3 is never given to an agent of risk 0.9.
SELECT dispatch.set_policy('{"trait_max": ["risk"]}', 'risk is a hard limit') \g /dev/null
DELETE FROM dispatch.tasks WHERE state = 'ready';
INSERT INTO dispatch.tasks (task_id, tenant, kind, profile) VALUES (900, 'cautious', 'job', '{0.3,0.5,0.5}');
INSERT INTO dispatch.tasks (task_id, tenant, kind, profile) VALUES (901, 'cautious', 'job', '{0.95,0.5,0.5}');
SELECT is((SELECT array_agg(task_id ORDER BY rank) FROM dispatch.explain_next('bold')), '{901}'::bigint[],
          'trait_max: the bold agent (risk 0.9) does not even consider the task capped at risk 0.3');
CALL claim_n('bold', 5);
SELECT is((SELECT array_agg(task_id ORDER BY seq) FROM claims WHERE agent_id = 'bold' AND task_id >= 900),
          '{901}'::bigint[], 'trait_max: it claims the next task of the tenant, and nothing more');
CALL claim_n('careful', 5);
SELECT is((SELECT agent_id FROM dispatch.tasks WHERE task_id = 900), 'careful',
          'trait_max: the careful agent (risk 0.1) takes it');

SELECT * FROM finish();
