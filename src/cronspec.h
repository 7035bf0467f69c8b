/*
 * cronspec.h: schedule specs (cron, AWS cron(...), rate, shorthand, one-shot) and their
 * next-fire arithmetic, in pure C.
 *
 * This header and cronspec.c / cronnext.c use only the C library headers below and no
 * PostgreSQL header, so the same files build into the extension and, alone, into the
 * libFuzzer harness (fuzz/cronspec_fuzz.c). Nothing here allocates memory or keeps state.
 *
 * Time is kept in two forms:
 *   - an *instant*: microseconds since 1970-01-01 00:00:00 UTC (int64_t);
 *   - a *wall time*: local calendar fields, or "local seconds" (the same count, as if the
 *     local clock were UTC).
 * Converting between them is the one thing that needs a time-zone database; the caller
 * supplies it as a cronspec_tz adapter (the PostgreSQL glue wraps pg_localtime; the fuzzer
 * uses UTC and a synthetic DST zone). doc/specs.md describes every accepted shape and rule.
 */
#ifndef DISPATCH_CRONSPEC_H
#define DISPATCH_CRONSPEC_H

#include <stdbool.h>
#include <string.h>				/* size_t */
#include <stdint.h>

/* Instants outside [CRONSPEC_MIN_INSTANT, CRONSPEC_MAX_INSTANT] (years 0001-9999 UTC) are
 * outside the supported range: a fire later than the maximum counts as "never". */
#define CRONSPEC_USECS_PER_SEC	INT64_C(1000000)
#define CRONSPEC_MIN_INSTANT	(INT64_C(-62135596800) * CRONSPEC_USECS_PER_SEC)
#define CRONSPEC_MAX_INSTANT	(INT64_C(253402300800) * CRONSPEC_USECS_PER_SEC - 1)

/* Years accepted in the year field of cron(...): the range AWS EventBridge accepts. */
#define CRONSPEC_AWS_YEAR_MIN	1970
#define CRONSPEC_AWS_YEAR_MAX	2199

/* Longest accepted rate interval. It keeps anchor + k * interval far from overflow. */
#define CRONSPEC_MAX_RATE_SECS	(INT64_C(3650) * 86400)

/* Room for any error message cronspec_parse writes (it truncates to the buffer given). */
#define CRONSPEC_ERRBUF_SIZE	256

typedef enum cronspec_kind
{
	CRONSPEC_CRON = 1,			/* 5-field cron, @-shorthand, or AWS cron(...) */
	CRONSPEC_RATE,				/* rate(N unit) or the shorthand 30S / 30M / 2H / 1D */
	CRONSPEC_ONCE				/* at <ISO 8601 timestamp> */
} cronspec_kind;

/* How a day field takes part in matching a day. */
typedef enum cronspec_daymode
{
	CRONSPEC_DAY_ANY = 0,		/* "*": no restriction of its own */
	CRONSPEC_DAY_NONE,			/* "?" (cron(...) only): this field is not used */
	CRONSPEC_DAY_SET			/* restricted to the values and L / W / # items below */
} cronspec_daymode;

/* cronspec.dom_special bits */
#define CRONSPEC_DOM_LAST			0x01	/* L: the last day of the month */
#define CRONSPEC_DOM_LAST_WEEKDAY	0x02	/* LW: the last Monday-Friday of the month */

typedef struct cronspec
{
	cronspec_kind kind;
	bool		aws;			/* written as cron(...): six fields, '?', L, W, # */

	/* CRONSPEC_CRON.  Weekdays are always 0 = Sunday ... 6 = Saturday here, whichever
	 * numbering the text used. */
	uint64_t	minutes;		/* bit m, 0-59 */
	uint32_t	hours;			/* bit h, 0-23 */
	uint16_t	months;			/* bit m, 1-12 */
	uint8_t		dom_mode;		/* cronspec_daymode */
	uint8_t		dow_mode;		/* cronspec_daymode */
	uint32_t	dom;			/* bit d, 1-31: plain days of the month */
	uint32_t	dom_nearest;	/* bit d: dW, the weekday nearest day d */
	uint8_t		dom_special;	/* CRONSPEC_DOM_* */
	uint8_t		dow;			/* bit w: every such weekday */
	uint8_t		dow_last;		/* bit w: wL, the last such weekday of the month */
	uint8_t		dow_nth[7];		/* dow_nth[w] bit n-1: w#n, the n-th such weekday */
	uint64_t	years[4];		/* bit y-1970 (cron(...) only; all set otherwise) */

	/* CRONSPEC_RATE */
	int64_t		interval_usecs;

	/* CRONSPEC_ONCE: the timestamp as written */
	int			year, month, day, hour, minute, second;
	int32_t		usec;
	bool		has_offset;		/* an explicit Z or +hh[:mm]: absolute, zone ignored */
	int32_t		offset_secs;	/* east of Greenwich */
} cronspec;

/*
 * Parse `len` bytes of `text` (need not be NUL-terminated; a NUL byte is an error).
 * On success fill *out and return true. On failure return false and write a lower-case
 * message saying what is wrong and where into errbuf (always NUL-terminated when
 * errlen > 0); *out is then unspecified.
 */
extern bool cronspec_parse(const char *text, size_t len, cronspec *out,
						   char *errbuf, size_t errlen);

/* "cron", "rate" or "once" */
extern const char *cronspec_kind_name(cronspec_kind kind);

/*
 * The time-zone adapter: the UTC offset, in seconds east of Greenwich, in force at the
 * instant `utc_secs` (seconds since the Unix epoch). NULL adapter = UTC.
 */
typedef struct cronspec_tz
{
	int32_t		(*utc_offset) (void *arg, int64_t utc_secs);
	void	   *arg;
} cronspec_tz;

typedef enum cronspec_next_status
{
	CRONSPEC_NEXT_FOUND = 0,	/* *next is set */
	CRONSPEC_NEXT_NEVER,		/* no fire after `after` within the supported range */
	CRONSPEC_NEXT_OUT_OF_RANGE	/* `after` (or the anchor) is outside the supported range */
} cronspec_next_status;

/*
 * The first fire strictly after the instant `after`.
 *   cron: the next matching local wall minute in zone `tz`, converted to an instant by
 *         cronspec_wall_to_utc (a wall time in a DST gap fires at the end of the gap, one
 *         that happens twice fires at its first occurrence);
 *   rate: anchor + k * interval for the smallest integer k that lands after `after`;
 *   once: the timestamp, if it is after `after`.
 * `anchor` matters to rate specs only; CRONSPEC_DEFAULT_ANCHOR is the Unix epoch.
 */
#define CRONSPEC_DEFAULT_ANCHOR INT64_C(0)
extern cronspec_next_status cronspec_next(const cronspec *spec, int64_t after,
										  int64_t anchor, const cronspec_tz *tz,
										  int64_t *next);

/*
 * Helpers the PostgreSQL glue and the fuzzer share.
 */

/* A wall time's calendar fields; month 1-12, day 1-31, weekday 0 = Sunday. */
typedef struct cronspec_wall
{
	int			year, month, day, hour, minute, second;
	int			weekday;
} cronspec_wall;

/* Local seconds (or UTC seconds) <-> calendar fields, proleptic Gregorian. */
extern int64_t cronspec_days_from_civil(int year, int month, int day);
extern void cronspec_wall_from_secs(int64_t secs, cronspec_wall *w);
extern int	cronspec_days_in_month(int year, int month);

/*
 * The instant (seconds) a local wall time denotes in `tz`: its first occurrence when it
 * happens twice, the first instant after the gap when it does not exist.
 */
extern int64_t cronspec_wall_to_utc(const cronspec_tz *tz, int64_t local_secs);

/* The days of `month` in `year` the spec's day fields select: bit d for day d. */
extern uint32_t cronspec_day_mask(const cronspec *spec, int year, int month);

#endif							/* DISPATCH_CRONSPEC_H */
