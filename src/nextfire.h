/*
 * nextfire.h: the C entry points the scheduler calls to validate a schedule spec and to
 * compute its next fire, with errors raised by ereport. The pure parser and arithmetic
 * are in cronspec.h; this layer adds PostgreSQL's time-zone database and error style.
 */
#ifndef DISPATCH_NEXTFIRE_H
#define DISPATCH_NEXTFIRE_H

#include "pgtime.h"
#include "datatype/timestamp.h"

#include "cronspec.h"

/* Parse and validate `spec`; ereport(ERROR) with SQLSTATE 22023 and a hint if it is bad. */
extern void dispatch_spec_parse(const char *spec, cronspec *out);

/* Look up an IANA time-zone name; ereport(ERROR) with SQLSTATE 22023 if unknown. */
extern pg_tz *dispatch_spec_zone(const char *tzname);

/* The same lookup without errors: NULL when the name is not accepted (for GUC check hooks). */
extern pg_tz *dispatch_spec_zone_lookup(const char *tzname);

/*
 * The first fire of `spec` strictly after `after`, in zone `tz`. Returns false when the
 * schedule never fires again (or not before 10000-01-01). `anchor` is the origin of a rate
 * spec's grid (NULL = 1970-01-01 00:00 UTC); other kinds ignore it. Raises 22008 when
 * `after` or `anchor` is -infinity or before 0001-01-01; `after` = +infinity gives false.
 */
extern bool dispatch_spec_next_fire(const cronspec *spec, TimestampTz after, pg_tz *tz,
									const TimestampTz *anchor, TimestampTz *next);

#endif							/* DISPATCH_NEXTFIRE_H */
