/*
 * cronspec_fuzz.c: libFuzzer harness for the schedule spec parser and next-fire arithmetic
 * (src/cronspec.c, src/cronnext.c). Build and run: see fuzz/README.md (`make fuzz`).
 *
 * Every input is parsed as a spec. A rejected spec must come with a lower-case message
 * that fits the buffer. An accepted spec is run from several fixed instants in UTC and in
 * synthetic zones with awkward DST rules, and every answer is checked against invariants
 * that do not trust the code under test: the fire is after the start, on a wall time the
 * spec matches (by an independent day matcher), nothing matching was skipped, and asking
 * again from the fire moves strictly forward. Any violation aborts, which libFuzzer
 * reports as a crash with the input that caused it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cronspec.h"

#define USEC CRONSPEC_USECS_PER_SEC

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "invariant failed: %s\n  ", #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, "\n"); \
			abort(); \
		} \
	} while (0)

/* ---- synthetic zones ------------------------------------------------------------------ */

/* +01:00, and +01:45 for part of each 365-day cycle: 45-minute gaps and overlaps whose
 * transitions fall 17 s past the minute. */
static int32_t
zone_45(void *arg, int64_t t)
{
	int64_t		cycle = 365 * INT64_C(86400);
	int64_t		in = ((t - 17) % cycle + cycle) % cycle;

	return (in >= 90 * 86400 && in < 300 * 86400) ? 3600 + 2700 : 3600;
}

/* -05:00 / -04:00 alternating every 11 days, 3 hours and 7 seconds. */
static int32_t
zone_flip(void *arg, int64_t t)
{
	int64_t		half = 11 * INT64_C(86400) + 3 * 3600 + 7;
	int64_t		k = t >= 0 ? t / half : -((-t + half - 1) / half);

	return (k & 1) ? -14400 : -18000;
}

/* Samoa-like: -10:00, then +14:00 from 2011-12-30 10:00Z (local Dec 30 never happens),
 * then back to -10:00 400 days later (a whole local day happens twice). */
static int32_t
zone_dateline(void *arg, int64_t t)
{
	int64_t		t1 = INT64_C(1325239200);

	return (t >= t1 && t < t1 + 400 * INT64_C(86400)) ? 50400 : -36000;
}

static const cronspec_tz zones[] = {
	{zone_45, NULL}, {zone_flip, NULL}, {zone_dateline, NULL},
};

/* ---- an independent reference ------------------------------------------------------ */

static int
ref_days_in_month(int y, int m)
{
	if (m == 2)
		return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28;
	return (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
}

/* Sakamoto's weekday rule, 0 = Sunday, years >= 1. */
static int
ref_weekday(int y, int m, int d)
{
	static const int t[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};

	y -= m < 3;
	return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static bool
ref_is_weekday(int y, int m, int d)
{
	int			w = ref_weekday(y, m, d);

	return w >= 1 && w <= 5;
}

/* The weekday nearest day n within the month: search outwards, earlier first. */
static int
ref_nearest(int y, int m, int n)
{
	int			nd = ref_days_in_month(y, m);

	for (int dist = 0; dist <= 2; dist++)
	{
		if (n - dist >= 1 && ref_is_weekday(y, m, n - dist))
			return n - dist;
		if (n + dist <= nd && ref_is_weekday(y, m, n + dist))
			return n + dist;
	}
	return -1;
}

static bool
ref_day(const cronspec *s, int y, int m, int d)
{
	int			nd = ref_days_in_month(y, m);
	int			wd = ref_weekday(y, m, d);
	bool		dom = false,
				dow = false;

	if (s->dom_mode == CRONSPEC_DAY_SET)
	{
		int			last_weekday = nd;

		while (!ref_is_weekday(y, m, last_weekday))
			last_weekday--;
		dom = (s->dom >> d) & 1;
		dom |= (s->dom_special & CRONSPEC_DOM_LAST) && d == nd;
		dom |= (s->dom_special & CRONSPEC_DOM_LAST_WEEKDAY) && d == last_weekday;
		for (int n = 1; n <= nd; n++)
			dom |= ((s->dom_nearest >> n) & 1) && ref_nearest(y, m, n) == d;
	}
	if (s->dow_mode == CRONSPEC_DAY_SET)
	{
		dow = (s->dow >> wd) & 1;
		dow |= ((s->dow_last >> wd) & 1) && d + 7 > nd;
		dow |= (s->dow_nth[wd] >> ((d - 1) / 7)) & 1;
	}
	if (s->dom_mode == CRONSPEC_DAY_SET && s->dow_mode == CRONSPEC_DAY_SET)
		return dom || dow;
	if (s->dom_mode == CRONSPEC_DAY_SET)
		return dom;
	if (s->dow_mode == CRONSPEC_DAY_SET)
		return dow;
	return true;
}

/* Does a cron spec match this wall minute? */
static bool
ref_match(const cronspec *s, const cronspec_wall *w)
{
	if (s->aws)
	{
		int			i = w->year - CRONSPEC_AWS_YEAR_MIN;

		if (i < 0 || i > CRONSPEC_AWS_YEAR_MAX - CRONSPEC_AWS_YEAR_MIN ||
			!((s->years[i >> 6] >> (i & 63)) & 1))
			return false;
	}
	return w->year >= 1 && ((s->minutes >> w->minute) & 1) && ((s->hours >> w->hour) & 1) &&
		((s->months >> w->month) & 1) && ref_day(s, w->year, w->month, w->day);
}

static int64_t
offset(const cronspec_tz *tz, int64_t secs)
{
	return tz ? tz->utc_offset(tz->arg, secs) : 0;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* ---- checks ------------------------------------------------------------------------- */

static void
check_fire(const cronspec *s, const cronspec_tz *tz, int64_t after, int64_t anchor, int64_t n)
{
	int64_t		secs = n / USEC;

	CHECK(n > after, "next %lld <= after %lld", (long long) n, (long long) after);
	CHECK(n <= CRONSPEC_MAX_INSTANT, "next %lld past the range", (long long) n);

	if (s->kind == CRONSPEC_CRON)
	{
		cronspec_wall w;

		CHECK(n % USEC == 0, "cron fire %lld not on a whole second", (long long) n);
		cronspec_wall_from_secs(secs + offset(tz, secs), &w);
		/* Either the local wall time there matches, or it is the end of a gap (a
		 * transition instant) standing in for a matching wall time that was skipped. */
		CHECK(ref_match(s, &w) || offset(tz, secs - 1) != offset(tz, secs),
			  "fire at %lld: local %04d-%02d-%02d %02d:%02d does not match", (long long) n,
			  w.year, w.month, w.day, w.hour, w.minute);
		if (tz == NULL)
		{
			CHECK(w.second == 0, "UTC cron fire off the minute");
			/* Nothing matching was skipped: every minute between is a non-match. */
			if (n - after <= 1500 * 60 * USEC)
				for (int64_t m = (floor_div(after, 60 * USEC) + 1) * 60; m < secs; m += 60)
				{
					cronspec_wall mw;

					cronspec_wall_from_secs(m, &mw);
					CHECK(!ref_match(s, &mw), "skipped matching minute %lld before %lld",
						  (long long) m, (long long) secs);
				}
		}
	}
	else if (s->kind == CRONSPEC_RATE)
	{
		CHECK((n - anchor) % s->interval_usecs == 0, "rate fire off the grid");
		CHECK(n - s->interval_usecs <= after, "rate skipped a grid point");
	}
}

static void
run_from(const cronspec *s, const cronspec_tz *tz, int64_t after, int64_t anchor)
{
	int64_t		n,
				again;
	cronspec_next_status st = cronspec_next(s, after, anchor, tz, &n);

	CHECK(st != CRONSPEC_NEXT_OUT_OF_RANGE, "in-range start %lld refused", (long long) after);
	if (st != CRONSPEC_NEXT_FOUND)
		return;
	check_fire(s, tz, after, anchor, n);

	/* Asking from just before the fire gives the same fire. */
	CHECK(cronspec_next(s, n - 1, anchor, tz, &again) == CRONSPEC_NEXT_FOUND && again == n,
		  "from next-1 got %lld, not %lld", (long long) again, (long long) n);

	/* Repeated application moves strictly forward. */
	for (int i = 0; i < 3; i++)
	{
		int64_t		prev = n;

		st = cronspec_next(s, prev, anchor, tz, &n);
		CHECK(st != CRONSPEC_NEXT_OUT_OF_RANGE, "fire %lld refused as a start", (long long) prev);
		if (st != CRONSPEC_NEXT_FOUND)
			break;
		check_fire(s, tz, prev, anchor, n);
	}
}

/* The wall-to-instant map in a zone: an occurrence (the first) or the end of a gap. */
static void
check_wall_to_utc(const cronspec_tz *tz, int64_t local)
{
	int64_t		u = cronspec_wall_to_utc(tz, local);

	if (u + offset(tz, u) == local)
	{
		/* No earlier occurrence: any lies within a day, at one of the zone's offsets. */
		for (int64_t probe = local - 86400; probe < u; probe += 900)
		{
			int64_t		cand = local - offset(tz, probe);

			CHECK(cand >= u || cand + offset(tz, cand) != local,
				  "wall %lld: occurrence %lld earlier than %lld", (long long) local,
				  (long long) cand, (long long) u);
		}
	}
	else
	{
		CHECK(u + offset(tz, u) > local && (u - 1) + offset(tz, u - 1) < local,
			  "wall %lld: %lld is neither an occurrence nor a gap's end", (long long) local,
			  (long long) u);
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t starts[] = {
		INT64_C(1767225600) * USEC,		/* 2026-01-01 00:00Z */
		INT64_C(1709210096) * USEC + 789000,	/* 2024-02-29 12:34:56.789Z */
		INT64_C(1325160000) * USEC,		/* 2011-12-29 12:00Z, before the dateline jump */
		INT64_C(1359720000) * USEC,		/* 2013-02-01 12:00Z, inside its repeated day */
		INT64_C(-1) * USEC,				/* 1969-12-31 23:59:59Z */
		CRONSPEC_MAX_INSTANT - 3600 * USEC,
		CRONSPEC_MIN_INSTANT,
	};
	cronspec	s,
				s2;
	char		err[CRONSPEC_ERRBUF_SIZE];
	char		small[16];
	size_t		small_len = size > 0 ? data[0] % sizeof(small) : 0;
	bool		ok = cronspec_parse((const char *) data, size, &s, err, sizeof(err));

	/* The message contract, and that any buffer size is safe. */
	(void) cronspec_parse((const char *) data, size, &s2, small, small_len);
	if (!ok)
	{
		CHECK(err[0] != '\0' && strlen(err) < sizeof(err), "empty or unterminated message");
		CHECK(!(err[0] >= 'A' && err[0] <= 'Z'), "message not lower-case: %s", err);
		return 0;
	}
	CHECK(cronspec_parse((const char *) data, size, &s2, NULL, 0) &&
		  memcmp(&s, &s2, sizeof(s)) == 0, "parse is not deterministic");
	if (s.kind == CRONSPEC_CRON)
	{
		/* Every accepted field selects something; an empty one would never fire silently. */
		uint8_t		nth = 0;

		for (int w = 0; w < 7; w++)
			nth |= s.dow_nth[w];
		CHECK(s.minutes != 0 && s.hours != 0 && s.months != 0, "empty time field");
		CHECK(s.dom_mode != CRONSPEC_DAY_SET || (s.dom | s.dom_nearest | s.dom_special) != 0,
			  "empty day-of-month field");
		CHECK(s.dow_mode != CRONSPEC_DAY_SET || (s.dow | s.dow_last | nth) != 0,
			  "empty day-of-week field");
		CHECK((s.years[0] | s.years[1] | s.years[2] | s.years[3]) != 0, "empty year field");
	}

	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
	{
		int64_t		anchor = (i & 1) ? CRONSPEC_DEFAULT_ANCHOR : starts[(i + 3) % 7] + 12345;

		run_from(&s, NULL, starts[i], anchor);
		if (i < 4)
			for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
				run_from(&s, &zones[z], starts[i], anchor);
	}

	/* Local times near the synthetic transitions, chosen by the input's length. */
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
	{
		int64_t		local = INT64_C(1325239200) + (int64_t) (size * 7919 % 200000) - 100000;

		check_wall_to_utc(&zones[z], local);
		check_wall_to_utc(&zones[z], local + 400 * INT64_C(86400));
		check_wall_to_utc(&zones[z], 90 * INT64_C(86400) + 17 + 3600 + (int64_t) (size % 4000));
		check_wall_to_utc(&zones[z], 300 * INT64_C(86400) + 17 + 6300 - (int64_t) (size % 4000));
	}
	return 0;
}
