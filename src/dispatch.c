/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *		Module entry point: the settings (GUCs), the shared-memory request,
 *		and the lookup of dispatch's own relations.
 *
 * The library works in two ways.  Loaded through shared_preload_libraries it
 * reserves shared memory for the queue map (queuemap.c) and registers the
 * background workers (worker.c).  Loaded on first use by CREATE EXTENSION or
 * a function call, it keeps a per-session queue map instead; everything
 * still works, with the differences doc/operations.md lists.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/trigger.h"
#include "utils/syscache.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"

#include "dispatch.h"
#include "nextfire.h"
#include "fanout.h"
#include "queuemap.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			dispatch_lease_time = 300;
int			dispatch_max_payload_size = 1024 * 1024;
char	   *dispatch_database_name = NULL;
int			dispatch_naptime = 1000;
int			dispatch_max_tenants = 4096;
int			dispatch_max_signatures = 1024;
int			dispatch_max_queues = 32768;
int			dispatch_max_databases = 4;
int			dispatch_local_refresh = 1000;
int			dispatch_agent_timeout = 60;
int			dispatch_retry_base = 1000;
int			dispatch_retry_max = 3600;
char	   *dispatch_timezone = NULL;
int			dispatch_history_retention = 90 * 24 * 3600;
int			dispatch_misfire_grace = 60;
int			dispatch_schedule_batch = 1000;
int			dispatch_decision_retention = 30 * 24 * 3600;
int			dispatch_log_decisions = LOG_DECISIONS_ALL;
bool		dispatch_restoring = false;
bool		dispatch_preloaded = false;

static const struct config_enum_entry log_decisions_options[] = {
	{"all", LOG_DECISIONS_ALL, false},
	{"sampled", LOG_DECISIONS_SAMPLED, false},
	{"errors", LOG_DECISIONS_ERRORS, false},
	{NULL, 0, false}
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
dispatch_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	queuemap_shmem_request();
	notifier_shmem_request();
}

static void
dispatch_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	queuemap_shmem_startup();
	notifier_shmem_startup();
}

/* dispatch.timezone takes IANA zone names only, as a schedule's own timezone does. */
static bool
check_timezone_setting(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || dispatch_spec_zone_lookup(*newval) != NULL)
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("unknown time zone \"%s\"", *newval);
	GUC_check_errhint("Use a time zone name from the IANA database, such as \"UTC\" or \"Europe/London\" (see pg_timezone_names); abbreviations and POSIX strings are not accepted.");
	return false;
}

static void
define_settings(void)
{
	/*
	 * Settings read at server start (shared memory sizes, the worker's
	 * databases) can only be PGC_POSTMASTER while shared_preload_libraries
	 * is processed: defining one later is a FATAL error, which would break
	 * the first call in every session when the library is not preloaded.
	 * Then they are internal, read-only at their defaults.
	 */
	GucContext	at_start = process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_INTERNAL;

	DefineCustomIntVariable("dispatch.lease_time",
							"How long a claim lasts before the worker requeues the task (seconds). No restart needed.",
							"An agent keeps a task longer with dispatch.extend_lease().",
							&dispatch_lease_time, 300, 1, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.max_payload_size",
							"Largest task payload accepted, as stored jsonb (bytes). No restart needed.",
							NULL,
							&dispatch_max_payload_size, 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomStringVariable("dispatch.database_name",
							   "Databases the background worker serves (comma-separated). Needs a restart.",
							   "One worker runs per database listed. Needs a restart.",
							   &dispatch_database_name, "postgres",
							   at_start, GUC_LIST_INPUT, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.naptime",
							"Time between two ticks of the background worker (milliseconds). No restart needed: reload.",
							NULL,
							&dispatch_naptime, 1000, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.max_tenants",
							"Tenants the shared queue map can hold per database (count). Needs a restart.",
							"Each tenant slot takes about 300 bytes of shared memory.",
							&dispatch_max_tenants, 4096, 64, 1000000,
							at_start, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.max_signatures",
							"Distinct capability signatures the shared queue map can hold per database (count). Needs a restart.",
							"A signature is a distinct (requires, sensitivity, region) of a task.",
							&dispatch_max_signatures, 1024, 16, 100000,
							at_start, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.max_queues",
							"(signature, tenant) queues the shared queue map can hold per database (count). Needs a restart.",
							NULL,
							&dispatch_max_queues, 32768, 256, 10000000,
							at_start, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.max_databases",
							"Databases that can keep their queue map in shared memory (count). Needs a restart.",
							"Further databases keep a per-session map.",
							&dispatch_max_databases, 4, 1, 64,
							at_start, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.local_refresh",
							"Without shared memory, how old a session's queue map may get before it is rebuilt (milliseconds). No restart needed.",
							NULL,
							&dispatch_local_refresh, 1000, 10, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.agent_timeout",
							"An agent silent for longer than this is marked lost and its tasks requeued (seconds). No restart needed: reload.",
							NULL,
							&dispatch_agent_timeout, 60, 1, 7 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.retry_base",
							"First retry delay after a failure; each further attempt doubles it, with jitter (milliseconds). No restart needed.",
							NULL,
							&dispatch_retry_base, 1000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.retry_max",
							"Longest retry delay (seconds). No restart needed.",
							NULL,
							&dispatch_retry_max, 3600, 1, 7 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("dispatch.timezone",
							   "Time zone of new schedules created without one (IANA name). No restart needed.",
							   "Read when a schedule is created: the schedule keeps the zone it got, so changing this setting never moves existing schedules.",
							   &dispatch_timezone, "UTC",
							   PGC_USERSET, 0, check_timezone_setting, NULL, NULL);
	DefineCustomIntVariable("dispatch.history_retention",
							"How long a deleted schedule and its fires are kept after dispatch.unschedule() (seconds). No restart needed: reload.",
							"The worker's tick then removes them in small batches.",
							&dispatch_history_retention, 90 * 24 * 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.misfire_grace",
							"A fire later than this is missed, and the schedule's catch_up policy decides whether it still runs (seconds). No restart needed: reload.",
							"Missed fires happen while the server or the worker is down; within the grace a fire is merely late.",
							&dispatch_misfire_grace, 60, 0, 7 * 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.schedule_batch",
							"Most schedules one tick fires (count). No restart needed: reload.",
							"Due schedules beyond it fire in the next tick, earliest first.",
							&dispatch_schedule_batch, 1000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	events_define_settings();
	DefineCustomIntVariable("dispatch.decision_retention",
							"How long the decision log keeps its rows (seconds; 0 keeps them forever). No restart needed.",
							"The log is partitioned by day: a day's partition is dropped once all of it is older than this.",
							&dispatch_decision_retention, 30 * 24 * 3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomEnumVariable("dispatch.log_decisions",
							 "Which decisions are written to dispatch.decisions: all, sampled or errors. No restart needed.",
							 "sampled: every decision except claims, and the claims of 1 task in 100 "
							 "(dispatch.claim_sampled); errors: failures, losses, timeouts, sheds and overrides only.",
							 &dispatch_log_decisions, LOG_DECISIONS_ALL, log_decisions_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("dispatch.restoring",
							 "While on, this session restores a pg_dump of dispatch: its triggers let restored rows in as they are, and the tick does nothing. No restart needed.",
							 "Set it for the database before the restore (ALTER DATABASE ... SET dispatch.restoring = on); "
							 "dispatch.finish_restore() rebuilds what the triggers would have kept and resets it (doc/operations.md, Backup).",
							 &dispatch_restoring, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("dispatch");
}

void
_PG_init(void)
{
	define_settings();

	if (!process_shared_preload_libraries_in_progress)
		return;

	dispatch_preloaded = true;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = dispatch_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = dispatch_shmem_startup;
	worker_register_all();
	notifier_register_all();
}

/*
 * The OIDs of our relations.  The namespace OID is checked on every call (one
 * syscache probe): when the extension was dropped and created again the
 * relations have new OIDs and every cache keyed on them must be reset.
 */
static DispatchCatalog catalog;

static Oid
relid_or_error(const char *name)
{
	Oid			relid = get_relname_relid(name, catalog.namespace);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation \"dispatch.%s\" does not exist", name),
				 errhint("The dispatch extension is damaged or being dropped; reinstall it with DROP EXTENSION dispatch; CREATE EXTENSION dispatch;")));
	return relid;
}

DispatchCatalog *
dispatch_catalog(void)
{
	Oid			nsp = get_namespace_oid("dispatch", true);

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"dispatch\" does not exist"),
				 errhint("Run CREATE EXTENSION dispatch in this database first.")));
	if (nsp != catalog.namespace || !OidIsValid(catalog.tasks_claimed_idx))
	{
		HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for namespace %u", nsp);
		catalog.owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
		catalog.namespace = nsp;
		catalog.tasks = InvalidOid;
		catalog.tasks_claimed_idx = InvalidOid;
		catalog.tasks = relid_or_error("tasks");
		catalog.tasks_ready_idx = relid_or_error("tasks_ready_idx");
		catalog.tasks_reserved_idx = relid_or_error("tasks_reserved_idx");
		catalog.tasks_urgent_idx = relid_or_error("tasks_urgent_idx");
		catalog.agents = relid_or_error("agents");
		catalog.signatures = relid_or_error("signatures");
		catalog.policies = relid_or_error("policies");
		catalog.tenants = relid_or_error("tenants");
		catalog.tasks_claimed_idx = relid_or_error("tasks_claimed_idx");
		catalog.generation++;
	}
	return &catalog;
}

const DispatchCatalog *
dispatch_catalog_cached(void)
{
	return &catalog;
}

/*
 * dispatch.restoring() RETURNS boolean: this session's dispatch.restoring.
 * A function, not current_setting(), so that the SQL triggers that check it
 * load the library (and so the setting) in a session that has not used
 * dispatch yet.
 */
PG_FUNCTION_INFO_V1(dispatch_restoring_sql);

Datum
dispatch_restoring_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(dispatch_restoring);
}

/*
 * dispatch_invalidate_trigger: statement trigger on dispatch.signatures,
 * dispatch.policies and dispatch.tenants.  Row changes send no cache
 * invalidations of their own; this sends one for the table (at commit), which
 * tells every session to drop what it cached from it.
 */
PG_FUNCTION_INFO_V1(dispatch_invalidate_trigger);

Datum
dispatch_invalidate_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dispatch_invalidate_trigger: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}
