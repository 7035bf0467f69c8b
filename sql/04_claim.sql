-- 04_claim: what dispatch_next gives to whom. Hard filters (capabilities as a subset,
-- clearance against sensitivity, region), priority with aging as one key, capacity as
-- backpressure, the lease, one decision row per claim, and dispatch_next(agent, n).
\i sql/include/fresh.sql

SELECT count(*) AS agents FROM (
  SELECT dispatch.register_agent('c-a', '{a}', 10)
  UNION ALL SELECT dispatch.register_agent('c-ab', '{b,a}', 10)
  UNION ALL SELECT dispatch.register_agent('c-none', '{}', 10)
  UNION ALL SELECT dispatch.register_agent('c-clear1', '{}', 10, clearance => 1)
  UNION ALL SELECT dispatch.register_agent('c-clear2', '{}', 10, clearance => 2)
  UNION ALL SELECT dispatch.register_agent('c-eu', '{}', 10, region => 'eu')
  UNION ALL SELECT dispatch.register_agent('c-us', '{}', 10, region => 'us')) AS r;

-- Capabilities: requires must be a subset of the agent's capabilities.
SELECT dispatch.submit('needs-ab', tenant => 't04', requires => '{a,b}') AS t_ab \gset
SELECT dispatch.dispatch_next('c-a') IS NULL AS a_cannot, dispatch.dispatch_next('c-none') IS NULL AS none_cannot;
SELECT task_id = :t_ab AS got_it, agent_id, state FROM dispatch.dispatch_next('c-ab');
SELECT dispatch.submit('needs-a', tenant => 't04', requires => '{a}') AS t_a \gset
SELECT dispatch.dispatch_next('c-none') IS NULL AS none_cannot;
SELECT task_id = :t_a AS superset_gets_it, agent_id FROM dispatch.dispatch_next('c-ab');
SELECT dispatch.submit('needs-nothing', tenant => 't04') AS t_0 \gset
SELECT task_id = :t_0 AS anyone_gets_it, agent_id FROM dispatch.dispatch_next('c-none');

-- Clearance: sensitivity <= clearance.
SELECT dispatch.submit('secret', tenant => 't04', sensitivity => 2) AS t_s2 \gset
SELECT dispatch.dispatch_next('c-none') IS NULL AS clearance0_cannot,
       dispatch.dispatch_next('c-clear1') IS NULL AS clearance1_cannot;
SELECT task_id = :t_s2 AS clearance2_gets_it, agent_id FROM dispatch.dispatch_next('c-clear2');
SELECT dispatch.submit('restricted', tenant => 't04', sensitivity => 1) AS t_s1 \gset
SELECT task_id = :t_s1 AS clearance1_gets_it, agent_id FROM dispatch.dispatch_next('c-clear1');

-- Region: a task that names one goes only to an agent of that region.
SELECT dispatch.submit('in-eu', tenant => 't04', region => 'eu') AS t_eu \gset
SELECT dispatch.dispatch_next('c-us') IS NULL AS us_cannot, dispatch.dispatch_next('c-none') IS NULL AS no_region_cannot;
SELECT task_id = :t_eu AS eu_gets_it, agent_id FROM dispatch.dispatch_next('c-eu');
SELECT dispatch.submit('anywhere', tenant => 't04') AS t_any \gset
SELECT task_id = :t_any AS us_gets_unrestricted, agent_id FROM dispatch.dispatch_next('c-us');
SELECT count(*) AS still_ready FROM dispatch.tasks WHERE state = 'ready';

-- Nothing ready: NULL. A scheduled task is not claimable yet.
SELECT dispatch.submit('later', tenant => 't04', run_at => now() + interval '1 hour') AS t_later \gset
SELECT dispatch.dispatch_next('c-none') IS NULL AS nothing_ready;

-- Priority: critical, high, normal, low (submitted in the reverse order, one transaction).
SELECT (dispatch.register_agent('c-p', '{p}', 10)).agent_id;
BEGIN;
SELECT count(dispatch.submit('prio-' || p, tenant => 't04p', priority => p, requires => '{p}'))
  FROM unnest(ARRAY['low', 'normal', 'high', 'critical']) AS p;
COMMIT;
SELECT kind FROM dispatch.dispatch_next('c-p');
SELECT kind FROM dispatch.dispatch_next('c-p');
SELECT kind FROM dispatch.dispatch_next('c-p');
SELECT kind FROM dispatch.dispatch_next('c-p');
SELECT dispatch.dispatch_next('c-p') IS NULL AS drained;

-- Aging: an old low task overtakes a new high one once it is older than the bonus gap
-- (high - low = 600 s by default) ...
SELECT dispatch.submit('old-low', tenant => 't04p', priority => 'low', requires => '{p}',
                       run_at => now() + interval '1 hour') AS old_low \gset
UPDATE dispatch.tasks SET state = 'ready', run_at = NULL, ready_at = now() - interval '11 minutes'
 WHERE task_id = :old_low;
SELECT dispatch.submit('new-high', tenant => 't04p', priority => 'high', requires => '{p}') AS new_high \gset
SELECT kind, priority FROM dispatch.dispatch_next('c-p');
SELECT kind, priority FROM dispatch.dispatch_next('c-p');
-- ... and not before.
SELECT dispatch.submit('young-low', tenant => 't04p', priority => 'low', requires => '{p}',
                       run_at => now() + interval '1 hour') AS young_low \gset
UPDATE dispatch.tasks SET state = 'ready', run_at = NULL, ready_at = now() - interval '9 minutes'
 WHERE task_id = :young_low;
SELECT dispatch.submit('new-high-2', tenant => 't04p', priority => 'high', requires => '{p}') AS new_high2 \gset
SELECT kind, priority FROM dispatch.dispatch_next('c-p');
SELECT kind, priority FROM dispatch.dispatch_next('c-p');

-- The same with a policy of small bonuses: a low task 5 s old beats a new high one (2 s bonus).
SELECT dispatch.set_policy('{"priority_bonus": {"critical": 3, "high": 2, "normal": 1, "low": 0}}',
                           'small bonuses') AS small_policy \gset
SELECT dispatch.policy_version() = :small_policy AS active;
SELECT dispatch.submit('low-5s', tenant => 't04p', priority => 'low', requires => '{p}',
                       run_at => now() + interval '1 hour') AS low5 \gset
UPDATE dispatch.tasks SET state = 'ready', run_at = NULL, ready_at = now() - interval '5 seconds'
 WHERE task_id = :low5;
SELECT dispatch.submit('high-now', tenant => 't04p', priority => 'high', requires => '{p}') AS high_now \gset
SELECT skey - ready_at AS high_offset FROM dispatch.tasks WHERE task_id = :high_now;
SELECT kind FROM dispatch.dispatch_next('c-p');
SELECT kind FROM dispatch.dispatch_next('c-p');
SELECT d.policy_version = :small_policy AS logged_under_small_policy
  FROM dispatch.decisions d WHERE d.task_id = :low5 AND d.kind = 'claim';
SELECT dispatch.set_policy('{}', 'defaults again') > :small_policy AS back_to_defaults;

-- A priority raised while the task waits moves it ahead at once, even in another queue.
SELECT (dispatch.register_agent('c-xy', '{x,y}', 10)).agent_id;
SELECT dispatch.submit('X-normal', tenant => 't04x', requires => '{x}') AS tx \gset
SELECT dispatch.submit('Y-low', tenant => 't04x', requires => '{y}', priority => 'low') AS ty \gset
SELECT kind FROM dispatch.dispatch_next('c-xy');
SELECT dispatch.release(:tx);
UPDATE dispatch.tasks SET priority = 'critical' WHERE task_id = :ty;
SELECT kind, priority FROM dispatch.dispatch_next('c-xy');
SELECT kind, priority FROM dispatch.dispatch_next('c-xy');

-- Capacity is backpressure: at capacity, NULL although work is ready.
SELECT (dispatch.register_agent('c-cap1', '{cap}', 1)).capacity;
SELECT count(dispatch.submit('cap-' || i, tenant => 't04c', requires => '{cap}'))
  FROM generate_series(1, 2) AS i;
SELECT kind FROM dispatch.dispatch_next('c-cap1') \gset first_
SELECT dispatch.dispatch_next('c-cap1') IS NULL AS at_capacity;
SELECT running, capacity, status FROM dispatch.agents WHERE agent_id = 'c-cap1';
SELECT count(*) AS ready_meanwhile FROM dispatch.tasks WHERE tenant = 't04c' AND state = 'ready';
SELECT dispatch.complete(task_id) FROM dispatch.tasks WHERE kind = :'first_kind';
SELECT running, status FROM dispatch.agents WHERE agent_id = 'c-cap1';
SELECT kind <> :'first_kind' AS got_the_other FROM dispatch.dispatch_next('c-cap1');
-- Capacity 0 takes nothing.
SELECT (dispatch.register_agent('c-cap0', '{cap}', 0)).capacity;
SELECT dispatch.submit('cap-3', tenant => 't04c', requires => '{cap}') AS cap3 \gset
SELECT dispatch.dispatch_next('c-cap0') IS NULL AS capacity_zero;

-- The lease: dispatch.lease_time from the claim (300 s by default; the setting is per session).
SELECT (dispatch.register_agent('c-lease', '{lease}', 5)).agent_id;
SELECT count(dispatch.submit('lease-' || i, tenant => 't04l', requires => '{lease}'))
  FROM generate_series(1, 2) AS i;
SELECT lease_until - claimed_at AS lease, lease_until > now() AS in_future, attempts
  FROM dispatch.dispatch_next('c-lease');
SET dispatch.lease_time = '90s';
SELECT lease_until - claimed_at AS lease FROM dispatch.dispatch_next('c-lease');
RESET dispatch.lease_time;

-- dispatch_next(agent, n): up to n, best first, never past the agent's capacity.
SELECT (dispatch.register_agent('c-n', '{n}', 5)).agent_id;
SELECT count(dispatch.submit('n-' || p, tenant => 't04n', priority => p, requires => '{n}'))
  FROM unnest(ARRAY['low', 'low', 'normal', 'normal', 'high', 'high', 'critical']) AS p;
SELECT kind, state, agent_id FROM dispatch.dispatch_next('c-n', 3);
SELECT kind, state, agent_id FROM dispatch.dispatch_next('c-n', 10);
SELECT count(*) AS over_capacity FROM dispatch.dispatch_next('c-n', 10);
SELECT running, capacity FROM dispatch.agents WHERE agent_id = 'c-n';
SELECT count(*) AS left_ready FROM dispatch.tasks WHERE tenant = 't04n' AND state = 'ready';

-- The decision log: exactly one 'claim' row per claim, with the agent, the task, the policy
-- version, the score (the sum of its factors), the factors and the candidates considered.
SELECT t.kind, t.agent_id FROM dispatch.tasks t
 WHERE (SELECT count(*) FROM dispatch.decisions d WHERE d.task_id = t.task_id AND d.kind = 'claim')
       <> t.attempts + (SELECT count(*) FROM dispatch.decisions d
                         WHERE d.task_id = t.task_id AND d.kind = 'release');
SELECT count(*) AS claims, count(DISTINCT task_id) AS tasks_claimed,
       count(*) FILTER (WHERE d.agent_id = t.agent_id) AS right_agent,
       count(*) FILTER (WHERE d.tenant = t.tenant) AS right_tenant,
       count(*) FILTER (WHERE d.candidates >= 1) AS with_candidates,
       count(*) FILTER (WHERE d.policy_version IS NOT NULL) AS with_policy,
       count(*) FILTER (WHERE d.actor = current_user) AS with_actor,
       count(*) FILTER (WHERE abs(d.score - ((d.factors->>'age_credit')::float8 + (d.factors->>'urgent')::float8
                                              + (d.factors->>'affinity')::float8 + (d.factors->>'match')::float8
                                              + (d.factors->>'fair')::float8)) < 0.01) AS score_is_sum
  FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
 WHERE d.kind = 'claim' AND t.state <> 'ready';
SELECT DISTINCT k AS factor FROM dispatch.decisions d, jsonb_object_keys(d.factors) AS k
 WHERE d.kind = 'claim' ORDER BY 1;
SELECT t.kind, d.agent_id, d.factors->>'lane' AS lane, d.factors->>'priority' AS priority,
       d.factors->'priority_bonus' AS bonus, d.policy_version = 1 AS default_policy,
       (d.factors->>'age')::float8 >= 3600 AS age_includes_bonus
  FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
 WHERE d.kind = 'claim' AND t.tenant = 't04p' AND t.kind = 'prio-critical';

-- A transaction's claims see the work it submitted itself, before it commits; after a
-- rollback there is nothing.
SELECT (dispatch.register_agent('c-tx', '{tx}', 5)).agent_id;
BEGIN;
SELECT dispatch.submit('same-transaction', tenant => 't04t', requires => '{tx}') AS same_tx \gset
SELECT task_id = :same_tx AS sees_own_work, state FROM dispatch.dispatch_next('c-tx');
ROLLBACK;
SELECT dispatch.dispatch_next('c-tx') IS NULL AS nothing_after_rollback;
BEGIN;
SELECT count(dispatch.submit('same-tx-' || p, tenant => 't04t', priority => p, requires => '{tx}'))
  FROM unnest(ARRAY['low', 'critical']) AS p;
SELECT kind FROM dispatch.dispatch_next('c-tx', 5);
COMMIT;
SELECT running FROM dispatch.agents WHERE agent_id = 'c-tx';
