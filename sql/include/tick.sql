-- tick.sql: one tick of our own for the pg_regress files that test it (\i sql/include/tick.sql);
-- not a test itself. dispatch.tick() skips while another tick (the instance's worker's) runs,
-- so tick_once() tries again until it is our turn and returns that tick's report.
CREATE OR REPLACE FUNCTION public.tick_once() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
  FOR i IN 1..600 LOOP
    r := dispatch.tick();
    IF NOT r ? 'skipped' THEN
      RETURN r;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RAISE EXCEPTION 'the worker''s tick did not finish';
END $$;
