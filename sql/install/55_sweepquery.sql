-- 55_sweepquery: a schedule's sweep query, checked when the schedule is stored, as the schedule's
-- owner role with the search_path stored with it (src/sweep.c, through src/runas.c). At each fire it runs through
-- dispatch.place_sweep() (47_placement.sql). Internal: the caller chooses the role, so it is
-- granted to nobody.

CREATE FUNCTION dispatch.sweep_check(query text, run_as name, search_path text) RETURNS text[]
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'dispatch_sweep_check';
COMMENT ON FUNCTION dispatch.sweep_check(text, name, text) IS
  'Internal: returns the names of the columns the query returns, and raises an error unless query is exactly one SELECT (no INTO, no FOR UPDATE/SHARE, no data-modifying WITH) that parses and analyses as role run_as with that search_path: 42601 for a syntax error, 42P01/42703 for unknown tables or columns, 22023 for anything but one SELECT.';
