/*-------------------------------------------------------------------------
 *
 * taskcols.c
 *		Attribute numbers of dispatch.tasks columns, by name, cached until
 *		the extension is created again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "utils/lsyscache.h"

#include "dispatch.h"
#include "taskcols.h"

static TaskCols cols;
static uint64 cols_generation = 0;

static AttrNumber
col(Oid relid, const char *name)
{
	AttrNumber	attno = get_attnum(relid, name);

	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of dispatch.tasks does not exist", name),
				 errhint("The dispatch extension is damaged; reinstall it.")));
	return attno;
}

const TaskCols *
task_cols(void)
{
	DispatchCatalog *cat = dispatch_catalog();

	if (cols_generation != cat->generation)
	{
		Oid			t = cat->tasks;

		cols.task_id = col(t, "task_id");
		cols.tenant = col(t, "tenant");
		cols.kind = col(t, "kind");
		cols.priority = col(t, "priority");
		cols.requires = col(t, "requires");
		cols.profile = col(t, "profile");
		cols.sensitivity = col(t, "sensitivity");
		cols.region = col(t, "region");
		cols.deadline = col(t, "deadline");
		cols.est_duration = col(t, "est_duration");
		cols.session_ref = col(t, "session_ref");
		cols.state = col(t, "state");
		cols.agent_id = col(t, "agent_id");
		cols.sig = col(t, "sig");
		cols.skey = col(t, "skey");
		cols.lst = col(t, "lst");
		cols.urgent_at = col(t, "urgent_at");
		cols.cost = col(t, "cost");
		cols.reserved_for = col(t, "reserved_for");
		cols.reserved_until = col(t, "reserved_until");
		cols.ready_at = col(t, "ready_at");
		cols.claimed_at = col(t, "claimed_at");
		cols.payload = col(t, "payload");
		cols.run_at = col(t, "run_at");
		cols.reservation = col(t, "reservation");
		cols.run_id = col(t, "run_id");
		cols.parent_id = col(t, "parent_id");
		cols.depends_on = col(t, "depends_on");
		cols.has_dependents = col(t, "has_dependents");
		cols.schedule_id = col(t, "schedule_id");
		cols.error = col(t, "error");
		cols_generation = cat->generation;
	}
	return &cols;
}
