-- 47_placement: task templates, and placing tasks from them: one row at a time (watches,
-- cascades) or a whole query at once (sweeps). doc/fanout.md §2-3.

CREATE FUNCTION dispatch.render(template jsonb, row_data jsonb) RETURNS jsonb
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_render';
COMMENT ON FUNCTION dispatch.render(jsonb, jsonb) IS
  'Fill a task template from a row: a string that is exactly {{column}} takes the column''s JSON value; a placeholder inside a longer string takes its text. A placeholder naming no column is an error.';

CREATE FUNCTION dispatch.render_text(template text, row_data jsonb) RETURNS text
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_render_text';
COMMENT ON FUNCTION dispatch.render_text(text, jsonb) IS
  'Fill a text template (a dispatch_key, say ''brief:{{account_id}}'') from a row.';

CREATE FUNCTION dispatch.placeholders(template jsonb) RETURNS text[]
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_placeholders';
COMMENT ON FUNCTION dispatch.placeholders(jsonb) IS
  'The distinct column names a template''s {{column}} placeholders use (for a text template, pass to_jsonb(text)).';

CREATE FUNCTION dispatch.template_fields() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT ARRAY['kind', 'payload', 'tenant', 'priority', 'requires', 'deadline', 'est_duration',
               'session_ref', 'run_at', 'dispatch_key', 'profile', 'sensitivity', 'region',
               'max_attempts', 'parent_id', 'depends_on', 'on_dependency_failure', 'record_ref',
               'run_id', 'outputs', 'shed_if_busy']
$$;
COMMENT ON FUNCTION dispatch.template_fields() IS
  'The task fields a template may set: the arguments of submit(). A cascade step may also have step, after and parent.';

-- Internal: one task of a template (in_cascade: a step of an array template).
CREATE FUNCTION dispatch.check_task_template(task jsonb, in_cascade boolean) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  allowed text[] := dispatch.template_fields()
                    || CASE WHEN in_cascade THEN ARRAY['step', 'after', 'parent'] ELSE '{}' END;
  f text;
  v jsonb;
BEGIN
  IF jsonb_typeof(task) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'a task template must be a JSON object, not %', coalesce(jsonb_typeof(task), 'NULL')
      USING ERRCODE = '22023', HINT = 'For example {"kind": "research", "payload": {"lead": "{{id}}"}}.';
  END IF;
  SELECT k INTO f FROM jsonb_object_keys(task) AS k WHERE k <> ALL (allowed) ORDER BY k LIMIT 1;
  IF f IS NOT NULL THEN
    RAISE EXCEPTION 'unknown field "%" in task template', f USING ERRCODE = '22023',
      HINT = format('A template sets these fields: %s.', array_to_string(allowed, ', '));
  END IF;
  IF jsonb_typeof(task -> 'kind') IS DISTINCT FROM 'string' OR task ->> 'kind' = '' THEN
    RAISE EXCEPTION 'a task template needs a kind' USING ERRCODE = '22023',
      HINT = 'Add "kind": "..." saying what the task is, for example "research" or "{{task_type}}".';
  END IF;
  -- Fields without placeholders are checked now, so a bad template fails before it places anything.
  FOR f, v IN SELECT key, value FROM jsonb_each(task)
               WHERE key = ANY (dispatch.template_fields()) AND value::text NOT LIKE '%{{%'
  LOOP
    BEGIN
      PERFORM jsonb_populate_record(NULL::dispatch.tasks, jsonb_build_object(f, v));
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION 'task template field "%" is not valid: %', f, SQLERRM USING ERRCODE = '22023',
        HINT = 'Give the value as submit() takes it: text as a string, arrays as JSON arrays, times as ISO 8601 strings.';
    END;
  END LOOP;
  IF task ? 'priority' AND task ->> 'priority' NOT LIKE '%{{%'
     AND task ->> 'priority' NOT IN ('critical', 'high', 'normal', 'low') THEN
    RAISE EXCEPTION 'invalid priority "%" in task template', task ->> 'priority' USING ERRCODE = '22023',
      HINT = 'The priorities are critical, high, normal and low.';
  END IF;
  IF task ? 'on_dependency_failure' AND task ->> 'on_dependency_failure' NOT IN ('cancel', 'run') THEN
    RAISE EXCEPTION 'invalid on_dependency_failure "%" in task template', task ->> 'on_dependency_failure'
      USING ERRCODE = '22023', HINT = 'cancel (the default) or run.';
  END IF;
END
$$;
COMMENT ON FUNCTION dispatch.check_task_template(jsonb, boolean) IS
  'Internal: one task template is an object with a kind and known fields whose constant values fit the task columns.';

CREATE FUNCTION dispatch.check_template(task jsonb, allow_cascade boolean DEFAULT true) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  steps text[] := '{}';
  e jsonb;
  ref text;
BEGIN
  IF task IS NULL THEN
    RAISE EXCEPTION 'the task template must not be null' USING ERRCODE = '22004',
      HINT = 'For example {"kind": "research", "payload": {"lead": "{{id}}"}}.';
  END IF;
  IF jsonb_typeof(task) <> 'array' THEN
    PERFORM dispatch.check_task_template(task, false);
    RETURN;
  END IF;
  IF NOT allow_cascade THEN
    RAISE EXCEPTION 'this template must be one task (a JSON object), not an array' USING ERRCODE = '22023',
      HINT = 'A sweep places one task per row; a cascade of steps can be placed by a watch.';
  END IF;
  IF jsonb_array_length(task) = 0 THEN
    RAISE EXCEPTION 'a cascade template needs at least one step' USING ERRCODE = '22023';
  END IF;
  FOR e IN SELECT value FROM jsonb_array_elements(task) LOOP
    PERFORM dispatch.check_task_template(e, true);
    FOR ref IN SELECT jsonb_array_elements_text(CASE jsonb_typeof(e -> 'after') WHEN 'array' THEN e -> 'after'
                                                   WHEN 'string' THEN jsonb_build_array(e -> 'after') ELSE '[]' END)
               UNION ALL SELECT e ->> 'parent' WHERE e ? 'parent' LOOP
      IF ref IS NULL OR ref <> ALL (steps) THEN
        RAISE EXCEPTION 'cascade step "%" refers to step "%", which does not come before it',
                        coalesce(e ->> 'step', e ->> 'kind'), ref
          USING ERRCODE = '22023', HINT = 'after and parent name earlier steps by their "step" (or, without one, their kind).';
      END IF;
    END LOOP;
    IF coalesce(e ->> 'step', e ->> 'kind') = ANY (steps) THEN
      RAISE EXCEPTION 'two cascade steps are called "%"', coalesce(e ->> 'step', e ->> 'kind') USING ERRCODE = '22023',
        HINT = 'Give each step a distinct "step" name.';
    END IF;
    steps := steps || coalesce(e ->> 'step', e ->> 'kind');
  END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch.check_template(jsonb, boolean) IS
  'Checks a task template: an object with a kind and known fields, or (allow_cascade) an array of such steps where after and parent name earlier steps. Raises a clear error (22023) otherwise.';

-- Internal: insert one rendered task for owner, idempotent on dispatch_key. Returns its id
-- (the existing task's for a duplicate key) and whether it was created.
CREATE FUNCTION dispatch.insert_task(t jsonb, owner name, OUT task_id bigint, OUT created boolean)
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  cols text[] := ARRAY(SELECT k FROM jsonb_object_keys(t) AS k
                        WHERE k = ANY (dispatch.template_fields()) AND t -> k <> 'null' ORDER BY k);
  t_tenant text := coalesce(t ->> 'tenant', 'default');
BEGIN
  LOOP
    IF t ->> 'dispatch_key' IS NOT NULL THEN
      SELECT k.task_id INTO task_id FROM dispatch.tasks AS k
       WHERE k.tenant = t_tenant COLLATE "C" AND k.dispatch_key = (t ->> 'dispatch_key') COLLATE "C"
         AND k.state IN ('scheduled', 'ready', 'claimed');
      IF FOUND THEN
        created := false;
        RETURN;
      END IF;
    END IF;
    EXECUTE format('INSERT INTO dispatch.tasks AS k (%s, owner_role) SELECT %s, $2 '
                   'FROM pg_catalog.jsonb_populate_record(NULL::dispatch.tasks, $1) AS r '
                   'ON CONFLICT (tenant, dispatch_key) WHERE dispatch_key IS NOT NULL '
                   'AND state IN (''scheduled'', ''ready'', ''claimed'') DO NOTHING RETURNING k.task_id',
                   (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) AS c),
                   (SELECT string_agg(format('r.%I', c), ', ') FROM unnest(cols) AS c))
      INTO task_id USING t, owner;
    IF task_id IS NOT NULL THEN
      created := true;
      RETURN;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch.insert_task(jsonb, name) IS
  'Internal: inserts one rendered task for the owner role; a duplicate dispatch_key returns the unfinished task that has it.';

-- Internal: place a template (one task or a cascade) for one row.
CREATE FUNCTION dispatch.place(task jsonb, row_data jsonb, owner name, dispatch_key text DEFAULT NULL,
                               record_ref text DEFAULT NULL, run_id uuid DEFAULT NULL)
  RETURNS bigint[]
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  steps jsonb := CASE WHEN jsonb_typeof(task) = 'array' THEN task ELSE jsonb_build_array(task) END;
  ids bigint[] := '{}';
  names text[] := '{}';
  e jsonb;
  t jsonb;
  after bigint[];
  parent bigint;
  r record;
  run uuid := place.run_id;
BEGIN
  FOR e IN SELECT value FROM jsonb_array_elements(steps) LOOP
    t := dispatch.render(e - 'step' - 'after' - 'parent', coalesce(row_data, '{}'));
    after := ARRAY(SELECT ids[array_position(names, x)]
                     FROM jsonb_array_elements_text(CASE jsonb_typeof(e -> 'after') WHEN 'array' THEN e -> 'after'
                                                    WHEN 'string' THEN jsonb_build_array(e -> 'after') ELSE '[]' END) AS x);
    parent := CASE WHEN e ? 'parent' THEN ids[array_position(names, e ->> 'parent')] ELSE after[1] END;
    IF cardinality(ids) = 0 THEN
      -- The first step carries the key: a duplicate of it means the whole cascade exists.
      IF place.dispatch_key IS NOT NULL THEN
        t := t || jsonb_build_object('dispatch_key', place.dispatch_key);
      END IF;
    ELSE
      t := t - 'dispatch_key' || jsonb_build_object('run_id', run);
    END IF;
    IF cardinality(after) > 0 THEN
      t := t || jsonb_build_object('depends_on',
                 to_jsonb(ARRAY(SELECT DISTINCT x FROM unnest(after || ARRAY(
                   SELECT jsonb_array_elements_text(coalesce(t -> 'depends_on', '[]'))::bigint)) AS x ORDER BY x)));
    END IF;
    IF parent IS NOT NULL THEN
      t := t || jsonb_build_object('parent_id', parent);
    END IF;
    IF place.record_ref IS NOT NULL AND NOT t ? 'record_ref' THEN
      t := t || jsonb_build_object('record_ref', place.record_ref);
    END IF;
    IF run IS NOT NULL AND NOT t ? 'run_id' THEN
      t := t || jsonb_build_object('run_id', run);
    END IF;
    SELECT * INTO r FROM dispatch.insert_task(t, owner);
    IF NOT r.created AND cardinality(ids) = 0 THEN
      RETURN ARRAY[r.task_id];
    END IF;
    ids := ids || r.task_id;
    names := names || coalesce(e ->> 'step', e ->> 'kind');
    IF run IS NULL THEN
      SELECT k.run_id INTO run FROM dispatch.tasks AS k WHERE k.task_id = r.task_id;
    END IF;
  END LOOP;
  RETURN ids;
END
$$;
COMMENT ON FUNCTION dispatch.place(jsonb, jsonb, name, text, text, uuid) IS
  'Internal: places a template rendered from one row for the owner role. A cascade (an array of steps) shares one run; a step waits for the steps it names in after and is the child of the first of them (or of the step named by parent). dispatch_key goes on the first step: when an unfinished task has it, nothing is placed and that task is returned.';

CREATE FUNCTION dispatch.sweep_rows(query text, task jsonb, key text, spread interval, run_at jsonb,
                                    run_as name, search_path text)
  RETURNS TABLE (t jsonb, dispatch_key text, run_at timestamptz)
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'dispatch_sweep_rows';
COMMENT ON FUNCTION dispatch.sweep_rows(text, jsonb, text, interval, jsonb, name, text) IS
  'Internal: runs a sweep query as run_as (with that search_path) and returns one rendered task per row, its dispatch_key, and its run_at spread over spread. Not granted to anyone: run_as is trusted.';

-- The core of a sweep, for whoever is entitled to name the role: sweep() passes the caller, a
-- schedule passes its owner.
CREATE FUNCTION dispatch.place_sweep(run_as name, search_path text, query text, task jsonb,
                                     key text DEFAULT NULL, spread interval DEFAULT NULL,
                                     schedule_id bigint DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  run uuid;
  body jsonb;
  cols text[];
  total bigint;
  created bigint;
BEGIN
  IF query IS NULL OR run_as IS NULL THEN
    RAISE EXCEPTION 'a sweep needs a query' USING ERRCODE = '22004',
      HINT = 'Give a SELECT whose rows become tasks, for example ''SELECT id FROM accounts''.';
  END IF;
  PERFORM dispatch.check_template(task, allow_cascade => false);
  IF spread IS NOT NULL AND spread < interval '0' THEN
    RAISE EXCEPTION 'spread must not be negative, not %', spread USING ERRCODE = '22023',
      HINT = 'spread is the window the run_at times are spread over, for example ''10 minutes''.';
  END IF;
  run := coalesce((task ->> 'run_id')::uuid, dispatch.new_run_id());
  body := task - 'run_at' - 'dispatch_key' - 'run_id';
  cols := ARRAY(SELECT k FROM jsonb_object_keys(body) AS k ORDER BY k);
  -- One set-based INSERT ... SELECT: the rows are rendered in C, typed by jsonb_populate_record
  -- (called as a scalar behind OFFSET 0: once per row, and without the per-row tuplestore a
  -- function in FROM costs), and a key already taken by an unfinished task is skipped; ON
  -- CONFLICT settles races. The look-up first keeps duplicates away from the row trigger.
  EXECUTE format($sql$
    WITH src AS MATERIALIZED (
      SELECT s.t, s.dispatch_key, s.run_at FROM dispatch.sweep_rows($1, $2, $3, $4, $5, $6, $7) AS s),
    ins AS (
      INSERT INTO dispatch.tasks AS k (%s, dispatch_key, run_at, run_id, owner_role, schedule_id)
      SELECT %s, x.dispatch_key, x.run_at, $8, $6, $9
        FROM (SELECT pg_catalog.jsonb_populate_record(NULL::dispatch.tasks, src.t) AS r, src.dispatch_key, src.run_at
                FROM src OFFSET 0) AS x
       WHERE x.dispatch_key IS NULL OR NOT EXISTS (
               SELECT FROM dispatch.tasks AS e
                WHERE e.tenant = coalesce((x.r).tenant, 'default') COLLATE "C"
                  AND e.dispatch_key = x.dispatch_key COLLATE "C"
                  AND e.state IN ('scheduled', 'ready', 'claimed'))
      ON CONFLICT (tenant, dispatch_key)
         WHERE dispatch_key IS NOT NULL AND state IN ('scheduled', 'ready', 'claimed') DO NOTHING
      RETURNING 1)
    SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM ins)$sql$,
    (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) AS c),
    (SELECT string_agg(format('(x.r).%I', c), ', ') FROM unnest(cols) AS c))
  INTO total, created
  USING query, body, coalesce(key, task ->> 'dispatch_key'), spread, task -> 'run_at', run_as,
        search_path, run, schedule_id;
  RETURN jsonb_build_object('run_id', run, 'created', created, 'duplicates', total - created);
END
$$;
COMMENT ON FUNCTION dispatch.place_sweep(name, text, text, jsonb, text, interval, bigint) IS
  'Internal core of sweep(): runs query as run_as and places one task per row for that role. For dispatch.sweep() (the caller) and schedules (their owner); not granted to anyone else.';

CREATE FUNCTION dispatch.sweep_as_caller(query text, task jsonb, key text, spread interval, search_path text)
  RETURNS jsonb
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT dispatch.place_sweep(dispatch.caller(), search_path, query, task, key, spread)
$$;
COMMENT ON FUNCTION dispatch.sweep_as_caller(text, jsonb, text, interval, text) IS
  'Internal: sweep() for the calling role, with the search_path the caller had.';

-- Not SECURITY DEFINER on purpose: it reads the caller's search_path for the query, then calls
-- the definer function. Everything in it is schema-qualified.
CREATE FUNCTION dispatch.sweep(query text, task jsonb, key text DEFAULT NULL, spread interval DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE sql VOLATILE AS $$
  SELECT dispatch.sweep_as_caller($1, $2, $3, $4, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION dispatch.sweep(text, jsonb, text, interval) IS
  'Place one task per row of query (one SELECT, run as the caller with the caller''s search_path): task is a template whose {{column}} placeholders take the row''s values; key (a template too, default the template''s dispatch_key) skips rows whose key an unfinished task already has; spread spreads run_at evenly, with jitter, over that interval from the template''s run_at or now. All the tasks share one new run_id. All or nothing. Returns {"run_id", "created", "duplicates"}.';
