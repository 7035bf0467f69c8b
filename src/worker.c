/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background worker: one per database named in
 *		dispatch.database_name, running dispatch.tick() every dispatch.naptime.
 *
 * The tick itself is SQL-callable (dispatch.tick()), so hosts that cannot
 * preload the library drive the same code from pg_cron; the worker only adds
 * the loop, and sleeps until the next schedule is due when that comes before
 * the next naptime (dispatch.next_due()), so fires are not late by a naptime.  It follows PostgreSQL's worker_spi: standard SIGTERM/SIGHUP
 * handling, WaitLatch with WL_EXIT_ON_PM_DEATH, one transaction per tick.
 *
 * It starts once recovery has finished (so it is idle on a standby and starts
 * on promotion), waits quietly in a database without the extension, and is
 * restarted by the postmaster if it dies.  An error in a tick is reported and
 * the next tick runs as usual: a bad schedule must not stop the fleet.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "dispatch.h"
#include "worker.h"

PGDLLEXPORT void dispatch_worker_main(Datum arg);

#define WORKER_RESTART_SECONDS 5

void
worker_register_all(void)
{
	char	   *raw = pstrdup(dispatch_database_name ? dispatch_database_name : "");
	List	   *names;
	ListCell   *lc;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in dispatch.database_name"),
				 errhint("List database names separated by commas.")));
	foreach(lc, names)
	{
		BackgroundWorker w;
		const char *db = lfirst(lc);

		if (strlen(db) >= BGW_EXTRALEN)
			ereport(FATAL,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("database name \"%s\" in dispatch.database_name is too long", db)));
		MemSet(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = WORKER_RESTART_SECONDS;
		strlcpy(w.bgw_library_name, "dispatch", BGW_MAXLEN);
		strlcpy(w.bgw_function_name, "dispatch_worker_main", BGW_MAXLEN);
		snprintf(w.bgw_name, BGW_MAXLEN, "dispatch worker for %s", db);
		snprintf(w.bgw_type, BGW_MAXLEN, "dispatch worker");
		strlcpy(w.bgw_extra, db, BGW_EXTRALEN);
		w.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&w);
	}
}

/* Is the extension installed here?  Checked each tick: it may come and go. */
static bool
extension_present(void)
{
	bool		present;

	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dispatch'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dispatch worker: could not read pg_extension");
	present = SPI_processed == 1;
	return present;
}

/*
 * Is a dump being restored into this database (ALTER DATABASE ... SET
 * dispatch.restoring = on)?  The worker connected before that was set, so
 * its own session does not have it: read the database's settings each tick.
 * Ticking a half-restored database would fire schedules, requeue leases and
 * make decision-log partitions the dump is about to create.
 */
static bool
database_restoring(void)
{
	bool		restoring = false;

	if (SPI_execute(psprintf("SELECT c FROM pg_catalog.pg_db_role_setting AS s, pg_catalog.unnest(s.setconfig) AS c "
							 "WHERE s.setdatabase = %u AND s.setrole = 0", MyDatabaseId),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch worker: could not read the database's settings");
	for (uint64 i = 0; i < SPI_processed && !restoring; i++)
	{
		char	   *item = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *eq = item ? strchr(item, '=') : NULL;

		if (eq == NULL)
			continue;
		*eq = '\0';
		if (pg_strcasecmp(item, "dispatch.restoring") == 0 && !parse_bool(eq + 1, &restoring))
			restoring = false;
	}
	return restoring;
}

/*
 * How long to sleep after a tick: until the next schedule is due, at most
 * dispatch.naptime.  A fire is then late by the tick's own time, not by up to
 * a whole naptime.  A schedule still due after the tick (the batch was full,
 * or another session held it) is retried soon, but not in a busy loop.
 */
#define OVERDUE_RETRY_MS 100

static long
wait_for_next_due(void)
{
	bool		isnull;
	Datum		d;
	TimestampTz now;
	TimestampTz due;

	/* An extension script older than this library has no next_due(): tick by naptime. */
	if (SPI_execute("SELECT pg_catalog.to_regprocedure('dispatch.next_due()') IS NOT NULL", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1 ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return dispatch_naptime;
	if (SPI_execute("SELECT dispatch.next_due()", true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "dispatch worker: could not read when the next schedule is due");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return dispatch_naptime;
	due = DatumGetTimestampTz(d);
	now = GetCurrentTimestamp();
	if (due <= now)
		return Min(OVERDUE_RETRY_MS, dispatch_naptime);
	/* Rounded up, so the next tick does not come a hair before the fire is due. */
	return Min(TimestampDifferenceMilliseconds(now, due) + 1, (long) dispatch_naptime);
}

/* One tick in its own transaction; returns how long to sleep before the next one (ms). */
static long
run_tick(void)
{
	long		wait = dispatch_naptime;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "SELECT dispatch.tick()");
	if (extension_present() && !database_restoring())
	{
		if (SPI_execute("SELECT dispatch.tick()", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "dispatch worker: dispatch.tick() failed");
		wait = wait_for_next_due();
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
	return wait;
}

void
dispatch_worker_main(Datum arg)
{
	MemoryContext tick_cxt;
	volatile long wait = dispatch_naptime;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);
	elog(LOG, "dispatch worker started for database \"%s\"", MyBgworkerEntry->bgw_extra);

	tick_cxt = AllocSetContextCreate(TopMemoryContext, "dispatch tick", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(tick_cxt);
		PG_TRY();
		{
			wait = run_tick();
		}
		PG_CATCH();
		{
			/* Report, roll back, and tick again after a whole naptime. */
			wait = dispatch_naptime;
			MemoryContextSwitchTo(tick_cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();
		MemoryContextReset(tick_cxt);
	}
}
