/*-------------------------------------------------------------------------
 *
 * counters.c
 *		Live task counts per (tenant, priority, state) without a hot row, and
 *		the tenant's max_queued limit.
 *
 * Counting ready tasks over millions of rows is a scan, and a single counter
 * row updated by every claim would serialise the fleet on its row lock.  So
 * the counts are kept in two tables (sql/install/45_counters.sql):
 *
 *	 task_count_deltas	append-only: one row per change of a task's
 *						(tenant, priority, live state), written by the AFTER
 *						row trigger below in the writer's own transaction, so it
 *						commits or rolls back with the change itself;
 *	 task_counts		the folded totals, updated only by the tick
 *						(dispatch.fold_task_counts()), one writer at a time.
 *
 * A reader adds the two: exact for everything committed, at the cost of
 * reading at most one tick's worth of deltas.  Only the live states are
 * counted (scheduled, ready, claimed); finished history is counted over a
 * time window through tasks_finished_idx instead.
 *
 * An AFTER trigger (not the BEFORE trigger in taskrow.c) so that rows an
 * INSERT ... ON CONFLICT DO NOTHING skips, or a later BEFORE trigger drops,
 * are never counted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "dispatch.h"
#include "queuemap.h"
#include "spiplan.h"
#include "taskcols.h"
#include "vocab.h"

PG_FUNCTION_INFO_V1(dispatch_task_count);

static char *
text_attr(HeapTuple tup, TupleDesc desc, AttrNumber att)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, att, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* ---- the tenant's max_queued, cached until dispatch.tenants changes ---- */

typedef struct LimitEntry
{
	char		tenant[QM_TENANT_LEN];
	int32		max_queued;		/* -1: no limit */
} LimitEntry;

static HTAB *limits = NULL;
static bool limits_stale = false;

/* Marks the cache stale only: limits_table() frees it, never a callback mid-lookup. */
static void
limits_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == dispatch_catalog_cached()->tenants)
		limits_stale = true;
}

static SPIPlanPtr limit_plan = NULL;
static SPIPlanPtr waiting_plan = NULL;
static SPIPlanPtr delta_plan = NULL;

static HTAB *
limits_table(void)
{
	static bool registered = false;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(limits_inval, (Datum) 0);
		registered = true;
	}
	if (limits && limits_stale)
	{
		hash_destroy(limits);
		limits = NULL;
	}
	limits_stale = false;
	if (limits == NULL)
	{
		HASHCTL		ctl;

		MemSet(&ctl, 0, sizeof(ctl));
		ctl.keysize = QM_TENANT_LEN;
		ctl.entrysize = sizeof(LimitEntry);
		ctl.hcxt = TopMemoryContext;
		limits = hash_create("dispatch tenant limits", 64, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return limits;
}

/*
 * The tenant's max_queued, or -1.  SPI connected.  A missing tenant row
 * reads as no limit and is not cached.  The query may process invalidations
 * (a tick saving vstart touches dispatch.tenants), which destroy the cache:
 * so the table is fetched again after it, never held across it.
 */
static int32
tenant_max_queued(const char *tenant)
{
	LimitEntry *e;
	bool		found;
	bool		isnull;
	char		key[QM_TENANT_LEN];
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int32		limit;

	MemSet(key, 0, sizeof(key));
	strlcpy(key, tenant, sizeof(key));
	e = hash_search(limits_table(), key, HASH_FIND, &found);
	if (found)
		return e->max_queued;

	values[0] = CStringGetTextDatum(tenant);
	keep_plan(&limit_plan, "SELECT coalesce(max_queued, -1) FROM dispatch.tenants WHERE tenant = $1",
			  1, types);
	if (SPI_execute_plan(limit_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.tenants");
	if (SPI_processed == 0)
		return -1;
	limit = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	e = hash_search(limits_table(), key, HASH_ENTER, NULL);
	e->max_queued = limit;
	return limit;
}

/*
 * Refuse a new waiting task of a tenant that already has max_queued waiting.
 * Counts what is committed plus this transaction's own changes; two
 * concurrent transactions do not see each other's uncommitted tasks
 * (documented with submit() in doc/reference.md).
 */
static void
check_max_queued(const char *tenant)
{
	int32		limit = tenant_max_queued(tenant);
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	int64		waiting;

	if (limit < 0)
		return;
	values[0] = CStringGetTextDatum(tenant);
	keep_plan(&waiting_plan,
			  "SELECT coalesce((SELECT sum(n) FROM dispatch.task_counts "
			  "                  WHERE tenant = $1 AND state IN ('ready', 'scheduled')), 0)"
			  "     + coalesce((SELECT sum((coalesce(to_state, '') IN ('ready', 'scheduled'))::int"
			  "                          - (coalesce(from_state, '') IN ('ready', 'scheduled'))::int)"
			  "                   FROM dispatch.task_count_deltas WHERE tenant = $1), 0)",
			  1, types);
	if (SPI_execute_plan(waiting_plan, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "dispatch: could not count the tenant's waiting tasks");
	waiting = DatumGetInt64(DirectFunctionCall1(numeric_int8,
												SPI_getbinval(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 1, &isnull)));
	if (waiting >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("tenant \"%s\" already has %lld tasks waiting, its max_queued", tenant,
						(long long) waiting),
				 errdetail("Tasks waiting are those ready or scheduled."),
				 errhint("Submit again once some of its work has been claimed, or raise the limit: UPDATE dispatch.tenants SET max_queued = ... WHERE tenant = '%s'.",
						 tenant)));
}

static void
append_delta(const char *tenant, const char *priority, const char *from, const char *to)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(tenant);
	values[1] = CStringGetTextDatum(priority);
	plan_text_arg(values, nulls, 2, from);
	plan_text_arg(values, nulls, 3, to);
	keep_plan(&delta_plan,
			  "INSERT INTO dispatch.task_count_deltas (tenant, priority, from_state, to_state) "
			  "VALUES ($1, $2, $3, $4)", 4, types);
	if (SPI_execute_plan(delta_plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "dispatch: could not write dispatch.task_count_deltas");
}

/*
 * dispatch.task_count(): AFTER INSERT OR UPDATE OR DELETE row trigger of
 * dispatch.tasks.  The UPDATE trigger has a WHEN clause, so it fires only
 * when state, tenant or priority changed.
 */
Datum
dispatch_task_count(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const TaskCols *tc;
	TupleDesc	desc;
	HeapTuple	oldtup = NULL,
				newtup = NULL;
	char	   *ot = NULL,
			   *op = NULL,
			   *os = NULL,
			   *nt = NULL,
			   *np = NULL,
			   *ns = NULL;
	Oid			save_user;
	int			save_sec;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "dispatch_task_count: must be fired AFTER, FOR EACH ROW");
	/* A restored dump: dispatch.finish_restore() recounts once at the end. */
	if (dispatch_restoring)
		return PointerGetDatum(NULL);

	tc = task_cols();
	desc = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		newtup = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		oldtup = td->tg_trigtuple;
	else
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
	}
	if (oldtup)
	{
		os = text_attr(oldtup, desc, tc->state);
		if (vocab_is_live(os))
		{
			ot = text_attr(oldtup, desc, tc->tenant);
			op = text_attr(oldtup, desc, tc->priority);
		}
		else
			os = NULL;
	}
	if (newtup)
	{
		ns = text_attr(newtup, desc, tc->state);
		if (vocab_is_live(ns))
		{
			nt = text_attr(newtup, desc, tc->tenant);
			np = text_attr(newtup, desc, tc->priority);
		}
		else
			ns = NULL;
	}
	if (os == NULL && ns == NULL)
		return PointerGetDatum(NULL);
	/* An update that leaves the count's key alone (the trigger has no WHEN clause). */
	if (os && ns && strcmp(os, ns) == 0 && strcmp(ot, nt) == 0 && strcmp(op, np) == 0)
		return PointerGetDatum(NULL);

	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	if (oldtup == NULL && ns != NULL && strcmp(ns, "claimed") != 0)
		check_max_queued(nt);
	if (os && ns && strcmp(ot, nt) == 0 && strcmp(op, np) == 0)
	{
		if (strcmp(os, ns) != 0)
			append_delta(nt, np, os, ns);
	}
	else
	{
		if (os)
			append_delta(ot, op, os, NULL);
		if (ns)
			append_delta(nt, np, NULL, ns);
	}
	SPI_finish();
	as_owner_end(save_user, save_sec);
	return PointerGetDatum(NULL);
}
