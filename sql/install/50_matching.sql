-- 50_matching: the matching engine's SQL surface (doc/design.md §6-7): explanations, push
-- assignment, and the personality helpers.

CREATE FUNCTION dispatch.personality_match(traits real[], profile real[]) RETURNS float8
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_personality_match';
COMMENT ON FUNCTION dispatch.personality_match(real[], real[]) IS
  'How well an agent''s traits fit a task''s wanted profile, from 0 to 1 (1 - weighted distance over the active policy''s trait dimensions); NULL without both vectors.';

CREATE FUNCTION dispatch.trait_limits_ok(traits real[], profile real[]) RETURNS boolean
  LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_trait_limits_ok';
COMMENT ON FUNCTION dispatch.trait_limits_ok(real[], real[]) IS
  'False when the agent exceeds a task''s value on a dimension the active policy lists in trait_max (a hard limit, such as a task''s maximum risk).';

CREATE FUNCTION dispatch.explain_next(agent_id text,
    OUT rank int, OUT task_id bigint, OUT tenant text, OUT lane text, OUT priority text,
    OUT score float8, OUT age float8, OUT urgent float8, OUT affinity float8, OUT match float8,
    OUT fair float8, OUT tenant_vstart float8, OUT winner boolean)
  RETURNS SETOF record
  LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp
  AS 'MODULE_PATHNAME', 'dispatch_explain_next';
COMMENT ON FUNCTION dispatch.explain_next(text) IS
  'What dispatch_next(agent_id) would consider now, without claiming: each candidate with its lane (fair, urgent, reserved) and each term of its score in seconds; the first is the winner. For the agent''s owner, dispatch_admin and dispatch_reader.';

CREATE FUNCTION dispatch.explain(task_id bigint)
  RETURNS TABLE (at timestamptz, kind text, agent_id text, policy_version int, score float8,
                 factors jsonb, candidates int, reason text, actor name)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT d.at, d.kind, d.agent_id, d.policy_version, d.score, d.factors, d.candidates, d.reason, d.actor
    FROM dispatch.decisions AS d
   WHERE d.task_id = explain.task_id
   ORDER BY d.at, d.decision_id
$$;
COMMENT ON FUNCTION dispatch.explain(bigint) IS
  'Every decision about this task, oldest first: who got it, when, under which policy version, with the score and each factor.';

CREATE FUNCTION dispatch.assign(task_id bigint) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
  hold float8 := (dispatch.policy_normalize(
                    (SELECT weights FROM dispatch.policies WHERE active)) ->> 'assign_hold')::float8;
  tight boolean;
  chosen record;
BEGIN
  IF task_id IS NULL THEN
    RAISE EXCEPTION 'task_id must not be null' USING ERRCODE = '22004';
  END IF;
  SELECT * INTO t FROM dispatch.tasks AS k WHERE k.task_id = assign.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = '42704',
      HINT = 'Use the task_id returned by submit().';
  END IF;
  IF NOT dispatch.may_act_as(t.owner_role) THEN
    RAISE EXCEPTION 'role "%" may not assign task %', dispatch.caller(), task_id
      USING ERRCODE = '42501', HINT = 'Only the role that submitted a task, or a member of dispatch_admin, may assign it.';
  END IF;
  IF t.state <> 'ready' THEN
    RAISE EXCEPTION 'cannot assign task %: it is %, not ready', task_id, t.state
      USING ERRCODE = '55000', HINT = 'Only a task waiting in the queue can be assigned.';
  END IF;

  -- A deadline is tight once the task is in its urgent lane: then speed comes first.
  tight := t.urgent_at IS NOT NULL AND t.urgent_at <= clock_timestamp();
  SELECT a.agent_id, a.speed, load.n AS held, a.capacity,
         dispatch.personality_match(a.traits, t.profile) AS match
    INTO chosen
    FROM dispatch.agents AS a
    CROSS JOIN LATERAL (
      SELECT a.running + (SELECT count(*) FROM dispatch.tasks AS r
                           WHERE r.state = 'ready' AND r.reserved_for = a.agent_id
                             AND r.task_id <> t.task_id) AS n) AS load
   WHERE a.status IN ('idle', 'busy')
     AND a.capabilities @> t.requires
     AND a.clearance >= t.sensitivity
     AND (t.region IS NULL OR a.region = t.region)
     AND dispatch.trait_limits_ok(a.traits, t.profile)
     AND load.n < a.capacity
   ORDER BY CASE WHEN tight THEN a.speed END DESC NULLS LAST,
            load.n::float8 / a.capacity,
            dispatch.personality_match(a.traits, t.profile) DESC NULLS LAST,
            a.speed DESC,
            a.agent_id
   LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;

  UPDATE dispatch.tasks AS k
     SET reserved_for = chosen.agent_id, reservation = 'assign',
         reserved_until = clock_timestamp() + make_interval(secs => hold)
   WHERE k.task_id = t.task_id;
  PERFORM dispatch.log_decision('assign', t.task_id, chosen.agent_id, t.tenant, 'push assignment',
    jsonb_build_object('load', round((chosen.held::float8 / chosen.capacity)::numeric, 4),
                       'speed', chosen.speed, 'tight_deadline', tight,
                       'match_value', chosen.match, 'hold_seconds', hold));
  RETURN chosen.agent_id;
END
$$;
COMMENT ON FUNCTION dispatch.assign(bigint) IS
  'Push assignment: reserve the best available agent for a ready task (capable; the fastest when its deadline is tight; else the least loaded relative to capacity; then the best personality fit) for the policy''s assign_hold seconds. That agent''s next dispatch_next returns it first. Returns the agent, or NULL when none is available.';
