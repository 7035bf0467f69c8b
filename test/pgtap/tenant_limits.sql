-- tenant_limits.sql: max_running caps a tenant's concurrent claims (issue 3 item 8). The
-- capped tenant's work waits while other tenants' work flows past it; finishing a task frees
-- a place; raising or clearing the cap takes effect at once.
\ir helpers.psql
SELECT plan(10);

DO $$ BEGIN
  PERFORM dispatch.register_agent('big', capacity => 1000);
  PERFORM dispatch.register_agent('other', capacity => 1000);
END $$;
INSERT INTO dispatch.tenants (tenant, max_running) VALUES ('capped', 2);
-- The capped tenant has the oldest work; the free one has newer work.
INSERT INTO dispatch.tasks (tenant, kind, ready_at)
SELECT 'capped', 'job', now() - interval '1 hour' FROM generate_series(1, 100);
INSERT INTO dispatch.tasks (tenant, kind) SELECT 'free', 'job' FROM generate_series(1, 100);

CALL claim_n('big', 50);
SELECT is((SELECT count(*) FROM claims WHERE tenant = 'capped'), 2::bigint,
          'max_running 2: only 2 of 50 claims went to the capped tenant, although its work is oldest');
SELECT is((SELECT count(*) FROM claims WHERE tenant = 'free'), 48::bigint,
          'the other tenant''s work flowed past: 48 claims');
SELECT is((SELECT running FROM dispatch.queue_map() WHERE tenant = 'capped'), 2, 'the queue map counts 2 running');
-- A second agent does not get around the cap.
CALL claim_n('other', 10);
SELECT is((SELECT count(*) FROM claims WHERE tenant = 'capped'), 2::bigint, 'another agent does not get around the cap');
SELECT is((SELECT count(*) FROM dispatch.explain_next('other') WHERE tenant = 'capped'), 0::bigint,
          'explain_next does not offer the capped tenant''s work');

-- Finishing one frees one place: the next claim takes the capped tenant's old work.
SELECT dispatch.complete((SELECT task_id FROM claims WHERE tenant = 'capped' ORDER BY seq LIMIT 1)) \g /dev/null
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('big', 5);
SELECT is((SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'capped'), 1::bigint,
          'one task done: exactly one more claim for the capped tenant');
-- A released or failed task frees its place too.
SELECT dispatch.release((SELECT task_id FROM claims WHERE tenant = 'capped' ORDER BY seq DESC LIMIT 1)) \g /dev/null
SELECT is((SELECT running FROM dispatch.queue_map() WHERE tenant = 'capped'), 1, 'release: running back to 1');

-- Raising the cap takes effect at commit.
UPDATE dispatch.tenants SET max_running = 5 WHERE tenant = 'capped';
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('big', 10);
SELECT is((SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'capped'), 4::bigint,
          'max_running raised to 5: four more claims (1 + 4 = 5 running)');
SELECT is((SELECT count(*) FROM dispatch.tasks WHERE tenant = 'capped' AND state = 'claimed'), 5::bigint,
          'five of its tasks are claimed');
UPDATE dispatch.tenants SET max_running = NULL WHERE tenant = 'capped';
SELECT max(seq) AS mark FROM claims \gset
CALL claim_n('big', 10);
SELECT cmp_ok((SELECT count(*) FROM claims WHERE seq > :mark AND tenant = 'capped')::int, '>=', 1,
              'no cap: the capped tenant is served again with the others');

SELECT * FROM finish();
