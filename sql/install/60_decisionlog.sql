-- 60_decisionlog: the decision log for auditors. What is written (dispatch.log_decisions), the
-- indexes for the questions auditors ask, daily partitions kept for dispatch.decision_retention,
-- and dispatch.override(), the operator's hand, always logged.

CREATE FUNCTION dispatch.decision_filter() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'dispatch_decision_filter';
COMMENT ON FUNCTION dispatch.decision_filter() IS
  'BEFORE INSERT row trigger of dispatch.decisions: drops the decisions dispatch.log_decisions does not want (see src/decisionlog.c).';
CREATE TRIGGER log_filter BEFORE INSERT ON dispatch.decisions
  FOR EACH ROW EXECUTE FUNCTION dispatch.decision_filter();

CREATE FUNCTION dispatch.claim_sampled(task_id bigint) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_claim_sampled';
COMMENT ON FUNCTION dispatch.claim_sampled(bigint) IS
  'True for the 1 task in 100 (a fixed hash of task_id) whose claims are logged when dispatch.log_decisions = sampled.';

-- The auditors' questions. Everything one task went through: decisions_task_idx (task_id, at);
-- everything one agent was given in a window: decisions_agent_idx (agent_id, at); both in 10_tables.
-- Like those, indexes of the default partition, which every day partition copies (10_tables
-- says why not of the parent).
CREATE INDEX decisions_policy_idx ON dispatch.decisions_default (policy_version, at);
CREATE INDEX decisions_override_idx ON dispatch.decisions_default (at) WHERE kind = 'override';

-- Partitions ----------------------------------------------------------------------------------
-- One partition per UTC day, named decisions_pYYYYMMDD. The default partition catches what no
-- day partition covers (everything, before the first tick); this step moves such rows into their
-- day's partition as it creates it.

CREATE FUNCTION dispatch.decision_partitions(
    OUT partition_name text, OUT from_at timestamptz, OUT to_at timestamptz, OUT is_default boolean)
  RETURNS SETOF record
  LANGUAGE sql STABLE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT c.relname::text,
         CASE WHEN c.relname ~ '^decisions_p[0-9]{8}$'
              THEN to_timestamp(substr(c.relname, 12), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' END,
         CASE WHEN c.relname ~ '^decisions_p[0-9]{8}$'
              THEN (to_timestamp(substr(c.relname, 12), 'YYYYMMDD')::timestamp + interval '1 day')
                   AT TIME ZONE 'UTC' END,
         pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
   WHERE i.inhparent = 'dispatch.decisions'::regclass
   ORDER BY 2 NULLS FIRST
$$;
COMMENT ON FUNCTION dispatch.decision_partitions() IS
  'The partitions of dispatch.decisions: one per UTC day (decisions_pYYYYMMDD, from_at inclusive, to_at exclusive) and the default partition.';

-- Internal: the partition for the UTC day starting at day_start, with the default partition's
-- rows of that day moved into it. ATTACH takes SHARE UPDATE EXCLUSIVE on the log (claims go on)
-- and ACCESS EXCLUSIVE on the default partition, which only stray rows ever reach.
CREATE FUNCTION dispatch.create_decision_partition(day_start timestamptz) RETURNS bigint
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  part text := 'decisions_p' || to_char(day_start AT TIME ZONE 'UTC', 'YYYYMMDD');
  lo timestamptz := day_start;
  hi timestamptz := ((day_start AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC';
  moved bigint;
BEGIN
  -- LIKE the default partition, whose indexes are the log's (10_tables says why not the parent's).
  EXECUTE format('CREATE TABLE dispatch.%I (LIKE dispatch.decisions_default INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)', part);
  EXECUTE format('COMMENT ON TABLE dispatch.%I IS %L', part,
                 format('Decisions of %s (UTC): a day partition of dispatch.decisions, made by dispatch.manage_decision_log().',
                        to_char(day_start AT TIME ZONE 'UTC', 'YYYY-MM-DD')));
  -- The bound as a CHECK lets ATTACH skip scanning the new table.
  EXECUTE format('ALTER TABLE dispatch.%I ADD CONSTRAINT %I CHECK (at >= %L AND at < %L)',
                 part, part || '_bound', lo, hi);
  EXECUTE format('WITH m AS (DELETE FROM dispatch.decisions_default WHERE at >= %L AND at < %L RETURNING *) '
                 'INSERT INTO dispatch.%I SELECT * FROM m', lo, hi, part);
  GET DIAGNOSTICS moved = ROW_COUNT;
  EXECUTE format('ALTER TABLE dispatch.decisions ATTACH PARTITION dispatch.%I FOR VALUES FROM (%L) TO (%L)',
                 part, lo, hi);
  EXECUTE format('ALTER TABLE dispatch.%I DROP CONSTRAINT %I', part, part || '_bound');
  RETURN moved;
END
$$;
COMMENT ON FUNCTION dispatch.create_decision_partition(timestamptz) IS
  'Internal: creates the decision-log partition of one UTC day and moves that day''s rows out of the default partition into it; returns how many rows moved.';

CREATE FUNCTION dispatch.manage_decision_log(now timestamptz DEFAULT pg_catalog.clock_timestamp(),
                                             days_ahead int DEFAULT 2) RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  -- In seconds, so a day is 86400 s whatever the session's time zone does around DST.
  retention interval := make_interval(secs => extract(epoch FROM
                          current_setting('dispatch.decision_retention')::interval));
  cutoff timestamptz;
  today timestamptz := date_trunc('day', now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  day timestamptz;
  p record;
  created text[] := '{}';
  dropped text[] := '{}';
  moved bigint := 0;
  purged bigint := 0;
  old_timeout text := current_setting('lock_timeout');
BEGIN
  IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
    RAISE EXCEPTION 'days_ahead must be between 0 and 366, not %', coalesce(days_ahead::text, 'NULL')
      USING ERRCODE = '22023', HINT = 'It is how many days of partitions are created ahead of today.';
  END IF;
  cutoff := CASE WHEN retention > interval '0' THEN now - retention END;
  -- A partition change waits at most this long for the log's lock; else it is retried next tick.
  PERFORM set_config('lock_timeout', '200ms', true);

  -- Rows too old to keep never get a partition.
  IF cutoff IS NOT NULL THEN
    DELETE FROM dispatch.decisions_default WHERE at < cutoff;
    GET DIAGNOSTICS purged = ROW_COUNT;
  END IF;

  -- The days ahead, and the days before yesterday that have rows stranded in the default
  -- partition. Never a day that inserts may still be routed to the default partition for:
  -- such an insert, planned with the old partition map, would fail its partition constraint
  -- once ATTACH changes the default partition's bound. So today (and yesterday, for a claim
  -- that began before midnight) stay in the default partition until they are safely past.
  FOR day IN
    SELECT d FROM (
      SELECT today + make_interval(days => i) AS d FROM generate_series(1, days_ahead) AS i
      UNION
      SELECT date_trunc('day', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM dispatch.decisions_default
       WHERE at < today - interval '1 day' OR at >= today + interval '1 day'
    ) AS days
    WHERE NOT EXISTS (SELECT FROM dispatch.decision_partitions() AS q WHERE q.from_at = days.d)
    ORDER BY d
  LOOP
    BEGIN
      moved := moved + dispatch.create_decision_partition(day);
      created := created || ('decisions_p' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'));
    EXCEPTION WHEN lock_not_available THEN
      NULL;  -- busy: next tick
    END;
  END LOOP;

  -- Whole days older than the retention go. DETACH takes ACCESS EXCLUSIVE on the log briefly.
  IF cutoff IS NOT NULL THEN
    FOR p IN SELECT * FROM dispatch.decision_partitions() WHERE to_at <= cutoff LOOP
      BEGIN
        EXECUTE format('ALTER TABLE dispatch.decisions DETACH PARTITION dispatch.%I', p.partition_name);
        EXECUTE format('DROP TABLE dispatch.%I', p.partition_name);
        dropped := dropped || p.partition_name;
      EXCEPTION WHEN lock_not_available THEN
        NULL;
      END;
    END LOOP;
  END IF;

  PERFORM set_config('lock_timeout', old_timeout, true);
  RETURN jsonb_build_object('created', to_jsonb(created), 'dropped', to_jsonb(dropped),
                            'moved', moved, 'purged', purged);
END
$$;
COMMENT ON FUNCTION dispatch.manage_decision_log(timestamptz, int) IS
  'Tick step: creates the decision log''s daily partitions for the next days_ahead days, and for days before yesterday whose rows are stranded in the default partition (moving them in); today stays in the default partition until it is safely past, so no concurrent insert can race an ATTACH; drops partitions whose whole day is older than dispatch.decision_retention (0: keep forever), and purges older stray rows. A partition change that cannot get its lock within 200 ms is retried next tick.';

-- Override ------------------------------------------------------------------------------------

CREATE FUNCTION dispatch.override(task_id bigint, agent_id text, reason text) RETURNS dispatch.tasks
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
  a dispatch.agents;
  result dispatch.tasks;
  missing text[];
BEGIN
  IF task_id IS NULL OR agent_id IS NULL THEN
    RAISE EXCEPTION 'task_id and agent_id must not be null' USING ERRCODE = '22004',
      HINT = 'Name the task to reassign and the agent to give it to.';
  END IF;
  IF reason IS NULL OR btrim(reason) = '' THEN
    RAISE EXCEPTION 'an override needs a reason' USING ERRCODE = '22004',
      HINT = 'Say why the task is reassigned by hand; the reason is kept in the decision log.';
  END IF;
  IF NOT pg_has_role(dispatch.caller(), 'dispatch_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'role "%" may not override dispatch decisions', dispatch.caller()
      USING ERRCODE = '42501', HINT = 'Only members of dispatch_admin may reassign tasks by hand.';
  END IF;

  -- Lock order everywhere: the task, then the agents.
  SELECT * INTO t FROM dispatch.tasks AS k WHERE k.task_id = override.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = '42704',
      HINT = 'Use a task_id from dispatch.tasks.';
  END IF;
  IF t.state NOT IN ('ready', 'claimed') THEN
    RAISE EXCEPTION 'cannot override task %: it is %', task_id, t.state
      USING ERRCODE = '55000',
            HINT = 'Only a ready or claimed task can be reassigned; a scheduled one first has to become ready.';
  END IF;
  SELECT * INTO a FROM dispatch.agents AS g WHERE g.agent_id = override.agent_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'agent "%" does not exist', agent_id USING ERRCODE = '42704',
      HINT = format('Register it first with dispatch.register_agent(%L, ...).', agent_id);
  END IF;
  IF t.state = 'claimed' AND t.agent_id = a.agent_id THEN
    RAISE EXCEPTION 'task % is already claimed by agent "%"', task_id, agent_id USING ERRCODE = '55000';
  END IF;
  IF a.status IN ('offline', 'lost', 'draining') THEN
    RAISE EXCEPTION 'agent "%" is %', agent_id, a.status USING ERRCODE = '55000',
      HINT = CASE a.status WHEN 'draining' THEN 'Resume it first with dispatch.drain_agent(agent_id, false).'
                           ELSE 'Only an agent that is registered and sending heartbeats can be given work.' END;
  END IF;
  IF a.running >= a.capacity THEN
    RAISE EXCEPTION 'agent "%" is at capacity (% of % tasks)', agent_id, a.running, a.capacity
      USING ERRCODE = '55000',
            HINT = 'Release or reassign one of its tasks first, or raise its capacity with dispatch.register_agent().';
  END IF;
  -- The hard rules still hold: capabilities, clearance, region.
  missing := ARRAY(SELECT r FROM unnest(t.requires) AS r WHERE NOT r = ANY (a.capabilities));
  IF cardinality(missing) > 0 OR t.sensitivity > a.clearance
     OR (t.region IS NOT NULL AND t.region IS DISTINCT FROM a.region) THEN
    RAISE EXCEPTION 'agent "%" may not run task %', agent_id, task_id USING ERRCODE = '22023',
      DETAIL = format('Missing capabilities: %s; sensitivity %s, clearance %s; task region %s, agent region %s.',
                      coalesce(nullif(array_to_string(missing, ', '), ''), 'none'), t.sensitivity, a.clearance,
                      coalesce(t.region, 'any'), coalesce(a.region, 'none')),
      HINT = 'Choose an agent that can run the task.';
  END IF;

  -- A claimed task is first taken from its agent (which gets its capacity back), unharmed.
  IF t.state = 'claimed' THEN
    UPDATE dispatch.tasks AS k SET state = 'ready', agent_id = NULL, lease_until = NULL
     WHERE k.task_id = t.task_id;
  END IF;
  UPDATE dispatch.tasks AS k
     SET state = 'claimed', agent_id = a.agent_id, claimed_at = clock_timestamp(),
         lease_until = clock_timestamp() + current_setting('dispatch.lease_time')::interval,
         attempts = CASE WHEN t.state = 'ready' THEN k.attempts + 1 ELSE k.attempts END,
         reserved_for = NULL, reserved_until = NULL
   WHERE k.task_id = t.task_id
  RETURNING * INTO result;
  PERFORM dispatch.log_decision('override', t.task_id, a.agent_id, t.tenant, reason,
    jsonb_build_object('from_state', t.state, 'from_agent', t.agent_id, 'attempt', result.attempts));
  RETURN result;
END
$$;
COMMENT ON FUNCTION dispatch.override(bigint, text, text) IS
  'Reassign a ready or claimed task by hand to an agent (dispatch_admin only): the task is claimed by that agent with a fresh lease, a previous holder gets its capacity back, and the override is logged with the caller and the reason whatever dispatch.log_decisions says. The agent must be live, below capacity and able to run the task.';

COMMENT ON INDEX dispatch.decisions_policy_idx IS 'Auditors: every decision under one policy version.';
COMMENT ON INDEX dispatch.decisions_override_idx IS 'Auditors: every override.';

