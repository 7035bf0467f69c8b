-- 02_agents: the agent lifecycle. register_agent inserts or updates; heartbeat keeps an agent
-- alive and brings a lost one back; drain_agent stops new work; deregister_agent takes the
-- agent offline and gives its leased tasks back to the queue, each logged.
\i sql/include/fresh.sql

\i sql/include/try.sql

-- Registering: every argument lands in its column; capabilities are sorted and deduplicated.
SELECT agent_id, capabilities, capacity, running, status, traits, clearance, region, speed,
       owner_role = current_user AS owned_by_caller, attrs, last_seen >= now() AS seen_now
  FROM dispatch.register_agent('ag-1', capabilities => '{py,sql,py}', capacity => 2,
                               traits => '{0.2,0.5,0.9}', clearance => 3, region => 'eu',
                               speed => 1.5, attrs => '{"model": "m1"}');
-- Defaults.
SELECT agent_id, capabilities, capacity, traits, clearance, region, speed,
       owner_role = current_user AS owned_by_caller, attrs, status
  FROM dispatch.register_agent('ag-2');
SELECT count(*) AS agents FROM dispatch.agents;

-- Registering again updates the row in place (no second row, registered_at kept); it is a
-- whole registration: arguments left out take their defaults again.
SELECT registered_at AS reg0 FROM dispatch.agents WHERE agent_id = 'ag-1' \gset
SELECT agent_id, capabilities, capacity, clearance, region, speed, attrs, status
  FROM dispatch.register_agent('ag-1', capabilities => '{sql}', capacity => 4);
SELECT count(*) AS agents, bool_and(registered_at = :'reg0') AS registered_at_kept
  FROM dispatch.agents WHERE agent_id = 'ag-1';

-- Heartbeat: last_seen moves forward.
UPDATE dispatch.agents SET last_seen = now() - interval '30 seconds' WHERE agent_id = 'ag-2'
RETURNING last_seen AS seen0 \gset
SELECT dispatch.heartbeat('ag-2');
SELECT status, last_seen > :'seen0' AS seen_again
  FROM dispatch.agents WHERE agent_id = 'ag-2';
-- A heartbeat brings a lost agent back (idle: it holds nothing).
UPDATE dispatch.agents SET status = 'lost' WHERE agent_id = 'ag-2';
SELECT dispatch.heartbeat('ag-2');
SELECT status FROM dispatch.agents WHERE agent_id = 'ag-2';

-- Draining: the agent keeps what it holds and gets nothing new.
SELECT dispatch.submit('drain-me', tenant => 't02') AS d1 \gset
SELECT dispatch.drain_agent('ag-2');
SELECT status FROM dispatch.agents WHERE agent_id = 'ag-2';
SELECT dispatch.dispatch_next('ag-2') IS NULL AS nothing_while_draining;
SELECT state FROM dispatch.tasks WHERE task_id = :d1;
SELECT dispatch.drain_agent('ag-2', draining => false);
SELECT status FROM dispatch.agents WHERE agent_id = 'ag-2';
SELECT task_id = :d1 AS claimed_after_resume, agent_id, state FROM dispatch.dispatch_next('ag-2');
-- Registering a draining agent again keeps it draining; a busy one is busy.
SELECT status, running FROM dispatch.agents WHERE agent_id = 'ag-2';
SELECT dispatch.drain_agent('ag-2');
SELECT status FROM dispatch.register_agent('ag-2');
SELECT dispatch.drain_agent('ag-2', false);
SELECT status FROM dispatch.register_agent('ag-2');

-- Deregistering: the agent's leased tasks go back to ready unharmed (the attempt does not
-- count), each logged as 'deregister' with the agent; the agent is offline, running 0.
SELECT (dispatch.register_agent('ag-3', capacity => 3)).status;
SELECT count(dispatch.submit('dereg-' || i, tenant => 't02b')) AS submitted FROM generate_series(1, 2) AS i;
SELECT count(*) AS claimed FROM dispatch.dispatch_next('ag-3', 3);
SELECT kind, state, agent_id, attempts FROM dispatch.tasks WHERE tenant = 't02b' ORDER BY kind;
SELECT running, status FROM dispatch.agents WHERE agent_id = 'ag-3';
SELECT dispatch.deregister_agent('ag-3') AS given_back;
SELECT kind, state, agent_id, attempts, lease_until FROM dispatch.tasks WHERE tenant = 't02b' ORDER BY kind;
SELECT status, running FROM dispatch.agents WHERE agent_id = 'ag-3';
SELECT d.kind, d.agent_id, d.tenant, d.reason, d.policy_version = dispatch.policy_version() AS current_policy,
       d.actor = current_user AS actor_is_caller
  FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
 WHERE t.tenant = 't02b' AND d.kind = 'deregister' ORDER BY t.kind;
-- Deregistering an agent that holds nothing gives back 0.
SELECT dispatch.deregister_agent('ag-3') AS given_back_again;
-- An offline agent may not claim or heartbeat; registering it again brings it back.
SELECT public.try($$SELECT dispatch.dispatch_next('ag-3')$$);
SELECT public.try($$SELECT dispatch.heartbeat('ag-3')$$);
SELECT status, capacity FROM dispatch.register_agent('ag-3', capacity => 1);
SELECT kind, agent_id FROM dispatch.dispatch_next('ag-3');

-- Unknown agents, for each function that names one.
SELECT public.try($$SELECT dispatch.heartbeat('nobody')$$);
SELECT public.try($$SELECT dispatch.drain_agent('nobody')$$);
SELECT public.try($$SELECT dispatch.deregister_agent('nobody')$$);
SELECT public.try($$SELECT dispatch.dispatch_next('nobody')$$);
SELECT public.try($$SELECT dispatch.dispatch_next('nobody', 2)$$);

-- TRUNCATE of the tasks (an operator clearing the queue) gives every agent its capacity back.
SELECT (dispatch.register_agent('ag-4', capacity => 1)).agent_id;
SELECT dispatch.submit('to-be-truncated', tenant => 't02c') AS tr1 \gset
SELECT task_id = :tr1 AS claimed FROM dispatch.dispatch_next('ag-4');
SELECT agent_id, running, status FROM dispatch.agents WHERE running > 0 ORDER BY 1;
TRUNCATE dispatch.tasks;
SELECT agent_id, running, status FROM dispatch.agents ORDER BY 1;
SELECT dispatch.submit('after-truncate', tenant => 't02c') AS tr2 \gset
SELECT task_id = :tr2 AS claimed_after_truncate FROM dispatch.dispatch_next('ag-4');
