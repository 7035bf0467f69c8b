-- 30_agents: registering agents, heartbeats, leaving the fleet.
-- Acting as an agent needs membership in its owner_role or in dispatch_admin (doc/design.md §2).

-- Internal: the agent row (locked unless lock => false), after checking the caller may act as it.
-- Lock order everywhere is task before agent; a caller about to update tasks passes lock => false.
CREATE FUNCTION dispatch.agent_for_caller(agent_id text, lock boolean DEFAULT true) RETURNS dispatch.agents
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  a dispatch.agents;
BEGIN
  IF agent_id IS NULL THEN
    RAISE EXCEPTION 'agent_id must not be null'
      USING ERRCODE = '22004', HINT = 'Pass the id the agent was registered under.';
  END IF;
  IF lock THEN
    SELECT * INTO a FROM dispatch.agents AS g WHERE g.agent_id = agent_for_caller.agent_id FOR UPDATE;
  ELSE
    SELECT * INTO a FROM dispatch.agents AS g WHERE g.agent_id = agent_for_caller.agent_id;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'agent "%" does not exist', agent_id
      USING ERRCODE = '42704', HINT = format('Register it first with dispatch.register_agent(%L, ...).', agent_id);
  END IF;
  IF NOT dispatch.may_act_as(a.owner_role) THEN
    RAISE EXCEPTION 'role "%" may not act as agent "%"', dispatch.caller(), agent_id
      USING ERRCODE = '42501',
            DETAIL = format('The agent belongs to role "%s".', a.owner_role),
            HINT = format('Connect as a member of "%s" or of dispatch_admin.', a.owner_role);
  END IF;
  RETURN a;
END
$$;
COMMENT ON FUNCTION dispatch.agent_for_caller(text, boolean) IS
  'Internal: the agent''s row, locked, once the caller is known to be allowed to act as it (SQLSTATE 42704 unknown agent, 42501 not allowed).';

-- Internal: sorted, distinct, no NULLs or empty strings.
CREATE FUNCTION dispatch.canonical_labels(labels text[], what text) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  IF labels IS NULL THEN
    RETURN '{}';
  END IF;
  IF array_position(labels, NULL) IS NOT NULL THEN
    RAISE EXCEPTION '% must not contain NULL elements', what
      USING ERRCODE = '22004', HINT = 'Remove the NULL from the array.';
  END IF;
  IF array_position(labels, '') IS NOT NULL THEN
    RAISE EXCEPTION '% must not contain empty strings', what
      USING ERRCODE = '22023', HINT = 'Name each capability with a non-empty string.';
  END IF;
  RETURN ARRAY(SELECT DISTINCT l COLLATE "C" FROM unnest(labels) AS l ORDER BY 1);
END
$$;
COMMENT ON FUNCTION dispatch.canonical_labels(text[], text) IS
  'Internal: a label array sorted and without duplicates; NULL elements and empty strings are errors.';

-- Internal: a personality vector, every value in [0, 1].
CREATE FUNCTION dispatch.check_vector(v real[], what text) RETURNS real[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, dispatch, pg_temp AS $$
BEGIN
  IF v IS NULL THEN
    RETURN NULL;
  END IF;
  IF array_position(v, NULL) IS NOT NULL THEN
    RAISE EXCEPTION '% must not contain NULL elements', what
      USING ERRCODE = '22004', HINT = 'Give a value between 0 and 1 for every trait dimension.';
  END IF;
  IF EXISTS (SELECT FROM unnest(v) AS x WHERE NOT (x >= 0 AND x <= 1)) THEN
    RAISE EXCEPTION '% values must be between 0 and 1', what
      USING ERRCODE = '22023', HINT = 'Traits and profiles are positions on each dimension, from 0 to 1.';
  END IF;
  RETURN v;
END
$$;
COMMENT ON FUNCTION dispatch.check_vector(real[], text) IS
  'Internal: checks a personality vector (no NULLs, every value between 0 and 1).';

CREATE FUNCTION dispatch.register_agent(
    agent_id text,
    capabilities text[] DEFAULT '{}',
    capacity int DEFAULT 1,
    traits real[] DEFAULT NULL,
    clearance int DEFAULT 0,
    region text DEFAULT NULL,
    speed real DEFAULT 1,
    attrs jsonb DEFAULT '{}',
    owner_role name DEFAULT CURRENT_USER)
  RETURNS dispatch.agents
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  existing dispatch.agents;
  result dispatch.agents;
  caps text[] := dispatch.canonical_labels(capabilities, 'capabilities');
BEGIN
  IF agent_id IS NULL OR agent_id = '' THEN
    RAISE EXCEPTION 'agent_id must not be %', CASE WHEN agent_id IS NULL THEN 'null' ELSE 'empty' END
      USING ERRCODE = CASE WHEN agent_id IS NULL THEN '22004' ELSE '22023' END,
            HINT = 'Name the agent, for example ''agent-7''.';
  END IF;
  IF octet_length(agent_id) > 200 THEN
    RAISE EXCEPTION 'agent_id is longer than 200 bytes' USING ERRCODE = '22023';
  END IF;
  IF capacity IS NULL OR capacity < 0 THEN
    RAISE EXCEPTION 'capacity must be 0 or more, not %', coalesce(capacity::text, 'NULL')
      USING ERRCODE = '22023', HINT = 'capacity is how many tasks the agent holds at once; 0 takes no work.';
  END IF;
  IF clearance IS NULL OR clearance < 0 THEN
    RAISE EXCEPTION 'clearance must be 0 or more' USING ERRCODE = '22023',
      HINT = 'An agent may take tasks whose sensitivity is at most its clearance.';
  END IF;
  IF speed IS NULL OR NOT speed > 0 THEN
    RAISE EXCEPTION 'speed must be greater than 0' USING ERRCODE = '22023',
      HINT = 'speed is relative: 1 is a typical agent, 2 twice as fast.';
  END IF;
  PERFORM dispatch.check_vector(traits, 'traits');
  IF owner_role IS NULL OR NOT EXISTS (SELECT FROM pg_roles WHERE rolname = owner_role) THEN
    RAISE EXCEPTION 'role "%" does not exist', owner_role
      USING ERRCODE = '42704', HINT = 'owner_role names the database role the agent connects as.';
  END IF;

  SELECT * INTO existing FROM dispatch.agents AS g WHERE g.agent_id = register_agent.agent_id FOR UPDATE;
  IF FOUND AND NOT dispatch.may_act_as(existing.owner_role) THEN
    RAISE EXCEPTION 'role "%" may not act as agent "%"', dispatch.caller(), agent_id
      USING ERRCODE = '42501',
            DETAIL = format('The agent belongs to role "%s".', existing.owner_role),
            HINT = format('Connect as a member of "%s" or of dispatch_admin.', existing.owner_role);
  END IF;
  IF NOT dispatch.may_act_as(owner_role) THEN
    RAISE EXCEPTION 'role "%" may not register an agent for role "%"', dispatch.caller(), owner_role
      USING ERRCODE = '42501', HINT = 'Register agents for a role you are a member of, or ask a member of dispatch_admin.';
  END IF;

  INSERT INTO dispatch.agents AS g (agent_id, capabilities, capacity, traits, clearance, region, speed,
                                    attrs, owner_role, last_seen, status)
  VALUES (agent_id, caps, capacity, traits, clearance, region, speed, coalesce(attrs, '{}'),
          owner_role, clock_timestamp(), 'idle')
  ON CONFLICT ON CONSTRAINT agents_pkey DO UPDATE SET
    capabilities = EXCLUDED.capabilities, capacity = EXCLUDED.capacity, traits = EXCLUDED.traits,
    clearance = EXCLUDED.clearance, region = EXCLUDED.region, speed = EXCLUDED.speed,
    attrs = EXCLUDED.attrs, owner_role = EXCLUDED.owner_role, last_seen = EXCLUDED.last_seen,
    status = CASE WHEN g.status = 'draining' THEN 'draining'
                  WHEN g.running > 0 THEN 'busy' ELSE 'idle' END
  RETURNING * INTO result;
  RETURN result;
END
$$;
COMMENT ON FUNCTION dispatch.register_agent(text, text[], int, real[], int, text, real, jsonb, name) IS
  'Register an agent, or update it (a lost or offline agent comes back). capabilities: what it can do; capacity: tasks at once; traits: personality vector; clearance: highest task sensitivity it may see; region; speed (1 = typical); owner_role: who may act as it.';

CREATE FUNCTION dispatch.heartbeat(agent_id text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  a dispatch.agents := dispatch.agent_for_caller(agent_id);
BEGIN
  IF a.status = 'offline' THEN
    RAISE EXCEPTION 'agent "%" is offline', agent_id
      USING ERRCODE = '55000', DETAIL = 'It was deregistered.',
            HINT = format('Register it again with dispatch.register_agent(%L, ...).', agent_id);
  END IF;
  UPDATE dispatch.agents AS g SET last_seen = clock_timestamp(),
         status = CASE WHEN g.status = 'lost' THEN CASE WHEN g.running > 0 THEN 'busy' ELSE 'idle' END
                       ELSE g.status END
   WHERE g.agent_id = a.agent_id;
END
$$;
COMMENT ON FUNCTION dispatch.heartbeat(text) IS
  'The agent is alive. An agent silent for longer than dispatch.agent_timeout is marked lost and its tasks requeued; a heartbeat (or any claim) brings it back.';

CREATE FUNCTION dispatch.drain_agent(agent_id text, draining boolean DEFAULT true) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  a dispatch.agents := dispatch.agent_for_caller(agent_id);
BEGIN
  UPDATE dispatch.agents AS g
     SET status = CASE WHEN draining THEN 'draining'
                       WHEN g.running > 0 THEN 'busy' ELSE 'idle' END
   WHERE g.agent_id = a.agent_id AND g.status <> 'offline';
END
$$;
COMMENT ON FUNCTION dispatch.drain_agent(text, boolean) IS
  'Stop giving the agent new work (draining => false resumes it); the tasks it holds stay with it.';

CREATE FUNCTION dispatch.deregister_agent(agent_id text) RETURNS int
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  a dispatch.agents := dispatch.agent_for_caller(agent_id, lock => false);
  n int;
BEGIN
  -- Its leased tasks go back to the queue unharmed (the attempt does not count), each logged.
  WITH back AS (
    UPDATE dispatch.tasks AS t
       SET state = 'ready', agent_id = NULL, lease_until = NULL,
           attempts = greatest(t.attempts - 1, 0)
     WHERE t.state = 'claimed' AND t.agent_id = a.agent_id
    RETURNING t.task_id, t.tenant),
  logged AS (
    INSERT INTO dispatch.decisions (kind, task_id, agent_id, tenant, policy_version, reason, actor)
    SELECT 'deregister', back.task_id, a.agent_id, back.tenant, dispatch.policy_version(),
           'agent deregistered', dispatch.caller()
      FROM back)
  SELECT count(*) INTO n FROM back;
  UPDATE dispatch.agents AS g SET status = 'offline', running = 0, idle_since = clock_timestamp()
   WHERE g.agent_id = a.agent_id;
  RETURN n;
END
$$;
COMMENT ON FUNCTION dispatch.deregister_agent(text) IS
  'The agent leaves the fleet: it becomes offline, and the tasks it held go back to ready unharmed (logged). Returns how many tasks it gave back.';
