/*-------------------------------------------------------------------------
 *
 * claim.c
 *		dispatch_next(agent_id [, max_tasks]): claim the best task this agent
 *		may take now.
 *
 * One claim is:
 *	 1. the agent's row by primary key: who may act as it, its capacity, its
 *		signatures (cached);
 *	 2. the pick (pick.c): index descents only, candidates scored in C;
 *	 3. the winner locked with SKIP LOCKED semantics (table_tuple_lock with
 *		LockWaitSkip): any number of concurrent callers never claim one task
 *		twice, and none waits for another;
 *	 4. the tenant charged in the queue map (refunded on abort), the agent's
 *		running count taken under its row lock (capacity re-checked), the task
 *		updated by ctid, one row written to dispatch.decisions.
 *
 * Nothing here scans or sorts dispatch.tasks; every statement is a
 * primary-key lookup, an update by ctid or an insert.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "claim.h"
#include "decisionlog.h"
#include "dispatch.h"
#include "match.h"
#include "pick.h"
#include "spiplan.h"
#include "taskrow.h"

PG_FUNCTION_INFO_V1(dispatch_next);
PG_FUNCTION_INFO_V1(dispatch_next_n);

/* ---- the agent ---------------------------------------------------------- */

static SPIPlanPtr agent_load_plan = NULL;
static SPIPlanPtr agent_take_plan = NULL;
static SPIPlanPtr agent_seen_plan = NULL;

bool
agent_load(const char *agent_id, AgentRow *a)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	HeapTuple	t;
	TupleDesc	d;
	bool		isnull;
	Datum		v;

	values[0] = CStringGetTextDatum(agent_id);
	keep_plan(&agent_load_plan,
			  "SELECT capabilities, capacity, running, status, traits, clearance, region, "
			  "owner_role::text, last_seen FROM dispatch.agents WHERE agent_id = $1",
			  1, types);
	if (SPI_execute_plan(agent_load_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.agents");
	if (SPI_processed == 0)
		return false;
	t = SPI_tuptable->vals[0];
	d = SPI_tuptable->tupdesc;
	a->agent_id = agent_id;
	a->capabilities = DatumGetArrayTypePCopy(SPI_getbinval(t, d, 1, &isnull));
	a->capacity = DatumGetInt32(SPI_getbinval(t, d, 2, &isnull));
	a->running = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
	a->status = TextDatumGetCString(SPI_getbinval(t, d, 4, &isnull));
	v = SPI_getbinval(t, d, 5, &isnull);
	a->traits = isnull ? NULL : DatumGetArrayTypePCopy(v);
	a->clearance = DatumGetInt32(SPI_getbinval(t, d, 6, &isnull));
	v = SPI_getbinval(t, d, 7, &isnull);
	a->region = isnull ? NULL : TextDatumGetCString(v);
	a->owner_role = TextDatumGetCString(SPI_getbinval(t, d, 8, &isnull));
	a->last_seen = DatumGetTimestampTz(SPI_getbinval(t, d, 9, &isnull));
	return true;
}

/* The agent by id, checked: it exists and the caller may act as it. */
void
agent_load_checked(const char *agent_id, AgentRow *a)
{
	if (!agent_load(agent_id, a))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("agent \"%s\" does not exist", agent_id),
				 errhint("Register it first with dispatch.register_agent('%s', ...).", agent_id)));
	dispatch_check_agent_owner(agent_id, a->owner_role);
}

/* A poll that found nothing still says the agent is alive; write it rarely. */
static void
agent_seen(AgentRow *a, TimestampTz now)
{
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2];

	if (strcmp(a->status, "lost") != 0 &&
		!TimestampDifferenceExceeds(a->last_seen, now, dispatch_agent_timeout * 1000 / 4))
		return;
	values[0] = CStringGetTextDatum(a->agent_id);
	values[1] = TimestampTzGetDatum(now);
	keep_plan(&agent_seen_plan,
			  "UPDATE dispatch.agents SET last_seen = $2, "
			  "status = CASE WHEN status = 'lost' THEN CASE WHEN running > 0 THEN 'busy' ELSE 'idle' END "
			  "ELSE status END WHERE agent_id = $1",
			  2, types);
	if (SPI_execute_plan(agent_seen_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "dispatch: could not update dispatch.agents");
}

/* Take one unit of capacity under the agent's row lock; false if full. */
static bool
agent_take(AgentRow *a, TimestampTz now)
{
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(a->agent_id);
	values[1] = TimestampTzGetDatum(now);
	keep_plan(&agent_take_plan,
			  "UPDATE dispatch.agents SET running = running + 1, last_seen = $2, idle_since = NULL, "
			  "status = CASE WHEN status IN ('idle', 'busy', 'lost') THEN 'busy' ELSE status END "
			  "WHERE agent_id = $1 AND running < capacity AND status NOT IN ('draining', 'offline')",
			  2, types);
	if (SPI_execute_plan(agent_take_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "dispatch: could not update dispatch.agents");
	return SPI_processed == 1;
}

/* ---- the task ------------------------------------------------------------ */

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr session_plan = NULL;
static SPIPlanPtr decision_plan = NULL;

static TM_Result
lock_task(Relation heap, Candidate *c)
{
	TM_FailureData tmfd;
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	TM_Result	r;

	r = table_tuple_lock(heap, &c->tid, GetLatestSnapshot(), slot, GetCurrentCommandId(false),
						 LockTupleNoKeyExclusive, LockWaitSkip, 0, &tmfd);
	ExecDropSingleTupleTableSlot(slot);
	return r;
}

static Datum
update_claimed(Candidate *c, const char *agent_id, TimestampTz now, char **session_ref)
{
	Oid			types[4] = {TIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		isnull;
	Datum		row,
				sref;

	values[0] = PointerGetDatum(&c->tid);
	values[1] = CStringGetTextDatum(agent_id);
	values[2] = TimestampTzGetDatum(now + (int64) dispatch_lease_time * USECS_PER_SEC);
	values[3] = TimestampTzGetDatum(now);
	keep_plan(&claim_plan,
			  "UPDATE dispatch.tasks AS t SET state = 'claimed', agent_id = $2, lease_until = $3, "
			  "attempts = t.attempts + 1, claimed_at = $4, reserved_for = NULL, reserved_until = NULL "
			  "WHERE t.ctid = $1 RETURNING t, t.session_ref",
			  4, types);
	taskrow_claim_begin();
	PG_TRY();
	{
		if (SPI_execute_plan(claim_plan, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING ||
			SPI_processed != 1)
			elog(ERROR, "dispatch: the locked task %lld could not be claimed", (long long) c->task_id);
	}
	PG_FINALLY();
	{
		taskrow_claim_end();
	}
	PG_END_TRY();
	row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	sref = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*session_ref = isnull ? NULL : TextDatumGetCString(sref);
	return row;
}

/* The session now belongs to this agent: its next tasks wait for it. */
static void
remember_session(const char *session_ref, const char *agent_id, TimestampTz now)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(session_ref);
	values[1] = CStringGetTextDatum(agent_id);
	values[2] = TimestampTzGetDatum(now);
	keep_plan(&session_plan,
			  "INSERT INTO dispatch.sessions AS s (session_ref, agent_id, last_served) VALUES ($1, $2, $3) "
			  "ON CONFLICT (session_ref) DO UPDATE SET agent_id = EXCLUDED.agent_id, "
			  "last_served = EXCLUDED.last_served",
			  3, types);
	if (SPI_execute_plan(session_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "dispatch: could not record the session");
}

/* The score's terms, in seconds, as the decision log keeps them. */
char *
candidate_factors(const Candidate *c, double vtime, int probes)
{
	static const char *const lanes[] = {"fair", "urgent", "reserved"};
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"lane\": \"%s\", \"priority\": \"%s\", \"age\": %.3f, "
					 "\"age_credit\": %.3f, \"priority_bonus\": %g, \"urgent\": %g, "
					 "\"affinity\": %g, \"match\": %.3f, ",
					 lanes[c->lane], priority_name(c->prio), c->age, c->age_credit, c->bonus,
					 c->urgent, c->affinity, c->match);
	if (c->match_value >= 0)
		appendStringInfo(&s, "\"match_value\": %.4f, ", c->match_value);
	else
		appendStringInfoString(&s, "\"match_value\": null, ");
	appendStringInfo(&s, "\"fair\": %.3f, \"tenant_vstart\": %.3f, \"virtual_time\": %.3f, "
					 "\"cost\": %.3f, \"probes\": %d}",
					 c->fair, c->tenant_vstart, vtime, c->cost, probes);
	return s.data;
}

void
log_decision(const char *kind, int64 task_id, const char *agent_id, const char *tenant,
			 int32 policy_version, double score, const char *factors, int candidates,
			 const char *reason, TimestampTz at)
{
	Oid			types[10] = {TIMESTAMPTZOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, INT4OID,
	FLOAT8OID, TEXTOID, INT4OID, TEXTOID};
	Datum		values[10];
	char		nulls[10];

	MemSet(nulls, ' ', sizeof(nulls));
	values[0] = TimestampTzGetDatum(at);
	values[1] = CStringGetTextDatum(kind);
	values[2] = Int64GetDatum(task_id);
	plan_text_arg(values, nulls, 3, agent_id);
	plan_text_arg(values, nulls, 4, tenant);
	values[5] = Int32GetDatum(policy_version);
	values[6] = Float8GetDatum(score);
	plan_text_arg(values, nulls, 7, factors);
	values[8] = Int32GetDatum(candidates);
	plan_text_arg(values, nulls, 9, reason);
	keep_plan(&decision_plan,
			  "INSERT INTO dispatch.decisions (at, kind, task_id, agent_id, tenant, policy_version, "
			  "score, factors, candidates, reason, actor) "
			  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, dispatch.caller())",
			  10, types);
	if (SPI_execute_plan(decision_plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "dispatch: could not write the decision log");
}

/* ---- one claim ----------------------------------------------------------- */

#define PICK_ATTEMPTS 3

/*
 * Claim one task for the agent; returns the dispatch.tasks row as a datum in
 * SPI memory, or (Datum) 0 when nothing fits or the agent is full.  SPI must
 * be connected.
 */
static Datum
claim_one(AgentRow *a, const int32 *sigs, int nsigs)
{
	TimestampTz now = GetCurrentTimestamp();
	PickAgent	pa;
	PickResult	res;
	Candidate  *winner = NULL;
	Relation	heap;
	double		vstart,
				vtime;
	char	   *session_ref;
	Datum		row;

	if (strcmp(a->status, "draining") == 0 || a->running >= a->capacity || nsigs == 0)
	{
		agent_seen(a, now);
		return (Datum) 0;
	}

	pa.agent_id = a->agent_id;
	pa.sigs = sigs;
	pa.nsigs = nsigs;
	pa.traits = a->traits;

	heap = table_open(dispatch_catalog()->tasks, RowShareLock);
	for (int attempt = 0; attempt < PICK_ATTEMPTS && winner == NULL; attempt++)
	{
		pick_candidates(&pa, now, &res);
		for (int i = 0; i < res.ncandidates && winner == NULL; i++)
			if (lock_task(heap, &res.candidates[i]) == TM_Ok)
				winner = &res.candidates[i];
		if (res.ncandidates == 0)
			break;
	}
	table_close(heap, NoLock);

	if (winner == NULL)
	{
		qm_flush_observations();
		agent_seen(a, now);
		return (Datum) 0;
	}

	/*
	 * Charge the tenant and take the agent's capacity.  Either can fail to a
	 * race (the tenant reached max_running, the same agent claimed from
	 * another session); the task then stays as it is, locked by us until
	 * this transaction ends.
	 */
	if (!qm_charge_claim(winner->tenant, winner->cost, res.vfloor, &vstart, &vtime))
		return (Datum) 0;
	if (!agent_take(a, now))
	{
		qm_cancel_charge(winner->tenant);
		return (Datum) 0;
	}
	winner->tenant_vstart = vstart;

	row = update_claimed(winner, a->agent_id, now, &session_ref);
	if (session_ref)
		remember_session(session_ref, a->agent_id, now);
	if (decision_wanted("claim", winner->task_id, true))
		log_decision("claim", winner->task_id, a->agent_id, winner->tenant, res.policy->version,
					 winner->score, candidate_factors(winner, res.vtime, res.probes),
					 res.ncandidates, NULL, now);
	a->running++;
	return row;
}

static char *
agent_id_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("agent_id must not be null"),
				 errhint("Call dispatch_next with the id the agent was registered under.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

static void
agent_for_claim(const char *agent_id, AgentRow *a, const int32 **sigs, int *nsigs)
{
	agent_load_checked(agent_id, a);
	if (strcmp(a->status, "offline") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("agent \"%s\" is offline", agent_id),
				 errdetail("It was deregistered."),
				 errhint("Register it again with dispatch.register_agent('%s', ...).", agent_id)));
	*nsigs = agent_signatures(agent_id, a->capabilities, a->clearance, a->region, sigs);
}

/* dispatch.dispatch_next(agent_id text) RETURNS dispatch.tasks */
Datum
dispatch_next(PG_FUNCTION_ARGS)
{
	char	   *agent_id = agent_id_arg(fcinfo);
	AgentRow	a;
	const int32 *sigs;
	int			nsigs;
	Datum		row;

	SPI_connect();
	agent_for_claim(agent_id, &a, &sigs, &nsigs);
	row = claim_one(&a, sigs, nsigs);
	if (row == (Datum) 0)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}

/* dispatch.dispatch_next(agent_id text, max_tasks int) RETURNS SETOF dispatch.tasks */
Datum
dispatch_next_n(PG_FUNCTION_ARGS)
{
	char	   *agent_id = agent_id_arg(fcinfo);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			max_tasks;
	AgentRow	a;
	const int32 *sigs;
	int			nsigs;

	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_tasks must be 1 or more"),
				 errhint("Ask for as many tasks as the agent can take at once.")));
	max_tasks = PG_GETARG_INT32(1);
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	agent_for_claim(agent_id, &a, &sigs, &nsigs);
	for (int i = 0; i < max_tasks; i++)
	{
		Datum		row = claim_one(&a, sigs, nsigs);
		HeapTupleData tup;

		if (row == (Datum) 0)
			break;
		tup.t_data = DatumGetHeapTupleHeader(row);
		tup.t_len = HeapTupleHeaderGetDatumLength(tup.t_data);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tuplestore_puttuple(rsinfo->setResult, &tup);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return (Datum) 0;
}
