/*-------------------------------------------------------------------------
 *
 * firewindow.c
 *		The fires of a schedule spec inside a window of time: how many, and
 *		which.  dispatch.count_fires() and dispatch.fire_times()
 *		(sql/install/52_firewindow.sql).
 *
 * The scheduler needs them in two places.  Catch-up: after downtime, which
 * slots were missed, how many, and the last few of them (the ones a policy of
 * 'all' replays).  Credit and forecasts: how many times a schedule fires in
 * the next seven days.  Both must give the same answer as stepping with
 * dispatch.next_fire from fire to fire, which is what they do for cron specs.
 * A rate fires on the fixed grid anchor + k * interval, so after its first
 * fire in the window (found by next_fire, so the grid is the same one) the
 * rest is arithmetic: a year of a one-second rate costs nothing.
 *
 * Stepping is bounded (MAX_STEPS), so no window can hold a backend for long;
 * the bound is reported as an error, never silently as a short count.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "nextfire.h"

/* 5-field cron fires at most once a minute: 10 million steps is 19 years of them. */
#define MAX_STEPS		INT64CONST(10000000)
#define MAX_ROWS		100000

/* The last instant schedule arithmetic covers, as a TimestampTz (counted from 2000). */
#define LAST_INSTANT \
	(CRONSPEC_MAX_INSTANT - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

static void
too_many_steps(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("the window holds more than %lld fires of this schedule spec",
					(long long) MAX_STEPS),
			 errhint("Count over a shorter window.")));
}

/*
 * Walks the fires of spec in (after, until], in order.  For a rate the walk
 * is arithmetic: first fire, interval, count.
 */
typedef struct FireWalk
{
	const cronspec *spec;
	pg_tz	   *tz;
	const TimestampTz *anchor;
	TimestampTz until;
	TimestampTz at;				/* the current fire */
	bool		valid;
	int64		steps;
} FireWalk;

static void
walk_begin(FireWalk *w, const cronspec *spec, pg_tz *tz, const TimestampTz *anchor,
		   TimestampTz after, TimestampTz until)
{
	w->spec = spec;
	w->tz = tz;
	w->anchor = anchor;
	w->until = until;
	w->steps = 0;
	w->valid = after < until &&
		dispatch_spec_next_fire(spec, after, tz, anchor, &w->at) && w->at <= until;
}

static void
walk_next(FireWalk *w)
{
	if (++w->steps > MAX_STEPS)
		too_many_steps();
	CHECK_FOR_INTERRUPTS();
	w->valid = dispatch_spec_next_fire(w->spec, w->at, w->tz, w->anchor, &w->at) &&
		w->at <= w->until;
}

/* Fires of spec in (after, until]. */
static int64
count_fires(const cronspec *spec, pg_tz *tz, const TimestampTz *anchor,
			TimestampTz after, TimestampTz until)
{
	FireWalk	w;
	int64		n = 0;

	walk_begin(&w, spec, tz, anchor, after, until);
	if (!w.valid)
		return 0;
	if (spec->kind == CRONSPEC_RATE)
		return (until - w.at) / spec->interval_usecs + 1;
	for (; w.valid; walk_next(&w))
		n++;
	return n;
}

static void
put_time(ReturnSetInfo *rsinfo, TimestampTz ts)
{
	Datum		value = TimestampTzGetDatum(ts);
	bool		isnull = false;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
}

/* The arguments both SQL functions begin with: (spec, after, until, timezone, anchor). */
typedef struct FireArgs
{
	cronspec	spec;
	pg_tz	   *tz;
	TimestampTz after;
	TimestampTz until;
	TimestampTz anchor;
	bool		has_anchor;
} FireArgs;

/* Common argument handling: NULL spec, after, until or zone gives NULL (no rows). */
static bool
read_args(FunctionCallInfo fcinfo, FireArgs *a)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		return false;
	dispatch_spec_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &a->spec);
	a->tz = dispatch_spec_zone(text_to_cstring(PG_GETARG_TEXT_PP(3)));
	a->after = PG_GETARG_TIMESTAMPTZ(1);
	a->until = PG_GETARG_TIMESTAMPTZ(2);
	a->has_anchor = !PG_ARGISNULL(4);
	if (a->has_anchor)
		a->anchor = PG_GETARG_TIMESTAMPTZ(4);
	/* Nothing fires after 9999-12-31 (cronspec.h): clamp, so differences cannot overflow. */
	a->until = Min(a->until, LAST_INSTANT);
	return true;
}

/* The anchor as next_fire takes it: NULL when none was given. */
static inline const TimestampTz *
args_anchor(const FireArgs *a)
{
	return a->has_anchor ? &a->anchor : NULL;
}

PG_FUNCTION_INFO_V1(dispatch_sql_count_fires);
PG_FUNCTION_INFO_V1(dispatch_sql_fire_times);

/* count_fires(spec, after, until, timezone = 'UTC', anchor = NULL) RETURNS bigint */
Datum
dispatch_sql_count_fires(PG_FUNCTION_ARGS)
{
	FireArgs	a;

	if (!read_args(fcinfo, &a))
		PG_RETURN_NULL();
	PG_RETURN_INT64(count_fires(&a.spec, a.tz, args_anchor(&a), a.after, a.until));
}

/*
 * fire_times(spec, after, until, timezone = 'UTC', anchor = NULL,
 *			  max_rows = 1000, from_end = false) RETURNS SETOF timestamptz
 *
 * The first max_rows fires in (after, until], or with from_end the last
 * max_rows of them (still in time order).
 */
Datum
dispatch_sql_fire_times(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	FireArgs	a;
	int			max_rows = PG_ARGISNULL(5) ? 1000 : PG_GETARG_INT32(5);
	bool		from_end = !PG_ARGISNULL(6) && PG_GETARG_BOOL(6);
	FireWalk	w;

	if (max_rows < 0 || max_rows > MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be between 0 and %d, not %d", MAX_ROWS, max_rows),
				 errhint("Ask for fewer fires at a time, or count them with dispatch.count_fires().")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (!read_args(fcinfo, &a) || max_rows == 0)
		return (Datum) 0;

	walk_begin(&w, &a.spec, a.tz, args_anchor(&a), a.after, a.until);
	if (!w.valid)
		return (Datum) 0;
	if (!from_end)
	{
		for (int i = 0; i < max_rows && w.valid; i++, walk_next(&w))
			put_time(rsinfo, w.at);
	}
	else if (a.spec.kind == CRONSPEC_RATE)
	{
		int64		step = a.spec.interval_usecs;
		int64		n = (a.until - w.at) / step + 1;
		int64		skip = Max(n - max_rows, 0);

		for (int64 k = skip; k < n; k++)
			put_time(rsinfo, w.at + k * step);
	}
	else
	{
		/* Keep the last max_rows in a ring. */
		TimestampTz *ring = palloc(sizeof(TimestampTz) * max_rows);
		int64		n = 0;

		for (; w.valid; walk_next(&w))
			ring[n++ % max_rows] = w.at;
		for (int64 k = Max(n - max_rows, 0); k < n; k++)
			put_time(rsinfo, ring[k % max_rows]);
		pfree(ring);
	}
	return (Datum) 0;
}
