-- 99_grants: who may do what (doc/design.md §2). Runs last, over everything created before.
--   dispatch_agent   acts as the agents its members own, submits and cancels its own work;
--   dispatch_reader  reads every table, view and report, and changes nothing;
--   dispatch_admin   everything, including acting as any agent and plain INSERTs of tasks.

REVOKE ALL ON ALL TABLES IN SCHEMA dispatch FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA dispatch FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dispatch FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA dispatch FROM PUBLIC;

GRANT SELECT ON ALL TABLES IN SCHEMA dispatch TO dispatch_reader, dispatch_admin;

-- The vocabularies (05_vocab.sql), the row checks and own_run_id (46_runs.sql): CHECK
-- constraints, trigger WHEN clauses and the run index's predicate call them as whoever writes
-- the row, and they reveal nothing.
GRANT EXECUTE ON FUNCTION
  dispatch.is_task_state(text), dispatch.is_live_state(text), dispatch.is_priority(text),
  dispatch.is_agent_status(text), dispatch.is_decision_kind(text),
  dispatch.task_row_check(text, text, int, interval, int, int, text, text, boolean, int, timestamptz, text, timestamptz),
  dispatch.agent_row_check(text, int, int, text, int, real, text[]),
  dispatch.task_row_check(dispatch.tasks), dispatch.agent_row_check(dispatch.agents),
  dispatch.own_run_id(bigint), dispatch.run_root(uuid)
TO PUBLIC;

-- Functions anyone in the three roles may call: they check identity themselves or only read.
-- restoring() is also in the WHEN clauses of triggers a plain INSERT by dispatch_admin fires.
GRANT EXECUTE ON FUNCTION
  dispatch.caller(), dispatch.may_act_as(name), dispatch.policy_version(),
  dispatch.policy_normalize(jsonb), dispatch.restoring()
TO dispatch_agent, dispatch_reader, dispatch_admin;

-- Schedule specs: pure functions of their arguments.
GRANT EXECUTE ON FUNCTION
  dispatch.next_fire(text, timestamptz, text, timestamptz), dispatch.validate_spec(text, text),
  dispatch.spec_kind(text), dispatch.count_fires(text, timestamptz, timestamptz, text, timestamptz),
  dispatch.fire_times(text, timestamptz, timestamptz, text, timestamptz, int, boolean)
TO dispatch_agent, dispatch_reader, dispatch_admin;

GRANT EXECUTE ON FUNCTION
  dispatch.queue_map(), dispatch.virtual_time(), dispatch.explain(bigint),
  dispatch.personality_match(real[], real[]), dispatch.trait_limits_ok(real[], real[])
TO dispatch_reader, dispatch_admin;

-- explain_next checks itself: the agent's owner, dispatch_reader or dispatch_admin.
GRANT EXECUTE ON FUNCTION dispatch.explain_next(text) TO dispatch_agent, dispatch_reader, dispatch_admin;

-- Agents and the apps that feed them.
GRANT EXECUTE ON FUNCTION
  dispatch.dispatch_next(text), dispatch.dispatch_next(text, int),
  dispatch.complete(bigint, jsonb, text), dispatch.fail(bigint, text, boolean, text),
  dispatch.abort(bigint, text, text), dispatch.release(bigint, text), dispatch.extend_lease(bigint, interval, text),
  dispatch.heartbeat(text), dispatch.drain_agent(text, boolean),
  dispatch.register_agent(text, text[], int, real[], int, text, real, jsonb, name),
  dispatch.deregister_agent(text),
  dispatch.submit(text, jsonb, text, text, text[], timestamptz, interval, text, timestamptz, text, real[], int, text, int, bigint, bigint[], text, text, uuid, jsonb, boolean),
  dispatch.cancel(bigint), dispatch.assign(bigint)
TO dispatch_agent, dispatch_admin;

-- Fan-out (doc/fanout.md). watch_fire is granted because a watch's triggers are created as the
-- caller, and PostgreSQL checks EXECUTE on a trigger function when the trigger is created; the
-- function itself checks that the trigger calling it is a watch's own.
GRANT EXECUTE ON FUNCTION
  dispatch.sweep(text, jsonb, text, interval), dispatch.sweep_as_caller(text, jsonb, text, interval, text),
  dispatch.watch(text, regclass, text, jsonb, text),
  dispatch.watch_as_caller(text, regclass, text, jsonb, text, text),
  dispatch.unwatch(text), dispatch.watch_fire(), dispatch.new_run_id()
TO dispatch_agent, dispatch_admin;
GRANT EXECUTE ON FUNCTION
  dispatch.run_tree(uuid), dispatch.agent_channel(text), dispatch.render(jsonb, jsonb),
  dispatch.render_text(text, jsonb), dispatch.placeholders(jsonb), dispatch.template_fields(),
  dispatch.check_template(jsonb, boolean), dispatch.check_task_template(jsonb, boolean),
  dispatch.check_result(bigint, jsonb, jsonb),
  dispatch.output_types()
TO dispatch_agent, dispatch_reader, dispatch_admin;

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

-- Standing orders. schedule() is not SECURITY DEFINER (it stores the caller's search_path for a
-- sweep), so its INSERT needs the table privilege; the row trigger checks the rest. UPDATE is
-- limited to the columns a user may change (the trigger validates them like an INSERT).
GRANT EXECUTE ON FUNCTION
  dispatch.schedule(text, text, jsonb, text, text, text, interval, timestamptz, timestamptz, boolean, text, numeric, text),
  dispatch.unschedule(text, text), dispatch.pause(text, text), dispatch.resume(text, text)
TO dispatch_admin;
GRANT EXECUTE ON FUNCTION dispatch.forecast(text, interval), dispatch.next_due() TO dispatch_reader, dispatch_admin;
GRANT EXECUTE ON PROCEDURE dispatch.run_ticks(interval) TO dispatch_admin;
GRANT INSERT ON dispatch.schedules TO dispatch_admin;
GRANT UPDATE (spec, timezone, task, sweep, concurrency, catch_up, catch_up_limit, jitter, anchor,
              starts_at, ends_at, max_failures, cost_per_fire, record_ref)
  ON dispatch.schedules TO dispatch_admin;
