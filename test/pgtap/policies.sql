-- policies.sql: versioned policies (issue 3 item 6). set_policy validates every key and range
-- (42704 for an unknown key, priority or trait; 22023 for a bad value; 22004 for NULL), each
-- with a hint; a refused document changes nothing; a good one becomes the one active version,
-- the old ones stay; every decision records the version that made it; weights apply at once.
\ir helpers.psql
SELECT plan(26);

DO $$ BEGIN PERFORM dispatch.register_agent('solo', capacity => 1000); END $$;

-- Refused documents: SQLSTATE and message.
SELECT throws_ok($$SELECT dispatch.set_policy('{"fair_wieght": 5}')$$, '42704',
                 'unknown policy key "fair_wieght"', 'unknown key: 42704');
SELECT throws_ok($$SELECT dispatch.set_policy('{"priority_bonus": {"urgent": 5}}')$$, '42704',
                 'unknown priority "urgent" in policy key "priority_bonus"', 'unknown priority: 42704');
SELECT throws_ok($$SELECT dispatch.set_policy('{"trait_max": ["courage"]}')$$, '42704',
                 'unknown trait "courage" in policy key "trait_max"', 'unknown trait in trait_max: 42704');
SELECT throws_ok($$SELECT dispatch.set_policy('{"fair_weight": -1}')$$, '22023',
                 'invalid value for policy key "fair_weight"', 'negative fair_weight: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"fair_candidates": 0}')$$, '22023',
                 'invalid value for policy key "fair_candidates"', 'fair_candidates 0: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"fair_candidates": 65}')$$, '22023',
                 'invalid value for policy key "fair_candidates"', 'fair_candidates 65: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"urgent_weight": "lots"}')$$, '22023',
                 'invalid value for policy key "urgent_weight"', 'a string for a number: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"default_cost": 0}')$$, '22023',
                 'invalid value for policy key "default_cost"', 'default_cost 0: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"past_deadline": "maybe"}')$$, '22023',
                 'invalid value for policy key "past_deadline"', 'past_deadline maybe: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"critical_strict": 1}')$$, '22023',
                 'invalid value for policy key "critical_strict"', 'critical_strict 1: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"trait_weights": [1, 2]}')$$, '22023',
                 'invalid value for policy key "trait_weights"', 'two weights for three traits: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('{"shed_after": {"critical": 60}}')$$, '22023',
                 'critical work is never shed', 'shedding critical work: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy('[1, 2]')$$, '22023',
                 'invalid value for policy key "weights"', 'not an object: 22023');
SELECT throws_ok($$SELECT dispatch.set_policy(NULL)$$, '22004',
                 'policy weights must not be null', 'NULL: 22004');

-- The hints are full sentences that say what to do.
CREATE FUNCTION hint_of(doc jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  h text;
BEGIN
  PERFORM dispatch.set_policy(doc);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
  RETURN h;
END
$$;
SELECT matches(hint_of('{"fair_wieght": 5}'), '^The keys are priority_bonus, .* and trait_max\.$',
               'unknown key: the hint lists the keys');
SELECT is(hint_of('{"fair_weight": -1}'), 'See the policy keys in doc/reference.md (dispatch.set_policy).',
          'bad value: the hint points to the reference');

-- Nothing was written by the refusals: still version 1, the defaults, active.
SELECT is((SELECT array_agg(version || ':' || active ORDER BY version) FROM dispatch.policies), '{1:true}',
          'refused documents leave no version behind');

-- A good document: a new active version, complete with defaults; the old one stays.
SELECT is(dispatch.set_policy('{"fair_weight": 20, "affinity_wait": 5}', 'tighter fairness'), 2,
          'set_policy returns the new version');
SELECT is((SELECT array_agg(version || ':' || active ORDER BY version) FROM dispatch.policies), '{1:false,2:true}',
          'exactly one active version; version 1 kept');
SELECT is((SELECT weights ->> 'fair_weight' || ' ' || (weights ->> 'urgent_weight') || ' ' || note
             FROM dispatch.policies WHERE version = 2), '20 600 tighter fairness',
          'the stored document is complete: the keys given and the defaults for the rest');

-- Each decision records the version that made it; the new weights apply at once.
INSERT INTO dispatch.tasks (tenant, kind) SELECT 't' || i, 'job' FROM generate_series(1, 4) AS i, generate_series(1, 2);
CALL claim_n('solo', 1);
SELECT is((SELECT (policy_version, (factors ->> 'fair')::float8)::text FROM dispatch.decisions
            WHERE kind = 'claim' ORDER BY decision_id DESC LIMIT 1), '(2,0)',
          'a claim under version 2 records version 2');
SELECT is((SELECT min(fair) FROM dispatch.explain_next('solo')), -1200::float8,
          'fair_weight 20 applies at once: the tenant just served is 60 s ahead, -1200 s');
CALL claim_n('solo', 1);
SELECT is(dispatch.set_policy('{}', 'back to the defaults'), 3, 'version 3');
CALL claim_n('solo', 1);
SELECT is((SELECT array_agg(policy_version ORDER BY decision_id) FROM dispatch.decisions WHERE kind = 'claim'),
          '{2,2,3}', 'each claim records the version active when it was made');
-- Lifecycle decisions made in SQL record it too.
SELECT dispatch.release((SELECT task_id FROM claims ORDER BY seq DESC LIMIT 1)) \g /dev/null
SELECT is((SELECT policy_version FROM dispatch.decisions WHERE kind = 'release'), 3, 'a release records version 3');
SELECT is((SELECT count(*) FROM dispatch.policies), 3::bigint, 'three versions kept');

SELECT * FROM finish();
