/*-------------------------------------------------------------------------
 *
 * notifier.c
 *		The notifier: one background worker per database in
 *		dispatch.database_name that sends the NOTIFYs of task events on
 *		behalf of the transactions that caused them.
 *
 * Why.  PostgreSQL serializes the commits of all transactions that NOTIFY:
 * PreCommit_Notify takes a cluster-wide lock and holds it until the commit
 * record is flushed, so no two notifying transactions share an fsync.  With
 * a NOTIFY in every submit() and complete(), eight clients commit one at a
 * time (bench/placement.sh: submit() from 8 clients fell from ~860/s to
 * ~350/s, claim+complete to about half).  Here a committing transaction only
 * copies its messages into this database's ring in shared memory and sets
 * the notifier's latch; the notifier sends them, many transactions' worth
 * in one transaction of its own, a few milliseconds later.  It also chooses
 * the agents to wake (events.c), so the submitting transaction does not run
 * that query either.
 *
 * Messages are appended at XACT_EVENT_COMMIT, after the commit is durable,
 * so nothing rolled back is ever announced.  A full ring drops the batch and
 * counts it; the notifier then sends {"dropped": n} on dispatch_events so
 * listeners know to look at the tables.  Without a running notifier (library
 * not preloaded, database not listed, dispatch.notify_deferred off) events.c
 * sends directly from the committing transaction instead.
 *
 * Records in the ring: a uint32 length (of what follows), a kind byte, and
 *	 'E'  the payload of a dispatch_events message;
 *	 'W'  int32 signature, int32 count: newly ready tasks of a signature;
 *	 'A'  int32 count, agent id: newly ready tasks reserved for an agent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "dispatch.h"
#include "fanout.h"

PGDLLEXPORT void dispatch_notifier_main(Datum arg);

#define RING_BYTES (256 * 1024)

typedef struct NotifierSlot
{
	Oid			dbid;			/* database served, InvalidOid when free */
	int			pid;			/* the notifier's pid, 0 when not running */
	Latch	   *latch;
	uint64		head;			/* bytes ever written */
	uint64		tail;			/* bytes ever read */
	uint64		dropped;		/* batches that did not fit */
	char		ring[RING_BYTES];
} NotifierSlot;

static NotifierSlot *slots = NULL;	/* dispatch_max_databases of them */
static LWLockPadded *locks = NULL;	/* [0] directory, [i + 1] slot i */
static int	my_slot = -1;		/* this backend's database's slot, when known */

bool		dispatch_notify_deferred = true;

void
notifier_shmem_request(void)
{
	RequestAddinShmemSpace(mul_size(dispatch_max_databases, sizeof(NotifierSlot)));
	RequestNamedLWLockTranche("dispatch notifier", dispatch_max_databases + 1);
}

void
notifier_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("dispatch notifier slots",
							mul_size(dispatch_max_databases, sizeof(NotifierSlot)), &found);
	if (!found)
		for (int i = 0; i < dispatch_max_databases; i++)
		{
			slots[i].dbid = InvalidOid;
			slots[i].pid = 0;
			slots[i].latch = NULL;
			slots[i].head = slots[i].tail = slots[i].dropped = 0;
		}
	locks = GetNamedLWLockTranche("dispatch notifier");
	LWLockRelease(AddinShmemInitLock);
}

void
notifier_register_all(void)
{
	char	   *raw = pstrdup(dispatch_database_name ? dispatch_database_name : "");
	List	   *names;
	ListCell   *lc;

	if (!SplitIdentifierString(raw, ',', &names))
		return;					/* worker.c reports the bad list */
	foreach(lc, names)
	{
		BackgroundWorker w;
		const char *db = lfirst(lc);

		if (strlen(db) >= BGW_EXTRALEN)
			continue;
		MemSet(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = 5;
		strlcpy(w.bgw_library_name, "dispatch", BGW_MAXLEN);
		strlcpy(w.bgw_function_name, "dispatch_notifier_main", BGW_MAXLEN);
		snprintf(w.bgw_name, BGW_MAXLEN, "dispatch notifier for %s", db);
		snprintf(w.bgw_type, BGW_MAXLEN, "dispatch notifier");
		strlcpy(w.bgw_extra, db, BGW_EXTRALEN);
		RegisterBackgroundWorker(&w);
	}
}

/* ---- the committing backend's side -------------------------------------- */

/* Is a notifier serving this database now?  (Read without a lock: a hint.) */
bool
notifier_available(void)
{
	if (!dispatch_notify_deferred || !dispatch_preloaded || slots == NULL)
		return false;
	if (my_slot < 0 || slots[my_slot].dbid != MyDatabaseId)
	{
		my_slot = -1;
		for (int i = 0; i < dispatch_max_databases; i++)
			if (slots[i].dbid == MyDatabaseId)
				my_slot = i;
	}
	return my_slot >= 0 && slots[my_slot].pid != 0;
}

/*
 * Append a batch of records (called at commit: must not fail).  False when it
 * did not fit and was dropped (and counted).
 */
bool
notifier_push(const char *buf, Size len)
{
	NotifierSlot *s;
	LWLock	   *lock;
	Latch	   *latch;
	bool		fits;

	if (my_slot < 0 || len == 0)
		return false;
	s = &slots[my_slot];
	lock = &locks[my_slot + 1].lock;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	fits = s->dbid == MyDatabaseId && len <= RING_BYTES - (s->head - s->tail);
	if (fits)
	{
		Size		at = s->head % RING_BYTES;
		Size		first = Min(len, RING_BYTES - at);

		memcpy(s->ring + at, buf, first);
		memcpy(s->ring, buf + first, len - first);
		s->head += len;
	}
	else
		s->dropped++;
	latch = s->latch;
	LWLockRelease(lock);
	if (latch)
		SetLatch(latch);
	return fits;
}

/* ---- the notifier ------------------------------------------------------- */

static void
release_slot(int code, Datum arg)
{
	int			i = DatumGetInt32(arg);

	LWLockAcquire(&locks[i + 1].lock, LW_EXCLUSIVE);
	slots[i].pid = 0;
	slots[i].latch = NULL;
	LWLockRelease(&locks[i + 1].lock);
}

static int
claim_slot(void)
{
	int			chosen = -1;

	LWLockAcquire(&locks[0].lock, LW_EXCLUSIVE);
	for (int i = 0; i < dispatch_max_databases && chosen < 0; i++)
		if (slots[i].dbid == MyDatabaseId)
			chosen = i;
	for (int i = 0; i < dispatch_max_databases && chosen < 0; i++)
		if (!OidIsValid(slots[i].dbid) || slots[i].pid == 0)
			chosen = i;
	if (chosen >= 0)
	{
		LWLockAcquire(&locks[chosen + 1].lock, LW_EXCLUSIVE);
		if (slots[chosen].dbid != MyDatabaseId)
		{
			slots[chosen].dbid = MyDatabaseId;
			slots[chosen].head = slots[chosen].tail = slots[chosen].dropped = 0;
		}
		slots[chosen].pid = MyProcPid;
		slots[chosen].latch = MyLatch;
		LWLockRelease(&locks[chosen + 1].lock);
	}
	LWLockRelease(&locks[0].lock);
	return chosen;
}

/* Send what the ring holds, in one transaction. */
static void
drain(int i)
{
	NotifierSlot *s = &slots[i];
	LWLock	   *lock = &locks[i + 1].lock;
	char	   *buf;
	Size		len;
	uint64		dropped;
	Size		pos = 0;
	int			nwake = 0;
	int			cap;
	int32	   *sigs;
	int64	   *counts;
	const char **agents;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	len = s->head - s->tail;
	dropped = s->dropped;
	if (len == 0 && dropped == 0)
	{
		LWLockRelease(lock);
		return;
	}
	buf = palloc(len + 1);
	{
		Size		at = s->tail % RING_BYTES;
		Size		first = Min(len, RING_BYTES - at);

		memcpy(buf, s->ring + at, first);
		memcpy(buf + first, s->ring, len - first);
	}
	s->tail = s->head;
	s->dropped = 0;
	LWLockRelease(lock);

	cap = len / 9 + 1;
	sigs = palloc(sizeof(int32) * cap);
	counts = palloc(sizeof(int64) * cap);
	agents = palloc(sizeof(char *) * cap);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "dispatch notifier: sending task events");
	while (pos + 5 <= len)
	{
		uint32		n;
		char		kind;
		char	   *body;

		memcpy(&n, buf + pos, 4);
		kind = buf[pos + 4];
		body = buf + pos + 5;
		if (pos + 5 + n > len)
			break;
		if (kind == 'E')
			Async_Notify("dispatch_events", pnstrdup(body, n));
		else if (kind == 'W' && n == 8)
		{
			int32		sig,
						count;

			memcpy(&sig, body, 4);
			memcpy(&count, body + 4, 4);
			sigs[nwake] = sig;
			counts[nwake] = count;
			agents[nwake++] = NULL;
		}
		else if (kind == 'A' && n > 4)
		{
			int32		count;

			memcpy(&count, body, 4);
			sigs[nwake] = 0;
			counts[nwake] = count;
			agents[nwake++] = pnstrdup(body + 4, n - 4);
		}
		pos += 5 + n;
	}
	if (dropped > 0)
		Async_Notify("dispatch_events",
					 psprintf("{\"dropped\":" UINT64_FORMAT "}", dropped));
	if (nwake > 0)
		events_send_wakes(nwake, sigs, counts, agents);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
dispatch_notifier_main(Datum arg)
{
	MemoryContext cxt;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);

	i = claim_slot();
	if (i < 0)
	{
		ereport(LOG,
				(errmsg("dispatch notifier: no slot left for database \"%s\"; its backends notify directly",
						MyBgworkerEntry->bgw_extra),
				 errhint("Raise dispatch.max_databases (needs a restart).")));
		proc_exit(0);
	}
	on_shmem_exit(release_slot, Int32GetDatum(i));

	/*
	 * A transaction that sends NOTIFY takes an xid, so it writes a commit
	 * record, and with synchronous_commit on it would flush the WAL and wait:
	 * one more WAL flush per batch, contending with the flushes of the
	 * committing clients.  Notifications are not durable anyway (a crash
	 * loses those not yet delivered), so this worker does not wait.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	cxt = AllocSetContextCreate(TopMemoryContext, "dispatch notifier", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			drain(i);
		}
		PG_CATCH();
		{
			/* Lose this batch, keep serving. */
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();
		MemoryContextReset(cxt);
	}
}
