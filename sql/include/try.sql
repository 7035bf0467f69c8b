-- try.sql: the error-showing helper shared by the pg_regress files (\i sql/include/try.sql:
-- pg_regress feeds a file to psql on stdin from the tree's top) and the pgTAP suites
-- (\ir ../../sql/include/try.sql); not a test itself.
-- try(stmt) runs a statement and returns 'ok', or its error as 'SQLSTATE: message (hint: ...)'.
-- Task ids depend on what ran before, so 'task <id>' in a message shows as 'task N'.
CREATE OR REPLACE FUNCTION public.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; hint text;
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
  RETURN st || ': ' || regexp_replace(msg, 'task \d+', 'task N', 'g')
         || coalesce(' (hint: ' || nullif(hint, '') || ')', '');
END $$;
