-- 11_schedule_fire: firing, driven by dispatch.fire_due(at => ...) at chosen instants so every
-- result is exact. One task per fire from the template; no slot fires twice; DST; catch-up
-- after downtime (once, all, skip) with every slot accounted for; concurrency = skip; jitter;
-- starts_at/ends_at and one-shots ending; failed fires and failed tasks counting toward
-- auto-pause, a done task resetting the count; sweeps run as the owner; retention.
--
-- Every schedule starts in 2030, so the instance's own worker never finds one due.
\i sql/include/fresh_schedules.sql
DELETE FROM dispatch.agents;

\i sql/include/try.sql
-- fire_due fires whatever is due: each section soft-deletes its schedules when it is done.
CREATE OR REPLACE FUNCTION public.close_section() RETURNS void LANGUAGE sql AS $$
  UPDATE dispatch.schedules SET deleted_at = now(), next_fire_at = NULL WHERE deleted_at IS NULL
$$;

-- What a schedule's fires look like: one line per row.
CREATE OR REPLACE FUNCTION public.fires_of(sched text)
  RETURNS TABLE (scheduled_for timestamptz, status text, late boolean, slots bigint, through timestamptz,
                 tasks int, open_tasks int, outcome text)
  LANGUAGE sql AS $$
  SELECT f.scheduled_for, f.status, f.late, f.slots, f.through, f.tasks, f.open_tasks, f.outcome
    FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
   WHERE s.name = sched AND s.deleted_at IS NULL ORDER BY f.scheduled_for
$$;
-- Every slot from the first fire to the last is accounted for exactly once.
CREATE OR REPLACE FUNCTION public.accounted(sched text) RETURNS text LANGUAGE sql AS $$
  SELECT format('%s slots, %s accounted for', dispatch.count_fires(s.spec, min(f.scheduled_for) - interval '1 microsecond',
                                                                    max(coalesce(f.through, f.scheduled_for)), s.timezone, s.anchor),
                sum(f.slots))
    FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
   WHERE s.name = sched AND s.deleted_at IS NULL
   GROUP BY s.spec, s.timezone, s.anchor
$$;

-- One fire, one task from the template ---------------------------------------------------------

SELECT dispatch.schedule('report', '0 9 * * *',
         '{"kind": "report", "payload": {"scope": "eu"}, "priority": "high", "requires": ["x11"],
           "deadline": "1 hour", "est_duration": "10 minutes", "max_attempts": 2}',
         tenant => 't11', timezone => 'Europe/London', starts_at => '2030-07-01', record_ref => 'rec-1') AS report \gset
-- 08:59:59 in London: not yet.
SELECT dispatch.fire_due(at => '2030-07-01 07:59:59Z');
SELECT dispatch.fire_due(at => '2030-07-01 08:00:00.5Z');
SELECT * FROM public.fires_of('report');
SELECT t.kind, t.payload, t.tenant, t.priority, t.requires, t.deadline, t.est_duration, t.max_attempts,
       t.record_ref, t.state, t.schedule_id = :report AS from_schedule, t.run_id = f.run_id AS fire_run,
       t.task_id = f.task_id AS fire_task, t.owner_role = s.owner_role AS owners_task
  FROM dispatch.tasks t JOIN dispatch.fires f ON f.schedule_id = t.schedule_id
  JOIN dispatch.schedules s ON s.schedule_id = t.schedule_id
 WHERE t.schedule_id = :report;
SELECT next_fire_at, last_fired_for, last_fire_at IS NOT NULL AS fired_once, status
  FROM dispatch.schedules WHERE schedule_id = :report;
-- Asked again at the same instant: nothing is due.
SELECT dispatch.fire_due(at => '2030-07-01 08:00:00.5Z');
-- Even when the schedule is wound back onto a slot it already fired (a crash between the fire
-- and the advance cannot happen, they commit together, but two ticks could race): no second task.
UPDATE dispatch.schedules SET next_fire_at = '2030-07-01 08:00Z' WHERE schedule_id = :report;
SELECT dispatch.fire_due(at => '2030-07-01 08:00:01Z');
SELECT count(*) AS tasks, (SELECT count(*) FROM dispatch.fires WHERE schedule_id = :report) AS fires,
       (SELECT next_fire_at FROM dispatch.schedules WHERE schedule_id = :report) AS next_fire_at
  FROM dispatch.tasks WHERE schedule_id = :report;
SELECT public.close_section();

-- DST: fires follow next_fire's rules ------------------------------------------------------------

-- 02:30 New York: the day it does not exist (2030-03-10) it fires once at 03:00 EDT; 01:30 on
-- the day it happens twice (2030-11-03) fires once. The tick runs every 20 minutes here.
SELECT dispatch.schedule('ny-0230', '30 2 * * *', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         timezone => 'America/New_York', starts_at => '2030-03-09') IS NOT NULL AS created;
SELECT sum((dispatch.fire_due(at => t, grace => '1 hour') ->> 'fired')::int) AS fired
  FROM generate_series(timestamptz '2030-03-09', '2030-03-12', '20 minutes') AS t;
SELECT scheduled_for, scheduled_for AT TIME ZONE 'America/New_York' AS new_york, status FROM public.fires_of('ny-0230');
SELECT public.close_section();
SELECT dispatch.schedule('ny-0130', '30 1 * * *', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         timezone => 'America/New_York', starts_at => '2030-11-02') IS NOT NULL AS created;
SELECT sum((dispatch.fire_due(at => t, grace => '1 hour') ->> 'fired')::int) AS fired
  FROM generate_series(timestamptz '2030-11-02', '2030-11-05', '20 minutes') AS t;
SELECT scheduled_for, scheduled_for AT TIME ZONE 'America/New_York' AS new_york, status FROM public.fires_of('ny-0130');
SELECT public.close_section();

-- Catch-up after downtime --------------------------------------------------------------------

-- Three hourly schedules, one per policy; all_3 replays at most 3 missed fires.
SELECT dispatch.schedule('once', '1H', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         starts_at => '2030-01-01', jitter => '0') IS NOT NULL AS created;
SELECT dispatch.schedule('all_3', '1H', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         starts_at => '2030-01-01', jitter => '0') IS NOT NULL AS created;
SELECT dispatch.schedule('skip', '1H', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         starts_at => '2030-01-01', jitter => '0') IS NOT NULL AS created;
UPDATE dispatch.schedules SET catch_up = 'all', catch_up_limit = 3 WHERE name = 'all_3';
UPDATE dispatch.schedules SET catch_up = 'skip' WHERE name = 'skip';
SELECT dispatch.fire_due(at => '2030-01-01 00:00:00.1Z');
-- Down from 00:00 to 10:00:30: 01:00-09:00 were missed (more than a minute late), 10:00 is merely late.
SELECT dispatch.fire_due(at => '2030-01-01 10:00:30Z');
-- Down again until 15:30: every slot since 11:00 was missed, none is on time.
SELECT dispatch.fire_due(at => '2030-01-01 15:30Z');
SELECT * FROM public.fires_of('once');
SELECT * FROM public.fires_of('all_3');
SELECT * FROM public.fires_of('skip');
SELECT name, public.accounted(name), (SELECT count(*) FROM dispatch.tasks t WHERE t.schedule_id = s.schedule_id) AS tasks,
       next_fire_at
  FROM dispatch.schedules s WHERE name IN ('once', 'all_3', 'skip') ORDER BY name;
-- The skipped run says why.
SELECT reason FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
 WHERE s.name = 'once' AND f.status = 'skipped' ORDER BY scheduled_for LIMIT 1;
SELECT public.close_section();

-- Jitter: a rate schedule's fires are due a fixed offset after their slot ----------------------

SELECT dispatch.schedule('jittery', '1H', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         starts_at => '2030-02-01') AS jittery \gset
SELECT jitter_offset > interval '0' AND jitter_offset < interval '60 seconds' AS offset_in_window,
       next_fire_at = '2030-02-01 00:00Z'::timestamptz + jitter_offset AS due_after_offset
  FROM dispatch.schedules WHERE schedule_id = :jittery;
SELECT dispatch.fire_due(at => '2030-02-01 00:00Z'::timestamptz + jitter_offset - interval '1 millisecond') ->> 'fired' AS before_offset,
       dispatch.fire_due(at => '2030-02-01 00:00Z'::timestamptz + jitter_offset) ->> 'fired' AS at_offset
  FROM dispatch.schedules WHERE schedule_id = :jittery;
SELECT f.scheduled_for, f.due_at = f.scheduled_for + s.jitter_offset AS due_at_offset
  FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) WHERE s.schedule_id = :jittery;
SELECT public.close_section();

-- Windows and one-shots end -----------------------------------------------------------------------

SELECT dispatch.schedule('window', '@hourly', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         starts_at => '2030-03-01 00:00', ends_at => '2030-03-01 02:00') IS NOT NULL AS created;
SELECT dispatch.schedule('one-shot', 'at 2030-03-01T12:00:00Z', '{"kind": "x", "requires": ["x11"]}', tenant => 't11')
       IS NOT NULL AS created;
SELECT dispatch.fire_due(at => '2030-03-01 02:00:10Z', grace => '1 day');
SELECT dispatch.fire_due(at => '2030-03-01 12:00:01Z');
SELECT name, status, next_fire_at, (SELECT count(*) FROM dispatch.fires f WHERE f.schedule_id = s.schedule_id) AS fires
  FROM dispatch.schedules s WHERE name IN ('window', 'one-shot') ORDER BY name;
SELECT public.try($$SELECT dispatch.resume('one-shot', 't11')$$);
SELECT public.try($$SELECT dispatch.pause('window', 't11')$$);
SELECT public.close_section();

-- Task outcomes, concurrency = skip and auto-pause ---------------------------------------------

SELECT (dispatch.register_agent('a11', '{e11}', 10)).agent_id;
CREATE OR REPLACE FUNCTION public.claim_and(action text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t dispatch.tasks;
BEGIN
  t := dispatch.dispatch_next('a11');
  IF t.task_id IS NULL THEN RETURN 'nothing to claim'; END IF;
  IF action = 'complete' THEN PERFORM dispatch.complete(t.task_id);
  ELSE PERFORM dispatch.abort(t.task_id, 'cannot do ' || t.kind); END IF;
  RETURN t.kind || ' ' || action;
END $$;

-- concurrency = skip: while the 00:00 task is unfinished, 01:00 is skipped; once done, 02:00 fires.
SELECT dispatch.schedule('serial', '1H', '{"kind": "serial", "requires": ["e11"]}', tenant => 't11',
                         starts_at => '2030-04-01', jitter => '0', concurrency => 'skip') IS NOT NULL AS created;
SELECT dispatch.fire_due(at => '2030-04-01 00:00Z') ->> 'fired' AS fired;
SELECT dispatch.fire_due(at => '2030-04-01 01:00Z') ->> 'fires_skipped' AS skipped;
SELECT public.claim_and('complete');
SELECT dispatch.fire_due(at => '2030-04-01 02:00Z') ->> 'fired' AS fired;
SELECT scheduled_for, status, tasks, open_tasks, outcome FROM public.fires_of('serial');
SELECT reason FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
 WHERE s.name = 'serial' AND f.status = 'skipped';
SELECT public.claim_and('complete');
SELECT public.close_section();

-- Failures in a row pause the schedule; a done task in between resets the count.
SELECT dispatch.schedule('flaky', '1H', '{"kind": "flaky", "requires": ["e11"], "max_attempts": 1}', tenant => 't11',
                         starts_at => '2030-05-01', jitter => '0') IS NOT NULL AS created;
CREATE OR REPLACE FUNCTION public.flaky_hour(h int, action text) RETURNS text LANGUAGE sql AS $$
  SELECT dispatch.fire_due(at => '2030-05-01'::timestamptz + make_interval(hours => h)) ->> 'fired';
  SELECT public.claim_and(action);
  SELECT action || ': ' || consecutive_failures || ' failures, ' || status
    FROM dispatch.schedules WHERE name = 'flaky'
$$;
SELECT public.flaky_hour(0, 'abort');
SELECT public.flaky_hour(1, 'abort');
SELECT public.flaky_hour(2, 'complete');
SELECT public.flaky_hour(3, 'abort');
SELECT public.flaky_hour(4, 'abort');
SELECT public.flaky_hour(5, 'abort');
SELECT status, enabled, consecutive_failures, regexp_replace(pause_reason, 'task \d+', 'task N') AS pause_reason
  FROM dispatch.schedules WHERE name = 'flaky';
SELECT scheduled_for, status, outcome FROM public.fires_of('flaky');
-- Paused, it does not fire; resumed, it starts over (its count back to 0).
SELECT dispatch.fire_due(at => '2030-05-01 06:00Z') ->> 'schedules' AS schedules_due;
SELECT dispatch.resume('flaky', 't11');
SELECT status, consecutive_failures, pause_reason FROM dispatch.schedules WHERE name = 'flaky';
SELECT public.close_section();

-- A failing fire (here: its sweep reads a table that is gone) is recorded with the error and
-- counts too; the tick goes on. Once the schedule has paused itself, the rest of that tick's
-- slots are recorded as skipped.
CREATE TABLE public.sched_leads (id int, region text);
INSERT INTO public.sched_leads VALUES (1, 'eu'), (2, 'us'), (3, 'eu');
CREATE ROLE regress_sched_alice IN ROLE dispatch_admin;
GRANT SELECT ON public.sched_leads TO regress_sched_alice;
SET ROLE regress_sched_alice;
SET search_path = public;
SELECT dispatch.schedule('leads', '1H',
         '{"kind": "lead", "payload": {"campaign": "spring", "lead": "{{id}}", "ran_as": "{{ran_as}}"},
           "requires": ["e11"], "dispatch_key": "lead:{{id}}"}',
                         tenant => 't11', starts_at => '2030-06-01', jitter => '0',
                         sweep => 'SELECT id, region, current_user AS ran_as FROM sched_leads WHERE region = ''eu'' ORDER BY id')
       IS NOT NULL AS created;
RESET search_path;
RESET ROLE;
SELECT dispatch.fire_due(at => '2030-06-01 00:00Z');
-- One task per row, run as the owner (not as the superuser running the tick), the template's
-- placeholders filled from the row (dispatch.place_sweep).
SELECT t.kind, t.payload, t.dispatch_key, t.tenant, t.owner_role, t.run_id = f.run_id AS fire_run
  FROM dispatch.tasks t JOIN dispatch.fires f ON f.schedule_id = t.schedule_id
  JOIN dispatch.schedules s ON s.schedule_id = t.schedule_id
 WHERE s.name = 'leads' ORDER BY t.task_id;
-- The fire's outcome waits for all its tasks: one aborted makes it failed.
SELECT public.claim_and('complete'), public.claim_and('abort');
SELECT scheduled_for, status, tasks, open_tasks, outcome FROM public.fires_of('leads');
SELECT done_tasks, failed_tasks FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'leads';
-- Now the sweep fails: five slots in one tick. With the failed first fire, two failing fires
-- make three failures in a row.
DROP TABLE public.sched_leads;
SELECT dispatch.fire_due(at => '2030-06-01 05:00Z', grace => '1 day');
SELECT scheduled_for, status, slots, through FROM public.fires_of('leads');
SELECT reason, sqlstate FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
 WHERE s.name = 'leads' AND f.status = 'failed' ORDER BY scheduled_for LIMIT 1;
SELECT status, consecutive_failures, pause_reason FROM dispatch.schedules WHERE name = 'leads';
SELECT public.accounted('leads');

SELECT public.close_section();

-- Outcomes reach only scheduled tasks: an ordinary task's completion touches no fire.
SELECT md5(string_agg(f::text, ',' ORDER BY schedule_id, scheduled_for)) AS fires_before FROM dispatch.fires f \gset
SELECT dispatch.submit('plain', requires => '{e11}', tenant => 't11') IS NOT NULL AS submitted;
SELECT public.claim_and('complete');
SELECT md5(string_agg(f::text, ',' ORDER BY schedule_id, scheduled_for)) = :'fires_before' AS fires_untouched
  FROM dispatch.fires f;

-- Retention -------------------------------------------------------------------------------------------

DELETE FROM dispatch.schedules WHERE deleted_at IS NOT NULL;

SELECT dispatch.schedule('short-lived', '1H', '{"kind": "x", "requires": ["x11"]}', tenant => 't11',
                         starts_at => '2030-08-01', jitter => '0') IS NOT NULL AS created;
SELECT dispatch.fire_due(at => '2030-08-01 02:00Z', grace => '1 day') ->> 'fired' AS fired;
SELECT dispatch.unschedule('short-lived', 't11');
SELECT dispatch.purge_schedule_history(retention => '1 hour') AS removed_too_early;
SELECT dispatch.purge_schedule_history(batch => 2, retention => '0') AS removed_first_batch;
SELECT count(*) AS fires_left FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'short-lived';
SELECT dispatch.purge_schedule_history(batch => 100, retention => '0') AS removed_rest;
SELECT count(*) AS schedule_rows_left FROM dispatch.schedules WHERE name = 'short-lived';

-- The worker's tick reports the schedule steps (nothing of ours is due in real time).
\i sql/include/tick.sql
SELECT jsonb_build_object('fired', r -> 'fired', 'fires_skipped', r -> 'fires_skipped',
                          'fires_failed', r -> 'fires_failed', 'history_removed', r -> 'history_removed') AS report
  FROM (SELECT public.tick_once() AS r) AS t;

-- Cleanup.
DELETE FROM dispatch.fires;
DELETE FROM dispatch.schedules;
DELETE FROM dispatch.tasks;
DELETE FROM dispatch.agents;
DROP ROLE regress_sched_alice;
