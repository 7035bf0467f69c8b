-- 40_tasks: submitting work and the task lifecycle after the claim (doc/design.md §2):
-- complete, fail (retry with backoff, then dead), abort, cancel, release, extend_lease.

CREATE FUNCTION dispatch.policy_version() RETURNS int
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT version FROM dispatch.policies WHERE active
$$;
COMMENT ON FUNCTION dispatch.policy_version() IS 'The version of the active policy.';

-- Internal: one decision-log row for a transition made in SQL.
CREATE FUNCTION dispatch.log_decision(kind text, task_id bigint, agent_id text, tenant text,
                                      reason text, factors jsonb DEFAULT NULL) RETURNS void
  LANGUAGE sql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  INSERT INTO dispatch.decisions (kind, task_id, agent_id, tenant, policy_version, reason, factors, actor)
  VALUES (kind, task_id, agent_id, tenant, dispatch.policy_version(), reason, factors, dispatch.caller())
$$;
COMMENT ON FUNCTION dispatch.log_decision(text, bigint, text, text, text, jsonb) IS
  'Internal: writes one row to the decision log, under the active policy version, with the caller as actor.';

CREATE FUNCTION dispatch.submit(
    kind text,
    payload jsonb DEFAULT '{}',
    tenant text DEFAULT 'default',
    priority text DEFAULT 'normal',
    requires text[] DEFAULT '{}',
    deadline timestamptz DEFAULT NULL,
    est_duration interval DEFAULT NULL,
    session_ref text DEFAULT NULL,
    run_at timestamptz DEFAULT NULL,
    dispatch_key text DEFAULT NULL,
    profile real[] DEFAULT NULL,
    sensitivity int DEFAULT 0,
    region text DEFAULT NULL,
    max_attempts int DEFAULT 3,
    parent_id bigint DEFAULT NULL,
    depends_on bigint[] DEFAULT NULL,
    on_dependency_failure text DEFAULT 'cancel',
    record_ref text DEFAULT NULL,
    run_id uuid DEFAULT NULL,
    outputs jsonb DEFAULT NULL,
    shed_if_busy boolean DEFAULT false)
  RETURNS bigint
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
#variable_conflict use_column
DECLARE
  id bigint;
BEGIN
  IF submit.max_attempts IS NULL OR submit.max_attempts < 1 THEN
    RAISE EXCEPTION 'max_attempts must be 1 or more' USING ERRCODE = '22023',
      HINT = 'max_attempts counts the first try: 1 means no retry.';
  END IF;
  IF shed_if_busy AND priority IS DISTINCT FROM 'low' THEN
    RAISE EXCEPTION 'only a low task may be submitted with shed_if_busy, not a % one', coalesce(priority, 'NULL')
      USING ERRCODE = '22023', HINT = 'shed_if_busy marks work that may be dropped under overload; submit it with priority => ''low''.';
  END IF;
  -- Idempotency (doc/fanout.md §4): an unfinished task with this key is the answer. The
  -- look-up first keeps the common repeat cheap; ON CONFLICT settles concurrent submits (the
  -- loser waits for the winner's commit, then finds its task); the loop covers a task that
  -- finished between the two.
  LOOP
    IF submit.dispatch_key IS NOT NULL THEN
      SELECT k.task_id INTO id FROM dispatch.tasks AS k
       WHERE k.tenant = submit.tenant COLLATE "C" AND k.dispatch_key = submit.dispatch_key COLLATE "C"
         AND k.state IN ('scheduled', 'ready', 'claimed');
      IF FOUND THEN
        RETURN id;
      END IF;
    END IF;
    INSERT INTO dispatch.tasks (kind, payload, tenant, priority, requires, deadline, est_duration,
                                session_ref, run_at, dispatch_key, profile, sensitivity, region,
                                max_attempts, parent_id, depends_on, on_dependency_failure,
                                record_ref, run_id, outputs, shed_if_busy, owner_role)
    VALUES (submit.kind, coalesce(submit.payload, '{}'), submit.tenant, submit.priority,
            coalesce(submit.requires, '{}'), submit.deadline, submit.est_duration, submit.session_ref,
            submit.run_at, submit.dispatch_key, submit.profile, coalesce(submit.sensitivity, 0),
            submit.region, submit.max_attempts, submit.parent_id, submit.depends_on,
            coalesce(submit.on_dependency_failure, 'cancel'), submit.record_ref, submit.run_id,
            submit.outputs, coalesce(submit.shed_if_busy, false), dispatch.caller())
    ON CONFLICT (tenant, dispatch_key)
       WHERE dispatch_key IS NOT NULL AND state IN ('scheduled', 'ready', 'claimed') DO NOTHING
    RETURNING task_id INTO id;
    IF id IS NOT NULL THEN
      RETURN id;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch.submit(text, jsonb, text, text, text[], timestamptz, interval, text, timestamptz, text, real[], int, text, int, bigint, bigint[], text, text, uuid, jsonb, boolean) IS
  'Submit a task; returns its task_id. It is ready at once, or scheduled until run_at. requires: capabilities an agent needs; sensitivity: clearance needed; region; deadline and est_duration: for the urgent lane; session_ref: sticks to the agent serving that session; profile: wanted personality; dispatch_key: idempotency key (an unfinished task of the tenant with the same key is returned instead, and nothing is created); parent_id: the spawning task, whose run the task joins; run_id: the run (default: the parent''s, else a new one); depends_on: tasks that must be done first (on_dependency_failure: cancel or run when one fails); record_ref: the record it is about; outputs: the result''s contract; shed_if_busy: a low task that may be dropped under overload.';

-- Internal: a claimed task, locked, that the caller may act on as its holder.
CREATE FUNCTION dispatch.task_for_holder(task_id bigint, action text, agent_id text DEFAULT NULL)
  RETURNS dispatch.tasks
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
  owner name;
BEGIN
  IF task_id IS NULL THEN
    RAISE EXCEPTION 'task_id must not be null' USING ERRCODE = '22004',
      HINT = 'Pass the task_id returned by dispatch_next().';
  END IF;
  SELECT * INTO t FROM dispatch.tasks AS k WHERE k.task_id = task_for_holder.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = '42704',
      HINT = 'Use the task_id returned by dispatch_next() or submit().';
  END IF;
  IF t.state <> 'claimed' THEN
    RAISE EXCEPTION 'cannot % task %: it is %, not claimed', action, task_id, t.state
      USING ERRCODE = '55000',
            HINT = CASE
              WHEN t.state = 'done' THEN 'It was already completed.'
              WHEN t.state IN ('ready', 'scheduled') THEN
                'Its lease ended or it was released, and it went back to the queue; claim it again with dispatch_next().'
              ELSE 'It is finished; nothing more can be done with it.'
            END;
  END IF;
  -- Fencing: an agent whose lease ran out, and whose task another agent now holds, is refused.
  IF task_for_holder.agent_id IS NOT NULL AND task_for_holder.agent_id IS DISTINCT FROM t.agent_id THEN
    RAISE EXCEPTION 'cannot % task %: it is leased to agent "%", not "%"', action, task_id, t.agent_id,
                    task_for_holder.agent_id
      USING ERRCODE = '55000',
            HINT = 'The lease of that agent ran out and the task went to another agent; drop the work.';
  END IF;
  SELECT g.owner_role INTO owner FROM dispatch.agents AS g WHERE g.agent_id = t.agent_id;
  IF NOT dispatch.may_act_as(owner) THEN
    RAISE EXCEPTION 'task % is leased to agent "%", and role "%" may not act as it',
                    task_id, t.agent_id, dispatch.caller()
      USING ERRCODE = '42501',
            HINT = 'Only the agent holding the lease, or a member of dispatch_admin, may finish, release or extend it.';
  END IF;
  RETURN t;
END
$$;
COMMENT ON FUNCTION dispatch.task_for_holder(bigint, text, text) IS
  'Internal: the claimed task, locked, once the caller is known to act for the agent holding it (42704 unknown task, 55000 not claimed or held by another agent than agent_id, 42501 not the holder).';

CREATE FUNCTION dispatch.complete(task_id bigint, result jsonb DEFAULT NULL, agent_id text DEFAULT NULL)
  RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
BEGIN
  -- The common case in one statement: the caller acts for the agent holding the lease, and the
  -- task has no output contract. The row is locked by the UPDATE itself (a concurrent change is
  -- re-checked against these conditions), so no separate SELECT ... FOR UPDATE is written to
  -- the WAL. Anything else, including every error, takes the checked path below. The state is
  -- compared under COLLATE "C" (the same test for these words) so that the planner cannot read
  -- all of tasks_claimed_idx, whose predicate a plain state = 'claimed' would match, instead of
  -- descending the primary key (bench/explain_claim_path.sh checks the plan).
  UPDATE dispatch.tasks AS k
     SET state = 'done', result = complete.result, finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = complete.task_id AND k.state COLLATE "C" = 'claimed' AND k.outputs IS NULL
     AND (complete.agent_id IS NULL OR k.agent_id = complete.agent_id)
     AND dispatch.may_act_as((SELECT g.owner_role FROM dispatch.agents AS g WHERE g.agent_id = k.agent_id));
  IF FOUND THEN
    RETURN;
  END IF;
  t := dispatch.task_for_holder(task_id, 'complete', agent_id);
  -- The output contract (49_outputs.sql): a result that breaks it is refused, the lease kept.
  IF t.outputs IS NOT NULL THEN
    PERFORM dispatch.check_result(t.task_id, t.outputs, complete.result);
  END IF;
  UPDATE dispatch.tasks AS k
     SET state = 'done', result = complete.result, finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = t.task_id;
  IF t.outputs IS NOT NULL THEN
    PERFORM dispatch.bind_outputs(t, complete.result);
  END IF;
END
$$;
COMMENT ON FUNCTION dispatch.complete(bigint, jsonb, text) IS
  'The agent finished the task with this result. Only the agent holding the lease may complete it, once; passing agent_id fences a stale agent (55000 when another agent holds the task). A result that breaks the task''s outputs contract is refused (22023) and the task keeps its lease; bound outputs are written to their tables as the task''s owner, in the same transaction. Tasks waiting for this one are promoted at once.';

CREATE FUNCTION dispatch.fail(task_id bigint, error text, retry boolean DEFAULT true,
                              agent_id text DEFAULT NULL) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks := dispatch.task_for_holder(task_id, 'fail', agent_id);
  base float8 := extract(epoch FROM current_setting('dispatch.retry_base')::interval);
  cap float8 := extract(epoch FROM current_setting('dispatch.retry_max')::interval);
  delay float8;
  next_state text;
BEGIN
  IF retry IS NULL THEN
    RAISE EXCEPTION 'retry must not be null' USING ERRCODE = '22004',
      HINT = 'Pass retry => true to try again after a backoff, or retry => false to end the task as failed.';
  END IF;
  IF retry AND t.attempts < t.max_attempts THEN
    -- Exponential backoff with jitter: half of it fixed, half random.
    delay := least(cap, base * 2 ^ (greatest(t.attempts, 1) - 1));
    delay := delay / 2 + random() * delay / 2;
    next_state := CASE WHEN delay > 0 THEN 'scheduled' ELSE 'ready' END;
    UPDATE dispatch.tasks AS k
       SET state = next_state, agent_id = NULL, lease_until = NULL, error = fail.error,
           run_at = clock_timestamp() + make_interval(secs => delay), ready_at = NULL
     WHERE k.task_id = t.task_id;
    PERFORM dispatch.log_decision('retry', t.task_id, t.agent_id, t.tenant, fail.error,
      jsonb_build_object('attempt', t.attempts, 'max_attempts', t.max_attempts,
                         'delay_seconds', round(delay::numeric, 3)));
    RETURN next_state;
  END IF;
  next_state := CASE WHEN retry THEN 'dead' ELSE 'failed' END;
  UPDATE dispatch.tasks AS k
     SET state = next_state, error = fail.error, finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = t.task_id;
  PERFORM dispatch.log_decision(next_state, t.task_id, t.agent_id, t.tenant, fail.error,
    jsonb_build_object('attempt', t.attempts, 'max_attempts', t.max_attempts));
  RETURN next_state;
END
$$;
COMMENT ON FUNCTION dispatch.fail(bigint, text, boolean, text) IS
  'The attempt failed. With retry (the default) the task waits an exponential backoff with jitter (dispatch.retry_base doubling per attempt, at most dispatch.retry_max) and runs again, until max_attempts: then it is dead. retry => false ends it as failed. Returns the new state.';

CREATE FUNCTION dispatch.abort(task_id bigint, reason text, agent_id text DEFAULT NULL) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
BEGIN
  IF reason IS NULL OR reason = '' THEN
    RAISE EXCEPTION 'abort needs a reason' USING ERRCODE = '22004',
      HINT = 'Say why the agent refuses the task; the reason is kept in the task and the decision log.';
  END IF;
  t := dispatch.task_for_holder(task_id, 'abort', agent_id);
  UPDATE dispatch.tasks AS k
     SET state = 'aborted', error = abort.reason, finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = t.task_id;
  PERFORM dispatch.log_decision('abort', t.task_id, t.agent_id, t.tenant, reason);
END
$$;
COMMENT ON FUNCTION dispatch.abort(bigint, text, text) IS
  'The agent refuses the task, with a reason; it ends as aborted and is not retried.';

CREATE FUNCTION dispatch.release(task_id bigint, agent_id text DEFAULT NULL) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks := dispatch.task_for_holder(task_id, 'release', agent_id);
BEGIN
  -- Unharmed: the attempt does not count, and it keeps its place in line (ready_at is kept).
  UPDATE dispatch.tasks AS k
     SET state = 'ready', agent_id = NULL, lease_until = NULL, attempts = greatest(k.attempts - 1, 0)
   WHERE k.task_id = t.task_id;
  PERFORM dispatch.log_decision('release', t.task_id, t.agent_id, t.tenant, 'released by the agent');
END
$$;
COMMENT ON FUNCTION dispatch.release(bigint, text) IS
  'Give the task back unharmed: it is ready again at its old place in line, and the attempt does not count.';

CREATE FUNCTION dispatch.extend_lease(task_id bigint, by interval DEFAULT NULL, agent_id text DEFAULT NULL)
  RETURNS timestamptz
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
  until timestamptz;
BEGIN
  IF by IS NOT NULL AND by <= interval '0' THEN
    RAISE EXCEPTION 'a lease can only be extended by a positive interval, not %', by
      USING ERRCODE = '22023', HINT = 'Leave by out to extend by dispatch.lease_time.';
  END IF;
  t := dispatch.task_for_holder(task_id, 'extend the lease of', agent_id);
  until := greatest(t.lease_until, clock_timestamp())
           + coalesce(by, current_setting('dispatch.lease_time')::interval);
  UPDATE dispatch.tasks AS k SET lease_until = until WHERE k.task_id = t.task_id;
  RETURN until;
END
$$;
COMMENT ON FUNCTION dispatch.extend_lease(bigint, interval, text) IS
  'Keep the task longer: its lease ends later by the interval (default dispatch.lease_time). Returns the new end of the lease.';

CREATE FUNCTION dispatch.cancel(task_id bigint) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  t dispatch.tasks;
BEGIN
  IF task_id IS NULL THEN
    RAISE EXCEPTION 'task_id must not be null' USING ERRCODE = '22004',
      HINT = 'Pass the task_id returned by submit().';
  END IF;
  SELECT * INTO t FROM dispatch.tasks AS k WHERE k.task_id = cancel.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = '42704',
      HINT = 'Use the task_id returned by submit().';
  END IF;
  IF NOT dispatch.may_act_as(t.owner_role) THEN
    RAISE EXCEPTION 'role "%" may not cancel task %', dispatch.caller(), task_id
      USING ERRCODE = '42501', DETAIL = format('The task was submitted by role "%s".', t.owner_role),
            HINT = 'Only the role that submitted a task, or a member of dispatch_admin, may cancel it.';
  END IF;
  IF t.state NOT IN ('scheduled', 'ready', 'claimed') THEN
    RAISE EXCEPTION 'cannot cancel task %: it is already %', task_id, t.state
      USING ERRCODE = '55000', HINT = 'Only waiting or running tasks can be cancelled.';
  END IF;
  UPDATE dispatch.tasks AS k
     SET state = 'cancelled', finished_at = clock_timestamp(), lease_until = NULL
   WHERE k.task_id = t.task_id;
  PERFORM dispatch.log_decision('cancel', t.task_id, t.agent_id, t.tenant, 'cancelled');
END
$$;
COMMENT ON FUNCTION dispatch.cancel(bigint) IS
  'Cancel a waiting or running task (its submitter or dispatch_admin). A running task is taken from its agent.';

CREATE FUNCTION dispatch.set_policy(weights jsonb, note text DEFAULT NULL) RETURNS int
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  normalized jsonb := dispatch.policy_normalize(weights);
  v int;
BEGIN
  -- The trigger policy_activate retires the version active until now.
  INSERT INTO dispatch.policies (weights, note, active, created_by)
  VALUES (normalized, note, true, dispatch.caller())
  RETURNING version INTO v;
  RETURN v;
END
$$;
COMMENT ON FUNCTION dispatch.set_policy(jsonb, text) IS
  'Validate a policy document (keys in doc/reference.md; every weight in seconds of head start) and make it the active version; returns the version. Earlier versions stay in dispatch.policies; each decision records the version that made it.';
