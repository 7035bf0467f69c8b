-- 52_idempotency: dispatch_key is unique per tenant among unfinished tasks (doc/fanout.md §4).
\set SHOW_CONTEXT never
TRUNCATE dispatch.tasks, dispatch.task_deps, dispatch.task_waits, dispatch.decisions RESTART IDENTITY;
SELECT agent_id FROM dispatch.register_agent('key-agent', '{}', 10);

SELECT dispatch.submit('brief', dispatch_key => 'acct-1') AS k1 \gset
-- The same key again returns the same task and creates nothing, whatever else differs.
SELECT dispatch.submit('brief', dispatch_key => 'acct-1') = :k1 AS same,
       dispatch.submit('other', '{"x": 1}', priority => 'high', dispatch_key => 'acct-1') = :k1 AS same_again,
       (SELECT count(*) FROM dispatch.tasks) AS tasks;
-- Another tenant has its own keys.
SELECT dispatch.submit('brief', tenant => 'acme', dispatch_key => 'acct-1') <> :k1 AS other_tenant;
-- Scheduled and claimed tasks hold their key too.
SELECT dispatch.submit('later', run_at => now() + interval '1 day', dispatch_key => 'later-1') AS l1 \gset
SELECT dispatch.submit('later', dispatch_key => 'later-1') = :l1 AS scheduled_holds;
SELECT task_id = :k1 AS claimed_it FROM dispatch.dispatch_next('key-agent');
SELECT dispatch.submit('brief', dispatch_key => 'acct-1') = :k1 AS claimed_holds;
-- A finished task frees its key: the next submit is new work.
SELECT dispatch.complete(:k1, '{}');
SELECT dispatch.submit('brief', dispatch_key => 'acct-1') <> :k1 AS new_after_done;
-- Without a key nothing is deduplicated.
SELECT dispatch.submit('plain') <> dispatch.submit('plain') AS no_key_no_dedup;
-- A plain INSERT with a taken key fails instead.
INSERT INTO dispatch.tasks (kind, dispatch_key) VALUES ('brief', 'acct-1');
SELECT tenant, dispatch_key, state FROM dispatch.tasks WHERE dispatch_key IS NOT NULL ORDER BY task_id;
-- The index behind it: partial (unfinished tasks only), byte-wise.
SELECT indexdef FROM pg_indexes WHERE indexname = 'tasks_dispatch_key_idx';
