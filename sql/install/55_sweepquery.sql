-- 55_sweepquery: a schedule's sweep query, checked when it is stored and run when the schedule
-- fires, always as the schedule's owner role with the search_path stored with it (src/runas.c).
-- Internal: whoever calls these chooses the role, so they are granted to nobody.

CREATE FUNCTION dispatch.sweep_check(query text, run_as name, search_path text) RETURNS void
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'dispatch_sweep_check';
COMMENT ON FUNCTION dispatch.sweep_check(text, name, text) IS
  'Internal: raises an error unless query is exactly one SELECT (no INTO, no FOR UPDATE/SHARE, no data-modifying WITH) that parses and analyses as role run_as with that search_path: 42601 for a syntax error, 42P01/42703 for unknown tables or columns, 22023 for anything but one SELECT.';

CREATE FUNCTION dispatch.sweep_query(run_as name, search_path text, query text) RETURNS SETOF jsonb
  LANGUAGE c VOLATILE ROWS 100 AS 'MODULE_PATHNAME', 'dispatch_sweep_query';
COMMENT ON FUNCTION dispatch.sweep_query(name, text, text) IS
  'Internal: runs the one SELECT in query as role run_as (SECURITY_RESTRICTED_OPERATION, search_path pinned; both restored on error) and returns each row as a jsonb object.';
