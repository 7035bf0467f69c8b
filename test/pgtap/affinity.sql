-- affinity.sql: session affinity (doc/design.md §8). A new task of a session is reserved for
-- the agent that served the session last (if it is alive and able), for affinity_wait; other
-- agents do not see it meanwhile; the tick drops the reservation after that, or at once when
-- the agent is lost; an expired lease puts the task back for anyone. Time passes here by
-- moving timestamps into the past, never by sleeping.
\ir helpers.psql
SELECT plan(20);

DO $$ BEGIN
  PERFORM dispatch.register_agent('s1', capacity => 10);
  PERFORM dispatch.register_agent('s2', capacity => 10);
END $$;
CREATE FUNCTION waiting_for(id bigint) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(reserved_for || '/' || reservation, 'nobody') FROM dispatch.tasks WHERE task_id = id
$$;

-- The session's first task is not reserved: nobody served it yet. s1 takes it.
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-1') AS t1 \gset
SELECT is(waiting_for(:t1), 'nobody', 'a session''s first task waits for nobody');
CALL claim_n('s1', 1);
SELECT is((SELECT agent_id FROM dispatch.sessions WHERE session_ref = 'sess-1'), 's1',
          'claiming it makes s1 the session''s agent');
SELECT dispatch.complete(:t1) \g /dev/null

-- The next task of the session is reserved for s1, for affinity_wait (30 s).
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-1') AS t2 \gset
SELECT is(waiting_for(:t2), 's1/session', 'the session''s next task is reserved for s1');
SELECT is((SELECT extract(epoch FROM reserved_until - ready_at) FROM dispatch.tasks WHERE task_id = :t2),
          30::numeric, 'for affinity_wait: 30 s');
-- Other agents do not see it while it is reserved.
SELECT is((SELECT count(*) FROM dispatch.explain_next('s2') WHERE task_id = :t2), 0::bigint,
          'explain_next: s2 does not see the reserved task');
CALL claim_n('s2', 1);
SELECT is((SELECT count(*) FROM claims WHERE agent_id = 's2'), 0::bigint,
          'dispatch_next: s2 gets nothing while the only ready task is reserved for s1');
-- s1 sees it in its reserved lane, worth affinity_weight (30 s), and takes it before work of
-- the same age from another tenant.
INSERT INTO dispatch.tasks (tenant, kind, ready_at)
SELECT 'other', 'job', ready_at FROM dispatch.tasks WHERE task_id = :t2;
SELECT is((SELECT lane || ':' || affinity FROM dispatch.explain_next('s1') WHERE task_id = :t2),
          'reserved:30', 'explain_next: s1 sees it in the reserved lane, worth 30 s');
CALL claim_n('s1', 1);
SELECT is((SELECT task_id FROM claims ORDER BY seq DESC LIMIT 1), :t2::bigint,
          's1 takes its session task before other work of the same age');
SELECT dispatch.complete(:t2) \g /dev/null

-- The reservation ends after affinity_wait: then anyone capable may take the task.
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-1') AS t3 \gset
UPDATE dispatch.tasks SET reserved_until = now() - interval '1 s' WHERE task_id = :t3;
SELECT is((SELECT (dispatch.tick() ->> 'reservations_expired')::int), 1, 'the tick drops one expired reservation');
SELECT is(waiting_for(:t3), 'nobody', 'the task waits for nobody any more');
SELECT is((SELECT tenant FROM dispatch.explain_next('s2') WHERE task_id = :t3), 'app', 's2 now sees it');
DELETE FROM dispatch.tasks WHERE tenant = 'other' AND state = 'ready';
CALL claim_n('s2', 1);
SELECT is((SELECT agent_id FROM dispatch.tasks WHERE task_id = :t3), 's2', 'and s2 takes it');
SELECT is((SELECT agent_id FROM dispatch.sessions WHERE session_ref = 'sess-1'), 's2',
          'the session now belongs to s2');
SELECT dispatch.complete(:t3) \g /dev/null

-- A lost agent does not hold a sticky task: s2 stops sending heartbeats; the tick marks it
-- lost and frees the task it was reserved.
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-1') AS t4 \gset
SELECT is(waiting_for(:t4), 's2/session', 'the next task waits for s2');
UPDATE dispatch.agents SET last_seen = now() - interval '10 minutes' WHERE agent_id = 's2';
SELECT dispatch.tick() \g /dev/null
SELECT is((SELECT status FROM dispatch.agents WHERE agent_id = 's2') || ' ' || waiting_for(:t4),
          'lost nobody', 'the tick marks s2 lost and frees its sticky task');
CALL claim_n('s1', 1);
SELECT is((SELECT agent_id FROM dispatch.tasks WHERE task_id = :t4), 's1', 's1 takes it');
-- While s2 is lost, a new task of its session is not reserved for it.
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-9') AS t5 \gset
INSERT INTO dispatch.sessions (session_ref, agent_id) VALUES ('sess-9', 's2');
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-9') AS t6 \gset
SELECT is(waiting_for(:t6), 'nobody', 'a lost agent''s session reserves nothing');
DELETE FROM dispatch.tasks WHERE task_id IN (:t5, :t6);

-- An expired lease does not hold a sticky task either: s1 claims a session task and goes
-- silent past its lease; the tick puts the task back, reserved for nobody, and s2 takes it.
SELECT dispatch.complete(:t4) \g /dev/null
DO $$ BEGIN PERFORM dispatch.heartbeat('s2'); END $$;
SELECT dispatch.submit('chat', tenant => 'app', session_ref => 'sess-1') AS t7 \gset
CALL claim_n('s1', 1);
UPDATE dispatch.tasks SET lease_until = now() - interval '1 s' WHERE task_id = :t7;
SELECT is((SELECT (dispatch.tick() ->> 'requeued')::int), 1, 'the tick requeues the expired lease');
SELECT is((SELECT state || ' ' || waiting_for(:t7) FROM dispatch.tasks WHERE task_id = :t7), 'ready nobody',
          'the task is ready again and waits for nobody');
CALL claim_n('s2', 1);
SELECT is((SELECT agent_id || ' attempt ' || attempts FROM dispatch.tasks WHERE task_id = :t7), 's2 attempt 2',
          's2 takes it (second attempt)');

SELECT * FROM finish();
