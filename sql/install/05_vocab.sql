-- 05_vocab: the closed vocabularies of the tables (src/vocab.c) and the row checks of tasks and
-- agents (src/rowcheck.c), before the tables whose CHECK constraints and trigger WHEN clauses
-- use them. Functions, not IN lists: PostgreSQL re-reads
-- every CHECK and WHEN expression of a table at each statement, and a short call is far cheaper
-- to re-read than a long array constant (bench/callgrind_claim.sh; doc/design.md §4).
-- STRICT, so a NULL passes a CHECK as it would an IN list. Anyone may call them: a CHECK or a
-- WHEN clause runs them as whoever writes the row.

CREATE FUNCTION dispatch.is_task_state(state text) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_is_task_state';
COMMENT ON FUNCTION dispatch.is_task_state(text) IS
  'True for a task state: scheduled, ready, claimed (live), done, failed, dead, aborted, cancelled, shed, expired, timeout (finished).';

CREATE FUNCTION dispatch.is_live_state(state text) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_is_live_state';
COMMENT ON FUNCTION dispatch.is_live_state(text) IS
  'True for the states of a task not yet finished: scheduled, ready, claimed.';

CREATE FUNCTION dispatch.is_priority(priority text) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_is_priority';
COMMENT ON FUNCTION dispatch.is_priority(text) IS
  'True for a task priority: critical, high, normal, low.';

CREATE FUNCTION dispatch.is_agent_status(status text) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_is_agent_status';
COMMENT ON FUNCTION dispatch.is_agent_status(text) IS
  'True for an agent status: idle, busy, draining, lost, offline.';

CREATE FUNCTION dispatch.is_decision_kind(kind text) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_is_decision_kind';
COMMENT ON FUNCTION dispatch.is_decision_kind(text) IS
  'True for a kind of decision-log row: claim, release, retry, dead, failed, abort, cancel, requeue, lost, expire, shed, override, assign, timeout, deregister.';

-- The rules of a dispatch.tasks and a dispatch.agents row (src/rowcheck.c), over the columns they
-- check, raising SQLSTATE 23514 with the rule a row broke. The tables' CHECK constraints call the
-- same code through a whole-row form of these functions (10_tables.sql).
CREATE FUNCTION dispatch.task_row_check(priority text, state text, sensitivity int, est_duration interval,
    attempts int, max_attempts int, on_dependency_failure text, reservation text, shed_if_busy boolean,
    sig int, skey timestamptz, agent_id text, lease_until timestamptz) RETURNS boolean
  LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_task_row_check';
COMMENT ON FUNCTION dispatch.task_row_check(text, text, int, interval, int, int, text, text, boolean, int, timestamptz, text, timestamptz) IS
  'The rules of the CHECK of dispatch.tasks (tasks_row_check), over the columns given: true, or an error (23514) naming the rule they break.';

CREATE FUNCTION dispatch.agent_row_check(agent_id text, capacity int, running int, status text,
    clearance int, speed real, capabilities text[]) RETURNS boolean
  LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_agent_row_check';
COMMENT ON FUNCTION dispatch.agent_row_check(text, int, int, text, int, real, text[]) IS
  'The rules of the CHECK of dispatch.agents (agents_row_check), over the columns given: true, or an error (23514) naming the rule they break.';
