/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background worker: one per database named in
 *		dispatch.database_name, running dispatch.tick() every dispatch.naptime.
 *
 * The tick itself is SQL-callable (dispatch.tick()), so hosts that cannot
 * preload the library drive the same code from pg_cron; the worker only adds
 * the loop.  It follows PostgreSQL's worker_spi: standard SIGTERM/SIGHUP
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

static void
run_tick(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "SELECT dispatch.tick()");
	if (extension_present())
	{
		if (SPI_execute("SELECT dispatch.tick()", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "dispatch worker: dispatch.tick() failed");
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
dispatch_worker_main(Datum arg)
{
	MemoryContext tick_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);
	elog(LOG, "dispatch worker started for database \"%s\"", MyBgworkerEntry->bgw_extra);

	tick_cxt = AllocSetContextCreate(TopMemoryContext, "dispatch tick", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 dispatch_naptime, PG_WAIT_EXTENSION);
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
			run_tick();
		}
		PG_CATCH();
		{
			/* Report, roll back, and tick again next time. */
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
