-- 40_next_fire: schedule specs (src/cronspec.c, src/cronnext.c, src/nextfire.c):
-- dispatch.next_fire, dispatch.validate_spec, dispatch.spec_kind.
--
-- Every expected instant below was worked out by hand from the calendar and the tz rules
-- (the reasoning is in the comment above each DST vector) and is written into the test;
-- check() prints MISMATCH next to any fire that differs, so the .out file documents the
-- answers and cannot silently absorb a wrong one.
--
-- DST facts used (2026, from the IANA rules):
--   America/New_York   gap:     Mar 8, 02:00 EST -> 03:00 EDT, at 07:00Z
--                      overlap: Nov 1, 02:00 EDT -> 01:00 EST, at 06:00Z; 01:00-01:59 local
--                               runs first as EDT (05:00-05:59Z), then as EST (06:00-06:59Z)
--   Europe/London      gap:     Mar 29, 01:00 GMT -> 02:00 BST, at 01:00Z
--                      overlap: Oct 25, 02:00 BST -> 01:00 GMT, at 01:00Z; 01:00-01:59 local
--                               runs as BST (00:00-00:59Z), then GMT (01:00-01:59Z)
--   Australia/Lord_Howe (30-minute shift, +10:30 standard, +11 summer)
--                      overlap: Apr 5, 02:00 +11 -> 01:30 +10:30, at Apr 4 15:00Z; 01:30-01:59
--                               local runs as +11 (14:30-14:59Z), then +10:30 (15:00-15:29Z)
--                      gap:     Oct 4, 02:00 +10:30 -> 02:30 +11, at Oct 3 15:30Z
SET timezone = 'UTC';

-- An instant, and the wall time and UTC offset it has in zone tz.
CREATE FUNCTION pg_temp.show(t timestamptz, tz text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN t IS NULL THEN 'never' ELSE
    pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') || '  = ' ||
    pg_catalog.to_char(t AT TIME ZONE tz, 'Dy YYYY-MM-DD HH24:MI:SS') || ' (UTC' ||
    CASE WHEN off < interval '0' THEN '-' ELSE '+' END ||
    pg_catalog.to_char(pg_catalog.justify_hours(CASE WHEN off < interval '0' THEN -off ELSE off END),
                       'HH24:MI') || ')' END
  FROM (SELECT (t AT TIME ZONE tz) - (t AT TIME ZONE 'UTC') AS off) o
$$;

-- Apply next_fire repeatedly from `after`, comparing each fire with the expected one
-- (a NULL element expects "never").
CREATE FUNCTION pg_temp.check(spec text, after timestamptz, tz text,
                              expect timestamptz[], anchor timestamptz DEFAULT NULL)
RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$
DECLARE
  t timestamptz := after;
  got timestamptz;
BEGIN
  FOR i IN 1 .. pg_catalog.array_length(expect, 1) LOOP
    got := dispatch.next_fire(spec, t, tz, anchor);
    RETURN NEXT pg_temp.show(got, tz) ||
      CASE WHEN got IS NOT DISTINCT FROM expect[i] THEN ''
           ELSE '   <-- MISMATCH, expected ' || pg_temp.show(expect[i], tz) END;
    EXIT WHEN got IS NULL;
    t := got;
  END LOOP;
END
$$;

-- SQLSTATE and message of validating a spec (or 'ok').
CREATE FUNCTION pg_temp.try(spec text, tz text DEFAULT 'UTC') RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM dispatch.validate_spec(spec, tz);
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

------------------------------------------------------------------------------------------
-- America/New_York
------------------------------------------------------------------------------------------
-- 02:30 does not exist on Mar 8 (02:00 EST jumps to 03:00 EDT): it fires once, at the
-- first instant after the gap, 03:00 EDT = 07:00Z; on Mar 9 02:30 EDT = 06:30Z.
SELECT pg_temp.check('30 2 * * *', '2026-03-07 17:00Z', 'America/New_York',
                     '{2026-03-08 07:00Z, 2026-03-09 06:30Z}');
-- 02:00, 02:20 and 02:40 all fall in the gap: ONE fire at 07:00Z (03:00 EDT), not three;
-- Mar 9 is normal again: 02:00 EDT = 06:00Z, 02:20 EDT = 06:20Z.
SELECT pg_temp.check('*/20 2 * * *', '2026-03-08 05:00Z', 'America/New_York',
                     '{2026-03-08 07:00Z, 2026-03-09 06:00Z, 2026-03-09 06:20Z}');
-- Every 30 minutes across the gap: 01:30 EST = 06:30Z; 02:00 and 02:30 are skipped wall
-- times and 03:00 EDT is the gap's end, all the instant 07:00Z, which fires once;
-- then 03:30 EDT = 07:30Z.
SELECT pg_temp.check('*/30 * * * *', '2026-03-08 06:00Z', 'America/New_York',
                     '{2026-03-08 06:30Z, 2026-03-08 07:00Z, 2026-03-08 07:30Z}');
-- A spec that misses the gap keeps its wall time: 09:00 is 14:00Z in EST (Mar 7) and
-- 13:00Z in EDT (Mar 8, 9).
SELECT pg_temp.check('0 9 * * *', '2026-03-07 00:00Z', 'America/New_York',
                     '{2026-03-07 14:00Z, 2026-03-08 13:00Z, 2026-03-09 13:00Z}');
-- 01:30 happens twice on Nov 1: it fires at the first, 01:30 EDT = 05:30Z, only; Nov 2
-- 01:30 EST = 06:30Z.
SELECT pg_temp.check('30 1 * * *', '2026-10-31 16:00Z', 'America/New_York',
                     '{2026-11-01 05:30Z, 2026-11-02 06:30Z}');
-- Asked from inside the second run of 01:xx (06:10Z = 01:10 EST): 01:30 already fired at
-- 05:30Z, so the next fire is Nov 2 01:30 EST = 06:30Z.
SELECT pg_temp.check('30 1 * * *', '2026-11-01 06:10Z', 'America/New_York',
                     '{2026-11-02 06:30Z}');
-- Every 30 minutes across the overlap: 01:00 EDT = 05:00Z, 01:30 EDT = 05:30Z, then the
-- repeated 01:00 and 01:30 (EST) do not fire again; next is 02:00 EST = 07:00Z.
SELECT pg_temp.check('*/30 * * * *', '2026-11-01 04:45Z', 'America/New_York',
                     '{2026-11-01 05:00Z, 2026-11-01 05:30Z, 2026-11-01 07:00Z}');
-- 02:00 on Nov 1 happens once (EST, 07:00Z): the overlap does not touch it.
SELECT pg_temp.check('0 2 * * *', '2026-10-31 12:00Z', 'America/New_York',
                     '{2026-11-01 07:00Z, 2026-11-02 07:00Z}');

------------------------------------------------------------------------------------------
-- Europe/London
------------------------------------------------------------------------------------------
-- 01:30 does not exist on Mar 29 (01:00 GMT jumps to 02:00 BST): fires at the gap's end,
-- 02:00 BST = 01:00Z; Mar 30 01:30 BST = 00:30Z.
SELECT pg_temp.check('30 1 * * *', '2026-03-28 12:00Z', 'Europe/London',
                     '{2026-03-29 01:00Z, 2026-03-30 00:30Z}');
-- 01:30 happens twice on Oct 25: first occurrence 01:30 BST = 00:30Z; Oct 26 01:30 GMT =
-- 01:30Z.
SELECT pg_temp.check('30 1 * * *', '2026-10-24 12:00Z', 'Europe/London',
                     '{2026-10-25 00:30Z, 2026-10-26 01:30Z}');
-- Sunday noon, a spec clear of both transitions: 12:00 GMT = 12:00Z on Mar 22, 12:00 BST =
-- 11:00Z on Mar 29 (the day of the gap).
SELECT pg_temp.check('0 12 * * SUN', '2026-03-21 00:00Z', 'Europe/London',
                     '{2026-03-22 12:00Z, 2026-03-29 11:00Z}');
-- Hourly across the overlap: 00:00 BST = 23:00Z (Oct 24), 01:00 BST = 00:00Z, then the
-- repeated 01:00 (GMT, 01:00Z) does not fire; 02:00 GMT = 02:00Z.
SELECT pg_temp.check('@hourly', '2026-10-24 22:30Z', 'Europe/London',
                     '{2026-10-24 23:00Z, 2026-10-25 00:00Z, 2026-10-25 02:00Z}');

------------------------------------------------------------------------------------------
-- Australia/Lord_Howe: a 30-minute DST shift
------------------------------------------------------------------------------------------
-- 02:15 does not exist on Oct 4 (02:00 +10:30 jumps to 02:30 +11): fires at the gap's
-- end, 02:30 +11 = Oct 3 15:30Z; Oct 5 02:15 +11 = Oct 4 15:15Z.
SELECT pg_temp.check('15 2 * * *', '2026-10-03 00:00Z', 'Australia/Lord_Howe',
                     '{2026-10-03 15:30Z, 2026-10-04 15:15Z}');
-- On the half hour across the gap, from 01:30 +10:30 (15:00Z): 02:00 is in the gap and
-- 02:30 is its end, one instant 15:30Z, one fire; then 03:00 +11 = 16:00Z, 03:30 = 16:30Z.
SELECT pg_temp.check('0,30 * * * *', '2026-10-03 15:00Z', 'Australia/Lord_Howe',
                     '{2026-10-03 15:30Z, 2026-10-03 16:00Z, 2026-10-03 16:30Z}');
-- 01:45 happens twice on Apr 5: first as +11 = Apr 4 14:45Z; Apr 6 01:45 +10:30 =
-- Apr 5 15:15Z.
SELECT pg_temp.check('45 1 * * *', '2026-04-04 00:00Z', 'Australia/Lord_Howe',
                     '{2026-04-04 14:45Z, 2026-04-05 15:15Z}');
-- Every 15 minutes across the overlap from 01:40 +11 (14:40Z): 01:45 +11 = 14:45Z; the
-- repeated 01:30-01:59 (+10:30) does not fire again; 02:00 +10:30 = 15:30Z, 02:15 = 15:45Z.
SELECT pg_temp.check('*/15 * * * *', '2026-04-04 14:40Z', 'Australia/Lord_Howe',
                     '{2026-04-04 14:45Z, 2026-04-04 15:30Z, 2026-04-04 15:45Z}');
-- Noon daily, clear of the gap: 12:00 +10:30 = 01:30Z on Oct 3, 12:00 +11 = 01:00Z on Oct 4.
SELECT pg_temp.check('0 12 * * *', '2026-10-02 12:00Z', 'Australia/Lord_Howe',
                     '{2026-10-03 01:30Z, 2026-10-04 01:00Z}');

------------------------------------------------------------------------------------------
-- Pacific/Apia: a whole local day skipped (2011) and one repeated (1892)
------------------------------------------------------------------------------------------
-- Samoa went from -10 to +14 at 2011-12-30 10:00Z, so local Dec 30 never happened. Noon
-- on Dec 29 (-10) is 22:00Z; noon on Dec 30 falls in the gap and fires at its end, local
-- Dec 31 00:00 = Dec 30 10:00Z; noon on Dec 31 (+14) is Dec 30 22:00Z.
SELECT pg_temp.check('0 12 * * *', '2011-12-29 09:00Z', 'Pacific/Apia',
                     '{2011-12-29 22:00Z, 2011-12-30 10:00Z, 2011-12-30 22:00Z}');
-- In 1892 Apia went from +12:33:04 to -11:26:56 at Jul 4 11:26:56Z, so local Jul 4 ran
-- twice. Noon Jul 4 fires at its first run, 12:00 - 12:33:04 = Jul 3 23:26:56Z, and not
-- again; then noon Jul 5 (-11:26:56) = Jul 5 23:26:56Z.
SELECT pg_temp.check('0 12 * * *', '1892-07-03 00:00Z', 'Pacific/Apia',
                     '{1892-07-03 23:26:56Z, 1892-07-05 23:26:56Z}');
-- Every minute, asked from inside the second run of Jul 4 (12:00Z = local 00:33:04): each
-- remaining Jul 4 minute already fired in the first run, so the next is local Jul 5 00:00
-- = Jul 5 11:26:56Z.
SELECT pg_temp.check('* * * * *', '1892-07-04 12:00Z', 'Pacific/Apia',
                     '{1892-07-05 11:26:56Z}');

------------------------------------------------------------------------------------------
-- Calendar: month ends, leap days, L / W / #, year boundaries (UTC)
------------------------------------------------------------------------------------------
-- The 31st skips 30-day months: after Apr 1 comes May 31, Jul 31 (not Jun 31).
SELECT pg_temp.check('0 0 31 * *', '2026-04-01 00:00Z', 'UTC',
                     '{2026-05-31 00:00Z, 2026-07-31 00:00Z}');
-- L is the last day whatever the month's length: Feb 28 2026, Mar 31, Apr 30; 2028 is a
-- leap year, so its February ends on the 29th.
SELECT pg_temp.check('cron(0 0 L * ? *)', '2026-01-31 00:00Z', 'UTC',
                     '{2026-02-28 00:00Z, 2026-03-31 00:00Z, 2026-04-30 00:00Z}');
SELECT pg_temp.check('cron(0 0 L 2 ? *)', '2027-03-01 00:00Z', 'UTC',
                     '{2028-02-29 00:00Z}');
-- Feb 29 from 2025: 2026 and 2027 are not leap years, 2028 is; 2100 is not (divisible by
-- 100, not 400), so after 2096 comes 2104.
SELECT pg_temp.check('0 0 29 2 *', '2025-01-01 00:00Z', 'UTC',
                     '{2028-02-29 00:00Z, 2032-02-29 00:00Z}');
SELECT pg_temp.check('0 0 29 2 *', '2096-03-01 00:00Z', 'UTC', '{2104-02-29 00:00Z}');
-- LW, the last weekday: Jan 31 2026 is a Saturday -> Fri Jan 30; Feb 28 is a Saturday ->
-- Fri Feb 27; Mar 31 is a Tuesday -> Mar 31.
SELECT pg_temp.check('cron(0 9 LW * ? *)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-30 09:00Z, 2026-02-27 09:00Z, 2026-03-31 09:00Z}');
-- LW when the last day is a Sunday (May 31 2026): Fri May 29.
SELECT pg_temp.check('cron(0 9 LW 5 ? 2026)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-05-29 09:00Z, NULL}');
-- 1W when the 1st is a Saturday (Aug 1 2026): not Fri Jul 31 (another month) but
-- Mon Aug 3. Sep 1 2026 is a Tuesday: Sep 1.
SELECT pg_temp.check('cron(0 9 1W * ? *)', '2026-07-15 00:00Z', 'UTC',
                     '{2026-08-03 09:00Z, 2026-09-01 09:00Z}');
-- 31W when the 31st is a Sunday (May 31 2026): not Mon Jun 1 but Fri May 29; months
-- without a 31st do not fire; Jul 31 2026 is a Friday.
SELECT pg_temp.check('cron(0 9 31W * ? *)', '2026-05-01 00:00Z', 'UTC',
                     '{2026-05-29 09:00Z, 2026-07-31 09:00Z}');
-- 15W: Feb 15 2026 is a Sunday -> Mon Feb 16; Aug 15 2026 is a Saturday -> Fri Aug 14.
SELECT pg_temp.check('cron(0 9 15W 2,8 ? 2026)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-02-16 09:00Z, 2026-08-14 09:00Z, NULL}');
-- MON#2, the second Monday: Jan 1 2026 is a Thursday, Mondays are 5, 12 -> Jan 12; Feb 2, 9
-- -> Feb 9. 2#2 is the same day in AWS numbering (1 = SUN).
SELECT pg_temp.check('cron(30 8 ? * MON#2 *)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-12 08:30Z, 2026-02-09 08:30Z}');
SELECT pg_temp.check('cron(30 8 ? * 2#2 *)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-12 08:30Z}');
-- MON#5 fires only in months with five Mondays: Mar 30, Jun 29, Aug 31 2026.
SELECT pg_temp.check('cron(0 0 ? * MON#5 *)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-03-30 00:00Z, 2026-06-29 00:00Z, 2026-08-31 00:00Z}');
-- FRIL and 6L, the last Friday: Jan 30, Feb 27 2026.
SELECT pg_temp.check('cron(0 17 ? * FRIL *)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-30 17:00Z, 2026-02-27 17:00Z}');
SELECT pg_temp.check('cron(0 17 ? * 6L *)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-30 17:00Z}');
-- Standard cron day rule: day-of-month 13 OR Friday (both fields restricted): Fri Jan 2,
-- Fri Jan 9, Tue Jan 13, Fri Jan 16.
SELECT pg_temp.check('0 12 13 * FRI', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-02 12:00Z, 2026-01-09 12:00Z, 2026-01-13 12:00Z, 2026-01-16 12:00Z}');
-- Year boundaries, and "strictly after": from 23:59 itself the next is a year later.
SELECT pg_temp.check('59 23 31 12 *', '2026-12-31 23:58Z', 'UTC',
                     '{2026-12-31 23:59Z, 2027-12-31 23:59Z}');
SELECT pg_temp.check('0 0 1 1 *', '2026-12-31 23:59:59.999999Z', 'UTC',
                     '{2027-01-01 00:00Z, 2028-01-01 00:00Z}');
-- New Year in New York is 05:00Z.
SELECT pg_temp.check('@yearly', '2026-06-01 00:00Z', 'America/New_York',
                     '{2027-01-01 05:00Z}');
-- AWS year field: every other year 2027-2031, then never; a year already past: never.
SELECT pg_temp.check('cron(0 12 1 1 ? 2027-2031/2)', '2026-01-01 00:00Z', 'UTC',
                     '{2027-01-01 12:00Z, 2029-01-01 12:00Z, 2031-01-01 12:00Z, NULL}');
SELECT pg_temp.check('cron(0 12 1 1 ? 2025)', '2026-01-01 00:00Z', 'UTC', '{NULL}');
-- Names, case-insensitive, ranges and steps: weekdays at 09:15 and 09:45.
SELECT pg_temp.check('15-45/30 9 * jan-Feb mon-FRI', '2026-01-01 09:20Z', 'UTC',
                     '{2026-01-01 09:45Z, 2026-01-02 09:15Z, 2026-01-02 09:45Z, 2026-01-05 09:15Z}');
-- Sunday is 0 and 7; SAT-SUN is 6-7.
SELECT pg_temp.check('0 0 * * SAT-SUN', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-03 00:00Z, 2026-01-04 00:00Z, 2026-01-10 00:00Z}');
-- N/step runs from N to the field's end: minutes 5/20 are 5, 25, 45; day-of-week 7/2 is
-- just 7, Sunday (Jan 4 2026).
SELECT pg_temp.check('5/20 0 * * 7/2', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-04 00:05Z, 2026-01-04 00:25Z, 2026-01-04 00:45Z, 2026-01-11 00:05Z}');
-- Never: Feb 30 does not exist; nor does Apr 31.
SELECT pg_temp.check('0 0 30 2 *', '2026-01-01 00:00Z', 'UTC', '{NULL}');
SELECT pg_temp.check('cron(0 0 31 4 ? *)', '2026-01-01 00:00Z', 'UTC', '{NULL}');

------------------------------------------------------------------------------------------
-- @-shorthands (from Thu 2026-01-01 10:30Z)
------------------------------------------------------------------------------------------
SELECT s, pg_temp.show(dispatch.next_fire(s, '2026-01-01 10:30Z'), 'UTC')
FROM (VALUES ('@hourly'), ('@daily'), ('@midnight'), ('@weekly'), ('@monthly'),
             ('@yearly'), ('@annually'), ('@DAILY')) v(s);

------------------------------------------------------------------------------------------
-- Rates: absolute intervals on the grid anchor + k * interval, zone ignored
------------------------------------------------------------------------------------------
-- Default anchor 1970-01-01 00:00Z: 5-minute marks; from a mark itself, the next one.
SELECT pg_temp.check('rate(5 minutes)', '2026-01-01 00:02:30Z', 'UTC',
                     '{2026-01-01 00:05Z, 2026-01-01 00:10Z}');
SELECT pg_temp.check('rate(1 minute)', '2026-01-01 00:00Z', 'UTC', '{2026-01-01 00:01Z}');
SELECT pg_temp.check('rate(2 hours)', '2026-01-01 01:00Z', 'UTC', '{2026-01-01 02:00Z}');
SELECT pg_temp.check('rate(45 seconds)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-01 00:00:45Z, 2026-01-01 00:01:30Z}');
-- A day is 24 hours even across a DST change: midnight UTC is 19:00 EST, then 20:00 EDT.
SELECT pg_temp.check('rate(1 day)', '2026-03-07 12:00Z', 'America/New_York',
                     '{2026-03-08 00:00Z, 2026-03-09 00:00Z}');
-- An explicit anchor shifts the grid: days from 2025-06-01 09:30Z.
SELECT pg_temp.check('rate(1 day)', '2026-01-01 10:00Z', 'UTC',
                     '{2026-01-02 09:30Z, 2026-01-03 09:30Z}', '2025-06-01 09:30Z');
-- An anchor in the future works the same way: the grid extends backwards.
SELECT pg_temp.check('rate(7 days)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-01-05 12:00Z}', '2026-03-02 12:00Z');
-- Shorthand: S, M (minutes, not months), H, D, either case.
SELECT pg_temp.check('30S', '2026-01-01 00:00:10Z', 'UTC', '{2026-01-01 00:00:30Z}');
SELECT pg_temp.check('30m', '2026-01-01 00:10Z', 'UTC', '{2026-01-01 00:30Z}');
SELECT pg_temp.check('2H', '2026-01-01 00:10Z', 'UTC', '{2026-01-01 02:00Z}');
SELECT pg_temp.check('1d', '2026-01-01 00:10Z', 'UTC', '{2026-01-02 00:00Z}');

------------------------------------------------------------------------------------------
-- One-shots
------------------------------------------------------------------------------------------
-- With an offset the instant is absolute (09:00+01 = 08:00Z), whatever the zone; it fires
-- once, then never.
SELECT pg_temp.check('at 2026-12-01T09:00:00+01', '2026-01-01 00:00Z', 'America/New_York',
                     '{2026-12-01 08:00Z, NULL}');
SELECT pg_temp.check('at(2026-12-01T09:00:00Z)', '2026-01-01 00:00Z', 'UTC',
                     '{2026-12-01 09:00Z, NULL}');
-- Without an offset it is wall time in the schedule's zone: 09:00 EST = 14:00Z.
SELECT pg_temp.check('at 2026-12-01T09:00', '2026-01-01 00:00Z', 'America/New_York',
                     '{2026-12-01 14:00Z}');
-- A wall time in the spring gap fires at the gap's end (03:00 EDT = 07:00Z); one in the
-- fall overlap at its first occurrence (01:30 EDT = 05:30Z).
SELECT pg_temp.check('at 2026-03-08T02:30', '2026-01-01 00:00Z', 'America/New_York',
                     '{2026-03-08 07:00Z}');
SELECT pg_temp.check('at 2026-11-01 01:30:00', '2026-01-01 00:00Z', 'America/New_York',
                     '{2026-11-01 05:30Z}');
-- In the past (or exactly now): never.
SELECT pg_temp.check('at 2025-12-01T09:00:00Z', '2026-01-01 00:00Z', 'UTC', '{NULL}');
SELECT pg_temp.check('at 2026-01-01T00:00:00Z', '2026-01-01 00:00Z', 'UTC', '{NULL}');

------------------------------------------------------------------------------------------
-- NULLs, infinities, kinds, valid specs
------------------------------------------------------------------------------------------
SELECT dispatch.next_fire(NULL, '2026-01-01Z') IS NULL AS null_spec,
       dispatch.next_fire('@daily', NULL) IS NULL AS null_after,
       dispatch.next_fire('@daily', '2026-01-01Z', NULL) IS NULL AS null_zone,
       dispatch.next_fire('@daily', 'infinity') IS NULL AS from_infinity;
SELECT s, dispatch.spec_kind(s)
FROM (VALUES ('*/5 * * * *'), ('@weekly'), ('cron(0 9 ? * MON-FRI *)'), ('rate(5 minutes)'),
             ('15M'), ('at 2026-12-01T09:00:00+01')) v(s);
SELECT pg_temp.try('0 9 * * MON-FRI', 'Europe/London') AS valid;
SELECT dispatch.validate_spec('cron(0 9 ? * MON-FRI *)');

------------------------------------------------------------------------------------------
-- Errors: SQLSTATE and message for each bad spec or zone
------------------------------------------------------------------------------------------
SELECT s AS spec, pg_temp.try(s) AS result
FROM (VALUES
  -- out of range, each field
  ('61 * * * *'), ('* 24 * * *'), ('* * 0 * *'), ('* * 32 * *'), ('* * * 13 *'),
  ('* * * * 8'), ('cron(0 9 ? * 0 *)'), ('cron(0 9 ? * MON 1969)'), ('cron(0 9 ? * MON 2200)'),
  -- field counts, empty fields, garbage, trailing junk
  (''), ('   '), ('* * * *'), ('* * * * * *'), ('* * * * * junk'), ('1,,2 * * * *'),
  ('1, * * * *'), ('hello'), ('x * * * *'), ('5x * * * *'), ('MON * * * *'), ('* * * FOO *'),
  ('*5 * * * *'), ('- * * * *'), ('1- * * * *'),
  -- steps and ranges
  ('*/0 * * * *'), ('*/ * * * *'), ('*/61 * * * *'), ('5-2 * * * *'), ('0 22-2 * * *'),
  -- cron(...) rules
  ('cron(0 9 * * MON *)'), ('cron(0 9 ? * ? *)'), ('cron(0 9 1 * MON *)'),
  ('cron(0 9 ? * MON)'), ('cron(0 9 ? * MON * 2030)'), ('cron(0 9 ? * MON *'),
  ('cron(0 9 ? * MON *) x'), ('cron()'), ('cron(0 9 ? * MON#6 *)'), ('cron(0 9 ? * MON# *)'),
  ('cron(0 9 L-2 * ? *)'), ('cron(0 9 ? * SAT-MON *)'), ('cron(0 9 ?,1 * ? *)'),
  ('cron(0 9 ? * MON *)x'), ('* * L * *'), ('* * 15W * *'), ('* * * * 5#2'), ('* * ? * *'),
  ('? * * * *'),
  -- @-shorthands
  ('@reboot'), ('@fortnightly'), ('@daily x'),
  -- rates and shorthand
  ('rate(0 days)'), ('rate(-1 hour)'), ('rate(1.5 hours)'), ('rate(5)'), ('rate(minutes)'),
  ('rate(5 weeks)'), ('rate(5minutes)'), ('rate(5 minutes'), ('rate(4000 days)'), ('0M'),
  ('-5M'), ('5W'), ('5 M'),
  -- one-shots
  ('at 2026-12-01'), ('at 2026-13-01T09:00'), ('at 2026-02-29T09:00'), ('at 2026-12-01T24:00'),
  ('at 2026-12-01T09:60'), ('at 2026-12-01T09:00:60'), ('at 2026-12-01T09:00+16'),
  ('at 2026-12-01T09:00:00.1234567'), ('at 2026-12-01T09:00 tomorrow'), ('at 0000-01-01T00:00')
) v(s);

SELECT z AS zone, pg_temp.try('@daily', z) AS result
FROM (VALUES ('Mars/Olympus_Mons'), ('PST'), ('UTC+3'), ('EST5EDT,M3.2.0,M11.1.0'), (''),
             ('right/UTC'), ('america/new_york'), ('Etc/GMT+3')) v(z);

-- The full error reports, with hints, for a bad spec, a bad zone and a NULL spec.
\set VERBOSITY default
SELECT dispatch.next_fire('cron(0 9 * * MON *)', '2026-01-01Z');
SELECT dispatch.next_fire('@daily', '2026-01-01Z', 'Mars/Olympus_Mons');
SELECT dispatch.validate_spec(NULL);
SELECT dispatch.spec_kind('rate(-1 hour)');
SELECT dispatch.next_fire('@daily', '-infinity');
