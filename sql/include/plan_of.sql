-- plan_of(stmt): the EXPLAIN (COSTS OFF) of a statement as one text, for tests that check a
-- plan's shape (pgTAP: \ir ../../sql/include/plan_of.sql).
CREATE OR REPLACE FUNCTION pg_temp.plan_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || stmt LOOP
    result := result || line || E'\n';
  END LOOP;
  RETURN result;
END $$;
