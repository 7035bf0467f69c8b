-- 08_tick: one tick of the background worker, as SELECT dispatch.tick(). Expired leases are
-- requeued (the attempt counts) or end dead after max_attempts, each logged with the agent
-- that held the task; agents silent past dispatch.agent_timeout are lost and their tasks
-- requeued; due scheduled work is promoted; expired reservations are dropped.
--
-- The instance's own worker ticks this database every second, so each scenario makes its
-- change and ticks in one transaction: the worker cannot see the change before we do.
\i sql/include/fresh.sql

\i sql/include/tick.sql
-- Of a tick of our own: the steps this file is about (others have their own tests), and that
-- fair-share state was saved (how much depends on what the worker saved before us).
CREATE OR REPLACE FUNCTION public.tick_now() RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('lost', r->'lost', 'promoted', r->'promoted', 'requeued', r->'requeued',
                            'reservations_expired', r->'reservations_expired',
                            'fair_share_saved', jsonb_typeof(r->'fair_share_saved'))
    FROM (SELECT public.tick_once() AS r) AS t
$$;

-- Nothing to do: every step reports zero.
SELECT public.tick_now() AS report;

SELECT (dispatch.register_agent('k-1', '{k}', 5)).agent_id;

-- An expired lease: back to ready, the attempt counted, the agent's capacity returned, logged
-- as 'requeue' with the agent that held it.
SELECT dispatch.submit('expires', tenant => 't08', requires => '{k}') AS e1 \gset
SELECT task_id = :e1 AS claimed, attempts FROM dispatch.dispatch_next('k-1');
SELECT skey AS e1_skey FROM dispatch.tasks WHERE task_id = :e1 \gset
BEGIN;
UPDATE dispatch.tasks SET lease_until = now() - interval '1 second' WHERE task_id = :e1;
SELECT public.tick_now() AS report;
COMMIT;
SELECT state, agent_id, attempts, lease_until, error, skey = :'e1_skey' AS keeps_place
  FROM dispatch.tasks WHERE task_id = :e1;
SELECT running, status FROM dispatch.agents WHERE agent_id = 'k-1';
SELECT kind, agent_id, tenant, reason, factors, policy_version = dispatch.policy_version() AS current_policy
  FROM dispatch.decisions WHERE task_id = :e1 AND kind <> 'claim';
-- Claimed again, it counts its second attempt.
SELECT task_id = :e1 AS claimed_again, attempts FROM dispatch.dispatch_next('k-1');
SELECT dispatch.complete(:e1);

-- An expired lease on the last attempt: dead, kept with its agent, logged as 'dead'.
SELECT dispatch.submit('expires-last', tenant => 't08', requires => '{k}', max_attempts => 1) AS e2 \gset
SELECT task_id = :e2 AS claimed FROM dispatch.dispatch_next('k-1');
BEGIN;
UPDATE dispatch.tasks SET lease_until = now() - interval '1 second' WHERE task_id = :e2;
SELECT public.tick_now() AS report;
COMMIT;
SELECT state, agent_id, attempts, error, finished_at IS NOT NULL AS finished FROM dispatch.tasks WHERE task_id = :e2;
SELECT kind, agent_id, reason, factors FROM dispatch.decisions WHERE task_id = :e2 AND kind <> 'claim';
SELECT running FROM dispatch.agents WHERE agent_id = 'k-1';
-- A lease still running is left alone.
SELECT dispatch.submit('still-leased', tenant => 't08', requires => '{k}') AS e3 \gset
SELECT task_id = :e3 AS claimed FROM dispatch.dispatch_next('k-1');
SELECT public.tick_now() ->> 'requeued' AS requeued;
SELECT state, agent_id FROM dispatch.tasks WHERE task_id = :e3;
SELECT dispatch.complete(:e3);

-- A lost agent: silent longer than dispatch.agent_timeout (60 s). It is marked lost; its tasks
-- go back to ready (logged 'lost'), or end dead on their last attempt (logged 'dead').
SELECT (dispatch.register_agent('k-lost', '{k}', 5)).agent_id;
SELECT (dispatch.register_agent('k-alive', '{alive}', 5)).agent_id;
SELECT dispatch.submit('held-by-lost', tenant => 't08l', requires => '{k}') AS l1 \gset
SELECT dispatch.submit('held-by-lost-last', tenant => 't08l', requires => '{k}', max_attempts => 1) AS l2 \gset
SELECT count(*) AS claimed FROM dispatch.dispatch_next('k-lost', 2);
BEGIN;
UPDATE dispatch.agents SET last_seen = now() - interval '2 minutes' WHERE agent_id = 'k-lost';
UPDATE dispatch.agents SET last_seen = now() - interval '30 seconds' WHERE agent_id = 'k-alive';
SELECT public.tick_now() AS report;
COMMIT;
SELECT agent_id, status, running FROM dispatch.agents WHERE agent_id IN ('k-lost', 'k-alive') ORDER BY 1;
SELECT kind, state, agent_id, attempts, error, lease_until FROM dispatch.tasks WHERE task_id IN (:l1, :l2) ORDER BY kind;
SELECT t.kind, d.kind AS decision, d.agent_id, d.reason, d.factors->'attempt' AS attempt
  FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
 WHERE d.task_id IN (:l1, :l2) AND d.kind <> 'claim' ORDER BY t.kind;
-- A lost agent is not lost twice; a heartbeat brings it back, and it claims again.
SELECT public.tick_now() ->> 'lost' AS lost_again;
SELECT dispatch.heartbeat('k-lost');
SELECT status FROM dispatch.agents WHERE agent_id = 'k-lost';
SELECT task_id = :l1 AS reclaimed, attempts FROM dispatch.dispatch_next('k-lost');
SELECT dispatch.complete(:l1);
-- A lost agent that polls comes back too.
UPDATE dispatch.agents SET status = 'lost' WHERE agent_id = 'k-lost';
SELECT dispatch.dispatch_next('k-lost') IS NULL AS nothing_to_do;
SELECT status FROM dispatch.agents WHERE agent_id = 'k-lost';

-- Due scheduled work is promoted, ranked from its run_at; work not yet due stays scheduled.
SELECT count(dispatch.submit('due-' || i, tenant => 't08s', requires => '{k}', run_at => now() + interval '1 hour'))
  FROM generate_series(1, 3) AS i;
SELECT count(*) AS scheduled FROM dispatch.tasks WHERE tenant = 't08s' AND state = 'scheduled';
BEGIN;
UPDATE dispatch.tasks SET run_at = now() - interval '10 minutes' WHERE tenant = 't08s' AND kind IN ('due-1', 'due-2');
SELECT public.tick_now() AS report;
SELECT kind, state, ready_at = run_at AS ranked_from_run_at, skey - ready_at AS skey_offset
  FROM dispatch.tasks WHERE tenant = 't08s' ORDER BY kind;
COMMIT;
SELECT kind FROM dispatch.dispatch_next('k-1');
SELECT kind FROM dispatch.dispatch_next('k-1');
SELECT dispatch.dispatch_next('k-1') IS NULL AS due_3_still_waits;

-- A reservation that ran out is dropped: anyone capable may take the task.
SELECT dispatch.submit('reserved', tenant => 't08r', requires => '{k}') AS r1 \gset
BEGIN;
UPDATE dispatch.tasks SET reserved_for = 'k-lost', reserved_until = now() - interval '1 second' WHERE task_id = :r1;
SELECT public.tick_now() AS report;
COMMIT;
SELECT reserved_for, reserved_until, state FROM dispatch.tasks WHERE task_id = :r1;
SELECT task_id = :r1 AS anyone_may_take FROM dispatch.dispatch_next('k-1');

-- Everything at once, and the report counts each.
SELECT dispatch.submit('all-1', tenant => 't08a', requires => '{k}') AS a1 \gset
SELECT task_id = :a1 AS claimed FROM dispatch.dispatch_next('k-1');
SELECT dispatch.submit('all-2', tenant => 't08a', requires => '{k}', run_at => now() + interval '1 hour') AS a2 \gset
SELECT dispatch.submit('all-3', tenant => 't08a', requires => '{k}') AS a3 \gset
SELECT (dispatch.register_agent('k-gone', '{k}', 1)).agent_id;
SELECT task_id = :a3 AS claimed FROM dispatch.dispatch_next('k-gone');
BEGIN;
UPDATE dispatch.tasks SET lease_until = now() - interval '1 second' WHERE task_id = :a1;
UPDATE dispatch.tasks SET run_at = now() - interval '1 second' WHERE task_id = :a2;
UPDATE dispatch.agents SET last_seen = now() - interval '1 hour' WHERE agent_id = 'k-gone';
SELECT public.tick_now() AS report;
COMMIT;
SELECT kind, state, agent_id FROM dispatch.tasks WHERE tenant = 't08a' ORDER BY kind;
SELECT kind, count(*) FROM dispatch.decisions GROUP BY 1 ORDER BY 1;
SELECT agent_id, running FROM dispatch.agents ORDER BY 1;
