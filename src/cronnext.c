/*
 * cronnext.c: the next fire of a parsed schedule spec, in pure C (see cronspec.h).
 *
 * Cron specs are matched against local *wall* time, because "9:00 every weekday" means
 * nine on the clock on the wall wherever the schedule lives, whatever DST does. The search
 * walks wall-clock fields (year, month, day, hour, minute), jumping over whole months, days
 * and hours that cannot match, so even a spec that never fires ("0 0 30 2 *") is proved so
 * in a few thousand cheap steps. Only the final wall time is converted to an instant, via
 * the caller's time-zone adapter; the two DST rules live in cronspec_wall_to_utc:
 *   - a wall time that does not exist (spring-forward gap) fires at the first instant after
 *     the gap, so a 02:30 job still runs on the short day, once;
 *   - a wall time that happens twice (fall-back overlap) fires at its first occurrence only.
 * Both follow from one definition: a wall time W fires at the first instant at which the
 * local clock reads W or later. That map is monotone, so "the first matching wall time
 * whose instant is after `after`" is the next fire, and no wall time fires twice.
 *
 * The adapter only answers "what is the UTC offset at instant t"; gaps and overlaps are
 * found from it, so any zone source (PostgreSQL's tz database, the fuzzer's synthetic
 * zone) plugs in without knowing about transitions.
 */
#include <string.h>

#include "cronspec.h"

#define SECS_PER_DAY	INT64_C(86400)

/*
 * Give up on a cron search after this many candidate wall times were skipped because their
 * instant was not after `after`. Each skip is one wall minute inside a DST overlap, so a
 * real zone needs at most a day's worth (1440); the cap only bounds pathological zones.
 */
#define MAX_SKIPPED_CANDIDATES	100000

/* How far the search looks for a 5-field spec: one full 400-year Gregorian cycle, after
 * which the calendar (dates and weekdays) repeats, so nothing later can match first. */
#define CYCLE_YEARS		400

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* 0 = Sunday; day 0 (1970-01-01) was a Thursday. */
static int
weekday_of_day(int64_t days)
{
	return (int) (days + 4 - floor_div(days + 4, 7) * 7);
}

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
cronspec_days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (month < 1 || month > 12)
		return 0;
	return days[month - 1] + (month == 2 && is_leap(year));
}

/*
 * Days since 1970-01-01, proleptic Gregorian. Years are counted from March, so the leap
 * day is the last day of its year and the month lengths follow a fixed 153-day pattern.
 */
int64_t
cronspec_days_from_civil(int year, int month, int day)
{
	int64_t		y = (int64_t) year - (month <= 2);
	int64_t		era = floor_div(y, 400);
	int64_t		year_of_era = y - era * 400;
	int64_t		month_from_march = (month + 9) % 12;
	int64_t		day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
	int64_t		day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;

	return era * 146097 + day_of_era - 719468;
}

void
cronspec_wall_from_secs(int64_t secs, cronspec_wall *w)
{
	int64_t		days = floor_div(secs, SECS_PER_DAY);
	int64_t		rem = secs - days * SECS_PER_DAY;
	int64_t		z = days + 719468;
	int64_t		era = floor_div(z, 146097);
	int64_t		day_of_era = z - era * 146097;
	int64_t		year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 -
							   day_of_era / 146096) / 365;
	int64_t		day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t		month_from_march = (5 * day_of_year + 2) / 153;

	w->day = (int) (day_of_year - (153 * month_from_march + 2) / 5 + 1);
	w->month = (int) (month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
	w->year = (int) (year_of_era + era * 400 + (w->month <= 2));
	w->hour = (int) (rem / 3600);
	w->minute = (int) (rem / 60 % 60);
	w->second = (int) (rem % 60);
	w->weekday = weekday_of_day(days);
}

static int64_t
wall_to_secs(const cronspec_wall *w)
{
	return cronspec_days_from_civil(w->year, w->month, w->day) * SECS_PER_DAY +
		w->hour * 3600 + w->minute * 60 + w->second;
}

static int64_t
offset_at(const cronspec_tz *tz, int64_t utc_secs)
{
	return tz == NULL ? 0 : tz->utc_offset(tz->arg, utc_secs);
}

/*
 * The instant a local wall time denotes: the first instant at which the local clock
 * reads `local` or later. For an ordinary wall time that is its only occurrence; for one
 * that happens twice it is the first; for one in a gap it is the end of the gap.
 *
 * Offsets are under a day, so any occurrence u satisfies |u - local| < 1 day; the offsets
 * a day either side (and at the instants they point to) are the only candidates unless a
 * zone changed offset three times in two days.
 */
int64_t
cronspec_wall_to_utc(const cronspec_tz *tz, int64_t local)
{
	int64_t		cand[4];
	int64_t		best = 0;
	bool		found = false;
	int64_t		lo,
				hi;

	if (tz == NULL)
		return local;
	cand[0] = offset_at(tz, local - SECS_PER_DAY);
	cand[1] = offset_at(tz, local + SECS_PER_DAY);
	if (cand[0] == cand[1] && offset_at(tz, local - cand[0]) == cand[0])
		return local - cand[0];	/* the common case: no transition nearby */
	cand[2] = offset_at(tz, local - cand[0]);
	cand[3] = offset_at(tz, local - cand[1]);
	for (int i = 0; i < 4; i++)
	{
		int64_t		u = local - cand[i];

		if (offset_at(tz, u) == cand[i] && (!found || u < best))
		{
			best = u;
			found = true;
		}
	}
	if (found)
		return best;

	/*
	 * A gap: before it the clock reads less than `local`, after it more. Find the first
	 * instant the clock reads more, by bisection between the two offsets' readings.
	 */
	lo = local - (cand[0] > cand[1] ? cand[0] : cand[1]);
	hi = local - (cand[0] > cand[1] ? cand[1] : cand[0]);
	if (lo >= hi || lo + offset_at(tz, lo) > local || hi + offset_at(tz, hi) <= local)
		return hi;				/* not a simple gap: an odd zone; stay deterministic */
	while (hi - lo > 1)
	{
		int64_t		mid = lo + (hi - lo) / 2;

		if (mid + offset_at(tz, mid) > local)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* The weekday-nearest day to `n` in a month of `ndays` days starting on weekday `wd1`,
 * never leaving the month: Saturday the 1st goes to Monday the 3rd, Sunday the last to
 * Friday two days before. */
static int
nearest_weekday(int n, int ndays, int wd1)
{
	int			wd = (wd1 + n - 1) % 7;

	if (wd == 6)
		return n == 1 ? 3 : n - 1;
	if (wd == 0)
		return n == ndays ? n - 2 : n + 1;
	return n;
}

uint32_t
cronspec_day_mask(const cronspec *s, int year, int month)
{
	int			ndays = cronspec_days_in_month(year, month);
	uint32_t	all = ndays == 31 ? UINT32_C(0xFFFFFFFE) : (UINT32_C(1) << (ndays + 1)) - 2;
	int			wd1 = weekday_of_day(cronspec_days_from_civil(year, month, 1));
	int			wdlast = (wd1 + ndays - 1) % 7;
	uint32_t	dom = 0,
				dow = 0;

	if (s->dom_mode == CRONSPEC_DAY_SET)
	{
		dom = s->dom & all;
		if (s->dom_special & CRONSPEC_DOM_LAST)
			dom |= UINT32_C(1) << ndays;
		if (s->dom_special & CRONSPEC_DOM_LAST_WEEKDAY)
			dom |= UINT32_C(1) << (ndays - (wdlast == 6 ? 1 : wdlast == 0 ? 2 : 0));
		for (int n = 1; n <= ndays; n++)
			if (s->dom_nearest & (UINT32_C(1) << n))
				dom |= UINT32_C(1) << nearest_weekday(n, ndays, wd1);
	}
	if (s->dow_mode == CRONSPEC_DAY_SET)
	{
		for (int d = 1; d <= ndays; d++)
			if (s->dow & (1u << ((wd1 + d - 1) % 7)))
				dow |= UINT32_C(1) << d;
		for (int w = 0; w < 7; w++)
		{
			if (s->dow_last & (1u << w))
				dow |= UINT32_C(1) << (ndays - (wdlast - w + 7) % 7);
			for (int n = 1; n <= 5; n++)
			{
				int			d = 1 + (w - wd1 + 7) % 7 + 7 * (n - 1);

				if ((s->dow_nth[w] & (1u << (n - 1))) && d <= ndays)
					dow |= UINT32_C(1) << d;
			}
		}
	}
	/* Standard cron: when both day fields restrict, a day matching either one fires. */
	if (s->dom_mode == CRONSPEC_DAY_SET && s->dow_mode == CRONSPEC_DAY_SET)
		return dom | dow;
	if (s->dom_mode == CRONSPEC_DAY_SET)
		return dom;
	if (s->dow_mode == CRONSPEC_DAY_SET)
		return dow;
	return all;
}

static bool
year_allowed(const cronspec *s, int y)
{
	int			i = y - CRONSPEC_AWS_YEAR_MIN;

	if (!s->aws)
		return true;
	if (i < 0 || i > CRONSPEC_AWS_YEAR_MAX - CRONSPEC_AWS_YEAR_MIN)
		return false;
	return (s->years[i >> 6] >> (i & 63)) & 1;
}

/*
 * Advance *w (seconds ignored) to the first wall minute at or after it that the spec
 * matches, in a year no later than year_limit. Each step either finishes or moves to the
 * start of the next candidate minute, hour, day, month or year, so the loop runs a few
 * times per month searched.
 */
static bool
next_wall(const cronspec *s, cronspec_wall *w, int year_limit)
{
	int			y = w->year,
				mo = w->month,
				d = w->day,
				h = w->hour,
				mi = w->minute;
	int			mask_y = 0,
				mask_mo = 0;
	uint32_t	mask = 0;

	for (;;)
	{
		uint32_t	days_left,
					hours_left;
		uint64_t	minutes_left;

		if (y > year_limit)
			return false;
		if (s->aws && y < CRONSPEC_AWS_YEAR_MIN)
		{
			y = CRONSPEC_AWS_YEAR_MIN;
			mo = d = 1;
			h = mi = 0;
		}
		if (!year_allowed(s, y))
		{
			y++;
			mo = d = 1;
			h = mi = 0;
			continue;
		}
		if (!(s->months & (1u << mo)))
			goto next_month;
		if (mask_y != y || mask_mo != mo)
		{
			mask = cronspec_day_mask(s, y, mo);
			mask_y = y;
			mask_mo = mo;
		}
		days_left = d > 31 ? 0 : mask & ~((UINT32_C(1) << d) - 1);
		if (days_left == 0)
			goto next_month;
		if (__builtin_ctz(days_left) != d)
		{
			d = __builtin_ctz(days_left);
			h = mi = 0;
		}
		hours_left = s->hours & ~((UINT32_C(1) << h) - 1);
		if (hours_left == 0)
		{
			d++;
			h = mi = 0;
			continue;
		}
		if (__builtin_ctz(hours_left) != h)
		{
			h = __builtin_ctz(hours_left);
			mi = 0;
		}
		minutes_left = s->minutes & ~((UINT64_C(1) << mi) - 1);
		if (minutes_left == 0)
		{
			mi = 0;
			if (++h > 23)
			{
				h = 0;
				d++;
			}
			continue;
		}
		w->year = y;
		w->month = mo;
		w->day = d;
		w->hour = h;
		w->minute = __builtin_ctzll(minutes_left);
		w->second = 0;
		return true;

next_month:
		d = 1;
		h = mi = 0;
		if (++mo > 12)
		{
			mo = 1;
			y++;
		}
	}
}

static cronspec_next_status
next_cron(const cronspec *s, int64_t after, const cronspec_tz *tz, int64_t *next)
{
	int64_t		after_secs = floor_div(after, CRONSPEC_USECS_PER_SEC);
	int64_t		local = after_secs + offset_at(tz, after_secs);
	cronspec_wall w;
	int			year_limit;

	/*
	 * Start at the wall minute `after` falls in. A matching wall time before it cannot
	 * fire after `after` (its first occurrence is earlier), so nothing is missed.
	 */
	cronspec_wall_from_secs(floor_div(local, 60) * 60, &w);
	year_limit = s->aws ? CRONSPEC_AWS_YEAR_MAX : w.year + CYCLE_YEARS;
	if (year_limit > 9999)
		year_limit = 9999;

	for (int skipped = 0; skipped < MAX_SKIPPED_CANDIDATES; skipped++)
	{
		int64_t		wall_secs,
					u;

		if (!next_wall(s, &w, year_limit))
			return CRONSPEC_NEXT_NEVER;
		wall_secs = wall_to_secs(&w);
		u = cronspec_wall_to_utc(tz, wall_secs);

		/*
		 * Instants here are whole seconds, so u > after_secs (the floor of `after`) is
		 * exactly u > after. A candidate not after `after` is a wall time already
		 * passed, e.g. in the second run of the clock through a fall-back hour.
		 */
		if (u > after_secs)
		{
			if (u > CRONSPEC_MAX_INSTANT / CRONSPEC_USECS_PER_SEC)
				return CRONSPEC_NEXT_NEVER;
			*next = u * CRONSPEC_USECS_PER_SEC;
			return CRONSPEC_NEXT_FOUND;
		}
		cronspec_wall_from_secs(wall_secs + 60, &w);
	}
	return CRONSPEC_NEXT_NEVER;
}

cronspec_next_status
cronspec_next(const cronspec *s, int64_t after, int64_t anchor, const cronspec_tz *tz,
			  int64_t *next)
{
	if (after < CRONSPEC_MIN_INSTANT || after > CRONSPEC_MAX_INSTANT)
		return CRONSPEC_NEXT_OUT_OF_RANGE;

	switch (s->kind)
	{
		case CRONSPEC_CRON:
			return next_cron(s, after, tz, next);

		case CRONSPEC_RATE:
			{
				/* Fires sit on the grid anchor + k * interval, so they never drift and
				 * asking twice within one period gives the same answer. */
				int64_t		n;

				if (anchor < CRONSPEC_MIN_INSTANT || anchor > CRONSPEC_MAX_INSTANT ||
					s->interval_usecs <= 0)
					return CRONSPEC_NEXT_OUT_OF_RANGE;
				n = anchor + (floor_div(after - anchor, s->interval_usecs) + 1) * s->interval_usecs;
				if (n > CRONSPEC_MAX_INSTANT)
					return CRONSPEC_NEXT_NEVER;
				*next = n;
				return CRONSPEC_NEXT_FOUND;
			}

		case CRONSPEC_ONCE:
			{
				cronspec_wall w = {s->year, s->month, s->day, s->hour, s->minute, s->second, 0};
				int64_t		local = wall_to_secs(&w);
				int64_t		u;
				int64_t		n;
				bool		exists = true;

				if (s->has_offset)
					u = local - s->offset_secs;
				else
				{
					u = cronspec_wall_to_utc(tz, local);
					exists = (u + offset_at(tz, u) == local);
				}
				/* In a gap the fire is the gap's end itself, without the fraction. */
				n = u * CRONSPEC_USECS_PER_SEC + (exists ? s->usec : 0);
				if (n <= after || n > CRONSPEC_MAX_INSTANT)
					return CRONSPEC_NEXT_NEVER;
				*next = n;
				return CRONSPEC_NEXT_FOUND;
			}
	}
	return CRONSPEC_NEXT_NEVER;
}
