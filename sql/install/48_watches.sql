-- 48_watches: condition-bound tasks (doc/fanout.md §2). A watch is a pair of triggers with a WHEN
-- condition on the user's table (src/watch.c); when a row is inserted or updated so that the
-- condition becomes true, the task template is placed for that row.

CREATE TABLE dispatch.watches (
  watch_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL CONSTRAINT watches_name_key UNIQUE
              CONSTRAINT watches_name_check CHECK (name <> '' AND length(name) <= 200),
  source      regclass NOT NULL,
  condition   text NOT NULL,
  task        jsonb NOT NULL,
  key         text,
  record_key  name[],
  owner_role  name NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.watches IS
  'Condition-bound tasks: when a row of source is inserted or updated so that condition becomes true, task (a template) is placed for the row, as owner_role. Made by dispatch.watch(), removed by dispatch.unwatch().';
COMMENT ON COLUMN dispatch.watches.condition IS 'A boolean expression over the columns of source, as given; the triggers hold it parsed.';
COMMENT ON COLUMN dispatch.watches.key IS 'dispatch_key template; default watch:<watch_id>:<record_ref>, so a record has one unfinished task per watch.';
COMMENT ON COLUMN dispatch.watches.record_key IS 'The columns whose values, joined by commas, are the record_ref of each task (the primary key of source when the watch was made).';
-- The watches are user configuration: pg_dump keeps them (the triggers are dumped with the table).
SELECT pg_catalog.pg_extension_config_dump('dispatch.watches', '');
SELECT pg_catalog.pg_extension_config_dump('dispatch.watches_watch_id_seq', '');

CREATE FUNCTION dispatch.watch_create(source regclass, watch_id bigint, condition text, search_path text)
  RETURNS void
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'dispatch_watch_create';
COMMENT ON FUNCTION dispatch.watch_create(regclass, bigint, text, text) IS
  'Internal: creates the watch''s two triggers on source, as the caller, once the caller is known to own it.';

CREATE FUNCTION dispatch.watch_drop(source oid, watch_id bigint) RETURNS void
  LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'dispatch_watch_drop';
COMMENT ON FUNCTION dispatch.watch_drop(oid, bigint) IS
  'Internal: drops the watch''s triggers, if they still exist.';

CREATE FUNCTION dispatch.watch_as_caller(name text, source regclass, condition text, task jsonb,
                                         key text, search_path text)
  RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  id bigint;
  cols name[];
  pk name[];
  missing text;
BEGIN
  IF name IS NULL OR name = '' THEN
    RAISE EXCEPTION 'a watch needs a name' USING ERRCODE = CASE WHEN name IS NULL THEN '22004' ELSE '22023' END,
      HINT = 'Name it, for example ''qualified-leads''; unwatch() takes the name.';
  END IF;
  IF source IS NULL OR condition IS NULL OR btrim(condition) = '' THEN
    RAISE EXCEPTION 'a watch needs a table and a condition' USING ERRCODE = '22004',
      HINT = 'For example dispatch.watch(''qualified-leads'', ''leads'', $c$stage = ''qualified''$c$, ''{"kind": "research"}'').';
  END IF;
  PERFORM dispatch.check_template(task);
  cols := ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = source AND attnum > 0 AND NOT attisdropped);
  SELECT p INTO missing
    FROM unnest(dispatch.placeholders(task) || dispatch.placeholders(to_jsonb(coalesce(key, '')))) AS p
   WHERE p::name <> ALL (cols) LIMIT 1;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'task template placeholder {{%}} names no column of table %', missing, source
      USING ERRCODE = '42703', HINT = format('The columns are: %s.', array_to_string(cols, ', '));
  END IF;
  pk := ARRAY(SELECT a.attname FROM pg_index AS i
                JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
                JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = source AND i.indisprimary ORDER BY k.ord);
  IF cardinality(pk) = 0 THEN
    pk := NULL;
    IF key IS NULL THEN
      RAISE EXCEPTION 'table % has no primary key', source USING ERRCODE = '22023',
        HINT = 'Give key => a dispatch_key template from columns that identify the row, for example ''lead:{{email}}''.';
    END IF;
  END IF;
  BEGIN
    INSERT INTO dispatch.watches (name, source, condition, task, key, record_key, owner_role)
    VALUES (watch_as_caller.name, watch_as_caller.source, watch_as_caller.condition, watch_as_caller.task,
            watch_as_caller.key, pk, dispatch.caller())
    RETURNING watch_id INTO id;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'watch "%" already exists', name USING ERRCODE = '42710',
      HINT = 'Choose another name, or remove it first with dispatch.unwatch().';
  END;
  PERFORM dispatch.watch_create(source, id, condition, search_path);
END
$$;
COMMENT ON FUNCTION dispatch.watch_as_caller(text, regclass, text, jsonb, text, text) IS
  'Internal: watch() for the calling role, with the search_path the caller had.';

-- Not SECURITY DEFINER on purpose: the condition is parsed with the caller's search_path.
CREATE FUNCTION dispatch.watch(name text, source regclass, condition text, task jsonb, key text DEFAULT NULL)
  RETURNS void
  LANGUAGE sql VOLATILE AS $$
  SELECT dispatch.watch_as_caller($1, $2, $3, $4, $5, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION dispatch.watch(text, regclass, text, jsonb, text) IS
  'Place task (a template, or an array of cascade steps) for each row of source that is inserted, or updated, so that condition (a boolean expression over its columns) becomes true: once per transition. The caller must own source; the condition runs as a trigger WHEN clause with the writer''s privileges; the tasks belong to the caller. {{column}} placeholders take the row''s values; record_ref is the row''s primary key; key is a dispatch_key template (default watch:<watch_id>:<record_ref>: one unfinished task per record).';

CREATE FUNCTION dispatch.unwatch(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  w dispatch.watches;
BEGIN
  SELECT * INTO w FROM dispatch.watches AS x WHERE x.name = unwatch.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'watch "%" does not exist', name USING ERRCODE = '42704',
      HINT = 'SELECT name FROM dispatch.watches lists the watches.';
  END IF;
  IF NOT dispatch.may_act_as(w.owner_role)
     AND NOT pg_has_role(dispatch.caller(), (SELECT relowner FROM pg_class WHERE oid = w.source), 'USAGE') THEN
    RAISE EXCEPTION 'role "%" may not remove watch "%"', dispatch.caller(), name USING ERRCODE = '42501',
      DETAIL = format('The watch belongs to role "%s".', w.owner_role),
      HINT = 'The watch''s owner, the table''s owner, or a member of dispatch_admin may remove it.';
  END IF;
  PERFORM dispatch.watch_drop(w.source, w.watch_id);
  DELETE FROM dispatch.watches AS x WHERE x.watch_id = w.watch_id;
END
$$;
COMMENT ON FUNCTION dispatch.unwatch(text) IS
  'Remove a watch and its triggers (its owner, the table''s owner, or dispatch_admin). Tasks it placed are kept.';

-- The trigger function of every watch. SECURITY DEFINER: the writer of the row needs no rights on
-- dispatch; the task is placed for the watch's owner. It checks that the trigger calling it is
-- the watch's own, so a trigger made by hand cannot place tasks in someone else's name.
CREATE FUNCTION dispatch.watch_fire() RETURNS trigger
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, dispatch, pg_temp AS $$
DECLARE
  w dispatch.watches;
  row_data jsonb;
  ref text;
BEGIN
  SELECT * INTO w FROM dispatch.watches AS x WHERE x.watch_id = TG_ARGV[0]::bigint;
  IF NOT FOUND OR w.source <> TG_RELID
     OR TG_NAME NOT IN (format('dispatch_watch_%s_ins', w.watch_id), format('dispatch_watch_%s_upd', w.watch_id)) THEN
    RAISE EXCEPTION 'trigger "%" on % does not belong to a dispatch watch', TG_NAME, TG_RELID::regclass
      USING ERRCODE = '42501', HINT = 'Triggers that call dispatch.watch_fire() are made by dispatch.watch(); drop this one.';
  END IF;
  row_data := to_jsonb(NEW);
  IF w.record_key IS NOT NULL THEN
    SELECT string_agg(row_data ->> k, ',' ORDER BY o) INTO ref
      FROM unnest(w.record_key) WITH ORDINALITY AS u(k, o);
  END IF;
  PERFORM dispatch.place(w.task, row_data, w.owner_role,
                         CASE WHEN w.key IS NULL THEN format('watch:%s:%s', w.watch_id, ref)
                              ELSE dispatch.render_text(w.key, row_data) END,
                         ref);
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch.watch_fire() IS
  'Internal: the trigger function of a watch; places the watch''s template for the row that made its condition true.';
