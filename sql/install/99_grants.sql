-- 99_grants: who may do what (doc/design.md §2). Runs last, over everything created before.
--   dispatch_agent   acts as the agents its members own, submits and cancels its own work;
--   dispatch_reader  reads every table, view and report, and changes nothing;
--   dispatch_admin   everything, including acting as any agent and plain INSERTs of tasks.

REVOKE ALL ON ALL TABLES IN SCHEMA dispatch FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA dispatch FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dispatch FROM PUBLIC;

GRANT SELECT ON ALL TABLES IN SCHEMA dispatch TO dispatch_reader, dispatch_admin;

-- Functions anyone in the three roles may call: they check identity themselves or only read.
GRANT EXECUTE ON FUNCTION
  dispatch.caller(), dispatch.may_act_as(name), dispatch.policy_version(),
  dispatch.policy_normalize(jsonb)
TO dispatch_agent, dispatch_reader, dispatch_admin;

GRANT EXECUTE ON FUNCTION
  dispatch.queue_map(), dispatch.virtual_time()
TO dispatch_reader, dispatch_admin;

-- Agents and the apps that feed them.
GRANT EXECUTE ON FUNCTION
  dispatch.dispatch_next(text), dispatch.dispatch_next(text, int),
  dispatch.complete(bigint, jsonb), dispatch.fail(bigint, text, boolean),
  dispatch.abort(bigint, text), dispatch.release(bigint), dispatch.extend_lease(bigint, interval),
  dispatch.heartbeat(text), dispatch.drain_agent(text, boolean),
  dispatch.register_agent(text, text[], int, real[], int, text, real, jsonb, name),
  dispatch.deregister_agent(text),
  dispatch.submit(text, jsonb, text, text, text[], timestamptz, interval, text, timestamptz, text, real[], int, text, int, bigint, bigint[], text, text, uuid, jsonb, boolean),
  dispatch.cancel(bigint)
TO dispatch_agent, dispatch_admin;

-- Operators.
GRANT EXECUTE ON FUNCTION
  dispatch.set_policy(jsonb, text), dispatch.tick(), dispatch.rebuild_queue_map()
TO dispatch_admin;
GRANT INSERT ON dispatch.tasks TO dispatch_admin;
GRANT INSERT, UPDATE ON dispatch.tenants TO dispatch_admin;

-- Observability (80_views, 72_health, 60_decisionlog): the views call these functions, and the
-- caller needs EXECUTE on a function a view calls. All of them only read.
GRANT EXECUTE ON FUNCTION
  dispatch.agent_utilization(interval), dispatch.wait_times(interval), dispatch.sla(interval),
  dispatch.fairness(interval), dispatch.dashboard(interval), dispatch.overload_state(timestamptz),
  dispatch.claim_sampled(bigint), dispatch.decision_partitions()
TO dispatch_reader, dispatch_admin;

-- Operators: the hand override, partition upkeep out of turn, recounting after a bulk load.
GRANT EXECUTE ON FUNCTION
  dispatch.override(bigint, text, text), dispatch.manage_decision_log(timestamptz, int),
  dispatch.rebuild_task_counts()
TO dispatch_admin;
