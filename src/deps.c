/*-------------------------------------------------------------------------
 *
 * deps.c
 *		dispatch.task_graph(): when a task that others wait for finishes,
 *		its dependents learn it in the same transaction.
 *
 * The pending edges are in dispatch.task_deps, the count of unfinished
 * dependencies per waiting task in dispatch.task_waits (45_dependencies.sql).
 * When task A finishes:
 *
 *	 done		each dependent's count drops by one; at zero it becomes ready
 *				(or stays scheduled until the run_at it asked for);
 *	 failed		(dead, failed, aborted, cancelled, shed, expired, timeout, or
 *				deleted unfinished) dependents with on_dependency_failure =
 *				'run' are counted down the same way; the others are cancelled
 *				with the reason, together with everything that waits for them
 *				and would be cancelled in turn, and each cancel is logged.
 *
 * Every lookup is by index: task_deps by depends_on, task_waits and tasks by
 * primary key.
 *
 * Concurrency.  A task being given a dependency on A holds A FOR SHARE until
 * it commits (deps_register), and A's finishing update waits for that lock.
 * The statements here run with the latest snapshot, as foreign-key checks
 * do, so they see the edges of every dependent committed before A finished,
 * at any isolation level.  Two dependencies of one task finishing at once
 * count it down one after the other under its task_waits row lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "spiplan.h"
#include "taskcols.h"
#include "vocab.h"

PG_FUNCTION_INFO_V1(dispatch_task_graph);

static SPIPlanPtr edges_plan = NULL;
static SPIPlanPtr countdown_plan = NULL;
static SPIPlanPtr promote_plan = NULL;
static SPIPlanPtr cancel_plan = NULL;
static SPIPlanPtr forget_plan = NULL;

/* Run a kept plan with the latest snapshot (see the file header). */
static int
run_latest(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	return SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot,
								false, true, 0);
}

/* The int8 column of every row SPI returned, as an int8[] datum (NULL if none). */
static Datum
collect_ids(int col, int *n)
{
	Datum	   *ids;
	bool		isnull;

	*n = (int) SPI_processed;
	if (*n == 0)
		return (Datum) 0;
	ids = palloc(sizeof(Datum) * *n);
	for (int i = 0; i < *n; i++)
		ids[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, col, &isnull);
	return PointerGetDatum(construct_array(ids, *n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/* Task task_id finished in state `state`: promote, count down or cancel its dependents. */
static void
resolve(int64 task_id, const char *state)
{
	Oid			t_one[1] = {INT8OID};
	Oid			t_ids[1] = {INT8ARRAYOID};
	Oid			t_count[2] = {INT8ARRAYOID, BOOLOID};
	Oid			t_cancel[4] = {INT8ARRAYOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[4];
	Datum		dependents;
	int			n;
	bool		done = strcmp(state, "done") == 0;

	/* The edges to A are resolved now, whatever becomes of the dependents. */
	values[0] = Int64GetDatum(task_id);
	if (run_latest(keep_plan(&edges_plan,
							 "DELETE FROM dispatch.task_deps WHERE depends_on = $1 RETURNING task_id",
							 1, t_one), values, NULL) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "dispatch: could not read the dependents of task " INT64_FORMAT, task_id);
	dependents = collect_ids(1, &n);
	if (n == 0)
		return;

	/* Count down: every dependent after success, the run-anyway ones after failure. */
	values[0] = dependents;
	values[1] = BoolGetDatum(done);
	if (run_latest(keep_plan(&countdown_plan,
							 "UPDATE dispatch.task_waits AS w SET pending = w.pending - 1 "
							 "FROM dispatch.tasks AS t "
							 "WHERE w.task_id = ANY ($1) AND t.task_id = w.task_id "
							 "AND ($2 OR t.on_dependency_failure = 'run') "
							 "RETURNING w.task_id, w.pending",
							 2, t_count), values, NULL) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "dispatch: could not count down the dependents of task " INT64_FORMAT, task_id);
	{
		Datum	   *zero = palloc(sizeof(Datum) * Max(SPI_processed, 1));
		int			nzero = 0;

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			if (DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)) <= 0)
				zero[nzero++] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		}
		if (nzero > 0)
		{
			values[0] = PointerGetDatum(construct_array(zero, nzero, INT8OID, 8, true, TYPALIGN_DOUBLE));
			if (run_latest(keep_plan(&promote_plan,
									 "WITH fin AS (DELETE FROM dispatch.task_waits AS w "
									 "  WHERE w.task_id = ANY ($1) RETURNING w.task_id, w.run_at) "
									 "UPDATE dispatch.tasks AS t "
									 "SET state = CASE WHEN fin.run_at > pg_catalog.now() THEN 'scheduled' ELSE 'ready' END, "
									 "    run_at = fin.run_at, ready_at = NULL "
									 "FROM fin WHERE t.task_id = fin.task_id AND t.state = 'scheduled'",
									 1, t_ids), values, NULL) != SPI_OK_UPDATE)
				elog(ERROR, "dispatch: could not promote the dependents of task " INT64_FORMAT, task_id);
		}
	}
	if (done)
		return;

	/* Cancel the rest, and what waits for them and would be cancelled in turn. */
	values[0] = dependents;
	values[1] = CStringGetTextDatum(psprintf("dependency " INT64_FORMAT " ended %s", task_id, state));
	values[2] = Int64GetDatum(task_id);
	values[3] = CStringGetTextDatum(state);
	if (run_latest(keep_plan(&cancel_plan,
							 "WITH RECURSIVE doomed(task_id) AS ("
							 "  SELECT t.task_id FROM dispatch.tasks AS t"
							 "   WHERE t.task_id = ANY ($1) AND t.state = 'scheduled'"
							 "     AND t.on_dependency_failure = 'cancel'"
							 "  UNION"
							 "  SELECT d.task_id FROM doomed"
							 "    JOIN dispatch.task_deps AS d ON d.depends_on = doomed.task_id"
							 "    JOIN dispatch.tasks AS t ON t.task_id = d.task_id"
							 "   WHERE t.state = 'scheduled' AND t.on_dependency_failure = 'cancel'), "
							 "gone AS ("
							 "  UPDATE dispatch.tasks AS t SET state = 'cancelled', error = $2,"
							 "         finished_at = pg_catalog.clock_timestamp()"
							 "    FROM doomed WHERE t.task_id = doomed.task_id AND t.state = 'scheduled'"
							 "  RETURNING t.task_id, t.tenant) "
							 "INSERT INTO dispatch.decisions (kind, task_id, tenant, policy_version, reason, factors, actor) "
							 "SELECT 'cancel', g.task_id, g.tenant, dispatch.policy_version(), $2,"
							 "       pg_catalog.jsonb_build_object('dependency', $3, 'state', $4), dispatch.caller() "
							 "  FROM gone AS g",
							 4, t_cancel), values, NULL) != SPI_OK_INSERT)
		elog(ERROR, "dispatch: could not cancel the dependents of task " INT64_FORMAT, task_id);
}

/* A waiting task stopped waiting (promoted, cancelled, deleted): drop what is left. */
static void
forget(int64 task_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(task_id);
	if (SPI_execute_plan(keep_plan(&forget_plan,
								   "WITH w AS (DELETE FROM dispatch.task_waits WHERE task_id = $1) "
								   "DELETE FROM dispatch.task_deps WHERE task_id = $1",
								   1, types), values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "dispatch: could not forget the dependencies of task " INT64_FORMAT, task_id);
}

Datum
dispatch_task_graph(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const TaskCols *tc;
	TupleDesc	desc;
	HeapTuple	old;
	bool		isnull;
	int64		task_id;
	char	   *old_state;
	char	   *new_state;
	bool		has_dependents;
	bool		waited;
	Oid			save_user;
	int			save_sec;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "dispatch_task_graph: must be fired AFTER, FOR EACH ROW");

	tc = task_cols();
	desc = RelationGetDescr(td->tg_relation);
	old = td->tg_trigtuple;
	task_id = DatumGetInt64(heap_getattr(old, tc->task_id, desc, &isnull));
	old_state = TextDatumGetCString(heap_getattr(old, tc->state, desc, &isnull));
	heap_getattr(old, tc->depends_on, desc, &isnull);
	waited = !isnull && strcmp(old_state, "scheduled") == 0;
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		new_state = "deleted";
		has_dependents = DatumGetBool(heap_getattr(old, tc->has_dependents, desc, &isnull));
	}
	else
	{
		HeapTuple	new = td->tg_newtuple;

		new_state = TextDatumGetCString(heap_getattr(new, tc->state, desc, &isnull));
		has_dependents = DatumGetBool(heap_getattr(new, tc->has_dependents, desc, &isnull));
	}
	waited = waited && strcmp(new_state, "scheduled") != 0;
	has_dependents = has_dependents && vocab_is_live(old_state) && !vocab_is_live(new_state);

	/*
	 * The UPDATE trigger has no WHEN clause (PostgreSQL would re-read it at
	 * every statement that changes a task's state, each claim included), so
	 * the test is here, before any SPI.
	 */
	if (!waited && !has_dependents)
		return PointerGetDatum(NULL);

	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	if (waited)
		forget(task_id);
	if (has_dependents)
		resolve(task_id, new_state);
	SPI_finish();
	as_owner_end(save_user, save_sec);

	return PointerGetDatum(NULL);
}
