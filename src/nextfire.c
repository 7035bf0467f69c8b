/*
 * nextfire.c: PostgreSQL glue for schedule specs: ereport-style errors, the time-zone
 * adapter over PostgreSQL's own tz database, and the SQL functions dispatch.next_fire,
 * dispatch.validate_spec and dispatch.spec_kind (sql/install/50_nextfire.sql).
 *
 * The parsing and the arithmetic are the pure C of cronspec.c / cronnext.c, which work in
 * microseconds since the Unix epoch; this file converts to and from TimestampTz (since
 * 2000-01-01) at the edges, range-checking first so no conversion can overflow.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "nextfire.h"

/* TimestampTz counts from 2000-01-01, the pure code from 1970-01-01. */
#define UNIX_TO_PG_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

#define SPEC_HINT \
	"A schedule spec is a 5-field cron expression such as \"30 9 * * MON-FRI\", " \
	"an @-shorthand such as \"@daily\", an AWS-style expression such as " \
	"\"cron(0 9 ? * MON-FRI *)\", an interval such as \"rate(5 minutes)\" or \"5M\", " \
	"or a one-shot such as \"at 2026-12-01T09:00:00+01\". " \
	"The accepted forms are described in doc/specs.md."

#define ZONE_HINT \
	"Use a time zone name from the IANA database, such as \"UTC\", \"Europe/London\" or " \
	"\"America/New_York\" (see pg_timezone_names). Abbreviations such as \"PST\" and " \
	"POSIX strings such as \"UTC+3\" are not accepted, because they do not carry the " \
	"daylight-saving rules a schedule needs."

void
dispatch_spec_parse(const char *spec, cronspec *out)
{
	char		err[CRONSPEC_ERRBUF_SIZE];
	size_t		len = strlen(spec);

	if (!cronspec_parse(spec, len, out, err, sizeof(err)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule spec \"%.*s%s\": %s",
						pg_mbcliplen(spec, (int) Min(len, 1000), 200), spec,
						len > 200 ? "..." : "", err),
				 errhint(SPEC_HINT)));
}

/*
 * pg_tzset also accepts POSIX TZ strings ("UTC+3", "EST5EDT,M3.2.0,M11.1.0"), whose offset
 * signs are the reverse of what most people expect. Real zone names with digits either
 * contain a slash (Etc/GMT+3) or are one of the few old links below.
 */
static bool
looks_like_posix_tz(const char *name)
{
	static const char *const links[] = {
		"EST5EDT", "CST6CDT", "MST7MDT", "PST8PDT", "GMT0", "GMT+0", "GMT-0", NULL
	};
	bool		digit = false;

	if (strpbrk(name, ",<>") != NULL || name[0] == '+' || name[0] == '-')
		return true;
	for (const char *p = name; *p; p++)
		if (*p >= '0' && *p <= '9')
			digit = true;
	if (!digit || strchr(name, '/') != NULL)
		return false;
	for (int i = 0; links[i] != NULL; i++)
		if (pg_strcasecmp(name, links[i]) == 0)
			return false;
	return true;
}

/* The zone, or NULL when the name is not one dispatch_spec_zone accepts. Raises nothing. */
pg_tz *
dispatch_spec_zone_lookup(const char *tzname)
{
	pg_tz	   *tz = NULL;

	if (tzname[0] != '\0' && strlen(tzname) <= TZ_STRLEN_MAX && !looks_like_posix_tz(tzname))
		tz = pg_tzset(tzname);
	if (tz != NULL && !pg_tz_acceptable(tz))
		tz = NULL;
	return tz;
}

pg_tz *
dispatch_spec_zone(const char *tzname)
{
	pg_tz	   *tz = NULL;

	if (tzname[0] != '\0' && strlen(tzname) <= TZ_STRLEN_MAX && !looks_like_posix_tz(tzname))
		tz = pg_tzset(tzname);
	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown time zone \"%s\"", tzname),
				 errhint(ZONE_HINT)));
	if (!pg_tz_acceptable(tz))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not supported", tzname),
				 errhint("It counts leap seconds, which PostgreSQL timestamps do not. Use the same zone without the \"right/\" prefix.")));
	return tz;
}

/* The adapter cronnext.c asks: the UTC offset in force at an instant. */
static int32_t
pg_zone_offset(void *arg, int64_t utc_secs)
{
	pg_time_t	t = (pg_time_t) utc_secs;
	struct pg_tm *tm = pg_localtime(&t, (const pg_tz *) arg);

	if (tm == NULL)
		elog(ERROR, "could not compute the UTC offset at %lld seconds after 1970",
			 (long long) utc_secs);
	return (int32_t) tm->tm_gmtoff;
}

/* TimestampTz -> microseconds since 1970, or an error when outside years 0001-9999. */
static int64
to_unix_usecs(TimestampTz ts, const char *what)
{
	if (TIMESTAMP_IS_NOBEGIN(ts) || TIMESTAMP_IS_NOEND(ts) ||
		ts < CRONSPEC_MIN_INSTANT - UNIX_TO_PG_USECS ||
		ts > CRONSPEC_MAX_INSTANT - UNIX_TO_PG_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s timestamp %s is out of range for schedule arithmetic", what,
						timestamptz_to_str(ts)),
				 errhint("Schedules are computed for instants from 0001-01-01 to 9999-12-31 UTC.")));
	return ts + UNIX_TO_PG_USECS;
}

bool
dispatch_spec_next_fire(const cronspec *spec, TimestampTz after, pg_tz *tz,
						const TimestampTz *anchor, TimestampTz *next)
{
	cronspec_tz adapter = {pg_zone_offset, tz};
	int64		anchor_unix = CRONSPEC_DEFAULT_ANCHOR;
	int64		n;

	/* From +infinity, or from the last representable years, nothing comes next. */
	if (TIMESTAMP_IS_NOEND(after) || (!TIMESTAMP_IS_NOBEGIN(after) &&
									   after > CRONSPEC_MAX_INSTANT - UNIX_TO_PG_USECS))
		return false;
	if (anchor != NULL)
		anchor_unix = to_unix_usecs(*anchor, "anchor");

	switch (cronspec_next(spec, to_unix_usecs(after, "after"), anchor_unix,
						  &adapter, &n))
	{
		case CRONSPEC_NEXT_FOUND:
			*next = n - UNIX_TO_PG_USECS;
			return true;
		case CRONSPEC_NEXT_NEVER:
			return false;
		case CRONSPEC_NEXT_OUT_OF_RANGE:
			break;
	}
	elog(ERROR, "schedule arithmetic rejected an instant already range-checked");
	return false;				/* keep the compiler quiet */
}

PG_FUNCTION_INFO_V1(dispatch_sql_next_fire);
PG_FUNCTION_INFO_V1(dispatch_sql_validate_spec);
PG_FUNCTION_INFO_V1(dispatch_sql_spec_kind);

/* next_fire(spec, after, timezone = 'UTC', anchor = NULL): NULL in, NULL out, except the
 * anchor, whose NULL means the default grid. */
Datum
dispatch_sql_next_fire(PG_FUNCTION_ARGS)
{
	cronspec	spec;
	pg_tz	   *tz;
	TimestampTz anchor;
	TimestampTz next;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	dispatch_spec_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &spec);
	tz = dispatch_spec_zone(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (!PG_ARGISNULL(3))
		anchor = PG_GETARG_TIMESTAMPTZ(3);
	if (!dispatch_spec_next_fire(&spec, PG_GETARG_TIMESTAMPTZ(1), tz,
								 PG_ARGISNULL(3) ? NULL : &anchor, &next))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}

Datum
dispatch_sql_validate_spec(PG_FUNCTION_ARGS)
{
	cronspec	spec;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule spec must not be null"),
				 errhint(SPEC_HINT)));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("time zone must not be null"),
				 errhint(ZONE_HINT)));
	dispatch_spec_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &spec);
	(void) dispatch_spec_zone(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

Datum
dispatch_sql_spec_kind(PG_FUNCTION_ARGS)
{
	cronspec	spec;

	dispatch_spec_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &spec);
	PG_RETURN_TEXT_P(cstring_to_text(cronspec_kind_name(spec.kind)));
}
