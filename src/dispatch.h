/*-------------------------------------------------------------------------
 *
 * dispatch.h
 *		Settings and small helpers shared by every part of the dispatch
 *		extension: the GUC variables, the catalog lookups of dispatch's own
 *		relations, and the caller-identity checks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISPATCH_H
#define DISPATCH_H

#include "postgres.h"

#include "utils/timestamp.h"

/* Settings (dispatch.c); units are in each GUC's description. */
extern int	dispatch_lease_time;		/* seconds */
extern int	dispatch_max_payload_size;	/* bytes */
extern char *dispatch_database_name;	/* comma-separated list */
extern int	dispatch_naptime;			/* milliseconds */
extern int	dispatch_max_tenants;
extern int	dispatch_max_signatures;
extern int	dispatch_max_queues;
extern int	dispatch_max_databases;
extern int	dispatch_local_refresh;		/* milliseconds */
extern int	dispatch_agent_timeout;		/* seconds */
extern int	dispatch_retry_base;		/* milliseconds */
extern int	dispatch_retry_max;			/* seconds */
extern int	dispatch_decision_retention;	/* seconds; 0: forever */
extern int	dispatch_log_decisions;		/* LOG_DECISIONS_* */
extern bool dispatch_restoring;			/* a dump is being restored: triggers let rows through */

#define LOG_DECISIONS_ALL		0
#define LOG_DECISIONS_SAMPLED	1
#define LOG_DECISIONS_ERRORS	2

extern char *dispatch_timezone;			/* IANA zone name */
extern int	dispatch_history_retention; /* seconds */
extern int	dispatch_misfire_grace;		/* seconds */
extern int	dispatch_schedule_batch;	/* count */

extern bool dispatch_preloaded;			/* loaded by shared_preload_libraries */

/*
 * OIDs of dispatch's own relations in the current database.  Looked up once
 * per transaction at most; dispatch_catalog_refresh() resets them when the
 * extension was dropped and created again.
 */
typedef struct DispatchCatalog
{
	Oid			namespace;
	Oid			owner;			/* the extension's owner: owner of schema dispatch */
	Oid			tasks;
	Oid			tasks_ready_idx;
	Oid			tasks_reserved_idx;
	Oid			tasks_urgent_idx;
	Oid			tasks_claimed_idx;
	Oid			agents;
	Oid			signatures;
	Oid			policies;
	Oid			tenants;
	uint64		generation;		/* bumped whenever the OIDs change */
} DispatchCatalog;

extern DispatchCatalog *dispatch_catalog(void);

/* The OIDs as last looked up, without a lookup: for invalidation callbacks. */
extern const DispatchCatalog *dispatch_catalog_cached(void);

/* Identity (caller.c). */
extern Oid	dispatch_caller(void);
extern bool dispatch_may_act_as(const char *owner_role);
extern void dispatch_check_agent_owner(const char *agent_id, const char *owner_role);
extern void as_owner_begin(Oid *save_user, int *save_sec);
extern void as_owner_end(Oid save_user, int save_sec);

/* Wall clock in seconds, for scores: all score terms are seconds. */
static inline double
ts_to_seconds(TimestampTz ts)
{
	return (double) ts / (double) USECS_PER_SEC;
}

#endif							/* DISPATCH_H */
