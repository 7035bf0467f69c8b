/*
 * cronspec.c: parse a schedule spec into a struct cronspec, or explain what is wrong.
 *
 * Pure C (see cronspec.h): no PostgreSQL headers, no allocation, no locale. Input is a byte
 * range, not a C string, so the fuzzer can feed any bytes; every read is bounds-checked
 * against the end of the range. Character classes are ASCII-only on purpose: <ctype.h>
 * follows the backend's LC_CTYPE, and a spec must mean the same thing in every database.
 *
 * Error messages are lower-case, name the field and quote the offending text, e.g.
 *   minute field "61": 61 is out of range (0-59)
 * The SQL glue (nextfire.c) prefixes 'invalid schedule spec "...": ' and adds a hint.
 *
 * The accepted grammar, and the decisions made where cron dialects differ (inverted ranges
 * are errors, N/step means N-max/step, a day field is "restricted" unless it is exactly
 * "*"), are documented in doc/specs.md.
 */
#include <stdio.h>
#include <string.h>

#include "cronspec.h"

/* Which field a fielddef describes: several rules apply to some fields only. */
typedef enum
{
	F_MINUTE,
	F_HOUR,
	F_DOM,
	F_MONTH,
	F_DOW,
	F_YEAR
} field_id;

typedef struct fielddef
{
	field_id	id;
	const char *name;
	int			min,
				max;			/* accepted numbers */
	int			star_min,
				star_max;		/* what "*" covers */
	const char *const *names;	/* 3-letter names, names[i] = name_base + i */
	int			name_base;
	const char *range_note;		/* shown with out-of-range numbers */
} fielddef;

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

static const fielddef f_minute = {F_MINUTE, "minute", 0, 59, 0, 59, NULL, 0, ""};
static const fielddef f_hour = {F_HOUR, "hour", 0, 23, 0, 23, NULL, 0, ""};
static const fielddef f_dom = {F_DOM, "day-of-month", 1, 31, 1, 31, NULL, 0, ""};
static const fielddef f_month = {F_MONTH, "month", 1, 12, 1, 12, month_names, 1, ", or JAN-DEC"};
static const fielddef f_dow5 = {F_DOW, "day-of-week", 0, 7, 0, 6, day_names, 0,
	", where 0 and 7 are SUN, or SUN-SAT"};
static const fielddef f_dow_aws = {F_DOW, "day-of-week", 1, 7, 1, 7, day_names, 1,
	", where 1 is SUN in cron(...), or SUN-SAT"};
static const fielddef f_year = {F_YEAR, "year", CRONSPEC_AWS_YEAR_MIN, CRONSPEC_AWS_YEAR_MAX,
	CRONSPEC_AWS_YEAR_MIN, CRONSPEC_AWS_YEAR_MAX, NULL, 0, ""};

/* One parsed field, before it is folded into the cronspec. */
typedef struct fieldval
{
	uint64_t	bits[4];		/* bit (value - def->min) */
	bool		star;			/* exactly "*" */
	bool		question;		/* exactly "?" */
	uint32_t	nearest;		/* dW */
	uint8_t		dom_special;	/* L, LW */
	uint8_t		dow_last;		/* wL (weekday numbering 0 = Sunday) */
	uint8_t		dow_nth[7];		/* w#n */
} fieldval;

typedef struct parser
{
	bool		aws;			/* inside cron(...) */
	char	   *err;
	size_t		errlen;
	size_t		errpos;			/* where the message proper starts, after any prefix */
	char		quoted[48];		/* sanitised copy of the text an error quotes */
} parser;

/*
 * Errors. A macro rather than a varargs function keeps this file within the C headers
 * cronspec.h promises; snprintf truncates safely to whatever buffer the caller gave.
 */
#define FAIL(ps, ...) \
	do { \
		if ((ps)->errlen > (ps)->errpos) \
			snprintf((ps)->err + (ps)->errpos, (ps)->errlen - (ps)->errpos, __VA_ARGS__); \
		return false; \
	} while (0)

/* Copy text for quoting in a message: printable ASCII only, long text cut with "...". */
static const char *
quote(parser *ps, const char *p, const char *e)
{
	size_t		n = 0;
	size_t		room = sizeof(ps->quoted) - 4;

	while (p < e && n < room)
	{
		unsigned char c = (unsigned char) *p++;

		ps->quoted[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	if (p < e)
	{
		memcpy(ps->quoted + n, "...", 3);
		n += 3;
	}
	ps->quoted[n] = '\0';
	return ps->quoted;
}

/* Start every later message with: <what> "<text>": (e.g. minute field "61": ) */
static void
set_prefix(parser *ps, const char *what, const char *p, const char *e)
{
	int			n;

	ps->errpos = 0;
	if (ps->errlen == 0)
		return;
	n = snprintf(ps->err, ps->errlen, "%s \"%s\": ", what, quote(ps, p, e));
	if (n < 0)
		n = 0;
	ps->errpos = (size_t) n < ps->errlen ? (size_t) n : ps->errlen - 1;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* Case-insensitive: does [p, e) start with the lower-case word w? */
static bool
starts_with(const char *p, const char *e, const char *w)
{
	size_t		n = strlen(w);

	if ((size_t) (e - p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != w[i])
			return false;
	return true;
}

/* Case-insensitive: does [p, e) equal the lower-case word w? */
static bool
word_is(const char *p, const char *e, const char *w)
{
	return (size_t) (e - p) == strlen(w) && starts_with(p, e, w);
}

static void
bit_set(uint64_t *bits, int i)
{
	bits[i >> 6] |= UINT64_C(1) << (i & 63);
}

static bool
bit_test(const uint64_t *bits, int i)
{
	return (bits[i >> 6] >> (i & 63)) & 1;
}

/*
 * Read decimal digits at *pp, at least one. Values past 999999 are clamped so a long
 * digit string cannot overflow; any such value is out of range for every caller.
 */
static bool
read_number(const char **pp, const char *e, int *out)
{
	const char *p = *pp;
	int			v = 0;

	if (p >= e || !is_digit(*p))
		return false;
	while (p < e && is_digit(*p))
	{
		if (v < 1000000)
			v = v * 10 + (*p - '0');
		p++;
	}
	*pp = p;
	*out = v;
	return true;
}

/*
 * One value of a field: a number or a 3-letter name. *last is set when a day-of-week name
 * carries the L suffix ("FRIL"), which only an alphabetic run can reveal.
 */
static bool
parse_value(parser *ps, const fielddef *f, const char **pp, const char *e, int *out, bool *last)
{
	const char *p = *pp;

	*last = false;
	if (p < e && is_digit(*p))
	{
		const char *start = p;
		int			v;

		read_number(&p, e, &v);
		if (v < f->min || v > f->max)
			FAIL(ps, "%s is out of range (%d-%d%s)", quote(ps, start, p), f->min, f->max,
				 f->range_note);
		*out = v;
		*pp = p;
		return true;
	}
	if (p < e && is_alpha(*p))
	{
		const char *start = p;
		size_t		n;

		while (p < e && is_alpha(*p))
			p++;
		n = (size_t) (p - start);
		if (f->names == NULL)
			FAIL(ps, "unexpected \"%s\" (names are accepted in the month and day-of-week fields only)",
				 quote(ps, start, p));
		if (n == 4 && f->id == F_DOW && lower(start[3]) == 'l')
		{
			if (!ps->aws)
				FAIL(ps, "\"%s\": the L suffix is accepted in the cron(...) form only",
					 quote(ps, start, p));
			*last = true;
			n = 3;
		}
		if (n == 3)
		{
			for (int i = 0; f->names[i] != NULL; i++)
				if (word_is(start, start + 3, f->names[i]))
				{
					*out = f->name_base + i;
					*pp = p;
					return true;
				}
		}
		FAIL(ps, "unknown name \"%s\" (expected %s)", quote(ps, start, p),
			 f->id == F_MONTH ? "JAN-DEC" : "SUN-SAT");
	}
	if (p >= e)
		FAIL(ps, "a value is missing at the end");
	FAIL(ps, "unexpected \"%s\" where a value was expected", quote(ps, p, p + 1));
}

/* A day-of-week value as the field numbers it -> 0 = Sunday ... 6 = Saturday. */
static int
weekday_of(const fielddef *f, int v)
{
	return (v - f->min) % 7;
}

/* The special day items of cron(...): L and LW in day-of-month, L alone in day-of-week. */
static bool
parse_l_item(parser *ps, const fielddef *f, const char *p, const char *e, fieldval *fv,
			 bool *done)
{
	const char *q = p;

	*done = false;
	while (q < e && is_alpha(*q))
		q++;
	if (!word_is(p, q, "l") && !(f->id == F_DOM && word_is(p, q, "lw")))
		return true;
	if (!ps->aws)
		FAIL(ps, "\"%s\" is accepted in the cron(...) form only", quote(ps, p, q));
	if (q != e)
		FAIL(ps, "unexpected \"%s\" after L", quote(ps, q, e));
	if (f->id == F_DOM)
		fv->dom_special |= (q - p == 1) ? CRONSPEC_DOM_LAST : CRONSPEC_DOM_LAST_WEEKDAY;
	else
		fv->bits[0] |= UINT64_C(1) << (7 - f->min);	/* the last day of the week: SAT */
	*done = true;
	return true;
}

/*
 * A day-of-week or day-of-month value followed by W, L or # (cron(...) only). Returns
 * with *done unset when none follows, leaving the value to be read as a plain one.
 */
static bool
parse_suffix(parser *ps, const fielddef *f, int v, const char *p, const char *e,
			 fieldval *fv, bool *done)
{
	char		c = p < e ? lower(*p) : '\0';
	const char *s = p;
	int			n = 0;

	*done = false;
	if (!((f->id == F_DOM && c == 'w') || (f->id == F_DOW && (c == 'l' || c == '#'))))
		return true;
	if (!ps->aws)
		FAIL(ps, "\"%c\" is accepted in the cron(...) form only", *p);
	p++;
	if (c == '#')
	{
		if (!read_number(&p, e, &n))
			FAIL(ps, "a number 1-5 must follow \"#\"");
		if (n < 1 || n > 5)
			FAIL(ps, "#%s is out of range (1-5)", quote(ps, s + 1, p));
	}
	if (p != e)
		FAIL(ps, "unexpected \"%s\" after \"%c\"", quote(ps, p, e), *s);
	if (c == 'w')
		fv->nearest |= UINT32_C(1) << v;
	else if (c == 'l')
		fv->dow_last |= (uint8_t) (1 << weekday_of(f, v));
	else
		fv->dow_nth[weekday_of(f, v)] |= (uint8_t) (1 << (n - 1));
	*done = true;
	return true;
}

/*
 * One element of a comma-separated list:
 *   "*", "*" "/" step, v, v-v, v-v "/" step, or v "/" step (from v to the field's end)
 * plus, in cron(...), L, LW, vW, vL and v#n.
 */
static bool
parse_item(parser *ps, const fielddef *f, const char *p, const char *e, fieldval *fv)
{
	int			lo,
				hi,
				step = 1;
	bool		last,
				done;

	if (p == e)
		FAIL(ps, "empty list element");
	if (*p == '?')
		FAIL(ps, "\"?\" must be the whole field, not part of a list");
	if (*p == '*')
	{
		lo = f->star_min;
		hi = f->star_max;
		p++;
		if (p < e && *p != '/')
			FAIL(ps, "unexpected \"%s\" after \"*\"", quote(ps, p, e));
	}
	else
	{
		if ((f->id == F_DOM || f->id == F_DOW) && !parse_l_item(ps, f, p, e, fv, &done))
			return false;
		if ((f->id == F_DOM || f->id == F_DOW) && done)
			return true;
		if (!parse_value(ps, f, &p, e, &lo, &last))
			return false;
		if (last)
		{
			if (p != e)
				FAIL(ps, "unexpected \"%s\" after the L suffix", quote(ps, p, e));
			fv->dow_last |= (uint8_t) (1 << weekday_of(f, lo));
			return true;
		}
		if (!parse_suffix(ps, f, lo, p, e, fv, &done))
			return false;
		if (done)
			return true;
		hi = lo;
		if (p < e && *p == '-')
		{
			p++;
			if (!parse_value(ps, f, &p, e, &hi, &last))
				return false;
			if (last)
				FAIL(ps, "the L suffix cannot end a range");
			/* Sunday is both 0 and 7 in 5-field cron, so FRI-SUN means 5-7. */
			if (f->id == F_DOW && f->min == 0 && hi == 0 && lo > 0)
				hi = 7;
			if (hi < lo)
			{
				char		head[16],
							tail[16];

				/* Suggest the two parts, e.g. 22-23,0-2 for 22-2, or 7,1-2 for SAT-MON. */
				if (lo == f->star_max)
					snprintf(head, sizeof(head), "%d", lo);
				else
					snprintf(head, sizeof(head), "%d-%d", lo, f->star_max);
				if (hi == f->min)
					snprintf(tail, sizeof(tail), "%d", hi);
				else
					snprintf(tail, sizeof(tail), "%d-%d", f->min, hi);
				FAIL(ps, "range %d-%d is inverted: ranges do not wrap around, so list the two parts instead (%s,%s)",
					 lo, hi, head, tail);
			}
		}
		else if (p < e && *p == '/')
			hi = f->max;		/* not star_max: 7/2 in day-of-week is Sunday, not nothing */
	}
	if (p < e && *p == '/')
	{
		const char *s = ++p;

		if (!read_number(&p, e, &step))
			FAIL(ps, "a step number must follow \"/\"");
		if (step < 1)
			FAIL(ps, "step 0 is not allowed (steps start at 1)");
		if (step > f->max - f->min + 1)
			FAIL(ps, "step %s is larger than the field's range (%d-%d)", quote(ps, s, p),
				 f->min, f->max);
	}
	if (p != e)
		FAIL(ps, "unexpected \"%s\"", quote(ps, p, e));
	for (int v = lo; v <= hi; v += step)
		bit_set(fv->bits, v - f->min);
	return true;
}

static bool
parse_field(parser *ps, const fielddef *f, const char *p, const char *e, fieldval *fv)
{
	char		what[32];

	memset(fv, 0, sizeof(*fv));
	snprintf(what, sizeof(what), "%s field", f->name);
	set_prefix(ps, what, p, e);
	if (e - p == 1 && *p == '?')
	{
		if (!ps->aws)
			FAIL(ps, "\"?\" is accepted in the cron(...) form only; use \"*\" here");
		if (f->id != F_DOM && f->id != F_DOW)
			FAIL(ps, "\"?\" is accepted in the day-of-month and day-of-week fields only");
		fv->question = true;
		return true;
	}
	fv->star = (e - p == 1 && *p == '*');
	for (;;)
	{
		const char *comma = memchr(p, ',', (size_t) (e - p));
		const char *ie = comma ? comma : e;

		if (!parse_item(ps, f, p, ie, fv))
			return false;
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

/* Split [p, e) at runs of white space; return the number of fields (at most max stored). */
static int
split_fields(const char *p, const char *e, const char **fs, const char **fe, int max)
{
	int			n = 0;

	for (;;)
	{
		while (p < e && is_space(*p))
			p++;
		if (p == e)
			return n;
		if (n < max)
			fs[n] = p;
		while (p < e && !is_space(*p))
			p++;
		if (n < max)
			fe[n] = p;
		n++;
	}
}

static uint8_t
daymode(const fieldval *v)
{
	return v->question ? CRONSPEC_DAY_NONE : v->star ? CRONSPEC_DAY_ANY : CRONSPEC_DAY_SET;
}

/* Five fields, or inside cron(...) six; fill the cron part of *out. */
static bool
parse_cron_fields(parser *ps, const char *p, const char *e, cronspec *out)
{
	const fielddef *defs[6] = {&f_minute, &f_hour, &f_dom, &f_month,
	ps->aws ? &f_dow_aws : &f_dow5, &f_year};
	const char *fs[6],
			   *fe[6];
	fieldval	v[6];
	int			want = ps->aws ? 6 : 5;
	int			n = split_fields(p, e, fs, fe, 6);

	ps->errpos = 0;
	if (n != want && ps->aws)
		FAIL(ps, "cron(...) needs 6 fields (minutes hours day-of-month month day-of-week year), found %d", n);
	if (n == 6 && !ps->aws)
		FAIL(ps, "expected 5 fields (minute hour day-of-month month day-of-week), found 6: a seconds field is not supported, and a year field needs the cron(...) form");
	if (n != want)
		FAIL(ps, "expected 5 fields (minute hour day-of-month month day-of-week), found %d", n);

	for (int i = 0; i < want; i++)
		if (!parse_field(ps, defs[i], fs[i], fe[i], &v[i]))
			return false;
	ps->errpos = 0;

	out->kind = CRONSPEC_CRON;
	out->aws = ps->aws;
	out->minutes = v[0].bits[0];
	out->hours = (uint32_t) v[1].bits[0];
	for (int d = 1; d <= 31; d++)
		if (bit_test(v[2].bits, d - 1))
			out->dom |= UINT32_C(1) << d;
	out->dom_nearest = v[2].nearest;
	out->dom_special = v[2].dom_special;
	for (int m = 1; m <= 12; m++)
		if (bit_test(v[3].bits, m - 1))
			out->months |= (uint16_t) (1u << m);
	for (int i = 0; i <= defs[4]->max - defs[4]->min; i++)
		if (bit_test(v[4].bits, i))
			out->dow |= (uint8_t) (1u << weekday_of(defs[4], defs[4]->min + i));
	out->dow_last = v[4].dow_last;
	memcpy(out->dow_nth, v[4].dow_nth, sizeof(out->dow_nth));

	if (ps->aws)
	{
		if (v[2].question && v[4].question)
			FAIL(ps, "cron(...) cannot have \"?\" in both day-of-month and day-of-week: put \"?\" in one and a value or \"*\" in the other");
		if (!v[2].question && !v[4].question)
			FAIL(ps, "cron(...) needs \"?\" in exactly one of day-of-month and day-of-week, because it cannot restrict both (e.g. cron(0 9 ? * MON *) or cron(0 9 1 * ? *))");
		memcpy(out->years, v[5].bits, sizeof(out->years));
	}
	else
	{
		for (int y = 0; y <= CRONSPEC_AWS_YEAR_MAX - CRONSPEC_AWS_YEAR_MIN; y++)
			bit_set(out->years, y);
	}
	out->dom_mode = daymode(&v[2]);
	out->dow_mode = daymode(&v[4]);
	return true;
}

/* @hourly and friends: each is exactly the 5-field spec beside it. */
static bool
parse_macro(parser *ps, const char *p, const char *e, cronspec *out)
{
	static const struct
	{
		const char *name;
		const char *cron;
	}			macros[] = {
		{"@hourly", "0 * * * *"},
		{"@daily", "0 0 * * *"},
		{"@midnight", "0 0 * * *"},
		{"@weekly", "0 0 * * 0"},
		{"@monthly", "0 0 1 * *"},
		{"@yearly", "0 0 1 1 *"},
		{"@annually", "0 0 1 1 *"},
	};

	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
		if (word_is(p, e, macros[i].name))
			return parse_cron_fields(ps, macros[i].cron,
									 macros[i].cron + strlen(macros[i].cron), out);
	ps->errpos = 0;
	if (word_is(p, e, "@reboot"))
		FAIL(ps, "@reboot is not supported: schedules fire at wall-clock times, not when the server starts");
	FAIL(ps, "unknown shorthand \"%s\" (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)",
		 quote(ps, p, e));
}

/*
 * An interval: "N unit" inside rate(...), or "N<letter>" as the shorthand. The value
 * must be a positive whole number; both singular and plural unit names are accepted
 * whatever the number, unlike AWS, because the difference carries no meaning.
 */
static bool
parse_interval(parser *ps, const char *p, const char *e, bool shorthand, cronspec *out)
{
	static const struct
	{
		const char *unit;
		const char *letter;
		int64_t		secs;
	}			units[] = {
		{"second", "s", 1}, {"minute", "m", 60}, {"hour", "h", 3600}, {"day", "d", 86400},
	};
	const char *what = shorthand ? "shorthand interval" : "rate(...)";
	const char *expected = shorthand ? "S, M, H or D" : "second(s), minute(s), hour(s) or day(s)";
	const char *vs = p;
	const char *us;
	int			v;
	int64_t		mult = 0;

	ps->errpos = 0;
	if (p < e && (*p == '-' || *p == '+'))
		p++;
	while (p < e && (is_digit(*p) || *p == '.'))
		p++;
	if (p == vs)
		FAIL(ps, "%s needs a number and a unit, e.g. rate(5 minutes) or 5M", what);
	if (!is_digit(*vs) || memchr(vs, '.', (size_t) (p - vs)) != NULL)
		FAIL(ps, "%s needs a positive whole number, got \"%s\"", what, quote(ps, vs, p));
	us = vs;
	read_number(&us, p, &v);
	if (v == 0)
		FAIL(ps, "%s needs a positive whole number, got \"%s\"", what, quote(ps, vs, p));
	if (!shorthand)
	{
		if (p < e && !is_space(*p))
			FAIL(ps, "rate(...) needs a space between the number and the unit, e.g. rate(5 minutes)");
		while (p < e && is_space(*p))
			p++;
	}
	us = p;
	while (p < e && is_alpha(*p))
		p++;
	if (us == p)
		FAIL(ps, "%s is missing its unit (expected %s)", what, expected);
	if (p != e)
		FAIL(ps, "unexpected \"%s\" after the unit of %s", quote(ps, p, e), what);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
	{
		size_t		n = strlen(units[i].unit);

		if (shorthand ? word_is(us, p, units[i].letter) :
			(starts_with(us, p, units[i].unit) &&
			 ((size_t) (p - us) == n || ((size_t) (p - us) == n + 1 && lower(us[n]) == 's'))))
			mult = units[i].secs;
	}
	if (mult == 0)
		FAIL(ps, "unknown unit \"%s\" in %s (expected %s)", quote(ps, us, p), what, expected);
	if ((int64_t) v * mult > CRONSPEC_MAX_RATE_SECS)
		FAIL(ps, "the interval of %s is too long (at most 3650 days)", what);
	out->kind = CRONSPEC_RATE;
	out->interval_usecs = (int64_t) v * mult * CRONSPEC_USECS_PER_SEC;
	return true;
}

/* Exactly n digits at *pp. */
static bool
fixed_digits(const char **pp, const char *e, int n, int *out)
{
	const char *p = *pp;
	int			v = 0;

	if (e - p < n)
		return false;
	for (int i = 0; i < n; i++)
	{
		if (!is_digit(p[i]))
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	*out = v;
	return true;
}

static bool
expect_char(const char **pp, const char *e, char c)
{
	if (*pp < e && **pp == c)
	{
		(*pp)++;
		return true;
	}
	return false;
}

/* The timestamp of a one-shot: YYYY-MM-DD(T| )hh:mm[:ss[.ffffff]][Z|(+|-)hh[[:]mm]] */
static bool
parse_timestamp(parser *ps, const char *p, const char *e, cronspec *out)
{
	set_prefix(ps, "timestamp", p, e);
	if (!fixed_digits(&p, e, 4, &out->year) || !expect_char(&p, e, '-') ||
		!fixed_digits(&p, e, 2, &out->month) || !expect_char(&p, e, '-') ||
		!fixed_digits(&p, e, 2, &out->day))
		goto malformed;
	if (p < e && (*p == 'T' || *p == 't' || *p == ' '))
		p++;
	else
		goto malformed;
	if (!fixed_digits(&p, e, 2, &out->hour) || !expect_char(&p, e, ':') ||
		!fixed_digits(&p, e, 2, &out->minute))
		goto malformed;
	if (expect_char(&p, e, ':'))
	{
		if (!fixed_digits(&p, e, 2, &out->second))
			goto malformed;
		if (expect_char(&p, e, '.'))
		{
			int			digits = 0;
			int32_t		scale = 100000;

			while (p < e && is_digit(*p))
			{
				if (++digits > 6)
					FAIL(ps, "at most 6 fractional digits of a second are accepted");
				out->usec += (*p++ - '0') * scale;
				scale /= 10;
			}
			if (digits == 0)
				goto malformed;
		}
	}
	if (p < e && (*p == 'Z' || *p == 'z'))
	{
		p++;
		out->has_offset = true;
	}
	else if (p < e && (*p == '+' || *p == '-'))
	{
		const char *os = p;
		int			sign = *p++ == '-' ? -1 : 1;
		int			oh,
					om = 0;

		if (!fixed_digits(&p, e, 2, &oh))
			goto malformed;
		if (p < e)
		{
			expect_char(&p, e, ':');
			if (!fixed_digits(&p, e, 2, &om))
				goto malformed;
		}
		if (oh > 15 || om > 59)
			FAIL(ps, "offset %s is out of range (-15:59 to +15:59)", quote(ps, os, e));
		out->has_offset = true;
		out->offset_secs = sign * (oh * 3600 + om * 60);
	}
	if (p != e)
		goto malformed;
	if (out->year < 1)
		FAIL(ps, "year 0000 is out of range (0001-9999)");
	if (out->month < 1 || out->month > 12)
		FAIL(ps, "month %02d is out of range (01-12)", out->month);
	if (out->day < 1 || out->day > cronspec_days_in_month(out->year, out->month))
		FAIL(ps, "day %02d does not exist in %04d-%02d", out->day, out->year, out->month);
	if (out->hour > 23)
		FAIL(ps, "hour %02d is out of range (00-23)", out->hour);
	if (out->minute > 59)
		FAIL(ps, "minute %02d is out of range (00-59)", out->minute);
	if (out->second > 59)
		FAIL(ps, "second %02d is out of range (00-59; leap seconds are not supported)", out->second);
	out->kind = CRONSPEC_ONCE;
	return true;

malformed:
	FAIL(ps, "expected YYYY-MM-DDThh:mm[:ss[.ffffff]] with an optional Z or +hh[:mm] offset, e.g. at 2026-12-01T09:00:00+01");
}

/* After the word of a form (cron, rate, at): optional spaces, "(", contents, ")". */
static bool
paren_body(parser *ps, const char *form, const char **pp, const char **pe)
{
	const char *p = *pp;
	const char *e = *pe;
	const char *close;

	while (p < e && is_space(*p))
		p++;
	if (p == e || *p != '(')
		FAIL(ps, "%s must be followed by \"(\"", form);
	p++;
	close = memchr(p, ')', (size_t) (e - p));
	if (close == NULL)
		FAIL(ps, "%s(...) is missing its closing \")\"", form);
	if (close + 1 != e)
	{
		const char *junk = close + 1;

		while (junk < e && is_space(*junk))
			junk++;
		FAIL(ps, "unexpected \"%s\" after the closing \")\" of %s(...)",
			 quote(ps, junk, e), form);
	}
	e = close;
	while (p < e && is_space(*p))
		p++;
	while (e > p && is_space(e[-1]))
		e--;
	if (p == e)
		FAIL(ps, "%s() is empty", form);
	*pp = p;
	*pe = e;
	return true;
}

/*
 * Does [p, e) open the form `word`: the word, then "(" after optional spaces, or (for at,
 * whose timestamp may follow a space) white space? No 5-field spec can start this way,
 * since the minute field takes no names.
 */
static bool
opens_form(const char *p, const char *e, const char *word, bool space_opens)
{
	const char *q = p + strlen(word);

	if (!starts_with(p, e, word))
		return false;
	if (space_opens && q < e && is_space(*q))
		return true;
	while (q < e && is_space(*q))
		q++;
	return q < e && *q == '(';
}

/* 30S, 30M, 2H, 1D (and wrong signs or units of that shape, to report them precisely). */
static bool
looks_like_shorthand(const char *p, const char *e)
{
	if (p < e && (*p == '-' || *p == '+'))
		p++;
	if (p == e || !is_digit(*p))
		return false;
	while (p < e && is_digit(*p))
		p++;
	if (p == e || !is_alpha(*p))
		return false;
	while (p < e && is_alpha(*p))
		p++;
	return p == e;
}

bool
cronspec_parse(const char *text, size_t len, cronspec *out, char *errbuf, size_t errlen)
{
	parser		ps;
	const char *p = text;
	const char *e = text + len;

	memset(out, 0, sizeof(*out));
	memset(&ps, 0, sizeof(ps));
	ps.err = errbuf;
	ps.errlen = errlen;
	if (errlen > 0)
		errbuf[0] = '\0';

	if (len > 0 && memchr(text, '\0', len) != NULL)
		FAIL(&ps, "spec contains a NUL byte");
	while (p < e && is_space(*p))
		p++;
	while (e > p && is_space(e[-1]))
		e--;
	if (p == e)
		FAIL(&ps, "spec is empty");

	if (*p == '@')
		return parse_macro(&ps, p, e, out);
	if (opens_form(p, e, "cron", false))
	{
		p += 4;
		if (!paren_body(&ps, "cron", &p, &e))
			return false;
		ps.aws = true;
		return parse_cron_fields(&ps, p, e, out);
	}
	if (opens_form(p, e, "rate", false))
	{
		p += 4;
		if (!paren_body(&ps, "rate", &p, &e))
			return false;
		return parse_interval(&ps, p, e, false, out);
	}
	if (opens_form(p, e, "at", true))
	{
		p += 2;
		while (p < e && is_space(*p))
			p++;
		if (p < e && *p == '(' && !paren_body(&ps, "at", &p, &e))
			return false;
		return parse_timestamp(&ps, p, e, out);
	}
	if (looks_like_shorthand(p, e))
		return parse_interval(&ps, p, e, true, out);
	return parse_cron_fields(&ps, p, e, out);
}

const char *
cronspec_kind_name(cronspec_kind kind)
{
	switch (kind)
	{
		case CRONSPEC_CRON:
			return "cron";
		case CRONSPEC_RATE:
			return "rate";
		case CRONSPEC_ONCE:
			return "once";
	}
	return "unknown";
}
