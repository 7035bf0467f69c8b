-- 07_security: who may do what. Acting as an agent needs membership in its owner_role or in
-- dispatch_admin (42501 otherwise); dispatch_reader reads the tables and the decision log and
-- changes nothing; a role outside the three gets nothing at all.
\i sql/include/fresh.sql

\i sql/include/try.sql
CREATE OR REPLACE FUNCTION public.snapshot() RETURNS text LANGUAGE sql AS $$
  SELECT md5(coalesce((SELECT string_agg(t::text, ',' ORDER BY task_id) FROM dispatch.tasks t), '')
             || coalesce((SELECT string_agg(a::text, ',' ORDER BY agent_id) FROM dispatch.agents a), '')
             || (SELECT count(*) FROM dispatch.decisions)::text)
$$;

CREATE ROLE regress_dispatch_alice NOLOGIN IN ROLE dispatch_agent;
CREATE ROLE regress_dispatch_bob NOLOGIN IN ROLE dispatch_agent;
CREATE ROLE regress_dispatch_ops NOLOGIN IN ROLE dispatch_admin;
CREATE ROLE regress_dispatch_audit NOLOGIN IN ROLE dispatch_reader;
CREATE ROLE regress_dispatch_nobody NOLOGIN;

-- Each agent app registers its own agent; nobody may register one for a role it is not in.
SET ROLE regress_dispatch_alice;
SELECT agent_id, owner_role FROM dispatch.register_agent('sec-alice', '{s}', 5);
SELECT public.try($$SELECT dispatch.register_agent('sec-fake', owner_role => 'regress_dispatch_bob')$$);
SELECT count(dispatch.submit('alice-' || i, tenant => 't07', requires => '{s}')) AS submitted
  FROM generate_series(1, 4) AS i;
SELECT kind, agent_id, state FROM dispatch.dispatch_next('sec-alice') \gset alice_
SELECT :'alice_kind' AS kind, :'alice_agent_id' AS agent_id, :'alice_state' AS state;
-- An agent app sees the tasks it claims, not the table.
SELECT public.try($$SELECT count(*) FROM dispatch.tasks$$);
RESET ROLE;
SELECT task_id AS alice_task FROM dispatch.tasks WHERE kind = :'alice_kind' \gset
SET ROLE regress_dispatch_bob;
SELECT agent_id, owner_role FROM dispatch.register_agent('sec-bob', '{s}', 5);
RESET ROLE;
SELECT public.snapshot() AS before_bob \gset

-- bob acting as alice's agent, or on the task it holds: 42501 for every agent function.
SET ROLE regress_dispatch_bob;
SELECT public.try($$SELECT dispatch.dispatch_next('sec-alice')$$) AS dispatch_next;
SELECT public.try($$SELECT * FROM dispatch.dispatch_next('sec-alice', 2)$$) AS dispatch_next_n;
SELECT public.try($$SELECT dispatch.heartbeat('sec-alice')$$) AS heartbeat;
SELECT public.try(format('SELECT dispatch.complete(%s, %L)', :alice_task, '{}')) AS complete;
SELECT public.try(format('SELECT dispatch.fail(%s, %L)', :alice_task, 'sabotage')) AS fail;
SELECT public.try(format('SELECT dispatch.abort(%s, %L)', :alice_task, 'sabotage')) AS abort;
SELECT public.try(format('SELECT dispatch.release(%s)', :alice_task)) AS release;
SELECT public.try(format('SELECT dispatch.extend_lease(%s)', :alice_task)) AS extend_lease;
SELECT public.try(format('SELECT dispatch.cancel(%s)', :alice_task)) AS cancel;
SELECT public.try($$SELECT dispatch.drain_agent('sec-alice')$$) AS drain_agent;
SELECT public.try($$SELECT dispatch.deregister_agent('sec-alice')$$) AS deregister_agent;
SELECT public.try($$SELECT dispatch.register_agent('sec-alice', '{s,x}', 50)$$) AS take_over;
-- Neither may bob write the tables or run the operator's functions.
SELECT public.try($$INSERT INTO dispatch.tasks (kind) VALUES ('forged')$$) AS plain_insert;
SELECT public.try($$UPDATE dispatch.agents SET capacity = 99$$) AS update_agents;
SELECT public.try($$SELECT dispatch.tick()$$) AS tick;
SELECT public.try($$SELECT dispatch.set_policy('{}')$$) AS set_policy;
RESET ROLE;
-- bob's refused calls changed nothing.
SELECT public.snapshot() = :'before_bob' AS nothing_changed;
SELECT state, agent_id FROM dispatch.tasks WHERE task_id = :alice_task;
SELECT agent_id, capabilities, capacity, status, running FROM dispatch.agents ORDER BY 1;
-- bob acts as his own agent as usual.
SET ROLE regress_dispatch_bob;
SELECT kind LIKE 'alice-%' AS got_work, agent_id FROM dispatch.dispatch_next('sec-bob');
RESET ROLE;

-- dispatch_admin may act as any agent and on any task.
SET ROLE regress_dispatch_ops;
SELECT dispatch.heartbeat('sec-alice');
SELECT dispatch.extend_lease(:alice_task, interval '1 minute') > now() AS extended;
SELECT dispatch.complete(:alice_task, '{"by": "ops"}');
SELECT kind LIKE 'alice-%' AS got_work, agent_id FROM dispatch.dispatch_next('sec-alice') \gset ops_
SELECT :'ops_got_work' AS got_work, :'ops_agent_id' AS agent_id;
SELECT count(*) AS cancelled FROM (
  SELECT dispatch.cancel(task_id) FROM dispatch.tasks WHERE state = 'ready' AND tenant = 't07') AS c;
SELECT agent_id, owner_role FROM dispatch.register_agent('sec-carol', owner_role => 'regress_dispatch_alice');
INSERT INTO dispatch.tasks (kind, tenant) VALUES ('plain-insert', 't07')
RETURNING state, owner_role, sig IS NOT NULL AS derived;
SELECT dispatch.drain_agent('sec-bob');
SELECT dispatch.drain_agent('sec-bob', false);
RESET ROLE;
-- The decision log names the role that acted (the admin), and the agent it acted for.
SELECT d.kind, d.agent_id, d.actor FROM dispatch.decisions d
 WHERE d.actor IN ('regress_dispatch_alice', 'regress_dispatch_bob', 'regress_dispatch_ops')
 ORDER BY d.decision_id;
SELECT task_id = :alice_task AS alice_task, state, result FROM dispatch.tasks WHERE task_id = :alice_task;

-- dispatch_reader reads the tables and the decision log ...
SET ROLE regress_dispatch_audit;
SELECT count(*) > 0 AS reads_tasks FROM dispatch.tasks;
SELECT count(*) > 0 AS reads_agents FROM dispatch.agents;
SELECT count(*) > 0 AS reads_decisions FROM dispatch.decisions;
SELECT count(*) > 0 AS reads_tenants FROM dispatch.tenants;
SELECT count(*) > 0 AS reads_policies FROM dispatch.policies;
-- ... and changes nothing.
SELECT public.try($$INSERT INTO dispatch.tasks (kind) VALUES ('x')$$) AS insert_task;
SELECT public.try($$UPDATE dispatch.tasks SET priority = 'critical'$$) AS update_task;
SELECT public.try($$DELETE FROM dispatch.tasks$$) AS delete_task;
SELECT public.try($$UPDATE dispatch.agents SET capacity = 0$$) AS update_agent;
SELECT public.try($$DELETE FROM dispatch.decisions$$) AS delete_decisions;
SELECT public.try($$INSERT INTO dispatch.decisions (kind) VALUES ('claim')$$) AS insert_decision;
SELECT public.try($$SELECT dispatch.submit('x')$$) AS submit;
SELECT public.try($$SELECT dispatch.dispatch_next('sec-alice')$$) AS dispatch_next;
SELECT public.try(format('SELECT dispatch.complete(%s)', :alice_task)) AS complete;
SELECT public.try(format('SELECT dispatch.fail(%s, %L)', :alice_task, 'x')) AS fail;
SELECT public.try(format('SELECT dispatch.cancel(%s)', :alice_task)) AS cancel;
SELECT public.try($$SELECT dispatch.heartbeat('sec-alice')$$) AS heartbeat;
SELECT public.try($$SELECT dispatch.register_agent('sec-audit')$$) AS register_agent;
SELECT public.try($$SELECT dispatch.tick()$$) AS tick;
RESET ROLE;

-- A role outside the three gets nothing at all.
SET ROLE regress_dispatch_nobody;
SELECT public.try($$SELECT count(*) FROM dispatch.tasks$$) AS read_tasks;
SELECT public.try($$SELECT dispatch.dispatch_next('sec-alice')$$) AS dispatch_next;
SELECT public.try($$SELECT dispatch.submit('x')$$) AS submit;
RESET ROLE;

-- The same checks hold for the role identity, not the SECURITY DEFINER owner: inside the
-- functions current_user is the extension owner, dispatch.caller() the caller.
SET ROLE regress_dispatch_bob;
SELECT dispatch.caller() AS caller, current_user AS "current_user",
       dispatch.may_act_as('regress_dispatch_bob') AS may_act_as_self,
       dispatch.may_act_as('regress_dispatch_alice') AS may_act_as_alice;
RESET ROLE;
SET ROLE regress_dispatch_ops;
SELECT dispatch.may_act_as('regress_dispatch_alice') AS admin_may_act_as_alice;
RESET ROLE;

DELETE FROM dispatch.tasks;
DELETE FROM dispatch.agents;
DROP ROLE regress_dispatch_alice, regress_dispatch_bob, regress_dispatch_ops,
          regress_dispatch_audit, regress_dispatch_nobody;
