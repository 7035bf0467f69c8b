-- schema.sql (pgTAP): the shape of the contract. Tables and columns with their types, the
-- claim path's indexes (columns and partial predicates), the triggers, and who may execute
-- which function: dispatch_agent the agent and submitter functions, dispatch_reader only the
-- read-only ones, dispatch_admin everything; PUBLIC nothing.
BEGIN;
SELECT plan(254);

SELECT has_schema('dispatch');
SELECT has_table('dispatch', t, 'table dispatch.' || t || ' exists')
  FROM unnest(ARRAY['agents', 'tasks', 'tenants', 'decisions', 'policies', 'signatures']) AS t;
SELECT col_is_pk('dispatch', 'tasks', 'task_id', 'tasks.task_id is the primary key');
SELECT col_is_pk('dispatch', 'agents', 'agent_id', 'agents.agent_id is the primary key');
SELECT col_is_pk('dispatch', 'tenants', 'tenant', 'tenants.tenant is the primary key');
SELECT col_is_pk('dispatch', 'policies', 'version', 'policies.version is the primary key');

-- Columns of DESIGN.md §1, each present and of its type.
CREATE TEMP TABLE contract_columns (tbl name, col name, typ text);
INSERT INTO contract_columns VALUES
    ('agents', 'agent_id', 'text'), ('agents', 'capabilities', 'text[]'), ('agents', 'capacity', 'integer'),
    ('agents', 'running', 'integer'), ('agents', 'status', 'text'), ('agents', 'traits', 'real[]'),
    ('agents', 'clearance', 'integer'), ('agents', 'region', 'text'), ('agents', 'speed', 'real'),
    ('agents', 'owner_role', 'name'), ('agents', 'last_seen', 'timestamp with time zone'),
    ('agents', 'attrs', 'jsonb'),
    ('tasks', 'task_id', 'bigint'), ('tasks', 'tenant', 'text'), ('tasks', 'kind', 'text'),
    ('tasks', 'payload', 'jsonb'), ('tasks', 'priority', 'text'), ('tasks', 'requires', 'text[]'),
    ('tasks', 'profile', 'real[]'), ('tasks', 'sensitivity', 'integer'), ('tasks', 'region', 'text'),
    ('tasks', 'deadline', 'timestamp with time zone'), ('tasks', 'est_duration', 'interval'),
    ('tasks', 'session_ref', 'text'), ('tasks', 'run_at', 'timestamp with time zone'),
    ('tasks', 'state', 'text'), ('tasks', 'agent_id', 'text'), ('tasks', 'attempts', 'integer'),
    ('tasks', 'max_attempts', 'integer'), ('tasks', 'lease_until', 'timestamp with time zone'),
    ('tasks', 'dispatch_key', 'text'), ('tasks', 'run_id', 'uuid'), ('tasks', 'parent_id', 'bigint'),
    ('tasks', 'schedule_id', 'bigint'), ('tasks', 'depends_on', 'bigint[]'), ('tasks', 'result', 'jsonb'),
    ('tasks', 'error', 'text'), ('tasks', 'sig', 'integer'), ('tasks', 'skey', 'timestamp with time zone'),
    ('tasks', 'lst', 'timestamp with time zone'), ('tasks', 'urgent_at', 'timestamp with time zone'),
    ('tasks', 'cost', 'real'),
    ('tenants', 'tenant', 'text'), ('tenants', 'weight', 'real'), ('tenants', 'max_running', 'integer'),
    ('tenants', 'max_queued', 'integer'), ('tenants', 'credit_balance', 'numeric'),
    ('decisions', 'kind', 'text'), ('decisions', 'task_id', 'bigint'), ('decisions', 'agent_id', 'text'),
    ('decisions', 'policy_version', 'integer'), ('decisions', 'score', 'double precision'),
    ('decisions', 'factors', 'jsonb'), ('decisions', 'candidates', 'integer'),
    ('policies', 'weights', 'jsonb'), ('policies', 'active', 'boolean');
SELECT has_column('dispatch', tbl, col, tbl || '.' || col || ' exists') FROM contract_columns;
SELECT col_type_is('dispatch', tbl, col, typ, tbl || '.' || col || ' is ' || typ) FROM contract_columns;
SELECT col_not_null('dispatch', 'tasks', c, 'tasks.' || c || ' is NOT NULL') FROM unnest(ARRAY['tenant', 'kind', 'payload', 'priority', 'requires', 'state']) AS c;
-- One CHECK per table covers every rule of the row (src/rowcheck.c): it names these columns.
-- The rules are CHECK constraints too (of the whole row, src/rowcheck.c): they hold with the
-- row triggers off.
SET session_replication_role = replica;
SELECT throws_ok($$INSERT INTO dispatch.tasks (kind, priority) VALUES ('k', 'urgent')$$, '23514',
                 NULL, 'tasks.priority has a CHECK');
SELECT throws_ok($$INSERT INTO dispatch.tasks (kind, state) VALUES ('k', 'sleeping')$$, '23514',
                 NULL, 'tasks.state has a CHECK');
SELECT throws_ok($$INSERT INTO dispatch.agents (agent_id, capacity) VALUES ('a', -1)$$, '23514',
                 NULL, 'agents.capacity has a CHECK');
RESET session_replication_role;

-- The indexes of dispatch.tasks: exactly these.
SELECT indexes_are('dispatch', 'tasks', ARRAY['tasks_pkey', 'tasks_ready_idx', 'tasks_reserved_idx',
  'tasks_urgent_idx', 'tasks_scheduled_idx', 'tasks_claimed_idx', 'tasks_finished_idx', 'tasks_deadline_idx',
  'tasks_dispatch_key_idx', 'tasks_parent_idx', 'tasks_run_idx',
  'tasks_shed_if_busy_idx', 'tasks_waiting_idx']);
-- The claim path's: their columns, B-tree, and their partial predicates.
SELECT has_index('dispatch', 'tasks', 'tasks_ready_idx', ARRAY['sig', 'tenant', 'skey', 'task_id']);
SELECT has_index('dispatch', 'tasks', 'tasks_reserved_idx', ARRAY['reserved_for', 'skey', 'task_id']);
SELECT has_index('dispatch', 'tasks', 'tasks_urgent_idx', ARRAY['sig', 'urgent_at', 'task_id']);
SELECT has_index('dispatch', 'tasks', 'tasks_claimed_idx', ARRAY['lease_until']);
SELECT has_index('dispatch', 'tasks', 'tasks_scheduled_idx', ARRAY['run_at']);
SELECT index_is_type('dispatch', 'tasks', i, 'btree')
  FROM unnest(ARRAY['tasks_ready_idx', 'tasks_reserved_idx', 'tasks_urgent_idx', 'tasks_claimed_idx']) AS i;
SELECT is(pg_get_expr(x.indpred, x.indrelid), pred, 'index ' || i || ' holds only ' || pred)
  FROM (VALUES
    ('tasks_ready_idx', '((state = ''ready''::text) AND (reserved_for IS NULL))'),
    ('tasks_reserved_idx', '((state = ''ready''::text) AND (reserved_for IS NOT NULL))'),
    ('tasks_urgent_idx', '((state = ''ready''::text) AND (urgent_at IS NOT NULL))'),
    ('tasks_scheduled_idx', '(state = ''scheduled''::text)'),
    ('tasks_claimed_idx', '(state = ''claimed''::text)')) AS p(i, pred)
  LEFT JOIN pg_index x ON x.indexrelid = ('dispatch.' || p.i)::regclass;
SELECT indexes_are('dispatch', 'agents', ARRAY['agents_pkey']);
-- The log's indexes are the default partition's, copied into each day partition (10_tables.sql).
SELECT has_index('dispatch', 'decisions_default', 'decisions_task_idx', ARRAY['task_id', 'at']);

-- The row trigger that derives the claim path's columns, and the decision log's guard.
SELECT has_trigger('dispatch', 'tasks', 'task_row', 'tasks has the task_row trigger');
SELECT trigger_is('dispatch', 'tasks', 'task_row', 'dispatch', 'task_row');
SELECT has_trigger('dispatch', 'decisions', 'append_only', 'decisions has the append_only trigger');
SELECT is_partitioned('dispatch', 'decisions', 'the decision log is partitioned');

-- Roles.
SELECT has_role(r) FROM unnest(ARRAY['dispatch_admin', 'dispatch_agent', 'dispatch_reader']) AS r;

-- Function privileges, for each of the three roles.
SELECT function_privs_are('dispatch', f.name, f.args, r.role,
         CASE WHEN r.role = ANY (f.granted) THEN ARRAY['EXECUTE'] ELSE ARRAY[]::name[] END)
  FROM (VALUES
    ('dispatch_next', ARRAY['text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('dispatch_next', ARRAY['text', 'integer'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('complete', ARRAY['bigint', 'jsonb', 'text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('fail', ARRAY['bigint', 'text', 'boolean', 'text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('abort', ARRAY['bigint', 'text', 'text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('release', ARRAY['bigint', 'text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('extend_lease', ARRAY['bigint', 'interval', 'text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('cancel', ARRAY['bigint'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('heartbeat', ARRAY['text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('drain_agent', ARRAY['text', 'boolean'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('deregister_agent', ARRAY['text'], ARRAY['dispatch_agent', 'dispatch_admin']),
    ('register_agent', ARRAY['text', 'text[]', 'integer', 'real[]', 'integer', 'text', 'real', 'jsonb', 'name'],
       ARRAY['dispatch_agent', 'dispatch_admin']),
    ('submit', ARRAY['text', 'jsonb', 'text', 'text', 'text[]', 'timestamp with time zone', 'interval',
                     'text', 'timestamp with time zone', 'text', 'real[]', 'integer', 'text', 'integer',
                     'bigint', 'bigint[]', 'text', 'text', 'uuid', 'jsonb', 'boolean'],
       ARRAY['dispatch_agent', 'dispatch_admin']),
    ('set_policy', ARRAY['jsonb', 'text'], ARRAY['dispatch_admin']),
    ('tick', ARRAY[]::name[], ARRAY['dispatch_admin']),
    ('rebuild_queue_map', ARRAY[]::name[], ARRAY['dispatch_admin']),
    ('queue_map', ARRAY[]::name[], ARRAY['dispatch_reader', 'dispatch_admin']),
    ('virtual_time', ARRAY[]::name[], ARRAY['dispatch_reader', 'dispatch_admin']),
    ('policy_version', ARRAY[]::name[], ARRAY['dispatch_agent', 'dispatch_reader', 'dispatch_admin']),
    -- Internal helpers: nobody calls them directly.
    ('task_for_holder', ARRAY['bigint', 'text', 'text'], ARRAY[]::name[]),
    ('agent_for_caller', ARRAY['text', 'boolean'], ARRAY[]::name[]),
    ('log_decision', ARRAY['text', 'bigint', 'text', 'text', 'text', 'jsonb'], ARRAY[]::name[]),
    ('promote_due', ARRAY['integer'], ARRAY[]::name[]),
    ('requeue_expired', ARRAY['integer'], ARRAY[]::name[]),
    ('requeue_lost_agents', ARRAY[]::name[], ARRAY[]::name[])
  ) AS f(name, args, granted)
  CROSS JOIN unnest(ARRAY['dispatch_agent', 'dispatch_reader', 'dispatch_admin']::name[]) AS r(role);

-- Table privileges.
SELECT table_privs_are('dispatch', t, 'dispatch_reader', ARRAY['SELECT'])
  FROM unnest(ARRAY['tasks', 'agents', 'decisions', 'tenants', 'policies']) AS t;
SELECT table_privs_are('dispatch', t, 'dispatch_agent', ARRAY[]::name[])
  FROM unnest(ARRAY['tasks', 'agents', 'decisions', 'tenants', 'policies']) AS t;
SELECT table_privs_are('dispatch', 'tasks', 'dispatch_admin', ARRAY['INSERT', 'SELECT']);
SELECT table_privs_are('dispatch', 'decisions', 'dispatch_admin', ARRAY['SELECT']);
SELECT table_privs_are('dispatch', 'agents', 'dispatch_admin', ARRAY['SELECT']);

-- SECURITY DEFINER where it acts for the caller, with search_path pinned.
SELECT is_definer('dispatch', f, a)
  FROM (VALUES ('dispatch_next', ARRAY['text']), ('complete', ARRAY['bigint', 'jsonb', 'text']),
               ('fail', ARRAY['bigint', 'text', 'boolean', 'text']), ('heartbeat', ARRAY['text'])) AS d(f, a);
SELECT is(count(*)::int, 0, 'every SECURITY DEFINER function pins search_path')
  FROM pg_proc WHERE pronamespace = 'dispatch'::regnamespace AND prosecdef
   AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, dispatch, pg_temp'], false);
SELECT volatility_is('dispatch', 'dispatch_next', ARRAY['text'], 'volatile');
SELECT isnt_strict('dispatch', 'dispatch_next', ARRAY['text'],
                   'dispatch_next(text) is not STRICT: a NULL agent_id is an error, not a NULL');
SELECT function_returns('dispatch', 'dispatch_next', ARRAY['text'], 'dispatch.tasks');
SELECT function_returns('dispatch', 'dispatch_next', ARRAY['text', 'integer'], 'setof dispatch.tasks');
SELECT function_returns('dispatch', 'submit',
  ARRAY['text', 'jsonb', 'text', 'text', 'text[]', 'timestamp with time zone', 'interval',
        'text', 'timestamp with time zone', 'text', 'real[]', 'integer', 'text', 'integer',
        'bigint', 'bigint[]', 'text', 'text', 'uuid', 'jsonb', 'boolean'], 'bigint');

SELECT * FROM finish();
ROLLBACK;
