/*-------------------------------------------------------------------------
 *
 * fanout.c
 *		Runs: every task belongs to one run, the unit a fan-out is observed
 *		as (dispatch.run_tree).  The row trigger asks here for a task's run.
 *
 * A task submitted with a parent joins the parent's run; any other task
 * submitted without a run_id starts a run of its own, so run_tree(run_id)
 * works for every task and a child never needs its parent rewritten.
 *
 * A run of its own gets an id made from the task's id (own_run_id below:
 * UUID version 8, 00000000-0000-80XX-80XX-XXXXXXXXXXXX with the task_id in
 * the X's), so run_tree finds such a task by its primary key, and
 * tasks_run_idx holds only the tasks whose run is another's: children,
 * sweeps' and schedules' tasks.  Most tasks are alone in their run, and a
 * task is updated at least twice after its insert (claimed, finished): each
 * update of an indexed row inserts into every index whose predicate it
 * passes, and on a large queue that insert lands on a random leaf page, a
 * cache miss and, after a checkpoint, a full-page image in the WAL
 * (bench/callgrind_pick.sh with CALLGRIND_CACHE_SIM=1).
 *
 * Shared run ids are time-ordered UUIDs (version 7: 48 bits of Unix
 * milliseconds, then 74 random bits from the backend's PRNG:
 * pg_strong_random costs a getpid() system call per id inside OpenSSL, 4% of
 * a bulk insert).  New ids land at the right edge of tasks_run_idx.
 *
 * The parent's run is cached for the rest of the command: a sweep placing
 * 100,000 children of one parent looks the parent up once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "dispatch.h"
#include "fanout.h"

PG_FUNCTION_INFO_V1(dispatch_new_run_id);
PG_FUNCTION_INFO_V1(dispatch_own_run_id);
PG_FUNCTION_INFO_V1(dispatch_run_root);

Datum
fanout_new_run_id(void)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
	TimestampTz now = GetCurrentTimestamp();
	uint64		ms = (uint64) (now / 1000) +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;

	uint64		r1 = pg_prng_uint64(&pg_global_prng_state);
	uint64		r2 = pg_prng_uint64(&pg_global_prng_state);

	for (int i = 0; i < 6; i++)
		u->data[i] = (unsigned char) (ms >> (8 * (5 - i)));
	/* Unique, not secret: the backend's PRNG (seeded from strong randomness) will do. */
	for (int i = 6; i < 14; i++)
		u->data[i] = (unsigned char) (r1 >> (8 * (i - 6)));
	u->data[14] = (unsigned char) r2;
	u->data[15] = (unsigned char) (r2 >> 8);
	u->data[6] = (u->data[6] & 0x0f) | 0x70;	/* version 7 */
	u->data[8] = (u->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(u);
}

/* dispatch.new_run_id() RETURNS uuid */
Datum
dispatch_new_run_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(fanout_new_run_id());
}

/* The id of the run a task starts for itself. */
Datum
fanout_own_run_id(int64 task_id)
{
	pg_uuid_t  *u = palloc0(sizeof(pg_uuid_t));
	uint64		t = (uint64) task_id;

	u->data[6] = 0x80;			/* version 8: laid out by us */
	u->data[7] = (unsigned char) (t >> 56);
	u->data[8] = 0x80;			/* RFC 4122 variant */
	u->data[9] = (unsigned char) (t >> 48);
	for (int i = 10; i < 16; i++)
		u->data[i] = (unsigned char) (t >> (8 * (15 - i)));
	return UUIDPGetDatum(u);
}

/* The task whose own run this is, or false when the id is not of that form. */
bool
fanout_run_task(const pg_uuid_t *u, int64 *task_id)
{
	uint64		t = 0;

	for (int i = 0; i < 6; i++)
		if (u->data[i] != 0)
			return false;
	if (u->data[6] != 0x80 || u->data[8] != 0x80)
		return false;
	t = ((uint64) u->data[7] << 56) | ((uint64) u->data[9] << 48);
	for (int i = 10; i < 16; i++)
		t |= (uint64) u->data[i] << (8 * (15 - i));
	*task_id = (int64) t;
	return true;
}

/* dispatch.own_run_id(task_id bigint) RETURNS uuid */
Datum
dispatch_own_run_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(fanout_own_run_id(PG_GETARG_INT64(0)));
}

/* dispatch.run_root(run_id uuid) RETURNS bigint: NULL unless a task's own run */
Datum
dispatch_run_root(PG_FUNCTION_ARGS)
{
	int64		task_id;

	if (!fanout_run_task(PG_GETARG_UUID_P(0), &task_id))
		PG_RETURN_NULL();
	PG_RETURN_INT64(task_id);
}

static SPIPlanPtr parent_plan = NULL;
static int64 cached_parent = 0;
static pg_uuid_t cached_run;
static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
static CommandId cached_cid = InvalidCommandId;

Datum
fanout_parent_run_id(int64 parent_id)
{
	CommandId	cid = GetCurrentCommandId(false);
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		found = false;
	bool		isnull = true;
	Datum		run = (Datum) 0;
	Oid			save_user;
	int			save_sec;

	if (cached_lxid == MyProc->lxid && cached_cid == cid && cached_parent == parent_id)
	{
		memcpy(u, &cached_run, sizeof(pg_uuid_t));
		return UUIDPGetDatum(u);
	}

	values[0] = Int64GetDatum(parent_id);
	as_owner_begin(&save_user, &save_sec);
	SPI_connect();
	if (parent_plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT run_id FROM dispatch.tasks WHERE task_id = $1", 1, types);

		if (p == NULL)
			elog(ERROR, "dispatch: could not prepare the parent lookup");
		SPI_keepplan(p);
		parent_plan = p;
	}
	if (SPI_execute_plan(parent_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not look up the parent task");
	if (SPI_processed == 1)
	{
		found = true;
		run = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			memcpy(u, DatumGetUUIDP(run), sizeof(pg_uuid_t));
	}
	SPI_finish();
	as_owner_end(save_user, save_sec);

	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("parent task " INT64_FORMAT " does not exist", parent_id),
				 errhint("parent_id names the task that spawned this one; use a task_id returned by submit().")));
	if (isnull)
	{
		/* A parent from before runs existed: the child starts the run. */
		pfree(u);
		return fanout_new_run_id();
	}
	cached_parent = parent_id;
	cached_lxid = MyProc->lxid;
	cached_cid = cid;
	memcpy(&cached_run, u, sizeof(pg_uuid_t));
	return UUIDPGetDatum(u);
}
