/*-------------------------------------------------------------------------
 *
 * decisionlog.c
 *		Which decisions reach dispatch.decisions: dispatch.log_decisions.
 *
 *	 all		every decision (the default);
 *	 sampled	every decision except claims, and the claims of 1 task in 100,
 *				chosen by a fixed hash of the task_id so that a sampled task's
 *				every claim (and retry) is in the log, and an auditor can ask
 *				dispatch.claim_sampled(task_id) whether a claim should be there;
 *	 errors		only decisions about work going wrong: retry, failed, dead,
 *				abort, requeue (lease expired), lost, expire, shed, timeout.
 *
 * An override (an operator's hand) is logged whatever the setting.
 *
 * The claim path asks decision_wanted() before it writes (so an unsampled
 * claim costs no insert); every other writer is filtered by the BEFORE
 * INSERT row trigger on dispatch.decisions, so a decision written by SQL
 * anywhere obeys the same setting.  The setting is PGC_SUSET: an agent
 * cannot hide its own claims from the log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "decisionlog.h"
#include "dispatch.h"

PG_FUNCTION_INFO_V1(dispatch_decision_filter);
PG_FUNCTION_INFO_V1(dispatch_claim_sampled);

#define SAMPLE_ONE_IN 100

/* splitmix64's finaliser: a fixed, well-mixed hash of the task id. */
static bool
claim_sampled(int64 task_id)
{
	uint64		x = (uint64) task_id;

	x ^= x >> 30;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64CONST(0x94d049bb133111eb);
	x ^= x >> 31;
	return x % SAMPLE_ONE_IN == 0;
}

static bool
error_kind(const char *kind)
{
	static const char *const kinds[] = {
		"retry", "failed", "dead", "abort", "requeue", "lost", "expire", "shed", "timeout"
	};

	for (size_t i = 0; i < lengthof(kinds); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return true;
	return false;
}

bool
decision_wanted(const char *kind, int64 task_id, bool has_task)
{
	if (dispatch_log_decisions == LOG_DECISIONS_ALL || strcmp(kind, "override") == 0)
		return true;
	if (dispatch_log_decisions == LOG_DECISIONS_ERRORS)
		return error_kind(kind);
	/* sampled */
	if (strcmp(kind, "claim") != 0)
		return true;
	return has_task && claim_sampled(task_id);
}

/* BEFORE INSERT row trigger of dispatch.decisions: drop what the setting does not want. */
Datum
dispatch_decision_filter(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	char	   *kind;
	int64		task_id = 0;
	bool		has_task;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "dispatch_decision_filter: must be fired BEFORE INSERT, FOR EACH ROW");
	/* A restored dump keeps every decision it has, whatever this server would log. */
	if (dispatch_log_decisions == LOG_DECISIONS_ALL || dispatch_restoring)
		return PointerGetDatum(td->tg_trigtuple);

	desc = RelationGetDescr(td->tg_relation);
	d = heap_getattr(td->tg_trigtuple, SPI_fnumber(desc, "kind"), desc, &isnull);
	if (isnull)
		return PointerGetDatum(td->tg_trigtuple);	/* the NOT NULL constraint says why */
	kind = TextDatumGetCString(d);
	d = heap_getattr(td->tg_trigtuple, SPI_fnumber(desc, "task_id"), desc, &isnull);
	has_task = !isnull;
	if (has_task)
		task_id = DatumGetInt64(d);
	if (!decision_wanted(kind, task_id, has_task))
		return PointerGetDatum(NULL);
	return PointerGetDatum(td->tg_trigtuple);
}

/* dispatch.claim_sampled(task_id bigint) RETURNS boolean */
Datum
dispatch_claim_sampled(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(claim_sampled(PG_GETARG_INT64(0)));
}
