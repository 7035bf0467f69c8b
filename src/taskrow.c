/*-------------------------------------------------------------------------
 *
 * taskrow.c
 *		The BEFORE row trigger of dispatch.tasks: validate the row, derive the
 *		columns the claim path needs, and keep the bookkeeping that follows a
 *		task in and out of the ready queues and the agents' hands.
 *
 * Every write path goes through here (submit(), a plain INSERT, the claim,
 * complete(), the worker, an operator's UPDATE), so a task row is always
 * valid and its derived columns always agree with its fields:
 *
 *	 sig		the interned (requires, sensitivity, region)
 *	 skey		ready_at - bonus(priority): priority and aging as one key
 *	 cost		est_duration, else the policy's default_cost, in seconds
 *	 lst		deadline - cost
 *	 urgent_at	deadline - (1 + urgent_slack) * cost
 *
 * Bookkeeping: entering the ready index or the urgent lane is noted for the
 * queue map (applied at commit); leaving the claimed state gives the agent
 * its capacity back and corrects the tenant's fair-share charge by the real
 * duration.  A claim made by dispatch_next has already charged both, which
 * claim.c signals with taskrow_claim_begin/end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "dispatch.h"
#include "fanout.h"
#include "kinds.h"
#include "match.h"
#include "policy.h"
#include "queuemap.h"
#include "taskcols.h"
#include "taskrow.h"

PG_FUNCTION_INFO_V1(dispatch_task_row);
PG_FUNCTION_INFO_V1(dispatch_task_truncate);

static bool claim_in_progress = false;

void
taskrow_claim_begin(void)
{
	claim_in_progress = true;
}

void
taskrow_claim_end(void)
{
	claim_in_progress = false;
}

/* ---- reading and writing the row ---------------------------------------- */

typedef struct Row Row;
static bool in_state(Row *r, const TaskCols *tc, const char *s);

struct Row
{
	HeapTuple	tup;
	TupleDesc	desc;
	int			nchanged;
	int			cols[16];
	Datum		values[16];
	bool		nulls[16];
};

static Datum
get(Row *r, AttrNumber att, bool *isnull)
{
	for (int i = 0; i < r->nchanged; i++)
		if (r->cols[i] == att)
		{
			*isnull = r->nulls[i];
			return r->values[i];
		}
	return heap_getattr(r->tup, att, r->desc, isnull);
}

static void
set(Row *r, AttrNumber att, Datum value, bool isnull)
{
	for (int i = 0; i < r->nchanged; i++)
		if (r->cols[i] == att)
		{
			r->values[i] = value;
			r->nulls[i] = isnull;
			return;
		}
	Assert(r->nchanged < lengthof(r->cols));
	r->cols[r->nchanged] = att;
	r->values[r->nchanged] = value;
	r->nulls[r->nchanged] = isnull;
	r->nchanged++;
}

static char *
get_cstring(Row *r, AttrNumber att)
{
	bool		isnull;
	Datum		d = get(r, att, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static bool
text_changed(Row *old, Row *new, AttrNumber att)
{
	char	   *a = get_cstring(old, att);
	char	   *b = get_cstring(new, att);

	if (a == NULL || b == NULL)
		return (a == NULL) != (b == NULL);
	return strcmp(a, b) != 0;
}

static bool
datum_changed(Row *old, Row *new, AttrNumber att, bool byval, int len)
{
	bool		n1,
				n2;
	Datum		a = get(old, att, &n1);
	Datum		b = get(new, att, &n2);

	if (n1 || n2)
		return n1 != n2;
	return !datumIsEqual(a, b, byval, len);
}

/* ---- validation --------------------------------------------------------- */

static void
require_text(Row *r, AttrNumber att, const char *what, int maxbytes)
{
	char	   *s = get_cstring(r, att);

	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task %s must not be null", what),
				 errhint("Give every task a %s.", what)));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task %s must not be empty", what),
				 errhint("Give every task a non-empty %s.", what)));
	if ((int) strlen(s) > maxbytes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task %s is longer than %d bytes", what, maxbytes),
				 errhint("Use a short name; put details in the payload.")));
}

static int
check_priority(Row *r, const TaskCols *tc)
{
	char	   *p = get_cstring(r, tc->priority);
	int			idx = p ? priority_index(p) : -1;

	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task priority must not be null"),
				 errhint("The priorities are critical, high, normal and low; leave it out for normal.")));
	if (idx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid priority \"%s\"", p ? p : "(null)"),
				 errhint("The priorities are critical, high, normal and low.")));
	return idx;
}

static void
check_payload(Row *r, AttrNumber att)
{
	bool		isnull;
	Datum		d = get(r, att, &isnull);
	Size		size;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task payload must not be null"),
				 errhint("Use '{}' for an empty payload.")));
	size = toast_raw_datum_size(d) - VARHDRSZ;
	if (size > (Size) dispatch_max_payload_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("task payload is %zu bytes, more than dispatch.max_payload_size (%d bytes)",
						size, dispatch_max_payload_size),
				 errhint("Store large inputs elsewhere and pass a reference, or raise dispatch.max_payload_size.")));
}

static void
check_unit_vector(ArrayType *arr, const char *what)
{
	int			n;
	float4	   *v;

	if (arr == NULL)
		return;
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what),
				 errhint("Give a value between 0 and 1 for every trait dimension.")));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	v = real_array_data(arr);
	for (int i = 0; i < n; i++)
		if (!(v[i] >= 0 && v[i] <= 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s values must be between 0 and 1", what),
					 errdetail("Element %d is %g.", i + 1, (double) v[i]),
					 errhint("Traits and profiles are positions on each dimension, from 0 to 1.")));
}

/* ---- derivation --------------------------------------------------------- */

static double
interval_seconds(Interval *iv)
{
	return (double) iv->time / USECS_PER_SEC +
		(double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
}

static void
derive_signature(Row *r, const TaskCols *tc)
{
	bool		n1,
				n2,
				n3;
	Datum		req = get(r, tc->requires, &n1);
	Datum		sens = get(r, tc->sensitivity, &n2);
	Datum		reg = get(r, tc->region, &n3);
	ArrayType  *canonical;
	int32		sig;

	if (n2)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task sensitivity must not be null"),
				 errhint("Use 0 for work any agent may see.")));
	if (DatumGetInt32(sens) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task sensitivity must be 0 or more"),
				 errhint("Only agents with clearance >= sensitivity may take the task; 0 means any agent.")));
	sig = sig_intern(n1 ? NULL : DatumGetArrayTypeP(req), DatumGetInt32(sens),
					 n3 ? NULL : DatumGetTextPP(reg), &canonical);
	set(r, tc->requires, PointerGetDatum(canonical), false);
	set(r, tc->sig, Int32GetDatum(sig), false);
}

/* cost, lst, urgent_at from est_duration, deadline and the policy. */
static void
derive_deadline(Row *r, const TaskCols *tc, const Policy *pol)
{
	bool		isnull;
	Datum		est = get(r, tc->est_duration, &isnull);
	double		cost = pol->default_cost;
	Datum		deadline;

	if (isnull)
	{
		/* No estimate given: the kind's running average, else the policy's default. */
		double		avg = kind_avg_seconds(get_cstring(r, tc->kind));

		if (avg > 0)
			cost = avg;
	}
	else
	{
		cost = interval_seconds(DatumGetIntervalP(est));
		if (cost <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("est_duration must be positive"),
					 errhint("Give the expected run time, for example '5 minutes'.")));
	}
	set(r, tc->cost, Float4GetDatum((float4) cost), false);

	deadline = get(r, tc->deadline, &isnull);
	if (isnull)
	{
		set(r, tc->lst, (Datum) 0, true);
		set(r, tc->urgent_at, (Datum) 0, true);
	}
	else
	{
		TimestampTz d = DatumGetTimestampTz(deadline);

		set(r, tc->lst, TimestampTzGetDatum(d - (int64) (cost * USECS_PER_SEC)), false);
		set(r, tc->urgent_at,
			TimestampTzGetDatum(d - (int64) ((1 + pol->urgent_slack) * cost * USECS_PER_SEC)), false);
	}
}

static void
derive_skey(Row *r, const TaskCols *tc, const Policy *pol, int prio)
{
	bool		isnull;
	Datum		ready_at = get(r, tc->ready_at, &isnull);
	TimestampTz t = isnull ? GetCurrentTransactionStartTimestamp() : DatumGetTimestampTz(ready_at);

	if (isnull)
		set(r, tc->ready_at, TimestampTzGetDatum(t), false);
	set(r, tc->skey, TimestampTzGetDatum(t - (int64) (policy_bonus(pol, prio) * USECS_PER_SEC)), false);
}

/* ---- session affinity ---------------------------------------------------- */

static SPIPlanPtr session_plan = NULL;

/*
 * A new ready task of a session waits for the agent that served the session
 * last, if that agent is alive and able to take it, for at most the policy's
 * affinity_wait; the tick drops the reservation after that.
 */
static void
reserve_for_session(Row *r, const TaskCols *tc, const Policy *pol)
{
	char	   *session = get_cstring(r, tc->session_ref);
	Oid			types[4] = {TEXTOID, TEXTARRAYOID, INT4OID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;
	Oid			save_user;
	int			save_sec;
	MemoryContext caller_cxt = CurrentMemoryContext;
	char	   *agent = NULL;

	if (session == NULL || pol->affinity_wait <= 0 || !in_state(r, tc, "ready"))
		return;
	values[0] = CStringGetTextDatum(session);
	values[1] = get(r, tc->requires, &isnull);
	values[2] = get(r, tc->sensitivity, &isnull);
	values[3] = get(r, tc->region, &isnull);
	if (isnull)
		nulls[3] = 'n';
	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	if (session_plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT s.agent_id FROM dispatch.sessions AS s "
									"JOIN dispatch.agents AS a ON a.agent_id = s.agent_id "
									"WHERE s.session_ref = $1 AND a.status IN ('idle', 'busy') "
									"AND a.capabilities @> $2 AND a.clearance >= $3 "
									"AND ($4 IS NULL OR a.region = $4)", 4, types);

		if (p == NULL)
			elog(ERROR, "dispatch: could not prepare the session lookup");
		SPI_keepplan(p);
		session_plan = p;
	}
	if (SPI_execute_plan(session_plan, values, nulls, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		agent = MemoryContextStrdup(caller_cxt,
									TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
																	  SPI_tuptable->tupdesc, 1, &isnull)));
	SPI_finish();
	as_owner_end(save_user, save_sec);
	if (agent)
	{
		TimestampTz until = GetCurrentTransactionStartTimestamp() +
			(int64) (pol->affinity_wait * USECS_PER_SEC);

		set(r, tc->reserved_for, CStringGetTextDatum(agent), false);
		set(r, tc->reserved_until, TimestampTzGetDatum(until), false);
		set(r, tc->reservation, CStringGetTextDatum("session"), false);
	}
}

/* ---- bookkeeping -------------------------------------------------------- */

static SPIPlanPtr tenant_find_plan = NULL;
static SPIPlanPtr tenant_plan = NULL;
static SPIPlanPtr agent_plan = NULL;

static SPIPlanPtr
tenant_prepare(SPIPlanPtr *cache, const char *sql)
{
	Oid			types[1] = {TEXTOID};

	if (*cache == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, 1, types);

		if (p == NULL)
			elog(ERROR, "dispatch: could not prepare the tenant lookup");
		SPI_keepplan(p);
		*cache = p;
	}
	return *cache;
}

/*
 * The tenant's row, created with defaults if it does not exist.  Read it
 * first: the insert fires dispatch.tenants' statement trigger, whose cache
 * invalidation empties every session's known_tenants and the cached plans
 * on the table, so attempting it for a tenant that exists made each later
 * task of another tenant pay this lookup (and a re-plan) again.
 */
static void
tenant_config(const char *tenant, double *weight, int32 *max_running, double *vstart)
{
	Datum		values[1];
	bool		isnull;
	Oid			save_user;
	int			save_sec;

	values[0] = CStringGetTextDatum(tenant);
	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	tenant_prepare(&tenant_find_plan,
				   "SELECT weight::float8, coalesce(max_running, -1), vstart "
				   "FROM dispatch.tenants WHERE tenant = $1");
	if (SPI_execute_plan(tenant_find_plan, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.tenants");
	if (SPI_processed < 1)
	{
		tenant_prepare(&tenant_plan,
					   "WITH ins AS (INSERT INTO dispatch.tenants (tenant) VALUES ($1) "
					   "ON CONFLICT DO NOTHING RETURNING weight::float8, -1, vstart) "
					   "SELECT * FROM ins UNION ALL "
					   "SELECT weight::float8, coalesce(max_running, -1), vstart "
					   "FROM dispatch.tenants WHERE tenant = $1");
		if (SPI_execute_plan(tenant_plan, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "dispatch: could not insert into dispatch.tenants");
	}
	if (SPI_processed < 1)
	{
		/* A concurrent insert not yet visible: the defaults are right. */
		*weight = 1.0;
		*max_running = -1;
		*vstart = 0;
	}
	else
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;

		*weight = DatumGetFloat8(SPI_getbinval(t, d, 1, &isnull));
		*max_running = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
		*vstart = DatumGetFloat8(SPI_getbinval(t, d, 3, &isnull));
	}
	SPI_finish();
	as_owner_end(save_user, save_sec);
}

/* The agent gives back (delta -1) or takes (delta +1) one unit of capacity. */
static void
agent_running(const char *agent_id, int delta)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	Oid			save_user;
	int			save_sec;

	if (agent_id == NULL)
		return;
	values[0] = CStringGetTextDatum(agent_id);
	values[1] = Int32GetDatum(delta);
	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	if (agent_plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("UPDATE dispatch.agents SET "
									"running = greatest(running + $2, 0), "
									"status = CASE WHEN status IN ('idle', 'busy') THEN "
									"  CASE WHEN running + $2 > 0 THEN 'busy' ELSE 'idle' END ELSE status END, "
									"idle_since = CASE WHEN running + $2 > 0 THEN NULL "
									"  ELSE coalesce(idle_since, pg_catalog.now()) END "
									"WHERE agent_id = $1", 2, types);

		if (p == NULL)
			elog(ERROR, "dispatch: could not prepare the agent update");
		SPI_keepplan(p);
		agent_plan = p;
	}
	if (SPI_execute_plan(agent_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "dispatch: could not update the agent's running count");
	SPI_finish();
	as_owner_end(save_user, save_sec);
}

static bool
in_ready_index(Row *r, const TaskCols *tc)
{
	char	   *state = get_cstring(r, tc->state);
	bool		isnull;

	get(r, tc->reserved_for, &isnull);
	return state && strcmp(state, "ready") == 0 && isnull;
}

static bool
in_urgent_lane(Row *r, const TaskCols *tc)
{
	char	   *state = get_cstring(r, tc->state);
	bool		isnull;

	get(r, tc->urgent_at, &isnull);
	return state && strcmp(state, "ready") == 0 && !isnull;
}

static bool
in_state(Row *r, const TaskCols *tc, const char *s)
{
	char	   *state = get_cstring(r, tc->state);

	return state && strcmp(state, s) == 0;
}

/*
 * Tenants known to have a row.  Filled as rows are read or inserted, and
 * emptied on abort (our insert may be rolled back) and when dispatch.tenants
 * changes (a relcache invalidation), so a tenant named by a task always gets
 * its row, and the common case costs no query.
 */
static HTAB *known_tenants = NULL;
static bool known_tenants_stale = false;

/* Marks the cache stale only: known_tenants_table() frees it, never a callback mid-lookup. */
static void
known_tenants_reset(void)
{
	known_tenants_stale = true;
}

static void
taskrow_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		known_tenants_reset();
}

static void
taskrow_subxact_callback(SubXactEvent event, SubTransactionId my, SubTransactionId parent, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		known_tenants_reset();
}

static void
tenants_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == dispatch_catalog_cached()->tenants)
		known_tenants_reset();
}

static HTAB *
known_tenants_table(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(taskrow_xact_callback, NULL);
		RegisterSubXactCallback(taskrow_subxact_callback, NULL);
		CacheRegisterRelcacheCallback(tenants_inval, (Datum) 0);
		registered = true;
	}
	if (known_tenants && known_tenants_stale)
	{
		hash_destroy(known_tenants);
		known_tenants = NULL;
	}
	known_tenants_stale = false;
	if (known_tenants == NULL)
	{
		HASHCTL		ctl;

		MemSet(&ctl, 0, sizeof(ctl));
		ctl.keysize = QM_TENANT_LEN;
		ctl.entrysize = QM_TENANT_LEN;
		ctl.hcxt = TopMemoryContext;
		known_tenants = hash_create("dispatch known tenants", 64, &ctl,
									HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return known_tenants;
}

/* Make sure the tenant has a row and the queue map can hold (sig, tenant). */
static void
ensure_queue(int32 sig, const char *tenant)
{
	char		key[QM_TENANT_LEN];
	bool		known;

	MemSet(key, 0, sizeof(key));
	strlcpy(key, tenant, sizeof(key));
	hash_search(known_tenants_table(), key, HASH_FIND, &known);
	if (!known || !qm_knows_queue(sig, tenant))
	{
		double		weight,
					vstart;
		int32		max_running;

		/* Inserting the row invalidates the cache: look it up again after. */
		tenant_config(tenant, &weight, &max_running, &vstart);
		qm_prepare_queue(sig, tenant, weight, max_running, vstart);
		hash_search(known_tenants_table(), key, HASH_ENTER, NULL);
	}
}

/* A task entered the ready index or the urgent lane: tell the queue map. */
static void
note_entries(Row *old, Row *new, const TaskCols *tc)
{
	bool		isnull;
	int32		sig = DatumGetInt32(get(new, tc->sig, &isnull));
	char	   *tenant = get_cstring(new, tc->tenant);
	bool		moved = old && (datum_changed(old, new, tc->sig, true, 4) ||
								text_changed(old, new, tc->tenant));

	bool		ensured = false;

	/* Once per row: a new task, or one that moved to another queue, needs its queue. */
	if (old == NULL || moved)
	{
		ensure_queue(sig, tenant);
		ensured = true;
	}
	/*
	 * A ready task whose skey moved (its priority or ready_at changed) must
	 * lower its queue's head hint too: hints are lower bounds, and the pick
	 * stops at the first queue whose hint is worse than its best task.
	 */
	if (in_ready_index(new, tc) &&
		(old == NULL || moved || !in_ready_index(old, tc) ||
		 datum_changed(old, new, tc->skey, true, 8)))
	{
		if (!ensured)
			ensure_queue(sig, tenant);
		ensured = true;
		qm_note_ready(sig, tenant, DatumGetTimestampTz(get(new, tc->skey, &isnull)));
	}
	if (in_urgent_lane(new, tc) &&
		(old == NULL || moved || !in_urgent_lane(old, tc) ||
		 datum_changed(old, new, tc->urgent_at, true, 8)))
	{
		if (!ensured)
			ensure_queue(sig, tenant);
		qm_note_urgent(sig, DatumGetTimestampTz(get(new, tc->urgent_at, &isnull)));
	}
}

/* The task left an agent's hands (done, failed, requeued, deleted ...). */
static void
note_unclaimed(Row *old, Row *new, const TaskCols *tc)
{
	char	   *tenant = get_cstring(old, tc->tenant);
	bool		isnull;

	qm_note_running(tenant, -1);
	agent_running(get_cstring(old, tc->agent_id), -1);

	/* Correct the fair-share charge: the real duration replaces the estimate. */
	if (new && in_state(new, tc, "done"))
	{
		Datum		claimed = get(old, tc->claimed_at, &isnull);
		Datum		cost;

		if (!isnull)
		{
			double		actual = Max(0.0, (double) (GetCurrentTimestamp() -
													DatumGetTimestampTz(claimed)) / USECS_PER_SEC);

			cost = get(old, tc->cost, &isnull);
			qm_note_charge(tenant, actual - (isnull ? 0 : DatumGetFloat4(cost)));
		}
	}
}

/* ---- fan-out (doc/fanout.md) ------------------------------------------- */

/* A task with dependencies waits for them; deps_register() does the rest. */
static bool
has_dependencies(Row *r, const TaskCols *tc)
{
	bool		isnull;
	Datum		d = get(r, tc->depends_on, &isnull);
	ArrayType  *a;

	if (isnull)
		return false;
	a = DatumGetArrayTypeP(d);
	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) > 0;
}

/* Every task belongs to a run: its parent's, else a new one. */
static void
derive_run_id(Row *r, const TaskCols *tc)
{
	bool		isnull;
	Datum		parent;

	get(r, tc->run_id, &isnull);
	if (!isnull)
		return;
	parent = get(r, tc->parent_id, &isnull);
	if (!isnull)
		set(r, tc->run_id, fanout_parent_run_id(DatumGetInt64(parent)), false);
	else
		set(r, tc->run_id, fanout_own_run_id(DatumGetInt64(get(r, tc->task_id, &isnull))), false);
}

static void
note_event(Row *r, const TaskCols *tc)
{
	bool		isnull,
				run_null,
				sig_null;
	int64		task_id = DatumGetInt64(get(r, tc->task_id, &isnull));
	Datum		run = get(r, tc->run_id, &run_null);
	Datum		sig = get(r, tc->sig, &sig_null);

	events_note_task(task_id, get_cstring(r, tc->state), get_cstring(r, tc->tenant),
					 run_null ? NULL : DatumGetUUIDP(run), sig_null ? 0 : DatumGetInt32(sig),
					 get_cstring(r, tc->reserved_for));
}

/* ---- the trigger -------------------------------------------------------- */

Datum
dispatch_task_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const TaskCols *tc;
	const Policy *pol;
	Row			new,
				old;
	bool		isnull;
	bool		derive_all;
	HeapTuple	result;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "dispatch_task_row: must be fired BEFORE, FOR EACH ROW");

	/*
	 * A restored dump: its rows were valid and derived when they were
	 * dumped, and their bookkeeping (queue map, agents' running counts,
	 * events) is redone once by dispatch.finish_restore().
	 */
	if (dispatch_restoring)
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple);

	tc = task_cols();
	MemSet(&old, 0, sizeof(Row));
	MemSet(&new, 0, sizeof(Row));
	old.desc = new.desc = RelationGetDescr(td->tg_relation);

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		old.tup = td->tg_trigtuple;
		if (in_state(&old, tc, "claimed"))
			note_unclaimed(&old, NULL, tc);
		return PointerGetDatum(td->tg_trigtuple);
	}

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		new.tup = td->tg_trigtuple;
	else
	{
		old.tup = td->tg_trigtuple;
		new.tup = td->tg_newtuple;

		/*
		 * The claim path's own update (ready -> claimed, fields untouched):
		 * it charged the tenant and the agent itself.  Nothing to derive.
		 */
		if (claim_in_progress && in_state(&old, tc, "ready") && in_state(&new, tc, "claimed"))
			return PointerGetDatum(new.tup);
	}

	pol = policy_active();
	derive_all = old.tup == NULL;

	require_text(&new, tc->kind, "kind", 200);
	require_text(&new, tc->tenant, "tenant", 200);

	if (derive_all)
	{
		TimestampTz now = GetCurrentTransactionStartTimestamp();
		Datum		run_at = get(&new, tc->run_at, &isnull);
		char	   *state = get_cstring(&new, tc->state);

		if (state && strcmp(state, "ready") != 0 && strcmp(state, "scheduled") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a new task must be ready or scheduled, not %s", state),
					 errhint("Leave state out: a task with a future run_at is scheduled, any other is ready. "
							 "To restore a dump, set dispatch.restoring first (doc/operations.md, Backup).")));
		if (!isnull && DatumGetTimestampTz(run_at) > now)
			set(&new, tc->state, CStringGetTextDatum("scheduled"), false);
		else if (state == NULL)
			set(&new, tc->state, CStringGetTextDatum("ready"), false);
		if (has_dependencies(&new, tc))
			set(&new, tc->state, CStringGetTextDatum("scheduled"), false);
		derive_run_id(&new, tc);
	}
	if (derive_all || datum_changed(&old, &new, tc->payload, false, -1))
		check_payload(&new, tc->payload);
	if (derive_all || datum_changed(&old, &new, tc->profile, false, -1))
	{
		Datum		profile = get(&new, tc->profile, &isnull);

		check_unit_vector(isnull ? NULL : DatumGetArrayTypeP(profile), "profile");
	}

	/* Signature: on insert, or when what it is made of changes. */
	if (derive_all || datum_changed(&old, &new, tc->requires, false, -1) ||
		datum_changed(&old, &new, tc->sensitivity, true, 4) ||
		text_changed(&old, &new, tc->region))
		derive_signature(&new, tc);

	/* Deadline terms: on insert, or when their inputs change. */
	if (derive_all || datum_changed(&old, &new, tc->est_duration, false, 16) ||
		datum_changed(&old, &new, tc->deadline, true, 8))
		derive_deadline(&new, tc, pol);

	/* skey: when the task becomes ready, or its priority or ready_at changes while ready. */
	{
		int			prio = check_priority(&new, tc);
		bool		becomes_ready = in_state(&new, tc, "ready") &&
			(derive_all || !in_state(&old, tc, "ready"));

		if (becomes_ready ||
			(in_state(&new, tc, "ready") &&
			 (text_changed(&old, &new, tc->priority) ||
			  datum_changed(&old, &new, tc->ready_at, true, 8))))
			derive_skey(&new, tc, pol, prio);
		else if (derive_all)
			set(&new, tc->skey, (Datum) 0, true);
	}

	if (derive_all)
		reserve_for_session(&new, tc, pol);

	result = new.nchanged > 0 ?
		heap_modify_tuple_by_cols(new.tup, new.desc, new.nchanged, new.cols, new.values, new.nulls) :
		new.tup;
	new.tup = result;
	new.nchanged = 0;

	note_entries(old.tup ? &old : NULL, &new, tc);
	if (old.tup && in_state(&old, tc, "claimed") && !in_state(&new, tc, "claimed"))
		note_unclaimed(&old, &new, tc);
	else if (old.tup && !in_state(&old, tc, "claimed") && in_state(&new, tc, "claimed"))
	{
		/* Claimed other than by dispatch_next (an override): take capacity. */
		qm_note_running(get_cstring(&new, tc->tenant), +1);
		agent_running(get_cstring(&new, tc->agent_id), +1);
	}
	if (old.tup == NULL || text_changed(&old, &new, tc->state))
		note_event(&new, tc);

	return PointerGetDatum(result);
}

/* AFTER TRUNCATE: the queue map no longer matches; rebuild it after commit. */
Datum
dispatch_task_truncate(PG_FUNCTION_ARGS)
{
	qm_note_rebuild();
	return PointerGetDatum(NULL);
}
