/*-------------------------------------------------------------------------
 *
 * schedfinish.c
 *		The AFTER UPDATE row trigger that counts a finished task of a schedule
 *		on its fire (dispatch.schedule_task_finished), with its test in C.
 *
 * Most tasks come from no schedule, and every claim and every completion
 * fires this trigger.  The test that skips them lives here rather than in a
 * WHEN clause because PostgreSQL re-reads a trigger's WHEN clause at every
 * statement that fires it, which cost each claim and each completion about
 * 36,000 instructions (bench/callgrind_claim.sh).  Only a task of a schedule
 * that just left a live state reaches the SQL that counts it,
 * dispatch.schedule_fire_task_finished() (sql/install/65_fire.sql), run as
 * the extension's owner.
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

#include "dispatch.h"
#include "spiplan.h"
#include "taskcols.h"
#include "vocab.h"

PG_FUNCTION_INFO_V1(dispatch_schedule_task_finished);

static SPIPlanPtr finished_plan = NULL;

Datum
dispatch_schedule_task_finished(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const TaskCols *tc;
	TupleDesc	desc;
	HeapTuple	old,
				new;
	bool		isnull;
	Oid			types[5] = {INT8OID, INT8OID, UUIDOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			save_user;
	int			save_sec;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		elog(ERROR, "dispatch_schedule_task_finished: must be fired AFTER UPDATE, FOR EACH ROW");

	tc = task_cols();
	desc = RelationGetDescr(td->tg_relation);
	old = td->tg_trigtuple;
	new = td->tg_newtuple;
	values[1] = heap_getattr(new, tc->schedule_id, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	values[2] = heap_getattr(new, tc->run_id, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	values[3] = heap_getattr(new, tc->state, desc, &isnull);
	if (vocab_is_live(TextDatumGetCString(values[3])) ||
		!vocab_is_live(TextDatumGetCString(heap_getattr(old, tc->state, desc, &isnull))))
		return PointerGetDatum(NULL);
	values[0] = heap_getattr(new, tc->task_id, desc, &isnull);
	values[4] = heap_getattr(new, tc->error, desc, &isnull);
	if (isnull)
		nulls[4] = 'n';

	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	keep_plan(&finished_plan,
			  "SELECT dispatch.schedule_fire_task_finished($1, $2, $3, $4, $5)", 5, types);
	if (SPI_execute_plan(finished_plan, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not count task " INT64_FORMAT " on its fire",
			 DatumGetInt64(values[0]));
	SPI_finish();
	as_owner_end(save_user, save_sec);
	return PointerGetDatum(NULL);
}
