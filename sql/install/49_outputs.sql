-- 49_outputs: a task's output contract (doc/fanout.md §6). outputs is a JSON array of
-- {"name", "type", "required", "bind"}: complete() refuses a result that breaks it, and writes
-- each bound output into a column of a user table, as the task's owner, in the same transaction.

CREATE FUNCTION dispatch.output_types() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, dispatch, pg_temp AS $$
  SELECT ARRAY['string', 'number', 'integer', 'boolean', 'object', 'array', 'any']
$$;
COMMENT ON FUNCTION dispatch.output_types() IS 'The types an output may declare (JSON types, plus integer and any).';

-- Internal: checks the contract when a task is written, and stores it complete: each output
-- with its type and required flag, each bind with a schema-qualified table and its key column.
CREATE FUNCTION dispatch.outputs_normalize() RETURNS trigger
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  o jsonb;
  b jsonb;
  normalized jsonb := '[]';
  names text[] := '{}';
  nm text;
  f text;
  parts text[];
  rel regclass;
  key_col name;
BEGIN
  IF jsonb_typeof(NEW.outputs) <> 'array' THEN
    RAISE EXCEPTION 'outputs must be a JSON array, not %', jsonb_typeof(NEW.outputs) USING ERRCODE = '22023',
      HINT = 'For example [{"name": "score", "type": "number", "required": true}].';
  END IF;
  FOR o IN SELECT value FROM jsonb_array_elements(NEW.outputs) LOOP
    IF jsonb_typeof(o) <> 'object' THEN
      RAISE EXCEPTION 'each output must be a JSON object, not %', jsonb_typeof(o) USING ERRCODE = '22023',
        HINT = 'An output is {"name": ..., "type": ..., "required": ..., "bind": ...}.';
    END IF;
    SELECT k INTO f FROM jsonb_object_keys(o) AS k WHERE k NOT IN ('name', 'type', 'required', 'bind') LIMIT 1;
    IF f IS NOT NULL THEN
      RAISE EXCEPTION 'unknown key "%" in an output', f USING ERRCODE = '22023',
        HINT = 'An output has name, type, required and bind.';
    END IF;
    nm := o ->> 'name';
    IF jsonb_typeof(o -> 'name') IS DISTINCT FROM 'string' OR nm = '' THEN
      RAISE EXCEPTION 'every output needs a name' USING ERRCODE = '22023',
        HINT = 'Name it as the result''s key, for example "score".';
    END IF;
    IF nm = ANY (names) THEN
      RAISE EXCEPTION 'output "%" is declared twice', nm USING ERRCODE = '22023';
    END IF;
    names := names || nm;
    IF NOT coalesce(o ->> 'type', 'any') = ANY (dispatch.output_types()) THEN
      RAISE EXCEPTION 'output "%" has an unknown type "%"', nm, o ->> 'type' USING ERRCODE = '22023',
        HINT = format('The types are %s.', array_to_string(dispatch.output_types(), ', '));
    END IF;
    IF o ? 'required' AND jsonb_typeof(o -> 'required') <> 'boolean' THEN
      RAISE EXCEPTION 'required of output "%" must be true or false', nm USING ERRCODE = '22023';
    END IF;
    o := jsonb_build_object('name', nm, 'type', coalesce(o ->> 'type', 'any'),
                            'required', coalesce((o ->> 'required')::boolean, false))
         || CASE WHEN o ? 'bind' THEN jsonb_build_object('bind', o -> 'bind') ELSE '{}' END;
    IF o ? 'bind' THEN
      b := o -> 'bind';
      SELECT k INTO f FROM jsonb_object_keys(CASE WHEN jsonb_typeof(b) = 'object' THEN b ELSE '{}' END) AS k
       WHERE k NOT IN ('table', 'column', 'key', 'key_column') LIMIT 1;
      IF jsonb_typeof(b) <> 'object' OR f IS NOT NULL OR NOT b ? 'table' OR NOT b ? 'column' THEN
        RAISE EXCEPTION 'the bind of output "%" must be {"table", "column", "key"}', nm USING ERRCODE = '22023',
          HINT = 'For example {"table": "leads", "column": "score", "key": "record_ref"}; key_column defaults to the table''s primary key.';
      END IF;
      IF coalesce(b ->> 'key', 'record_ref') <> 'record_ref' THEN
        RAISE EXCEPTION 'the bind of output "%" has key "%"; only record_ref is supported', nm, b ->> 'key'
          USING ERRCODE = '22023', HINT = 'The row written is the one whose key column equals the task''s record_ref.';
      END IF;
      IF NEW.record_ref IS NULL THEN
        RAISE EXCEPTION 'output "%" is bound to a table, but the task has no record_ref', nm USING ERRCODE = '22023',
          HINT = 'Give the task a record_ref: the key of the row its output is written to.';
      END IF;
      -- An unqualified table is looked up as with the default search_path: the owner's schema, then public.
      parts := parse_ident(b ->> 'table');
      rel := CASE WHEN cardinality(parts) = 2 THEN to_regclass(format('%I.%I', parts[1], parts[2]))
                  ELSE coalesce(to_regclass(format('%I.%I', NEW.owner_role, parts[1])),
                                to_regclass(format('public.%I', parts[1]))) END;
      IF rel IS NULL THEN
        RAISE EXCEPTION 'table "%" of output "%" does not exist', b ->> 'table', nm USING ERRCODE = '42P01',
          HINT = 'Name the table as schema.table, or a table in the owner''s schema or in public.';
      END IF;
      IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = rel AND attname = b ->> 'column'
                                                 AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', b ->> 'column', rel USING ERRCODE = '42703',
          HINT = format('Output "%s" is bound to it.', nm);
      END IF;
      key_col := b ->> 'key_column';
      IF key_col IS NULL THEN
        SELECT CASE WHEN count(*) = 1 THEN min(a.attname) END INTO key_col
          FROM pg_index AS i JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = rel AND i.indisprimary;
        IF key_col IS NULL THEN
          RAISE EXCEPTION 'table % has no single-column primary key to bind output "%" by', rel, nm
            USING ERRCODE = '22023', HINT = 'Give "key_column": the column that holds the task''s record_ref.';
        END IF;
      ELSIF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = rel AND attname = key_col
                                                    AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', key_col, rel USING ERRCODE = '42703',
          HINT = format('It is the key_column of output "%s".', nm);
      END IF;
      IF NOT has_column_privilege(NEW.owner_role, rel, b ->> 'column', 'UPDATE')
         OR NOT has_column_privilege(NEW.owner_role, rel, key_col, 'SELECT') THEN
        RAISE EXCEPTION 'role "%" may not write column % of table %', NEW.owner_role, b ->> 'column', rel
          USING ERRCODE = '42501',
                HINT = 'A bound output is written with the privileges of the task''s owner: grant it UPDATE on the column and SELECT on the key column.';
      END IF;
      o := o || jsonb_build_object('bind', jsonb_build_object(
             'table', (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class AS c
                         JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = rel),
             'column', b ->> 'column', 'key', 'record_ref', 'key_column', key_col));
    END IF;
    normalized := normalized || jsonb_build_array(o);
  END LOOP;
  NEW.outputs := normalized;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION dispatch.outputs_normalize() IS
  'Internal, BEFORE INSERT OR UPDATE on dispatch.tasks with outputs: checks the output contract (names, types, binds to existing columns the owner may write) and stores it complete, tables schema-qualified.';

-- Not while a dump is restored: the contract was stored complete, and the grants it checks on
-- the bound tables are restored after the rows.
CREATE TRIGGER outputs_normalize BEFORE INSERT OR UPDATE OF outputs, record_ref, owner_role ON dispatch.tasks
  FOR EACH ROW WHEN (NEW.outputs IS NOT NULL AND NOT dispatch.restoring())
  EXECUTE FUNCTION dispatch.outputs_normalize();

CREATE FUNCTION dispatch.check_result(task_id bigint, outputs jsonb, result jsonb) RETURNS void
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  o jsonb;
  v jsonb;
  t text;
  problem text;
BEGIN
  FOR o IN SELECT value FROM jsonb_array_elements(coalesce(outputs, '[]')) LOOP
    v := CASE WHEN jsonb_typeof(result) = 'object' THEN result -> (o ->> 'name') END;
    t := o ->> 'type';
    IF v IS NULL OR v = 'null' THEN
      IF (o ->> 'required')::boolean THEN
        problem := CASE WHEN jsonb_typeof(result) IS DISTINCT FROM 'object'
                        THEN format('the result must be a JSON object with output "%s"', o ->> 'name')
                        ELSE format('output "%s" is required', o ->> 'name') END;
      END IF;
    ELSIF t <> 'any' AND NOT (jsonb_typeof(v) = t
                              OR (t = 'integer' AND jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric))) THEN
      problem := format('output "%s" must be %s %s, not %s', o ->> 'name',
                        CASE WHEN t IN ('integer', 'object', 'array') THEN 'an' ELSE 'a' END, t, jsonb_typeof(v));
    END IF;
    IF problem IS NOT NULL THEN
      RAISE EXCEPTION 'result of task % breaks its output contract: %', task_id, problem
        USING ERRCODE = '22023',
              DETAIL = format('The task declares the output %s.', o),
              HINT = 'Complete it with a result that fits, or fail it; the task keeps its lease meanwhile.';
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch.check_result(bigint, jsonb, jsonb) IS
  'Checks a result against an output contract: every required output present (not null), every present output of its declared type. Raises 22023 naming the first problem.';

CREATE FUNCTION dispatch.write_output(tbl regclass, col name, key_col name, key text, value jsonb, as_role name)
  RETURNS bigint
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'dispatch_write_output';
COMMENT ON FUNCTION dispatch.write_output(regclass, name, name, text, jsonb, name) IS
  'Internal: UPDATE tbl SET col = value WHERE key_col = key, run as as_role (never as the extension owner). Returns the rows written.';

-- Internal: after complete(), each bound output present in the result goes to its table.
CREATE FUNCTION dispatch.bind_outputs(t dispatch.tasks, result jsonb) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  o jsonb;
  n bigint;
BEGIN
  FOR o IN SELECT value FROM jsonb_array_elements(coalesce(t.outputs, '[]'))
            WHERE value ? 'bind' AND jsonb_typeof(result) = 'object' AND result ? (value ->> 'name') LOOP
    n := dispatch.write_output((o -> 'bind' ->> 'table')::regclass, (o -> 'bind' ->> 'column')::name,
                               (o -> 'bind' ->> 'key_column')::name, t.record_ref,
                               CASE WHEN result -> (o ->> 'name') = 'null' THEN NULL ELSE result -> (o ->> 'name') END,
                               t.owner_role);
    IF n = 0 THEN
      RAISE WARNING 'output "%" of task % was not written: % has no row with % = %', o ->> 'name', t.task_id,
        o -> 'bind' ->> 'table', o -> 'bind' ->> 'key_column', t.record_ref
        USING HINT = 'The record may have been deleted; the task is completed and its result kept.';
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION dispatch.bind_outputs(dispatch.tasks, jsonb) IS
  'Internal: writes each bound output of a completed task into its table column, as the task''s owner; a missing record is a warning.';
