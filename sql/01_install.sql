-- 01_install: CREATE EXTENSION dispatch made every object of the contract, documented and
-- safe: the tables and the claim path's indexes, the three roles, a COMMENT on every function
-- and table, search_path pinned on every SECURITY DEFINER function, nothing executable by PUBLIC.
-- (pg_regress created the extension with --load-extension=dispatch.)
\pset null '(null)'

SELECT extname, extversion, extrelocatable, n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'dispatch';

-- The library is preloaded in this instance (test/dispatch.conf).
SELECT current_setting('shared_preload_libraries') AS preloaded;

-- Tables of DESIGN.md §1 (and the internal ones of doc/design.md).
SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class') IS NOT NULL AS has_comment
  FROM pg_class c
 WHERE c.relnamespace = 'dispatch'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
   AND NOT c.relispartition
 ORDER BY 1;

-- The columns of the contract, with their types.
SELECT table_name, column_name, data_type
  FROM information_schema.columns
 WHERE table_schema = 'dispatch'
   AND (table_name, column_name) IN (
     ('agents', 'agent_id'), ('agents', 'capabilities'), ('agents', 'capacity'),
     ('agents', 'running'), ('agents', 'status'), ('agents', 'traits'), ('agents', 'clearance'),
     ('agents', 'region'), ('agents', 'speed'), ('agents', 'owner_role'), ('agents', 'last_seen'),
     ('agents', 'attrs'),
     ('tasks', 'task_id'), ('tasks', 'tenant'), ('tasks', 'kind'), ('tasks', 'payload'),
     ('tasks', 'priority'), ('tasks', 'requires'), ('tasks', 'profile'), ('tasks', 'sensitivity'),
     ('tasks', 'region'), ('tasks', 'deadline'), ('tasks', 'est_duration'), ('tasks', 'session_ref'),
     ('tasks', 'run_at'), ('tasks', 'state'), ('tasks', 'agent_id'), ('tasks', 'attempts'),
     ('tasks', 'max_attempts'), ('tasks', 'lease_until'), ('tasks', 'dispatch_key'),
     ('tasks', 'run_id'), ('tasks', 'parent_id'), ('tasks', 'schedule_id'), ('tasks', 'depends_on'),
     ('tasks', 'result'), ('tasks', 'error'),
     ('tenants', 'tenant'), ('tenants', 'weight'), ('tenants', 'max_running'),
     ('tenants', 'max_queued'), ('tenants', 'credit_balance'),
     ('decisions', 'kind'), ('decisions', 'task_id'), ('decisions', 'agent_id'),
     ('decisions', 'policy_version'), ('decisions', 'score'), ('decisions', 'factors'),
     ('decisions', 'candidates'),
     ('policies', 'version'), ('policies', 'weights'), ('policies', 'active'))
 ORDER BY 1, 2;

-- The CHECK constraints of tasks and agents: one each, over every column they check.
SELECT conrelid::regclass AS "table", conname, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE conrelid IN ('dispatch.tasks'::regclass, 'dispatch.agents'::regclass) AND contype = 'c'
 ORDER BY 1, 2;
-- A row that breaks a rule is refused with the rule, whoever writes it (here, a row the row
-- trigger does not see: the constraint is checked on its own).
SELECT dispatch.task_row_check('urgent', 'ready', 0, NULL, 0, 3, 'cancel', NULL, false, 1, now(), NULL, NULL);
SELECT dispatch.task_row_check('normal', 'claimed', 0, NULL, 0, 3, 'cancel', NULL, false, 1, now(), NULL, NULL);
SELECT dispatch.task_row_check('normal', 'ready', 0, '-1 s', 0, 3, 'cancel', NULL, false, 1, now(), NULL, NULL);
SELECT dispatch.task_row_check('high', 'ready', 0, NULL, 0, 3, 'cancel', NULL, true, 1, now(), NULL, NULL);
SELECT dispatch.task_row_check('low', 'ready', 0, '1 s', 0, 3, 'run', 'session', true, 1, now(), NULL, NULL) AS ok;
SELECT dispatch.agent_row_check('', 1, 0, 'idle', 0, 1, '{}');
SELECT dispatch.agent_row_check('a', 1, 0, 'asleep', 0, 1, '{}');
SELECT dispatch.agent_row_check('a', 1, 0, 'idle', 0, 0, '{}');
SELECT dispatch.agent_row_check('a', 1, 0, 'idle', 0, 1, '{x,NULL}');
SELECT dispatch.agent_row_check('a', 1, 0, 'idle', 0, 1, '{x}') AS ok;
-- The whole-row form, which the constraints call, is STRICT: anyone may call it, and a NULL row
-- is an answer of NULL (nothing to check), not a crash.
SELECT dispatch.task_row_check(NULL::dispatch.tasks) AS task_null,
       dispatch.agent_row_check(NULL::dispatch.agents) AS agent_null;
SELECT dispatch.agent_row_check(ROW('a', '{}', 1, 0, 'asleep', NULL, 0, NULL, 1, 'x', now(), now(), now(), '{}')::dispatch.agents);
-- With triggers off (as when a logical replica applies rows), the constraints still refuse.
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO dispatch.tasks (kind, state, sig, skey) VALUES ('x', 'claimed', 1, now());
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO dispatch.agents (agent_id, running) VALUES ('a', -1);
ROLLBACK;

-- The claim path's indexes (doc/design.md §5-6) and the worker's.
SELECT pg_get_indexdef(indexrelid) AS definition
  FROM pg_index WHERE indrelid = 'dispatch.tasks'::regclass
 ORDER BY indexrelid::regclass::text;
SELECT pg_get_indexdef(indexrelid) AS definition
  FROM pg_index WHERE indrelid IN ('dispatch.agents'::regclass, 'dispatch.decisions'::regclass, 'dispatch.decisions_default'::regclass)
 ORDER BY indexrelid::regclass::text;

-- The three group roles, created by the install script, without login.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'dispatch\_%' ORDER BY 1;

-- The functions of the contract: result, then each named argument with its default.
SELECT p.proname, pg_get_function_result(p.oid) AS result, pronargs AS nargs
  FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace
   AND p.proname IN ('register_agent', 'heartbeat', 'deregister_agent', 'drain_agent', 'submit',
                     'dispatch_next', 'complete', 'fail', 'abort', 'cancel', 'release',
                     'extend_lease', 'tick', 'set_policy')
 ORDER BY 1, 3;
SELECT p.proname, a.n, a.argument
  FROM pg_proc p,
       regexp_split_to_table(pg_get_function_arguments(p.oid), ', ') WITH ORDINALITY AS a(argument, n)
 WHERE p.pronamespace = 'dispatch'::regnamespace
   AND p.proname IN ('register_agent', 'heartbeat', 'deregister_agent', 'submit', 'dispatch_next',
                     'complete', 'fail', 'abort', 'cancel', 'release', 'extend_lease')
 ORDER BY 1, p.pronargs, 2;

-- Every function in schema dispatch has a COMMENT (none listed).
SELECT p.oid::regprocedure AS function_without_comment
  FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT count(*) > 30 AS many_functions_checked
  FROM pg_proc WHERE pronamespace = 'dispatch'::regnamespace;

-- Every SECURITY DEFINER function pins search_path (none listed) ...
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, dispatch, pg_temp'], false);
-- ... and these are the SECURITY DEFINER functions.
SELECT p.proname AS security_definer, p.pronargs AS nargs, p.provolatile AS volatility
  FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace AND p.prosecdef
 ORDER BY 1, 2;

-- PUBLIC may read no table and execute only the vocabularies and row checks (pure functions of
-- their arguments that CHECK constraints and trigger WHEN clauses run as whoever writes a row).
SELECT p.oid::regprocedure AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'dispatch'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE');
SELECT c.relname AS public_may_read
  FROM pg_class c
 WHERE c.relnamespace = 'dispatch'::regnamespace AND c.relkind IN ('r', 'p', 'v')
   AND has_table_privilege('public', c.oid, 'SELECT');

-- The settings, with their defaults (the test instance sets database_name and naptime).
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'dispatch.%' ORDER BY 1;

-- One policy, active, every key at its default.
SELECT version, active, note, weights->'priority_bonus' AS priority_bonus,
       weights->'fair_candidates' AS fair_candidates
  FROM dispatch.policies;
SELECT dispatch.policy_version();
