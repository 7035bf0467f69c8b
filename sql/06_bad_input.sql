-- 06_bad_input: each bad input of the issue gets a clear error (SQLSTATE, lower-case message,
-- hint) and leaves nothing written. check() runs a statement, shows the error, and compares
-- the contents of the tables before and after.
\i sql/include/fresh.sql
SET dispatch.retry_base = '1h';

\i sql/include/try.sql

-- Everything a failed call could have written: counts, and the rows themselves.
CREATE OR REPLACE FUNCTION public.snapshot() RETURNS text LANGUAGE sql AS $$
  SELECT format('tasks=%s agents=%s decisions=%s signatures=%s tenants=%s policies=%s rows=%s',
    (SELECT count(*) FROM dispatch.tasks), (SELECT count(*) FROM dispatch.agents),
    (SELECT count(*) FROM dispatch.decisions), (SELECT count(*) FROM dispatch.signatures),
    (SELECT count(*) FROM dispatch.tenants), (SELECT count(*) FROM dispatch.policies),
    md5(coalesce((SELECT string_agg(t::text, ',' ORDER BY task_id) FROM dispatch.tasks t), '')
        || coalesce((SELECT string_agg(a::text, ',' ORDER BY agent_id) FROM dispatch.agents a), '')))
$$;

CREATE OR REPLACE FUNCTION public.check(stmt text, OUT error text, OUT nothing_written boolean)
LANGUAGE plpgsql AS $$
DECLARE before text := public.snapshot();
BEGIN
  error := public.try(stmt);
  nothing_written := public.snapshot() = before;
END $$;

-- Fixtures: one agent holding one task, one finished task, one waiting task.
SELECT (dispatch.register_agent('b-1', '{b}', 5)).agent_id;
SELECT dispatch.submit('held', tenant => 't06', requires => '{b}') AS held \gset
SELECT task_id = :held AS claimed FROM dispatch.dispatch_next('b-1');
SELECT dispatch.submit('finished', tenant => 't06', requires => '{b}') AS finished \gset
SELECT task_id = :finished AS claimed FROM dispatch.dispatch_next('b-1');
SELECT dispatch.complete(:finished, '{"ok": true}');
SELECT dispatch.submit('waiting', tenant => 't06', requires => '{never}') AS waiting \gset
SELECT public.snapshot() AS start \gset

-- Unknown agent (42704).
SELECT * FROM public.check($$SELECT dispatch.dispatch_next('ghost')$$);
SELECT * FROM public.check($$SELECT * FROM dispatch.dispatch_next('ghost', 3)$$);
SELECT * FROM public.check($$SELECT dispatch.heartbeat('ghost')$$);
SELECT * FROM public.check($$SELECT dispatch.drain_agent('ghost')$$);
SELECT * FROM public.check($$SELECT dispatch.deregister_agent('ghost')$$);

-- Unknown task (42704).
SELECT * FROM public.check($$SELECT dispatch.complete(-1, '{}')$$);
SELECT * FROM public.check($$SELECT dispatch.fail(-1, 'boom')$$);
SELECT * FROM public.check($$SELECT dispatch.abort(-1, 'no')$$);
SELECT * FROM public.check($$SELECT dispatch.release(-1)$$);
SELECT * FROM public.check($$SELECT dispatch.extend_lease(-1)$$);
SELECT * FROM public.check($$SELECT dispatch.cancel(-1)$$);

-- A task that is not leased (55000): waiting, or finished; completing twice.
SELECT * FROM public.check(format('SELECT dispatch.complete(%s)', :waiting));
SELECT * FROM public.check(format('SELECT dispatch.release(%s)', :waiting));
SELECT * FROM public.check(format('SELECT dispatch.extend_lease(%s)', :waiting));
SELECT * FROM public.check(format('SELECT dispatch.complete(%s)', :finished));
SELECT * FROM public.check(format('SELECT dispatch.fail(%s, %L)', :finished, 'late'));
SELECT * FROM public.check(format('SELECT dispatch.abort(%s, %L)', :finished, 'late'));
-- (a task leased to another role's agent: 07_security)

-- Unknown priority (22023), NULL priority (22004): submit, INSERT and UPDATE alike.
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', priority => 'urgent')$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', priority => 'HIGH')$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', priority => NULL)$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant, priority) VALUES ('k', 't06', 'urgent')$$);
SELECT * FROM public.check(format('UPDATE dispatch.tasks SET priority = %L WHERE task_id = %s', 'soon', :waiting));

-- Negative capacity (22023), for a new agent and for an existing one.
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', capacity => -1)$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-1', '{b}', capacity => -1)$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', capacity => NULL)$$);

-- Empty kind or tenant (22023); NULL kind or tenant (22004).
SELECT * FROM public.check($$SELECT dispatch.submit('')$$);
SELECT * FROM public.check($$SELECT dispatch.submit(NULL)$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => '')$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => NULL)$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant) VALUES ('', 't06')$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant) VALUES ('k', '')$$);

-- NULL array elements (22004): requires, capabilities, traits, profile.
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', requires => '{a,NULL}')$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant, requires) VALUES ('k', 't06', '{NULL}')$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', capabilities => '{a,NULL}')$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-1', capabilities => ARRAY[NULL]::text[])$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', traits => '{0.5,NULL,0.1}')$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', profile => '{NULL}')$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant, profile) VALUES ('k', 't06', '{0.1,NULL}')$$);
-- ... and empty labels (22023).
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', requires => '{a,""}')$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', capabilities => '{""}')$$);

-- A payload over dispatch.max_payload_size (54000); at the limit it is accepted.
SET dispatch.max_payload_size = '1kB';
SELECT * FROM public.check($$SELECT dispatch.submit('big', jsonb_build_object('text', repeat('x', 2000)), tenant => 't06')$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant, payload) VALUES ('big', 't06', jsonb_build_object('text', repeat('x', 2000)))$$);
SELECT * FROM public.check(format('UPDATE dispatch.tasks SET payload = jsonb_build_object(%L, repeat(%L, 2000)) WHERE task_id = %s', 'text', 'x', :waiting));
RESET dispatch.max_payload_size;

-- NULL agent_id (22004) and NULL task_id (22004).
SELECT * FROM public.check($$SELECT dispatch.dispatch_next(NULL)$$);
SELECT * FROM public.check($$SELECT * FROM dispatch.dispatch_next(NULL, 1)$$);
SELECT * FROM public.check($$SELECT dispatch.heartbeat(NULL)$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent(NULL)$$);
SELECT * FROM public.check($$SELECT dispatch.deregister_agent(NULL)$$);
SELECT * FROM public.check($$SELECT dispatch.complete(NULL)$$);
SELECT * FROM public.check($$SELECT dispatch.cancel(NULL)$$);

-- Other values out of range.
SELECT * FROM public.check($$SELECT dispatch.register_agent('')$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', clearance => -1)$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', speed => 0)$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', traits => '{0.5,1.5}')$$);
SELECT * FROM public.check($$SELECT dispatch.register_agent('b-2', owner_role => 'no_such_role')$$);
SELECT * FROM public.check($$SELECT * FROM dispatch.dispatch_next('b-1', 0)$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', max_attempts => 0)$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', sensitivity => -1)$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', est_duration => '-5 minutes')$$);
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06', profile => '{2}')$$);
SELECT * FROM public.check($$INSERT INTO dispatch.tasks (kind, tenant, state) VALUES ('k', 't06', 'claimed')$$);
SELECT * FROM public.check(format('SELECT dispatch.extend_lease(%s, %L)', :held, '-1 minute'));
SELECT * FROM public.check(format('SELECT dispatch.abort(%s, NULL)', :held));
SELECT * FROM public.check(format('SELECT dispatch.abort(%s, %L)', :held, ''));
SELECT * FROM public.check(format('SELECT dispatch.fail(%s, %L, NULL)', :held, 'x'));
SELECT * FROM public.check($$SELECT dispatch.set_policy('{"priority_bonus": {"urgent": 1}}')$$);
SELECT * FROM public.check($$SELECT dispatch.set_policy('{"no_such_key": 1}')$$);
SELECT * FROM public.check($$SELECT dispatch.set_policy('{"fair_candidates": 0}')$$);
SELECT * FROM public.check($$SELECT dispatch.set_policy(NULL)$$);

-- After all of that: nothing changed, and the fixtures still work.
SELECT public.snapshot() = :'start' AS all_unchanged;
SELECT state, agent_id FROM dispatch.tasks WHERE task_id = :held;
SELECT dispatch.complete(:held);
SELECT running FROM dispatch.agents WHERE agent_id = 'b-1';

-- A failed statement that had already made a new tenant and a new signature leaves neither,
-- and the next task for them is claimable.
SELECT count(*) AS signatures_before FROM dispatch.signatures \gset
SELECT * FROM public.check($$SELECT dispatch.submit('k', tenant => 't06-new', requires => '{brand-new}', est_duration => '-1 s')$$);
SELECT count(*) AS tenant_rows FROM dispatch.tenants WHERE tenant = 't06-new';
BEGIN;
SELECT dispatch.submit('k', tenant => 't06-new', requires => '{brand-new}') IS NOT NULL AS submitted;
SELECT dispatch.submit('k', tenant => 't06-new', requires => '{brand-new}') IS NOT NULL AS submitted_again;
ROLLBACK;
SELECT count(*) = :signatures_before AS no_new_signature FROM dispatch.signatures;
SELECT count(*) AS tenant_rows FROM dispatch.tenants WHERE tenant = 't06-new';
SELECT dispatch.submit('after', tenant => 't06-new', requires => '{brand-new}') AS after \gset
SELECT EXISTS (SELECT FROM dispatch.signatures s JOIN dispatch.tasks t ON t.sig = s.sig_id
                WHERE t.task_id = :after) AS valid_signature,
       EXISTS (SELECT FROM dispatch.tenants WHERE tenant = 't06-new') AS tenant_created;
SELECT (dispatch.register_agent('b-new', '{brand-new}')).agent_id;
SELECT task_id = :after AS claimable FROM dispatch.dispatch_next('b-new');

-- Payloads within the limit are accepted.
SET dispatch.max_payload_size = '1kB';
SELECT dispatch.submit('fits', jsonb_build_object('text', repeat('x', 900)), tenant => 't06b') IS NOT NULL AS fits;
RESET dispatch.max_payload_size;
SELECT dispatch.submit('big-ok', jsonb_build_object('text', repeat('x', 2000)), tenant => 't06b') IS NOT NULL AS fits_by_default;
