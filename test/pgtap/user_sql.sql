-- user_sql (pgTAP): user SQL runs as the role that owns it, through one mechanism (src/runas.c).
-- A sweep (dispatch.sweep(), and a schedule's sweep at each fire) is one SELECT that locks
-- nothing, reads only what its role may read and writes nothing, even through a function it
-- calls; an output bind writes as the task's owner, as a restricted operation. After a failure
-- the session is back as it was: the caller's role, read-write.
BEGIN;
SELECT plan(31);

-- try(stmt): 'SQLSTATE: message (hint: ...)' of the error stmt raises, or 'ok'.
\ir ../../sql/include/try.sql

CREATE TABLE public.accounts (id int PRIMARY KEY, tier text);
INSERT INTO public.accounts VALUES (1, 'top'), (2, 'small');
CREATE TABLE public.secrets (id int, secret text);
INSERT INTO public.secrets VALUES (1, 'hunter2');
CREATE TABLE public.audit (n int);
CREATE SEQUENCE public.counter;
-- A volatile function that writes: the parse of a sweep cannot see inside it.
CREATE FUNCTION public.writes_audit() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO public.audit VALUES (1);
  RETURN 1;
END $$;

-- Alice may read accounts and write audit herself: what stops her sweeps is the sweep's rules.
CREATE ROLE user_sql_alice IN ROLE dispatch_agent;
GRANT SELECT ON public.accounts TO user_sql_alice;
GRANT INSERT ON public.audit TO user_sql_alice;
GRANT USAGE ON SEQUENCE public.counter TO user_sql_alice;

SET ROLE user_sql_alice;
SELECT is((dispatch.sweep('SELECT id FROM public.accounts', '{"kind": "u", "payload": {"id": "{{id}}"}}') ->> 'created')::int,
  2, 'a plain SELECT sweeps');

-- Row locks, anywhere in the query.
SELECT is(public.try($$SELECT dispatch.sweep('SELECT id FROM public.accounts FOR UPDATE', '{"kind": "u"}')$$),
  '22023: a sweep query cannot lock rows (FOR UPDATE, FOR SHARE) (hint: A sweep only reads: give one SELECT whose rows become tasks.)',
  'a sweep with FOR UPDATE is refused: 22023 with the hint');
SELECT is(public.try($$SELECT dispatch.sweep('SELECT id FROM (SELECT id FROM public.accounts FOR SHARE) AS a', '{"kind": "u"}')$$),
  '22023: a sweep query cannot lock rows (FOR UPDATE, FOR SHARE) (hint: A sweep only reads: give one SELECT whose rows become tasks.)',
  'FOR SHARE in a subquery is refused too');
SELECT is(public.try($$SELECT dispatch.sweep('SELECT 1 AS one WHERE EXISTS (SELECT FROM public.accounts FOR NO KEY UPDATE)', '{"kind": "u"}')$$),
  '22023: a sweep query cannot lock rows (FOR UPDATE, FOR SHARE) (hint: A sweep only reads: give one SELECT whose rows become tasks.)',
  'and in a sublink');
SELECT is(public.try($$SELECT dispatch.sweep('WITH a AS (SELECT id FROM public.accounts FOR KEY SHARE) SELECT id FROM a', '{"kind": "u"}')$$),
  '22023: a sweep query cannot lock rows (FOR UPDATE, FOR SHARE) (hint: A sweep only reads: give one SELECT whose rows become tasks.)',
  'and in a CTE');

-- Only what the caller may read.
SELECT is(public.try($$SELECT dispatch.sweep('SELECT secret FROM public.secrets', '{"kind": "leak", "payload": {"s": "{{secret}}"}}')$$),
  '42501: permission denied for table secrets', 'a sweep cannot read a table its caller may not read');

-- No writes: not in WITH, not through a function, not a sequence.
SELECT is(public.try($$SELECT dispatch.sweep('WITH x AS (INSERT INTO public.audit VALUES (2) RETURNING n) SELECT n FROM x', '{"kind": "u"}')$$),
  '22023: a sweep query cannot contain INSERT in WITH (hint: A sweep only reads: give one SELECT whose rows become tasks.)',
  'a sweep with an INSERT in WITH is refused');
SELECT is(public.try($$SELECT dispatch.sweep('SELECT public.writes_audit() AS n', '{"kind": "u"}')$$),
  '25006: cannot execute INSERT in a read-only transaction', 'a sweep cannot write through a volatile function');
SELECT is(public.try($$SELECT dispatch.sweep($q$SELECT nextval('public.counter') AS n$q$, '{"kind": "u"}')$$),
  '25006: cannot execute nextval() in a read-only transaction', 'nor advance a sequence');
SELECT is(public.try($$SELECT dispatch.sweep($q$SELECT set_config('transaction_read_only', 'off', true) AS v$q$, '{"kind": "u"}')$$),
  '25001: cannot set transaction read-write mode inside a read-only transaction', 'nor turn read-only off from inside');
SELECT is(public.try($$SELECT dispatch.sweep($q$SELECT set_config('role', 'postgres', false) AS r$q$, '{"kind": "u"}')$$),
  '42501: cannot set parameter "role" within security-definer function', 'nor change role');

-- Each failure left the session as it was.
SELECT is(current_user::text, 'user_sql_alice', 'after a failed sweep the caller is herself again');
SELECT is(current_setting('transaction_read_only'), 'off', 'and the transaction is read-write');
SELECT lives_ok($$INSERT INTO public.audit VALUES (3)$$, 'so she may write what she may write');
RESET ROLE;
SELECT is(ARRAY(SELECT n FROM public.audit), ARRAY[3], 'no sweep wrote anything');
SELECT is(nextval('public.counter'), 1::bigint, 'nor advanced the sequence');
SELECT is((SELECT count(*) FROM dispatch.tasks WHERE kind <> 'u' OR payload ? 's'), 0::bigint,
  'and no refused sweep placed a task');

-- A schedule's sweep runs as the schedule's owner at each fire, and fails as that owner would.
CREATE ROLE user_sql_bob IN ROLE dispatch_admin;
GRANT SELECT ON public.accounts TO user_sql_bob;
GRANT INSERT ON public.audit TO user_sql_bob;
SET ROLE user_sql_bob;
SELECT isnt(dispatch.schedule('bob-sweep', '1H', '{"kind": "b", "payload": {"who": "{{who}}", "id": "{{id}}"}}',
                              tenant => 'us', starts_at => '2030-01-01', jitter => '0',
                              sweep => 'SELECT id, current_user AS who FROM public.accounts'),
            NULL, 'bob schedules a sweep');
SELECT isnt(dispatch.schedule('bob-writes', '1H', '{"kind": "w"}', tenant => 'us', starts_at => '2030-01-01', jitter => '0',
                              sweep => 'SELECT public.writes_audit() AS n'),
            NULL, 'a sweep that calls a writing function is stored (the check runs it with LIMIT 0)');
SELECT is(public.try($$SELECT dispatch.schedule('bob-secrets', '1H', '{"kind": "s"}', tenant => 'us', sweep => 'SELECT secret FROM public.secrets')$$),
  '42501: permission denied for table secrets', 'a sweep its owner may not read is refused when stored');
SELECT is(public.try($$SELECT dispatch.schedule('bob-locks', '1H', '{"kind": "s"}', tenant => 'us', sweep => 'SELECT id FROM public.accounts FOR UPDATE')$$),
  '22023: a sweep query cannot lock rows (FOR UPDATE, FOR SHARE) (hint: A sweep only reads: give one SELECT whose rows become tasks.)',
  'a schedule''s sweep with FOR UPDATE is refused: 22023 with the hint');
RESET ROLE;

SELECT is(dispatch.fire_due(at => '2030-01-01 00:00Z') - 'schedules' - 'fires_skipped',
  '{"fired": 1, "fires_failed": 1}'::jsonb, 'at the first slot one fires and one fails');
SELECT is(ARRAY(SELECT (payload ->> 'who') || ' / ' || owner_role FROM dispatch.tasks WHERE kind = 'b' ORDER BY task_id),
  ARRAY['user_sql_bob / user_sql_bob', 'user_sql_bob / user_sql_bob'],
  'the sweep ran as bob, not as the superuser running the tick, and its tasks are his');
SELECT results_eq($$SELECT s.name, f.status, f.sqlstate, f.reason FROM dispatch.fires AS f JOIN dispatch.schedules AS s USING (schedule_id)
                    WHERE s.name = 'bob-writes'$$,
  $$VALUES ('bob-writes'::text, 'failed'::text, '25006'::text, 'cannot execute INSERT in a read-only transaction'::text)$$,
  'the sweep that writes fails at its fire, read-only');
SELECT is(ARRAY(SELECT n FROM public.audit), ARRAY[3], 'and wrote nothing');

REVOKE SELECT ON public.accounts FROM user_sql_bob;
SELECT dispatch.fire_due(at => '2030-01-01 01:00Z');
SELECT results_eq($$SELECT f.status, f.sqlstate, f.reason FROM dispatch.fires AS f JOIN dispatch.schedules AS s USING (schedule_id)
                    WHERE s.name = 'bob-sweep' AND f.scheduled_for = '2030-01-01 01:00Z'$$,
  $$VALUES ('failed'::text, '42501'::text, 'permission denied for table accounts'::text)$$,
  'once bob may no longer read the table, his sweep fails as he would');

-- An output bind writes as the task's owner: her privileges, her name in the table's trigger.
CREATE TABLE public.leads (id text PRIMARY KEY, score numeric, written_by name);
CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.written_by := current_user;
  RETURN NEW;
END $$;
CREATE TRIGGER stamp BEFORE UPDATE ON public.leads FOR EACH ROW EXECUTE FUNCTION public.stamp();
INSERT INTO public.leads VALUES ('1', NULL, NULL);
GRANT SELECT, UPDATE ON public.leads TO user_sql_alice;
DELETE FROM dispatch.tasks;
SET ROLE user_sql_alice;
SELECT dispatch.register_agent('alice-1');
SELECT dispatch.submit('score', record_ref => '1',
                       outputs => '[{"name": "score", "type": "number", "bind": {"table": "public.leads", "column": "score"}}]')
  AS score_task \gset
SELECT is((dispatch.dispatch_next('alice-1')).task_id, :score_task::bigint, 'alice claims the task');
SELECT lives_ok(format($$SELECT dispatch.complete(%s, '{"score": 7}')$$, :score_task), 'and completes it');
RESET ROLE;
SELECT is((SELECT score || ' / ' || written_by FROM public.leads), '7 / user_sql_alice',
  'the bound output was written as alice');

-- ... as a restricted operation: a trigger of the bound table may not leave a temporary table behind.
CREATE FUNCTION public.scratch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS scratch (n int);
  RETURN NEW;
END $$;
CREATE TRIGGER scratch BEFORE UPDATE ON public.leads FOR EACH ROW EXECUTE FUNCTION public.scratch();
SET ROLE user_sql_alice;
SELECT dispatch.submit('score', record_ref => '1',
                       outputs => '[{"name": "score", "type": "number", "bind": {"table": "public.leads", "column": "score"}}]')
  AS score_task \gset
SELECT is((dispatch.dispatch_next('alice-1')).task_id, :score_task::bigint, 'alice claims another');
SELECT is(public.try(format($$SELECT dispatch.complete(%s, '{"score": 8}')$$, :score_task)),
  '42501: cannot create temporary table within security-restricted operation',
  'completing it fails: the bind runs as a restricted operation');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
