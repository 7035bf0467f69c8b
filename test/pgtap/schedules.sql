-- schedules.sql (pgTAP): the shape of standing orders. The columns DESIGN.md §1 names for
-- dispatch.schedules and dispatch.fires with their types, the uniqueness that makes a fire
-- happen once, the tick's partial index, the triggers (the outcome trigger only for scheduled
-- tasks), and who may call what: operators schedule, readers forecast, nobody calls the
-- internals (fire_*, sweep_check: they choose the role a query runs as).
BEGIN;
SELECT plan(107);

SELECT has_table('dispatch', t, 'table dispatch.' || t || ' exists') FROM unnest(ARRAY['schedules', 'fires']) AS t;
SELECT col_is_pk('dispatch', 'schedules', 'schedule_id', 'schedules.schedule_id is the primary key');
SELECT col_is_pk('dispatch', 'fires', ARRAY['schedule_id', 'scheduled_for'],
                 'a fire is unique per (schedule_id, scheduled_for)');

CREATE TEMP TABLE contract_columns (tbl name, col name, typ text);
INSERT INTO contract_columns VALUES
  ('schedules', 'name', 'text'), ('schedules', 'tenant', 'text'), ('schedules', 'spec', 'text'),
  ('schedules', 'timezone', 'text'), ('schedules', 'task', 'jsonb'), ('schedules', 'sweep', 'text'),
  ('schedules', 'concurrency', 'text'), ('schedules', 'jitter', 'interval'), ('schedules', 'enabled', 'boolean'),
  ('schedules', 'starts_at', 'timestamp with time zone'), ('schedules', 'ends_at', 'timestamp with time zone'),
  ('schedules', 'next_fire_at', 'timestamp with time zone'), ('schedules', 'consecutive_failures', 'integer'),
  ('schedules', 'max_failures', 'integer'), ('schedules', 'status', 'text'), ('schedules', 'owner_role', 'name'),
  ('schedules', 'deleted_at', 'timestamp with time zone'), ('schedules', 'catch_up', 'text'),
  ('schedules', 'cost_per_fire', 'numeric'), ('schedules', 'record_ref', 'text'),
  ('schedules', 'anchor', 'timestamp with time zone'), ('schedules', 'pause_reason', 'text'),
  ('fires', 'schedule_id', 'bigint'), ('fires', 'scheduled_for', 'timestamp with time zone'),
  ('fires', 'fired_at', 'timestamp with time zone'), ('fires', 'task_id', 'bigint'), ('fires', 'status', 'text'),
  ('fires', 'run_id', 'uuid'), ('fires', 'due_at', 'timestamp with time zone');
SELECT has_column('dispatch', tbl, col, tbl || '.' || col || ' exists') FROM contract_columns;
SELECT col_type_is('dispatch', tbl, col, typ, tbl || '.' || col || ' is ' || typ) FROM contract_columns;

-- The tick's way in: a partial B-tree on next_fire_at over active schedules only.
SELECT has_index('dispatch', 'schedules', 'schedules_due_idx', ARRAY['next_fire_at']);
SELECT is(pg_get_expr(indpred, indrelid), '(status = ''active''::text)', 'schedules_due_idx holds active schedules only')
  FROM pg_index WHERE indexrelid = 'dispatch.schedules_due_idx'::regclass;
SELECT index_is_unique('dispatch', 'schedules', 'schedules_name_idx');
SELECT index_is_unique('dispatch', 'fires', 'fires_run_idx');

SELECT has_trigger('dispatch', 'schedules', 'schedule_row', 'schedules are validated by a row trigger');
SELECT has_trigger('dispatch', 'tasks', 'schedule_task_finished', 'task outcomes reach their schedule');
-- It fires on every change of state; its C function returns at once for tasks no schedule made
-- (src/schedfinish.c), which the outcome tests below rely on.
SELECT is(pg_get_triggerdef(t.oid) || ' / ' || l.lanname,
          'CREATE TRIGGER schedule_task_finished AFTER UPDATE OF state ON dispatch.tasks FOR EACH ROW EXECUTE FUNCTION dispatch.schedule_task_finished() / c',
          'the outcome trigger fires on a change of state, and tests in C whether the task is a schedule''s')
  FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid JOIN pg_language AS l ON l.oid = p.prolang
 WHERE t.tgname = 'schedule_task_finished';

SELECT function_privs_are('dispatch', f.name, f.args, r.role,
         CASE WHEN r.role = ANY (f.granted) THEN ARRAY['EXECUTE'] ELSE ARRAY[]::name[] END)
  FROM (VALUES
    ('schedule', ARRAY['text', 'text', 'jsonb', 'text', 'text', 'text', 'interval', 'timestamp with time zone',
                       'timestamp with time zone', 'boolean', 'text', 'numeric', 'text'], ARRAY['dispatch_admin']),
    ('unschedule', ARRAY['text', 'text'], ARRAY['dispatch_admin']),
    ('pause', ARRAY['text', 'text'], ARRAY['dispatch_admin']),
    ('resume', ARRAY['text', 'text'], ARRAY['dispatch_admin']),
    ('forecast', ARRAY['text', 'interval'], ARRAY['dispatch_reader', 'dispatch_admin']),
    ('next_fire', ARRAY['text', 'timestamp with time zone', 'text', 'timestamp with time zone'],
       ARRAY['dispatch_agent', 'dispatch_reader', 'dispatch_admin']),
    ('count_fires', ARRAY['text', 'timestamp with time zone', 'timestamp with time zone', 'text', 'timestamp with time zone'],
       ARRAY['dispatch_agent', 'dispatch_reader', 'dispatch_admin']),
    ('fire_due', ARRAY['integer', 'timestamp with time zone', 'interval'], ARRAY[]::name[]),
    ('fire_sweep', ARRAY['dispatch.schedules', 'uuid', 'timestamp with time zone'], ARRAY[]::name[]),
    ('place_sweep', ARRAY['name', 'text', 'text', 'jsonb', 'text', 'interval', 'bigint'], ARRAY[]::name[]),
    ('sweep_check', ARRAY['text', 'name', 'text'], ARRAY[]::name[])
  ) AS f(name, args, granted)
  CROSS JOIN unnest(ARRAY['dispatch_agent', 'dispatch_reader', 'dispatch_admin']::name[]) AS r(role);

SELECT table_privs_are('dispatch', 'schedules', 'dispatch_admin', ARRAY['INSERT', 'SELECT']);
SELECT table_privs_are('dispatch', 'fires', 'dispatch_admin', ARRAY['SELECT']);
SELECT table_privs_are('dispatch', t, 'dispatch_agent', ARRAY[]::name[]) FROM unnest(ARRAY['schedules', 'fires']) AS t;
SELECT is(count(*)::int, 0, 'dispatch_admin may not UPDATE next_fire_at, owner_role or status')
  FROM unnest(ARRAY['next_fire_at', 'owner_role', 'status', 'deleted_at', 'consecutive_failures']) AS c
 WHERE has_column_privilege('dispatch_admin', 'dispatch.schedules', c, 'UPDATE');

SELECT * FROM finish();
ROLLBACK;
