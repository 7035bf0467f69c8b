/*
 * rowcheck.c: the CHECK constraints of dispatch.tasks (tasks_row_check) and
 * dispatch.agents (agents_row_check), each one call of a C function over the
 * columns it checks.
 *
 * Why one call and not a CHECK per rule: PostgreSQL re-reads and re-plans
 * every CHECK constraint of a table at each statement that writes it, about
 * 13,000 instructions per constraint, and a claim+complete writes a task
 * twice and its agent twice: with a constraint per rule that was 37
 * constraints and a fifth of every claim's instructions
 * (bench/callgrind_claim.sh).  The rules themselves are unchanged, and a row
 * that breaks one is refused with SQLSTATE 23514, the constraint's name and
 * the rule it broke.  The row triggers check the same rules first with
 * friendlier messages; these constraints also hold when triggers do not run
 * (session_replication_role = replica).
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "vocab.h"

PG_FUNCTION_INFO_V1(dispatch_task_row_check);
PG_FUNCTION_INFO_V1(dispatch_agent_row_check);

static void
refuse(const char *table, const char *constraint, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("new row for relation \"%s\" violates check constraint \"%s\"", table, constraint),
			 errdetail("%s", detail)));
}

static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* An argument that must be one of a list's words when not NULL. */
static void
check_word(FunctionCallInfo fcinfo, int n, const char *const *list, const char *table,
		   const char *column, const char *allowed)
{
	if (!PG_ARGISNULL(n) && !vocab_has(PG_GETARG_TEXT_PP(n), list))
		refuse(table, psprintf("%s_row_check", table),
			   psprintf("%s \"%s\" is not one of %s.", column, text_arg(fcinfo, n), allowed));
}

/*
 * dispatch.task_row_check(priority, state, sensitivity, est_duration,
 * attempts, max_attempts, on_dependency_failure, reservation, shed_if_busy,
 * sig, skey, agent_id, lease_until)
 */
Datum
dispatch_task_row_check(PG_FUNCTION_ARGS)
{
	char	   *state = text_arg(fcinfo, 1);

	check_word(fcinfo, 0, priorities, "tasks", "priority", "critical, high, normal, low");
	check_word(fcinfo, 1, task_states, "tasks", "state",
			   "scheduled, ready, claimed, done, failed, dead, aborted, cancelled, shed, expired, timeout");
	if (!PG_ARGISNULL(2) && PG_GETARG_INT32(2) < 0)
		refuse("tasks", "tasks_row_check", "sensitivity must be at least 0.");
	if (!PG_ARGISNULL(3))
	{
		Interval	zero = {0};

		if (!DatumGetBool(DirectFunctionCall2(interval_gt, PG_GETARG_DATUM(3),
											  IntervalPGetDatum(&zero))))
			refuse("tasks", "tasks_row_check", "est_duration must be longer than 0.");
	}
	if (!PG_ARGISNULL(4) && PG_GETARG_INT32(4) < 0)
		refuse("tasks", "tasks_row_check", "attempts must be at least 0.");
	if (!PG_ARGISNULL(5) && PG_GETARG_INT32(5) < 1)
		refuse("tasks", "tasks_row_check", "max_attempts must be at least 1.");
	check_word(fcinfo, 6, dependency_policies, "tasks", "on_dependency_failure", "cancel, run");
	check_word(fcinfo, 7, reservations, "tasks", "reservation", "session, assign");
	if (!PG_ARGISNULL(8) && PG_GETARG_BOOL(8) &&
		(PG_ARGISNULL(0) || strcmp(text_arg(fcinfo, 0), "low") != 0))
		refuse("tasks", "tasks_row_check", "Only low tasks may be shed_if_busy.");
	if (state && strcmp(state, "ready") == 0 && (PG_ARGISNULL(9) || PG_ARGISNULL(10)))
		refuse("tasks", "tasks_row_check", "A ready task has its derived sig and skey.");
	if (state && strcmp(state, "claimed") == 0 && (PG_ARGISNULL(11) || PG_ARGISNULL(12)))
		refuse("tasks", "tasks_row_check", "A claimed task has an agent_id and a lease_until.");
	PG_RETURN_BOOL(true);
}

/*
 * dispatch.agent_row_check(agent_id, capacity, running, status, clearance,
 * speed, capabilities)
 */
Datum
dispatch_agent_row_check(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
	{
		text	   *id = PG_GETARG_TEXT_PP(0);
		int			bytes = VARSIZE_ANY_EXHDR(id);

		if (bytes == 0 || pg_mbstrlen_with_len(VARDATA_ANY(id), bytes) > 200)
			refuse("agents", "agents_row_check", "An agent_id has 1 to 200 characters.");
	}
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		refuse("agents", "agents_row_check", "capacity must be at least 0.");
	if (!PG_ARGISNULL(2) && PG_GETARG_INT32(2) < 0)
		refuse("agents", "agents_row_check", "running must be at least 0.");
	check_word(fcinfo, 3, agent_statuses, "agents", "status", "idle, busy, draining, lost, offline");
	if (!PG_ARGISNULL(4) && PG_GETARG_INT32(4) < 0)
		refuse("agents", "agents_row_check", "clearance must be at least 0.");
	if (!PG_ARGISNULL(5) && !(PG_GETARG_FLOAT4(5) > 0))
		refuse("agents", "agents_row_check", "speed must be greater than 0.");
	if (!PG_ARGISNULL(6) && array_contains_nulls(PG_GETARG_ARRAYTYPE_P(6)))
		refuse("agents", "agents_row_check", "capabilities has no NULL element.");
	PG_RETURN_BOOL(true);
}
