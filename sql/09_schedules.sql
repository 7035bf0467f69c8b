-- 09_schedules: the SQL surface of standing orders. Fire windows agree with next_fire;
-- schedule() derives kind, zone, jitter and next fire; a plain INSERT and an UPDATE are
-- validated the same way; pause, resume, unschedule; dispatch.timezone; caps, credit and
-- forecast; who may create and change what.
--
-- The instance's worker ticks this database, so every schedule here starts in 2030 or later:
-- it is never due while the test runs.
\i sql/include/fresh_schedules.sql

\i sql/include/try.sql

-- Fire windows --------------------------------------------------------------------------------

-- Weekdays at 09:00 New York in March 2026 (DST starts on the 8th): 22, as stepping next_fire says.
SELECT dispatch.count_fires('0 9 * * MON-FRI', '2026-03-01', '2026-04-01', 'America/New_York') AS counted,
       (WITH RECURSIVE s(t) AS (
          SELECT dispatch.next_fire('0 9 * * MON-FRI', '2026-03-01', 'America/New_York')
          UNION ALL
          SELECT dispatch.next_fire('0 9 * * MON-FRI', t, 'America/New_York') FROM s WHERE t <= '2026-04-01')
        SELECT count(*) FROM s WHERE t <= '2026-04-01') AS stepped;
-- The day the clock skips 02:00-03:00: 02:30 fires once, at 03:00 EDT.
SELECT t FROM dispatch.fire_times('30 2 * * *', '2026-03-07', '2026-03-10', 'America/New_York') AS t;
-- The day it runs through 01:00-02:00 twice: 01:30 fires once, the first time.
SELECT t FROM dispatch.fire_times('30 1 * * *', '2026-10-31', '2026-11-02', 'America/New_York') AS t;
-- (after, until]: the end is included, the start is not.
SELECT t FROM dispatch.fire_times('@daily', '2026-01-01', '2026-01-03') AS t;
-- A rate on its anchor's grid; the last two only; counting a year of seconds is arithmetic.
SELECT t FROM dispatch.fire_times('rate(90 minutes)', '2026-01-01', '2026-01-01 06:00', anchor => '2026-01-01 00:10') AS t;
SELECT t FROM dispatch.fire_times('rate(90 minutes)', '2026-01-01', '2026-01-02', anchor => '2026-01-01 00:10',
                                  max_rows => 2, from_end => true) AS t;
SELECT dispatch.count_fires('1S', '2026-01-01', '2027-01-01') AS seconds_in_2026,
       dispatch.count_fires('rate(7 days)', '2026-01-01', '2026-01-01') AS empty_window,
       dispatch.count_fires('at 2030-01-01T00:00:00Z', '2029-12-31', '2030-01-02') AS one_shot,
       dispatch.count_fires('0 0 30 2 *', '2026-01-01', '2036-01-01') AS never,
       dispatch.count_fires(NULL, '2026-01-01', '2027-01-01') AS null_spec;
-- The last three fires of a cron spec in a window (kept in a ring as the window is stepped).
SELECT t FROM dispatch.fire_times('cron(0 12 L * ? *)', '2026-01-01', '2026-12-31', max_rows => 3, from_end => true) AS t;
SELECT public.try($$SELECT dispatch.fire_times('@hourly', '2026-01-01', '2026-01-02', max_rows => 100001)$$);
SELECT public.try($$SELECT dispatch.count_fires('* * * * *', '2000-01-01', '2030-01-01')$$);

-- schedule() ----------------------------------------------------------------------------------

SELECT dispatch.schedule('nightly', '0 2 * * *',
         '{"kind": "report", "payload": {"scope": "all"}, "priority": "high", "deadline": "1 hour"}',
         tenant => 't09', timezone => 'Europe/London', starts_at => '2030-07-01') AS nightly \gset
SELECT schedule_id = :nightly AS same_id, name, tenant, spec_kind, timezone, jitter, jitter_offset, anchor,
       next_fire_at, status, owner_role = current_user AS owned_by_me, consecutive_failures,
       max_failures, catch_up, catch_up_limit, concurrency, cost_per_fire, enabled,
       sweep_search_path = current_setting('search_path') AS search_path_kept
  FROM dispatch.schedules WHERE tenant = 't09';
-- The tenant named by a schedule exists now, with the defaults.
SELECT tenant, weight, credit_balance FROM dispatch.tenants WHERE tenant = 't09';

-- The zone defaults to dispatch.timezone, read once: the schedule keeps it.
SET dispatch.timezone = 'America/New_York';
SELECT dispatch.schedule('ny-morning', '0 9 * * *', '{"kind": "standup"}', tenant => 't09',
                         starts_at => '2030-07-01') IS NOT NULL AS created;
RESET dispatch.timezone;
SELECT name, timezone, next_fire_at FROM dispatch.schedules WHERE name = 'ny-morning';
SELECT public.try($$SET dispatch.timezone = 'Mars/Olympus_Mons'$$);
SELECT public.try($$SET dispatch.timezone = 'UTC+3'$$);
SELECT public.try($$SET dispatch.timezone = 'Australia/Lord_Howe'$$);
RESET dispatch.timezone;
SHOW dispatch.timezone;

-- Rates: the grid starts at starts_at; jitter is a fixed offset per schedule, 0-60 s by
-- default, none when told 0; cron specs get none unless asked.
SELECT dispatch.schedule('every-90m', 'rate(90 minutes)', '{"kind": "poll"}', tenant => 't09',
                         starts_at => '2030-01-01 00:10', jitter => '0') IS NOT NULL AS created;
SELECT dispatch.schedule('every-5m', '5M', '{"kind": "poll"}', tenant => 't09',
                         starts_at => '2030-01-01') IS NOT NULL AS created;
SELECT dispatch.schedule('cron-jitter', '0 * * * *', '{"kind": "poll"}', tenant => 't09',
                         starts_at => '2030-01-01', jitter => '10 minutes') IS NOT NULL AS created;
SELECT name, spec_kind, anchor, jitter,
       CASE WHEN jitter = interval '0' THEN jitter_offset = interval '0'
            ELSE jitter_offset >= interval '0' AND jitter_offset < coalesce(jitter, interval '60 seconds') END AS offset_in_window,
       jitter_offset = dispatch.schedule_jitter_offset(tenant, name, spec_kind, jitter) AS deterministic,
       next_fire_at - jitter_offset AS slot
  FROM dispatch.schedules WHERE name IN ('every-90m', 'every-5m', 'cron-jitter', 'nightly') ORDER BY name;
-- Different names spread over the minute.
SELECT count(DISTINCT dispatch.schedule_jitter_offset('t', 'rate-' || i, 'rate', NULL)) AS distinct_offsets
  FROM generate_series(1, 50) AS i;

-- A plain INSERT is validated and derived the same way.
INSERT INTO dispatch.schedules (name, tenant, spec, task, starts_at)
VALUES ('via-insert', 't09', '@hourly', '{"kind": "x"}', '2030-01-01 00:30')
RETURNING spec_kind, timezone, next_fire_at, status, owner_role = current_user AS owned_by_me;
SELECT public.try($$INSERT INTO dispatch.schedules (name, tenant, spec, task) VALUES ('bad', 't09', '@weekly-ish', '{"kind": "x"}')$$);
SELECT public.try($$INSERT INTO dispatch.schedules (name, tenant, spec, task) VALUES ('via-insert', 't09', '@daily', '{"kind": "x"}')$$);
SELECT public.try($$INSERT INTO dispatch.schedules (name, tenant, spec, task) VALUES ('no-kind', 't09', '@daily', '{"payload": {}}')$$);
-- Derived columns are derived, whatever the INSERT says.
INSERT INTO dispatch.schedules (name, tenant, spec, task, starts_at, next_fire_at, spec_kind, consecutive_failures)
VALUES ('derived', 't09', '@daily', '{"kind": "x"}', '2030-01-01', '1999-01-01', 'once', 7)
RETURNING spec_kind, next_fire_at, consecutive_failures;

-- An UPDATE of the spec or window recomputes the next fire; a bad one is refused.
UPDATE dispatch.schedules SET spec = '0 3 * * *' WHERE schedule_id = :nightly RETURNING next_fire_at, spec_kind;
UPDATE dispatch.schedules SET starts_at = '2031-01-01', timezone = 'Asia/Tokyo' WHERE schedule_id = :nightly
RETURNING next_fire_at;
SELECT public.try($$UPDATE dispatch.schedules SET spec = 'rate(0 days)' WHERE name = 'nightly'$$);
SELECT public.try($$UPDATE dispatch.schedules SET task = '{"kind": ""}' WHERE name = 'nightly'$$);
SELECT public.try($$UPDATE dispatch.schedules SET ends_at = '2030-01-01' WHERE name = 'nightly'$$);
SELECT public.try($$UPDATE dispatch.schedules SET tenant = 'other' WHERE name = 'nightly'$$);
SELECT spec, timezone, next_fire_at FROM dispatch.schedules WHERE schedule_id = :nightly;

-- pause, resume, unschedule -------------------------------------------------------------------

SELECT dispatch.pause('nightly', 't09') AS paused;
SELECT status, enabled, pause_reason = 'paused by ' || current_user AS reason_says_who,
       paused_at IS NOT NULL AS paused_at_set, next_fire_at
  FROM dispatch.schedules WHERE schedule_id = :nightly;
SELECT dispatch.pause('nightly', 't09') AS paused_again;
-- A paused schedule is not in the tick's index: next_due() does not see it.
SELECT dispatch.next_due() = (SELECT min(next_fire_at) FROM dispatch.schedules WHERE status = 'active') AS next_due_is_earliest_active;
SELECT dispatch.resume('nightly', 't09') AS resumed;
SELECT status, enabled, pause_reason, paused_at, consecutive_failures, next_fire_at
  FROM dispatch.schedules WHERE schedule_id = :nightly;
SELECT dispatch.resume('nightly', 't09') AS resumed_again;
-- Created paused.
SELECT dispatch.schedule('later', '@daily', '{"kind": "x"}', tenant => 't09', starts_at => '2030-01-01',
                         enabled => false) IS NOT NULL AS created;
SELECT status, pause_reason = 'created paused by ' || current_user AS reason FROM dispatch.schedules WHERE name = 'later';

SELECT dispatch.unschedule('nightly', 't09');
SELECT status, deleted_at IS NOT NULL AS deleted, next_fire_at FROM dispatch.schedules WHERE schedule_id = :nightly;
SELECT public.try($$SELECT dispatch.unschedule('nightly', 't09')$$);
SELECT public.try($$SELECT dispatch.pause('nightly', 't09')$$);
SELECT public.try($$SELECT dispatch.resume('no-such', 't09')$$);
SELECT public.try($$SELECT dispatch.pause('nightly', NULL)$$);
SELECT public.try(format($$UPDATE dispatch.schedules SET spec = '@daily' WHERE schedule_id = %s$$, :nightly));
-- The name is free again; the deleted one keeps its row (and history) under it.
SELECT dispatch.schedule('nightly', '0 2 * * *', '{"kind": "report"}', tenant => 't09',
                         starts_at => '2030-07-01') <> :nightly AS new_id;
SELECT name, status, count(*) FROM dispatch.schedules WHERE name = 'nightly' GROUP BY 1, 2 ORDER BY 2;

-- Ended: a one-shot cannot be resumed once fired (shown in 11_schedule_fire); here, a window
-- whose last slot has passed reads ended when the next fire is computed past ends_at.
SELECT dispatch.schedule('window', '@daily', '{"kind": "x"}', tenant => 't09',
                         starts_at => '2030-01-01', ends_at => '2030-01-03') IS NOT NULL AS created;
SELECT dispatch.count_fires(spec, starts_at - interval '1 microsecond', ends_at, timezone) AS fires_in_window
  FROM dispatch.schedules WHERE name = 'window';

-- Caps ------------------------------------------------------------------------------------------

INSERT INTO dispatch.tenants (tenant, max_schedules, max_schedules_per_record)
VALUES ('t09m', 3, 1);
SELECT dispatch.schedule('m1', '@daily', '{"kind": "x"}', tenant => 't09m', starts_at => '2030-01-01',
                         record_ref => 'acct-1') IS NOT NULL AS m1;
SELECT public.try($$SELECT dispatch.schedule('m2', '@daily', '{"kind": "x"}', tenant => 't09m', starts_at => '2030-01-01', record_ref => 'acct-1')$$);
SELECT dispatch.schedule('m2', '@daily', '{"kind": "x"}', tenant => 't09m', starts_at => '2030-01-01',
                         record_ref => 'acct-2') IS NOT NULL AS m2;
SELECT dispatch.schedule('m3', '@daily', '{"kind": "x"}', tenant => 't09m', starts_at => '2030-01-01',
                         enabled => false) IS NOT NULL AS m3_paused_counts_too;
SELECT public.try($$SELECT dispatch.schedule('m4', '@daily', '{"kind": "x"}', tenant => 't09m', starts_at => '2030-01-01')$$);
-- A deleted schedule frees its place.
SELECT dispatch.unschedule('m1', 't09m');
SELECT dispatch.schedule('m4', '@daily', '{"kind": "x"}', tenant => 't09m', starts_at => '2030-01-01',
                         record_ref => 'acct-1') IS NOT NULL AS m4;

-- Credit ------------------------------------------------------------------------------------------
-- A schedule's projected cost is that of its first 7 days of fires (from starts_at when later).

INSERT INTO dispatch.tenants (tenant, credit_balance) VALUES ('t09c', 100);
-- 168 fires a week at 1 each: refused, with the numbers.
SELECT public.try($$SELECT dispatch.schedule('hourly', '@hourly', '{"kind": "x"}', tenant => 't09c', cost_per_fire => 1, starts_at => '2030-01-01')$$);
-- At 0.5 each, 84: covered.
SELECT dispatch.schedule('hourly', '@hourly', '{"kind": "x"}', tenant => 't09c', cost_per_fire => 0.5, starts_at => '2030-01-01') IS NOT NULL AS created;
-- 7 more at 3 each is 21, with the 84 of the other schedule 105: refused.
SELECT public.try($$SELECT dispatch.schedule('daily', '0 9 * * *', '{"kind": "x"}', tenant => 't09c', cost_per_fire => 3, starts_at => '2030-01-01')$$);
-- At 2 each, 14 + 84 = 98: covered. One-shots and free schedules are not pre-authorised.
SELECT dispatch.schedule('daily', '0 9 * * *', '{"kind": "x"}', tenant => 't09c', cost_per_fire => 2, starts_at => '2030-01-01') IS NOT NULL AS created;
SELECT dispatch.schedule('once', 'at 2030-01-01T00:00:00Z', '{"kind": "x"}', tenant => 't09c', cost_per_fire => 500) IS NOT NULL AS created;
SELECT dispatch.schedule('free', '* * * * *', '{"kind": "x"}', tenant => 't09c', starts_at => '2030-01-01') IS NOT NULL AS created;
-- The forecast looks from now: none of these starts within a week...
SELECT name, fires, cost_per_fire, cost FROM dispatch.forecast('t09c', '7 days');
-- ... and over the years to come, each counts its own fires.
SELECT name, fires, cost_per_fire, cost FROM dispatch.forecast('t09c', (timestamptz '2030-01-08' - now())::interval);
-- Resuming spends credit again: with the balance lowered, the resume is refused and it stays paused.
SELECT dispatch.pause('daily', 't09c');
UPDATE dispatch.tenants SET credit_balance = 90 WHERE tenant = 't09c';
SELECT public.try($$SELECT dispatch.resume('daily', 't09c')$$);
SELECT status FROM dispatch.schedules WHERE name = 'daily' AND tenant = 't09c';
-- Raising cost_per_fire of an active schedule is checked too.
SELECT public.try($$UPDATE dispatch.schedules SET cost_per_fire = 1 WHERE name = 'hourly' AND tenant = 't09c'$$);
SELECT public.try($$SELECT * FROM dispatch.forecast('t09c', '-1 day')$$);
SELECT public.try($$SELECT * FROM dispatch.forecast(NULL, '1 day')$$);

-- Who may do what ------------------------------------------------------------------------------

CREATE ROLE regress_sched_bob LOGIN IN ROLE dispatch_admin;
CREATE ROLE regress_sched_carol LOGIN IN ROLE dispatch_admin;
CREATE ROLE regress_sched_agent LOGIN IN ROLE dispatch_agent;
CREATE ROLE regress_sched_reader LOGIN IN ROLE dispatch_reader;
SET ROLE regress_sched_bob;
SELECT dispatch.schedule('bobs', '@daily', '{"kind": "x"}', tenant => 't09', starts_at => '2030-01-01',
                         sweep => 'SELECT 1 AS one') IS NOT NULL AS created;
SELECT owner_role FROM dispatch.schedules WHERE name = 'bobs';
-- dispatch_admin is not enough to own a schedule as someone else: its sweep would run as them.
SELECT public.try($$INSERT INTO dispatch.schedules (name, tenant, spec, task, owner_role) VALUES ('as-postgres', 't09', '@daily', '{"kind": "x"}', 'regress_sched_carol')$$);
SET ROLE regress_sched_carol;
-- Another admin may pause it, but not change the query that runs as bob.
SELECT dispatch.pause('bobs', 't09');
SELECT public.try($$UPDATE dispatch.schedules SET sweep = 'SELECT 2 AS two' WHERE name = 'bobs'$$);
SELECT public.try($$UPDATE dispatch.schedules SET next_fire_at = now() WHERE name = 'bobs'$$);
UPDATE dispatch.schedules SET catch_up = 'all', max_failures = 5 WHERE name = 'bobs' RETURNING catch_up, max_failures;
SET ROLE regress_sched_agent;
SELECT public.try($$SELECT dispatch.schedule('agents', '@daily', '{"kind": "x"}')$$);
SELECT public.try($$SELECT dispatch.pause('bobs', 't09')$$);
SET ROLE regress_sched_reader;
SELECT count(*) > 0 AS reader_sees_schedules FROM dispatch.schedules;
SELECT count(*) AS reader_forecast FROM dispatch.forecast('t09c', '7 days');
SELECT public.try($$SELECT dispatch.unschedule('bobs', 't09')$$);
RESET ROLE;

-- Cleanup.
DELETE FROM dispatch.fires;
DELETE FROM dispatch.schedules;
DROP ROLE regress_sched_bob, regress_sched_carol, regress_sched_agent, regress_sched_reader;
