/*-------------------------------------------------------------------------
 *
 * queuemap_build.c
 *		Filling a queue map from the tables: at first use, after a reset, on
 *		request, and (for a private map) when it is older than
 *		dispatch.local_refresh.
 *
 * The ready index is walked as a loose index scan: one descent per
 * (signature, tenant) queue that holds work, never a pass over the tasks.
 * Running counts come from the claimed index (bounded by the fleet's
 * capacity), urgent hints from one descent of the urgent index per signature.
 *
 * A build only raises bits and lowers head hints, so it can run while other
 * sessions commit (doc/design.md §5): anything it misses was committed after
 * its snapshot, and such a commit raised the bit itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "queuemap_int.h"
#include "taskcols.h"

typedef struct TenantConfig
{
	char		name[QM_TENANT_LEN];	/* key */
	double		weight;
	int32		max_running;
	double		vstart;
	int32		running;		/* claimed tasks found */
} TenantConfig;

typedef struct FoundQueue
{
	int32		sig;
	char		tenant[QM_TENANT_LEN];
	TimestampTz head;
} FoundQueue;

/*
 * Both loaders keep their results in `cxt`, the build's context: after
 * SPI_execute the current context is SPI's procedure context, which
 * SPI_finish frees before the results are used.
 */
static HTAB *
load_tenants(MemoryContext cxt)
{
	HASHCTL		ctl;
	HTAB	   *h;

	MemSet(&ctl, 0, sizeof(ctl));
	ctl.keysize = QM_TENANT_LEN;
	ctl.entrysize = sizeof(TenantConfig);
	ctl.hcxt = cxt;
	h = hash_create("dispatch tenant configs", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	if (SPI_execute("SELECT tenant, weight::float8, coalesce(max_running, -1), vstart "
					"FROM dispatch.tenants", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.tenants");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char		key[QM_TENANT_LEN];
		TenantConfig *tc;

		MemSet(key, 0, sizeof(key));
		strlcpy(key, TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull)), QM_TENANT_LEN);
		tc = hash_search(h, key, HASH_ENTER, NULL);
		tc->weight = DatumGetFloat8(SPI_getbinval(tup, desc, 2, &isnull));
		tc->max_running = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		tc->vstart = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		tc->running = 0;
	}
	return h;
}

static int32 *
load_signatures(MemoryContext cxt, int *n)
{
	int32	   *sigs;

	if (SPI_execute("SELECT sig_id FROM dispatch.signatures ORDER BY sig_id", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.signatures");
	*n = (int) SPI_processed;
	sigs = MemoryContextAlloc(cxt, sizeof(int32) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		bool		isnull;

		sigs[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	return sigs;
}

static TenantConfig *
config_for(HTAB *configs, const char *tenant)
{
	char		key[QM_TENANT_LEN];
	bool		found;
	TenantConfig *tc;

	MemSet(key, 0, sizeof(key));
	strlcpy(key, tenant, QM_TENANT_LEN);
	tc = hash_search(configs, key, HASH_ENTER, &found);
	if (!found)
	{
		tc->weight = 1.0;
		tc->max_running = -1;
		tc->vstart = 0;
		tc->running = 0;
	}
	return tc;
}

/*
 * Walk the ready index: for each signature, jump from tenant to tenant
 * (sig = s AND tenant > last), taking the first visible entry of each.
 * index_rescan needs the key count the scan was opened with: always two.
 */
static List *
find_queues(Relation heap, Relation idx, Snapshot snap, const int32 *sigs, int nsigs)
{
	const TaskCols *tc = task_cols();
	List	   *found = NIL;
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan = index_beginscan(heap, idx, snap, 2, 0);

	for (int i = 0; i < nsigs; i++)
	{
		/* Tenants are never empty, so tenant > '' starts at the first. */
		char	   *last = "";

		for (;;)
		{
			ScanKeyData keys[2];
			FoundQueue *fq;
			bool		isnull;

			CHECK_FOR_INTERRUPTS();
			ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(sigs[i]));
			ScanKeyEntryInitialize(&keys[1], 0, 2, BTGreaterStrategyNumber, InvalidOid,
								   idx->rd_indcollation[1], F_TEXT_GT,
								   CStringGetTextDatum(last));
			index_rescan(scan, keys, 2, NULL, 0);
			if (!index_getnext_slot(scan, ForwardScanDirection, slot))
				break;
			fq = palloc(sizeof(FoundQueue));
			fq->sig = sigs[i];
			strlcpy(fq->tenant, TextDatumGetCString(slot_getattr(slot, tc->tenant, &isnull)),
					QM_TENANT_LEN);
			fq->head = DatumGetTimestampTz(slot_getattr(slot, tc->skey, &isnull));
			found = lappend(found, fq);
			last = fq->tenant;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return found;
}

/* Claimed tasks per tenant, from the claimed index (the fleet's in-flight work). */
static void
count_running(Relation heap, Relation idx, Snapshot snap, HTAB *configs)
{
	const TaskCols *tc = task_cols();
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan = index_beginscan(heap, idx, snap, 0, 0);

	index_rescan(scan, NULL, 0, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		config_for(configs, TextDatumGetCString(slot_getattr(slot, tc->tenant, &isnull)))->running++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

/* The smallest urgent_at of each signature's urgent lane, or DT_NOEND. */
static TimestampTz *
find_urgent(Relation heap, Relation idx, Snapshot snap, const int32 *sigs, int nsigs)
{
	const TaskCols *tc = task_cols();
	TimestampTz *first = palloc(sizeof(TimestampTz) * Max(nsigs, 1));
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan = index_beginscan(heap, idx, snap, 1, 0);

	for (int i = 0; i < nsigs; i++)
	{
		ScanKeyData key;
		bool		isnull;

		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(sigs[i]));
		index_rescan(scan, &key, 1, NULL, 0);
		first[i] = DT_NOEND;
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
			first[i] = DatumGetTimestampTz(slot_getattr(slot, tc->urgent_at, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return first;
}

static void
merge(QmMap *map, bool initial, List *queues, HTAB *configs, const int32 *sigs,
	  const TimestampTz *urgent, int nsigs)
{
	ListCell   *lc;
	HASH_SEQ_STATUS st;
	TenantConfig *tc;

	foreach(lc, queues)
	{
		FoundQueue *fq = lfirst(lc);
		TenantConfig *cfg = config_for(configs, fq->tenant);
		int			slot = qm_ensure_slot(map, fq->tenant, cfg->weight, cfg->max_running, cfg->vstart);
		int			sigidx = qm_ensure_sig(map, fq->sig);

		qm_raise(map, sigidx, slot, qm_ensure_pair(map, sigidx, slot), fq->head);
	}

	/* Running counts are recomputed outright; tenants with work in flight need a slot. */
	hash_seq_init(&st, configs);
	while ((tc = hash_seq_search(&st)) != NULL)
	{
		int			slot = qm_find_slot(map, tc->name);

		if (slot < 0 && tc->running > 0)
			slot = qm_ensure_slot(map, tc->name, tc->weight, tc->max_running, tc->vstart);
		if (slot >= 0)
		{
			map->slots[slot].running = tc->running;
			map->slots[slot].weight = tc->weight;
			map->slots[slot].max_running = tc->max_running;
		}
	}

	for (int i = 0; i < nsigs; i++)
	{
		int			sigidx;

		if (urgent[i] == DT_NOEND)
			continue;
		sigidx = qm_ensure_sig(map, sigs[i]);
		map->sigs[sigidx].urgent_flag = true;
		map->sigs[sigidx].urgent_epoch++;
		if (urgent[i] < map->sigs[sigidx].urgent_first)
			map->sigs[sigidx].urgent_first = urgent[i];
	}

	/* V starts at the smallest virtual start among tenants with work. */
	if (initial)
	{
		double		v = -1;

		foreach(lc, queues)
		{
			int			slot = qm_find_slot(map, ((FoundQueue *) lfirst(lc))->tenant);

			if (v < 0 || map->slots[slot].vstart < v)
				v = map->slots[slot].vstart;
		}
		map->hdr->vtime = Max(v, 0);
	}
}

/* Not inlined: it runs inside qm_ensure_built's PG_TRY. */
static void
merge_locked(QmMap *map, bool initial, List *queues, HTAB *configs, const int32 *sigs,
			 const TimestampTz *urgent, int nsigs)
{
	qm_lock(map, LW_EXCLUSIVE);
	PG_TRY();
	{
		merge(map, initial, queues, configs, sigs, urgent, nsigs);
	}
	PG_FINALLY();
	{
		qm_unlock(map);
	}
	PG_END_TRY();
}

static pg_noinline void
qm_build(QmMap *map, bool initial)
{
	DispatchCatalog *cat = dispatch_catalog();
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "dispatch queue map build",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Snapshot	snap;
	HTAB	   *configs;
	int32	   *sigs;
	int			nsigs;
	List	   *queues;
	TimestampTz *urgent;
	Relation	heap,
				idx;

	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	MemoryContextSwitchTo(cxt);
	configs = load_tenants(cxt);
	sigs = load_signatures(cxt, &nsigs);
	/* Copies made in cxt survive SPI_finish. */
	MemoryContextSwitchTo(cxt);
	SPI_finish();
	PopActiveSnapshot();

	snap = RegisterSnapshot(GetLatestSnapshot());
	heap = table_open(cat->tasks, AccessShareLock);
	idx = index_open(cat->tasks_ready_idx, AccessShareLock);
	queues = find_queues(heap, idx, snap, sigs, nsigs);
	index_close(idx, AccessShareLock);
	idx = index_open(cat->tasks_claimed_idx, AccessShareLock);
	count_running(heap, idx, snap, configs);
	index_close(idx, AccessShareLock);
	idx = index_open(cat->tasks_urgent_idx, AccessShareLock);
	urgent = find_urgent(heap, idx, snap, sigs, nsigs);
	index_close(idx, AccessShareLock);
	table_close(heap, AccessShareLock);
	UnregisterSnapshot(snap);

	merge_locked(map, initial, queues, configs, sigs, urgent, nsigs);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

void
qm_ensure_built(QmMap *map)
{
	DispatchCatalog *cat = dispatch_catalog();

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		QmHeader   *h = map->hdr;
		bool		initial;
		bool		need;

		qm_lock(map, LW_SHARED);
		need = h->state != QM_READY || h->tasks_relid != cat->tasks || h->rebuild_requested ||
			(!map->shared && TimestampDifferenceExceeds(h->built_at, now, dispatch_local_refresh));
		qm_unlock(map);
		if (!need)
			return;

		qm_lock(map, LW_EXCLUSIVE);
		if (h->state == QM_BUILDING && h->builder_pid != MyProcPid &&
			BackendPidGetProc(h->builder_pid) != NULL &&
			!TimestampDifferenceExceeds(h->build_started, now, 60 * 1000))
		{
			/* Another session is building it: wait for that. */
			qm_unlock(map);
			pg_usleep(1000L);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (h->tasks_relid != cat->tasks)
		{
			qm_reset(map);
			h->tasks_relid = cat->tasks;
		}
		initial = h->state == QM_EMPTY;
		h->state = QM_BUILDING;
		h->builder_pid = MyProcPid;
		h->build_started = now;
		h->rebuild_requested = false;
		qm_unlock(map);

		PG_TRY();
		{
			qm_build(map, initial);
		}
		PG_CATCH();
		{
			if (map->lock == NULL || !LWLockHeldByMe(map->lock))
				qm_lock(map, LW_EXCLUSIVE);
			h->state = initial ? QM_EMPTY : QM_READY;
			h->rebuild_requested = true;
			qm_unlock(map);
			PG_RE_THROW();
		}
		PG_END_TRY();

		qm_lock(map, LW_EXCLUSIVE);
		h->state = QM_READY;
		h->built_at = now;
		qm_unlock(map);
		return;
	}
}

void
qm_rebuild_now(void)
{
	QmMap	   *map = qm_map();

	qm_lock(map, LW_EXCLUSIVE);
	map->hdr->rebuild_requested = true;
	qm_unlock(map);
	qm_ensure_built(map);
}

/* dispatch.rebuild_queue_map() RETURNS void */
PG_FUNCTION_INFO_V1(dispatch_rebuild_queue_map);

Datum
dispatch_rebuild_queue_map(PG_FUNCTION_ARGS)
{
	qm_rebuild_now();
	PG_RETURN_VOID();
}
