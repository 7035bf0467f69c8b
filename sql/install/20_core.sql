-- 20_core: the C entry points (identity, policy validation, the claim, the queue map) and the
-- triggers that keep derived columns and caches right on every write path.

CREATE FUNCTION dispatch.caller() RETURNS name
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_caller_sql';
COMMENT ON FUNCTION dispatch.caller() IS
  'The role this session acts as (session user, or the role after SET ROLE). dispatch checks this identity, which a SECURITY DEFINER wrapper does not change.';

CREATE FUNCTION dispatch.may_act_as(role name) RETURNS boolean
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_may_act_as_sql';
COMMENT ON FUNCTION dispatch.may_act_as(name) IS
  'True when the caller (dispatch.caller()) is a member of the role or of dispatch_admin.';

CREATE FUNCTION dispatch.restoring() RETURNS boolean
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_restoring_sql';
COMMENT ON FUNCTION dispatch.restoring() IS
  'True while this session restores a pg_dump of dispatch (the setting dispatch.restoring): the triggers that validate and derive rows let restored rows in as they are, and the tick does nothing.';

CREATE FUNCTION dispatch.policy_normalize(weights jsonb) RETURNS jsonb
  LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_policy_normalize';
COMMENT ON FUNCTION dispatch.policy_normalize(jsonb) IS
  'Validates a policy document (unknown keys and out-of-range values are errors) and returns it complete, every key with its value or default.';

-- One active version: a new active version retires the one before, whoever inserts it
-- (set_policy, or a restore whose active version replaces the install's default). The lock
-- serialises activations, so two at once cannot both stay active; the unique index
-- policies_one_active stays as the guard.
CREATE FUNCTION dispatch.policy_activate() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  LOCK TABLE dispatch.policies IN SHARE ROW EXCLUSIVE MODE;
  UPDATE dispatch.policies SET active = false WHERE active AND version <> NEW.version;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION dispatch.policy_activate() IS
  'BEFORE INSERT trigger of dispatch.policies: an active new version deactivates the version active before it.';
CREATE TRIGGER policy_activate BEFORE INSERT ON dispatch.policies
  FOR EACH ROW WHEN (NEW.active) EXECUTE FUNCTION dispatch.policy_activate();

-- The default policy: every key at its default.
INSERT INTO dispatch.policies (weights, note, active)
VALUES (dispatch.policy_normalize('{}'), 'defaults', true);

CREATE FUNCTION dispatch.dispatch_next(agent_id text) RETURNS dispatch.tasks
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, dispatch, pg_temp
  AS 'MODULE_PATHNAME', 'dispatch_next';
COMMENT ON FUNCTION dispatch.dispatch_next(text) IS
  'Claim the best task this agent may take now, or NULL when nothing fits or the agent is at capacity. Capability, clearance and region checked; priority, deadlines, fair share, affinity and personality scored; leased for dispatch.lease_time; logged in dispatch.decisions. Never returns one task to two callers.';

CREATE FUNCTION dispatch.dispatch_next(agent_id text, max_tasks int) RETURNS SETOF dispatch.tasks
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, dispatch, pg_temp
  ROWS 10
  AS 'MODULE_PATHNAME', 'dispatch_next_n';
COMMENT ON FUNCTION dispatch.dispatch_next(text, int) IS
  'Claim up to max_tasks tasks for this agent (fewer when less fits or its capacity runs out), each chosen as dispatch_next(agent_id) would.';

CREATE FUNCTION dispatch.rebuild_queue_map() RETURNS void
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, dispatch, pg_temp
  AS 'MODULE_PATHNAME', 'dispatch_rebuild_queue_map';
COMMENT ON FUNCTION dispatch.rebuild_queue_map() IS
  'Rebuild the queue map (which queues may hold work, running counts per tenant) from the tables. Needed only after writing dispatch.tasks with triggers disabled.';

CREATE FUNCTION dispatch.queue_map(
    OUT tenant text, OUT weight float8, OUT vstart float8, OUT running int,
    OUT max_running int, OUT queues int, OUT shared boolean)
  RETURNS SETOF record
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, dispatch, pg_temp
  AS 'MODULE_PATHNAME', 'dispatch_queue_map';
COMMENT ON FUNCTION dispatch.queue_map() IS
  'The queue map as this session sees it, one row per tenant: fair-share weight and virtual start, claimed tasks, queues that may hold work, and whether the map is in shared memory.';

CREATE FUNCTION dispatch.virtual_time() RETURNS float8
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, dispatch, pg_temp
  AS 'MODULE_PATHNAME', 'dispatch_virtual_time';
COMMENT ON FUNCTION dispatch.virtual_time() IS
  'The fair-share virtual time V, in weighted seconds of service: a tenant back from idle starts here.';

-- Triggers ---------------------------------------------------------------------------------

CREATE FUNCTION dispatch.task_row() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_task_row';
COMMENT ON FUNCTION dispatch.task_row() IS
  'BEFORE row trigger of dispatch.tasks: validates the row, derives sig, skey, cost, lst and urgent_at, and keeps the queue map and the agents'' running counts in step.';

CREATE TRIGGER task_row BEFORE INSERT OR UPDATE OR DELETE ON dispatch.tasks
  FOR EACH ROW EXECUTE FUNCTION dispatch.task_row();

CREATE FUNCTION dispatch.task_truncate() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_task_truncate';
COMMENT ON FUNCTION dispatch.task_truncate() IS
  'AFTER TRUNCATE trigger of dispatch.tasks: the queue map is rebuilt after the commit.';

CREATE TRIGGER task_truncate AFTER TRUNCATE ON dispatch.tasks
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.task_truncate();

-- TRUNCATE fires no row trigger, so nothing gave the agents their capacity back: after it no
-- agent holds a task, and one left at running = capacity would never be given work again.
CREATE FUNCTION dispatch.agents_release_all() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  UPDATE dispatch.agents
     SET running = 0, status = CASE WHEN status = 'busy' THEN 'idle' ELSE status END,
         idle_since = coalesce(idle_since, pg_catalog.now())
   WHERE running <> 0;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch.agents_release_all() IS
  'AFTER TRUNCATE trigger of dispatch.tasks: every agent holds nothing any more, so its running count goes back to 0.';
CREATE TRIGGER agents_release_all AFTER TRUNCATE ON dispatch.tasks
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.agents_release_all();

CREATE FUNCTION dispatch.invalidate_cache() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_invalidate_trigger';
COMMENT ON FUNCTION dispatch.invalidate_cache() IS
  'Statement trigger: tells every session to drop what it cached from this table (signatures, policies, tenants).';

CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dispatch.signatures
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dispatch.policies
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dispatch.tenants
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.invalidate_cache();
CREATE TRIGGER invalidate_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dispatch.kinds
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.invalidate_cache();

CREATE FUNCTION dispatch.note_tenant(tenant text, weight real, max_running int) RETURNS void
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'dispatch_note_tenant';
COMMENT ON FUNCTION dispatch.note_tenant(text, real, int) IS
  'Internal: the queue map takes a tenant''s new weight and max_running when the transaction commits.';

-- A tenant's weight or max_running changed: the queue map follows at commit.
CREATE FUNCTION dispatch.tenant_row() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.weight IS DISTINCT FROM OLD.weight
     OR NEW.max_running IS DISTINCT FROM OLD.max_running THEN
    PERFORM dispatch.note_tenant(NEW.tenant, NEW.weight, NEW.max_running);
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION dispatch.tenant_row() IS
  'AFTER row trigger of dispatch.tenants: a changed weight or max_running reaches the queue map.';
-- Not while a dump is restored: dispatch.finish_restore() rebuilds the queue map once.
CREATE TRIGGER tenant_row AFTER INSERT OR UPDATE ON dispatch.tenants
  FOR EACH ROW WHEN (NOT dispatch.restoring()) EXECUTE FUNCTION dispatch.tenant_row();

-- The decision log is append-only: retention deletes, nothing updates.
CREATE FUNCTION dispatch.decisions_append_only() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'the decision log is append-only'
    USING ERRCODE = '42501',
          HINT = 'Decisions are never changed; old ones are removed by dispatch.decision_retention.';
END
$$;
COMMENT ON FUNCTION dispatch.decisions_append_only() IS
  'Refuses UPDATE on dispatch.decisions.';
CREATE TRIGGER append_only BEFORE UPDATE ON dispatch.decisions
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch.decisions_append_only();
