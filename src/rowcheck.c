/*
 * rowcheck.c: the CHECK constraints of dispatch.tasks (tasks_row_check) and
 * dispatch.agents (agents_row_check), each one call of a C function on the
 * whole new row.
 *
 * Why one call on the whole row, and not a CHECK per rule: PostgreSQL
 * re-reads (stringToNode) and re-plans every CHECK constraint of a table at
 * each statement that writes it, and a claim+complete writes a task twice
 * and its agent twice.  With a constraint per rule that was 37 constraints
 * and a fifth of every claim's instructions; one constraint over the 13
 * columns it checks still cost 29,000 instructions to re-read each time.  A
 * constraint of one whole-row argument is a few nodes to re-read
 * (bench/callgrind_claim.sh).  A row that breaks a rule is refused with
 * SQLSTATE 23514, the constraint's name and the rule it broke.  The row
 * triggers check the same rules first with friendlier messages; these
 * constraints also hold when triggers do not run
 * (session_replication_role = replica).
 *
 * Each check is also callable with the columns as arguments
 * (dispatch.task_row_check(priority, state, ...)), which is how the tests
 * try each rule; both forms run the same code.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "vocab.h"

PG_FUNCTION_INFO_V1(dispatch_task_row_check);
PG_FUNCTION_INFO_V1(dispatch_agent_row_check);
PG_FUNCTION_INFO_V1(dispatch_task_row_check_row);
PG_FUNCTION_INFO_V1(dispatch_agent_row_check_row);

/* The columns each check reads, in the order of the argument form. */
static const char *const task_columns[] = {
	"priority", "state", "sensitivity", "est_duration", "attempts", "max_attempts",
	"on_dependency_failure", "reservation", "shed_if_busy", "sig", "skey", "agent_id",
"lease_until", NULL};
static const char *const agent_columns[] = {
	"agent_id", "capacity", "running", "status", "clearance", "speed", "capabilities", NULL};

#define MAX_COLUMNS 13

static void
refuse(const char *table, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("new row for relation \"%s\" violates check constraint \"%s_row_check\"",
					table, table),
			 errdetail("%s", detail)));
}

/* A column that must be one of a list's words when not NULL. */
static void
check_word(const Datum *v, const bool *n, int i, const char *const *list, const char *table,
		   const char *column, const char *allowed)
{
	if (!n[i] && !vocab_has(DatumGetTextPP(v[i]), list))
		refuse(table, psprintf("%s \"%s\" is not one of %s.", column,
							   TextDatumGetCString(v[i]), allowed));
}

static bool
is_word(const Datum *v, const bool *n, int i, const char *word)
{
	return !n[i] && strcmp(TextDatumGetCString(v[i]), word) == 0;
}

/* The rules of a task row, over task_columns. */
static void
task_rules(const Datum *v, const bool *n)
{
	check_word(v, n, 0, priorities, "tasks", "priority", "critical, high, normal, low");
	check_word(v, n, 1, task_states, "tasks", "state",
			   "scheduled, ready, claimed, done, failed, dead, aborted, cancelled, shed, expired, timeout");
	if (!n[2] && DatumGetInt32(v[2]) < 0)
		refuse("tasks", "sensitivity must be at least 0.");
	if (!n[3])
	{
		Interval	zero = {0};

		if (!DatumGetBool(DirectFunctionCall2(interval_gt, v[3], IntervalPGetDatum(&zero))))
			refuse("tasks", "est_duration must be longer than 0.");
	}
	if (!n[4] && DatumGetInt32(v[4]) < 0)
		refuse("tasks", "attempts must be at least 0.");
	if (!n[5] && DatumGetInt32(v[5]) < 1)
		refuse("tasks", "max_attempts must be at least 1.");
	check_word(v, n, 6, dependency_policies, "tasks", "on_dependency_failure", "cancel, run");
	check_word(v, n, 7, reservations, "tasks", "reservation", "session, assign");
	if (!n[8] && DatumGetBool(v[8]) && !is_word(v, n, 0, "low"))
		refuse("tasks", "Only low tasks may be shed_if_busy.");
	if (is_word(v, n, 1, "ready") && (n[9] || n[10]))
		refuse("tasks", "A ready task has its derived sig and skey.");
	if (is_word(v, n, 1, "claimed") && (n[11] || n[12]))
		refuse("tasks", "A claimed task has an agent_id and a lease_until.");
}

/* The rules of an agent row, over agent_columns. */
static void
agent_rules(const Datum *v, const bool *n)
{
	if (!n[0])
	{
		text	   *id = DatumGetTextPP(v[0]);
		int			bytes = VARSIZE_ANY_EXHDR(id);

		if (bytes == 0 || pg_mbstrlen_with_len(VARDATA_ANY(id), bytes) > 200)
			refuse("agents", "An agent_id has 1 to 200 characters.");
	}
	if (!n[1] && DatumGetInt32(v[1]) < 0)
		refuse("agents", "capacity must be at least 0.");
	if (!n[2] && DatumGetInt32(v[2]) < 0)
		refuse("agents", "running must be at least 0.");
	check_word(v, n, 3, agent_statuses, "agents", "status", "idle, busy, draining, lost, offline");
	if (!n[4] && DatumGetInt32(v[4]) < 0)
		refuse("agents", "clearance must be at least 0.");
	if (!n[5] && !(DatumGetFloat4(v[5]) > 0))
		refuse("agents", "speed must be greater than 0.");
	if (!n[6] && array_contains_nulls(DatumGetArrayTypeP(v[6])))
		refuse("agents", "capabilities has no NULL element.");
}

/* The argument form: the columns as the function's arguments. */
static void
from_args(FunctionCallInfo fcinfo, Datum *v, bool *n)
{
	for (int i = 0; i < PG_NARGS(); i++)
	{
		n[i] = PG_ARGISNULL(i);
		v[i] = n[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
}

/*
 * The whole-row form: the columns picked out of the row by name.  The
 * attribute numbers are looked up once per row type (a new CREATE EXTENSION
 * makes a new type).
 */
typedef struct ColumnMap
{
	Oid			type;
	int			ncols;
	AttrNumber	attno[MAX_COLUMNS];
} ColumnMap;

static void
from_row(FunctionCallInfo fcinfo, const char *const *names, ColumnMap *map, Datum *v, bool *n)
{
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(0);
	Oid			type = HeapTupleHeaderGetTypeId(row);
	TupleDesc	desc = lookup_rowtype_tupdesc(type, HeapTupleHeaderGetTypMod(row));
	HeapTupleData tuple;
	Datum	   *all_v;
	bool	   *all_n;

	if (map->type != type)
	{
		map->ncols = 0;
		for (int i = 0; names[i] != NULL; i++)
		{
			map->attno[i] = InvalidAttrNumber;
			for (int a = 0; a < desc->natts; a++)
				if (!TupleDescAttr(desc, a)->attisdropped &&
					strcmp(NameStr(TupleDescAttr(desc, a)->attname), names[i]) == 0)
					map->attno[i] = a + 1;
			if (map->attno[i] == InvalidAttrNumber)
				elog(ERROR, "dispatch: column \"%s\" is missing from the checked row", names[i]);
			map->ncols++;
		}
		map->type = type;
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;
	/* One pass over the row: the columns read sit behind variable-width ones. */
	all_v = palloc(sizeof(Datum) * desc->natts);
	all_n = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(&tuple, desc, all_v, all_n);
	for (int i = 0; i < map->ncols; i++)
	{
		v[i] = all_v[map->attno[i] - 1];
		n[i] = all_n[map->attno[i] - 1];
	}
	ReleaseTupleDesc(desc);
}

typedef void (*Rules) (const Datum *v, const bool *n);

static Datum
check_args(FunctionCallInfo fcinfo, Rules rules)
{
	Datum		v[MAX_COLUMNS];
	bool		n[MAX_COLUMNS];

	from_args(fcinfo, v, n);
	rules(v, n);
	PG_RETURN_BOOL(true);
}

static Datum
check_row(FunctionCallInfo fcinfo, const char *const *names, ColumnMap *map, Rules rules)
{
	Datum		v[MAX_COLUMNS];
	bool		n[MAX_COLUMNS];

	from_row(fcinfo, names, map, v, n);
	rules(v, n);
	PG_RETURN_BOOL(true);
}

/*
 * dispatch.task_row_check(priority, state, sensitivity, est_duration,
 * attempts, max_attempts, on_dependency_failure, reservation, shed_if_busy,
 * sig, skey, agent_id, lease_until)
 */
Datum
dispatch_task_row_check(PG_FUNCTION_ARGS)
{
	return check_args(fcinfo, task_rules);
}

/* dispatch.task_row_check(dispatch.tasks): the constraint tasks_row_check */
Datum
dispatch_task_row_check_row(PG_FUNCTION_ARGS)
{
	static ColumnMap map = {InvalidOid};

	return check_row(fcinfo, task_columns, &map, task_rules);
}

/*
 * dispatch.agent_row_check(agent_id, capacity, running, status, clearance,
 * speed, capabilities)
 */
Datum
dispatch_agent_row_check(PG_FUNCTION_ARGS)
{
	return check_args(fcinfo, agent_rules);
}

/* dispatch.agent_row_check(dispatch.agents): the constraint agents_row_check */
Datum
dispatch_agent_row_check_row(PG_FUNCTION_ARGS)
{
	static ColumnMap map = {InvalidOid};

	return check_row(fcinfo, agent_columns, &map, agent_rules);
}
