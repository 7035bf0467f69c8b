/*-------------------------------------------------------------------------
 *
 * queuemap.c
 *		The queue map: where ready work may be, and each tenant's fair share.
 *
 * Design.  The ready index (sig, tenant, skey) holds every waiting task; a
 * (signature, tenant) pair is one queue.  To find the queues an agent can
 * serve without probing all of them, each database keeps a map:
 *
 *	 slots[]	one per tenant: weight, vstart (SFQ virtual start), running
 *	 bits		one bitmap per signature over tenant slots: the queue may hold
 *				ready work
 *	 pairs		per queue: an epoch and a lower bound on its smallest skey
 *	 sigs[]		per signature: the same for its urgent lane
 *
 * The map is a hint.  Its one invariant is that a queue holding visible ready
 * work has its bit set; doc/design.md §5 argues why the protocol below keeps
 * it: bits are only raised by committed work (applied after the commit is
 * visible, see qm_xact_callback) and by rebuilds, and only cleared by a probe
 * that read the queue's epoch before taking its snapshot and found the epoch
 * unchanged afterwards.
 *
 * Locking.  With shared memory, one LWLock per database map: shared while a
 * pick reads it, exclusive for commits, observations and charges (short,
 * constant-time critical sections).  A directory lock assigns maps to
 * databases.  Without shared memory the same structures live in backend
 * memory and no lock is taken.
 *
 * Notes made by the row trigger during a transaction are kept per
 * subtransaction level and applied (or dropped) when it ends.  Charges made by
 * a claim are applied at once, so concurrent picks see them, and refunded if
 * the (sub)transaction aborts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "dispatch.h"
#include "queuemap.h"
#include "queuemap_int.h"

/* ---- layout ------------------------------------------------------------ */

static int
qm_words(void)
{
	return (dispatch_max_tenants + 63) / 64;
}

static Size
qm_struct_size(void)
{
	Size		size = MAXALIGN(sizeof(QmHeader));

	size = add_size(size, MAXALIGN(mul_size(dispatch_max_tenants, sizeof(QmSlot))));
	size = add_size(size, MAXALIGN(mul_size(dispatch_max_signatures, sizeof(QmSig))));
	size = add_size(size, mul_size(mul_size(dispatch_max_signatures, qm_words()), sizeof(uint64)));
	return size;
}

static void
qm_lay_out(QmMap *map, char *base)
{
	map->hdr = (QmHeader *) base;
	base += MAXALIGN(sizeof(QmHeader));
	map->slots = (QmSlot *) base;
	base += MAXALIGN(mul_size(dispatch_max_tenants, sizeof(QmSlot)));
	map->sigs = (QmSig *) base;
	base += MAXALIGN(mul_size(dispatch_max_signatures, sizeof(QmSig)));
	map->bits = (uint64 *) base;
	map->words = qm_words();
}

static void
qm_hash_info(HASHCTL *tenants, HASHCTL *sigs, HASHCTL *pairs)
{
	MemSet(tenants, 0, sizeof(HASHCTL));
	tenants->keysize = QM_TENANT_LEN;
	tenants->entrysize = sizeof(QmTenantEnt);
	MemSet(sigs, 0, sizeof(HASHCTL));
	sigs->keysize = sizeof(int32);
	sigs->entrysize = sizeof(QmSigEnt);
	MemSet(pairs, 0, sizeof(HASHCTL));
	pairs->keysize = sizeof(QmPairKey);
	pairs->entrysize = sizeof(QmPair);
}

/* ---- shared memory ------------------------------------------------------ */

static QmMap *shared_maps = NULL;	/* dispatch_max_databases of them */
static LWLock *directory_lock = NULL;
static Oid *directory = NULL;		/* database of each shared map */

void
queuemap_shmem_request(void)
{
	Size		size = MAXALIGN(mul_size(dispatch_max_databases, sizeof(Oid)));
	Size		one = qm_struct_size();

	one = add_size(one, hash_estimate_size(dispatch_max_tenants, sizeof(QmTenantEnt)));
	one = add_size(one, hash_estimate_size(dispatch_max_signatures, sizeof(QmSigEnt)));
	one = add_size(one, hash_estimate_size(dispatch_max_queues, sizeof(QmPair)));
	size = add_size(size, mul_size(one, dispatch_max_databases));
	RequestAddinShmemSpace(size);
	RequestNamedLWLockTranche("dispatch", dispatch_max_databases + 1);
}

void
queuemap_shmem_startup(void)
{
	bool		found;
	LWLockPadded *locks;
	HASHCTL		ti,
				si,
				pi;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	locks = GetNamedLWLockTranche("dispatch");
	directory_lock = &locks[0].lock;
	directory = ShmemInitStruct("dispatch queue map directory",
								mul_size(dispatch_max_databases, sizeof(Oid)), &found);
	if (!found)
		MemSet(directory, 0, mul_size(dispatch_max_databases, sizeof(Oid)));

	shared_maps = MemoryContextAllocZero(TopMemoryContext,
										 sizeof(QmMap) * dispatch_max_databases);
	qm_hash_info(&ti, &si, &pi);
	for (int i = 0; i < dispatch_max_databases; i++)
	{
		QmMap	   *map = &shared_maps[i];
		char		name[64];
		char	   *base;

		snprintf(name, sizeof(name), "dispatch queue map %d", i);
		base = ShmemInitStruct(name, qm_struct_size(), &found);
		qm_lay_out(map, base);
		if (!found)
			MemSet(base, 0, qm_struct_size());
		snprintf(name, sizeof(name), "dispatch tenants %d", i);
		map->tenants = ShmemInitHash(name, dispatch_max_tenants, dispatch_max_tenants, &ti,
									 HASH_ELEM | HASH_STRINGS | HASH_FIXED_SIZE);
		snprintf(name, sizeof(name), "dispatch signatures %d", i);
		map->sigix = ShmemInitHash(name, dispatch_max_signatures, dispatch_max_signatures, &si,
								   HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
		snprintf(name, sizeof(name), "dispatch queues %d", i);
		map->pairs = ShmemInitHash(name, dispatch_max_queues, dispatch_max_queues, &pi,
								   HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
		map->lock = &locks[i + 1].lock;
		map->shared = true;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---- finding this database's map --------------------------------------- */

static QmMap *my_map = NULL;
static QmMap local_map;

void
qm_reset(QmMap *map)
{
	HASH_SEQ_STATUS st;
	void	   *ent;
	uint64		generation = map->hdr->generation;

	hash_seq_init(&st, map->pairs);
	while ((ent = hash_seq_search(&st)) != NULL)
		hash_search(map->pairs, ent, HASH_REMOVE, NULL);
	hash_seq_init(&st, map->sigix);
	while ((ent = hash_seq_search(&st)) != NULL)
		hash_search(map->sigix, ent, HASH_REMOVE, NULL);
	hash_seq_init(&st, map->tenants);
	while ((ent = hash_seq_search(&st)) != NULL)
		hash_search(map->tenants, ent, HASH_REMOVE, NULL);
	MemSet(map->hdr, 0, qm_struct_size());
	map->hdr->generation = generation + 1;
}

static QmMap *
qm_local_map(void)
{
	if (local_map.hdr == NULL)
	{
		HASHCTL		ti,
					si,
					pi;

		qm_lay_out(&local_map, MemoryContextAllocZero(TopMemoryContext, qm_struct_size()));
		qm_hash_info(&ti, &si, &pi);
		ti.hcxt = si.hcxt = pi.hcxt = TopMemoryContext;
		local_map.tenants = hash_create("dispatch tenants", 256, &ti,
										HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		local_map.sigix = hash_create("dispatch signatures", 64, &si,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		local_map.pairs = hash_create("dispatch queues", 1024, &pi,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		local_map.shared = false;
		local_map.lock = NULL;
	}
	return &local_map;
}

/*
 * This database's map: a shared one when the library was preloaded and a
 * slot is free (or held by a database that no longer exists), else a private
 * one.  Called inside a transaction.
 */
QmMap *
qm_map(void)
{
	int			chosen = -1;

	if (my_map != NULL)
		return my_map;
	if (shared_maps == NULL || !dispatch_preloaded)
		return my_map = qm_local_map();

	LWLockAcquire(directory_lock, LW_EXCLUSIVE);
	for (int i = 0; i < dispatch_max_databases && chosen < 0; i++)
		if (directory[i] == MyDatabaseId)
			chosen = i;
	for (int i = 0; i < dispatch_max_databases && chosen < 0; i++)
		if (!OidIsValid(directory[i]) ||
			!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(directory[i])))
		{
			chosen = i;
			LWLockAcquire(shared_maps[i].lock, LW_EXCLUSIVE);
			qm_reset(&shared_maps[i]);
			LWLockRelease(shared_maps[i].lock);
			directory[i] = MyDatabaseId;
		}
	LWLockRelease(directory_lock);

	if (chosen < 0)
	{
		ereport(LOG,
				(errmsg("dispatch: no shared queue map left for database %u, using a per-session map", MyDatabaseId),
				 errhint("Raise dispatch.max_databases (needs a restart).")));
		return my_map = qm_local_map();
	}
	return my_map = &shared_maps[chosen];
}

void
qm_lock(QmMap *map, LWLockMode mode)
{
	if (map->lock)
		LWLockAcquire(map->lock, mode);
}

void
qm_unlock(QmMap *map)
{
	if (map->lock)
		LWLockRelease(map->lock);
}

/* ---- entries ------------------------------------------------------------ */

static void
tenant_key(char *key, const char *tenant)
{
	MemSet(key, 0, QM_TENANT_LEN);
	strlcpy(key, tenant, QM_TENANT_LEN);
}

int
qm_find_slot(QmMap *map, const char *tenant)
{
	char		key[QM_TENANT_LEN];
	QmTenantEnt *ent;

	tenant_key(key, tenant);
	ent = hash_search(map->tenants, key, HASH_FIND, NULL);
	return ent ? ent->slot : -1;
}

int
qm_find_sig(QmMap *map, int32 sig)
{
	QmSigEnt   *ent = hash_search(map->sigix, &sig, HASH_FIND, NULL);

	return ent ? ent->idx : -1;
}

QmPair *
qm_find_pair(QmMap *map, int sigidx, int slot)
{
	QmPairKey	key;

	key.sigidx = sigidx;
	key.slot = slot;
	return hash_search(map->pairs, &key, HASH_FIND, NULL);
}

/* Caller holds the lock exclusively.  Errors only when the map is full. */
int
qm_ensure_slot(QmMap *map, const char *tenant, double weight, int32 max_running,
			   double vstart)
{
	char		key[QM_TENANT_LEN];
	QmTenantEnt *ent;
	QmSlot	   *slot;
	bool		found;

	tenant_key(key, tenant);
	ent = hash_search(map->tenants, key, HASH_FIND, NULL);
	if (ent)
		return ent->slot;
	if (map->hdr->nslots >= dispatch_max_tenants ||
		(ent = hash_search(map->tenants, key, HASH_ENTER_NULL, &found)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many tenants with queued work (%d)", dispatch_max_tenants),
				 errhint("Raise dispatch.max_tenants (needs a restart).")));
	ent->slot = map->hdr->nslots++;
	slot = &map->slots[ent->slot];
	strlcpy(slot->name, tenant, QM_TENANT_LEN);
	slot->weight = weight > 0 ? weight : 1.0;
	slot->max_running = max_running;
	slot->running = 0;
	/* A new tenant starts at the current virtual time: no banked credit. */
	slot->vstart = Max(vstart, map->hdr->vtime);
	return ent->slot;
}

int
qm_ensure_sig(QmMap *map, int32 sig)
{
	QmSigEnt   *ent = hash_search(map->sigix, &sig, HASH_FIND, NULL);
	bool		found;

	if (ent)
		return ent->idx;
	if (map->hdr->nsigs >= dispatch_max_signatures ||
		(ent = hash_search(map->sigix, &sig, HASH_ENTER_NULL, &found)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct capability signatures (%d)", dispatch_max_signatures),
				 errhint("A signature is a distinct (requires, sensitivity, region) of a task. Raise dispatch.max_signatures (needs a restart).")));
	ent->idx = map->hdr->nsigs++;
	map->sigs[ent->idx].sig_id = sig;
	map->sigs[ent->idx].urgent_first = DT_NOEND;
	return ent->idx;
}

QmPair *
qm_ensure_pair(QmMap *map, int sigidx, int slot)
{
	QmPairKey	key;
	QmPair	   *pair;
	bool		found;

	key.sigidx = sigidx;
	key.slot = slot;
	pair = hash_search(map->pairs, &key, HASH_ENTER_NULL, &found);
	if (pair == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many (signature, tenant) queues (%d)", dispatch_max_queues),
				 errhint("Raise dispatch.max_queues (needs a restart).")));
	if (!found)
	{
		pair->epoch = 0;
		pair->head = DT_NOEND;
	}
	return pair;
}

void
qm_raise(QmMap *map, int sigidx, int slot, QmPair *pair, TimestampTz head)
{
	map->bits[(Size) sigidx * map->words + slot / 64] |= UINT64CONST(1) << (slot % 64);
	pair->epoch++;
	if (head < pair->head)
		pair->head = head;
}

static inline bool
qm_bit(QmMap *map, int sigidx, int slot)
{
	return (map->bits[(Size) sigidx * map->words + slot / 64] >> (slot % 64)) & 1;
}

/* ---- notes: collected per (sub)transaction, applied at commit ------------ */

typedef enum QmNoteKind
{
	NOTE_READY,
	NOTE_URGENT,
	NOTE_RUNNING,
	NOTE_CHARGE,
	NOTE_TENANT,
	NOTE_REBUILD,
	NOTE_REFUND				/* undo of an immediate claim charge, on abort */
} QmNoteKind;

typedef struct QmNote
{
	QmNoteKind	kind;
	int			level;			/* transaction nest level that made it */
	int32		sig;
	char	   *tenant;
	TimestampTz ts;
	double		value;
	int32		ivalue;
} QmNote;

static QmNote *notes = NULL;
static int	nnotes = 0;
static int	notes_cap = 0;
static bool callbacks_registered = false;

static void qm_xact_callback(XactEvent event, void *arg);
static void qm_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);

static QmNote *
qm_new_note(QmNoteKind kind, const char *tenant)
{
	QmNote	   *n;

	if (!callbacks_registered)
	{
		RegisterXactCallback(qm_xact_callback, NULL);
		RegisterSubXactCallback(qm_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (nnotes == notes_cap)
	{
		int			cap = notes_cap ? notes_cap * 2 : 16;

		if (notes == NULL)
			notes = MemoryContextAlloc(TopTransactionContext, cap * sizeof(QmNote));
		else
			notes = repalloc(notes, cap * sizeof(QmNote));
		notes_cap = cap;
	}
	n = &notes[nnotes++];
	MemSet(n, 0, sizeof(QmNote));
	n->kind = kind;
	n->level = GetCurrentTransactionNestLevel();
	n->tenant = tenant ? MemoryContextStrdup(TopTransactionContext, tenant) : NULL;
	return n;
}

/*
 * The smallest skey this transaction has made ready in (sig, tenant) and not
 * yet committed, or DT_NOEND.  Its own claims must see that work, as any
 * query sees its own rows, but the map hears of it only at commit.
 */
static TimestampTz
qm_pending_head(int32 sig, const char *tenant)
{
	TimestampTz head = DT_NOEND;

	for (int i = 0; i < nnotes; i++)
		if (notes[i].kind == NOTE_READY && notes[i].sig == sig &&
			strcmp(notes[i].tenant, tenant) == 0 && notes[i].ts < head)
			head = notes[i].ts;
	return head;
}

void
qm_note_ready(int32 sig, const char *tenant, TimestampTz skey)
{
	QmNote	   *n;

	/* A bulk insert into one queue: one note, with the smallest skey. */
	if (nnotes > 0)
	{
		n = &notes[nnotes - 1];
		if (n->kind == NOTE_READY && n->sig == sig && n->level == GetCurrentTransactionNestLevel() &&
			strcmp(n->tenant, tenant) == 0)
		{
			if (skey < n->ts)
				n->ts = skey;
			return;
		}
	}
	n = qm_new_note(NOTE_READY, tenant);

	n->sig = sig;
	n->ts = skey;
}

void
qm_note_urgent(int32 sig, TimestampTz urgent_at)
{
	QmNote	   *n = qm_new_note(NOTE_URGENT, NULL);

	n->sig = sig;
	n->ts = urgent_at;
}

void
qm_note_running(const char *tenant, int delta)
{
	qm_new_note(NOTE_RUNNING, tenant)->ivalue = delta;
}

void
qm_note_charge(const char *tenant, double seconds)
{
	qm_new_note(NOTE_CHARGE, tenant)->value = seconds;
}

void
qm_note_tenant(const char *tenant, double weight, int32 max_running)
{
	QmNote	   *n = qm_new_note(NOTE_TENANT, tenant);

	n->value = weight;
	n->ivalue = max_running;
}

void
qm_note_rebuild(void)
{
	qm_new_note(NOTE_REBUILD, NULL);
}

/* Apply one committed note; never errors (we are past the commit). */
static void
qm_apply(QmMap *map, QmNote *n)
{
	int			slot = n->tenant ? qm_find_slot(map, n->tenant) : -1;
	int			sigidx;
	QmPair	   *pair;

	switch (n->kind)
	{
		case NOTE_READY:
			sigidx = qm_find_sig(map, n->sig);
			pair = (slot >= 0 && sigidx >= 0) ? qm_find_pair(map, sigidx, slot) : NULL;
			if (pair)
				qm_raise(map, sigidx, slot, pair, n->ts);
			else				/* the map was reset since the trigger ran */
				map->hdr->rebuild_requested = true;
			break;
		case NOTE_URGENT:
			sigidx = qm_find_sig(map, n->sig);
			if (sigidx >= 0)
			{
				QmSig	   *s = &map->sigs[sigidx];

				s->urgent_flag = true;
				s->urgent_epoch++;
				if (n->ts < s->urgent_first)
					s->urgent_first = n->ts;
			}
			else
				map->hdr->rebuild_requested = true;
			break;
		case NOTE_RUNNING:
			if (slot >= 0)
				map->slots[slot].running = Max(0, map->slots[slot].running + n->ivalue);
			break;
		case NOTE_CHARGE:
			/* seconds of work, weighted here: the weight may have changed */
			if (slot >= 0)
				map->slots[slot].vstart += n->value / map->slots[slot].weight;
			break;
		case NOTE_TENANT:
			if (slot >= 0)
			{
				map->slots[slot].weight = n->value;
				map->slots[slot].max_running = n->ivalue;
			}
			break;
		case NOTE_REBUILD:
			map->hdr->rebuild_requested = true;
			break;
		case NOTE_REFUND:
			if (slot >= 0)
			{
				map->slots[slot].running = Max(0, map->slots[slot].running - 1);
				map->slots[slot].vstart -= n->value;
			}
			break;
	}
}

static void
qm_apply_range(int from, int to, bool committed)
{
	QmMap	   *map = my_map;
	bool		any = false;

	if (map == NULL || from >= to)
		return;
	for (int i = from; i < to; i++)
		if ((notes[i].kind == NOTE_REFUND) != committed)
			any = true;
	if (!any)
		return;
	qm_lock(map, LW_EXCLUSIVE);
	for (int i = from; i < to; i++)
		if ((notes[i].kind == NOTE_REFUND) != committed)
			qm_apply(map, &notes[i]);
	qm_unlock(map);
}

static void
qm_forget_notes(void)
{
	notes = NULL;				/* TopTransactionContext frees the memory */
	nnotes = notes_cap = 0;
}

static void
qm_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (nnotes > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed dispatch tasks"),
						 errhint("Commit the change to dispatch.tasks in an ordinary transaction.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* The commit is already visible to new snapshots (doc/design.md §5). */
			qm_apply_range(0, nnotes, true);
			qm_forget_notes();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			qm_apply_range(0, nnotes, false);
			qm_forget_notes();
			break;
		default:
			break;
	}
}

static void
qm_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			keep = 0;

	if (nnotes == 0)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < nnotes; i++)
			if (notes[i].level >= level)
				notes[i].level = level - 1;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* Refund the aborted subtransaction's claims now, drop its notes. */
		for (int i = 0; i < nnotes; i++)
			if (notes[i].level >= level && notes[i].kind == NOTE_REFUND && my_map)
			{
				qm_lock(my_map, LW_EXCLUSIVE);
				qm_apply(my_map, &notes[i]);
				qm_unlock(my_map);
			}
		for (int i = 0; i < nnotes; i++)
			if (notes[i].level < level)
				notes[keep++] = notes[i];
		nnotes = keep;
	}
}

/* ---- the trigger's side ------------------------------------------------- */

bool
qm_knows_queue(int32 sig, const char *tenant)
{
	QmMap	   *map = qm_map();
	bool		known;
	int			slot,
				sigidx;

	qm_lock(map, LW_SHARED);
	slot = qm_find_slot(map, tenant);
	sigidx = qm_find_sig(map, sig);
	known = slot >= 0 && sigidx >= 0 && qm_find_pair(map, sigidx, slot) != NULL;
	qm_unlock(map);
	return known;
}

void
qm_prepare_queue(int32 sig, const char *tenant, double weight, int32 max_running,
				 double vstart)
{
	QmMap	   *map = qm_map();

	qm_lock(map, LW_EXCLUSIVE);
	PG_TRY();
	{
		int			slot = qm_ensure_slot(map, tenant, weight, max_running, vstart);
		int			sigidx = qm_ensure_sig(map, sig);

		qm_ensure_pair(map, sigidx, slot);
	}
	PG_FINALLY();
	{
		qm_unlock(map);
	}
	PG_END_TRY();
}

/* ---- the claim path's side ---------------------------------------------- */

void
qm_read_for_pick(const int32 *sigs, int nsigs, int k, TimestampTz now, QmPickView *view)
{
	QmMap	   *map = qm_map();
	uint64	   *eligible;
	int		   *sigidx;
	int			nidx = 0;
	int			words;

	qm_ensure_built(map);
	words = map->words;
	eligible = palloc0(sizeof(uint64) * words);
	sigidx = palloc(sizeof(int) * Max(nsigs, 1));
	view->tenants = palloc(sizeof(QmTenantView) * Max(k, 1));
	view->ntenants = 0;
	view->nqueues = 0;
	view->nurgent = 0;
	view->overflow = false;
	view->shared = map->shared;

	qm_lock(map, LW_SHARED);
	view->vtime = map->hdr->vtime;
	for (int i = 0; i < nsigs; i++)
	{
		int			idx = qm_find_sig(map, sigs[i]);

		if (idx >= 0)
			sigidx[nidx++] = idx;
	}
	for (int i = 0; i < nidx; i++)
	{
		uint64	   *row = &map->bits[(Size) sigidx[i] * words];

		for (int w = 0; w < words; w++)
			eligible[w] |= row[w];
	}
	/* Plus the queues this transaction has made ready work in (qm_pending_head). */
	for (int n = 0; n < nnotes; n++)
	{
		int			idx,
					slot;

		if (notes[n].kind != NOTE_READY ||
			(idx = qm_find_sig(map, notes[n].sig)) < 0 ||
			(slot = qm_find_slot(map, notes[n].tenant)) < 0)
			continue;
		for (int i = 0; i < nidx; i++)
			if (sigidx[i] == idx)
				eligible[slot / 64] |= UINT64CONST(1) << (slot % 64);
	}

	/* The k fairest eligible tenants under their cap, by effective start. */
	for (int w = 0; w < words; w++)
	{
		uint64		word = eligible[w];

		while (word)
		{
			int			slot = w * 64 + pg_rightmost_one_pos64(word);
			QmSlot	   *s = &map->slots[slot];
			double		eff = Max(s->vstart, view->vtime);
			int			pos;

			word &= word - 1;
			if (s->max_running >= 0 && s->running >= s->max_running)
				continue;
			pos = view->ntenants;
			if (pos == k && eff >= view->tenants[k - 1].vstart)
				continue;
			if (pos == k)
				pos--;
			else
				view->ntenants++;
			while (pos > 0 && view->tenants[pos - 1].vstart > eff)
			{
				view->tenants[pos] = view->tenants[pos - 1];
				pos--;
			}
			view->tenants[pos].slot = slot;
			strlcpy(view->tenants[pos].name, s->name, QM_TENANT_LEN);
			view->tenants[pos].weight = s->weight;
			view->tenants[pos].vstart = eff;
			view->tenants[pos].running = s->running;
			view->tenants[pos].max_running = s->max_running;
		}
	}

	view->queues = palloc(sizeof(QmQueueView) * Max(view->ntenants * nidx, 1));
	for (int t = 0; t < view->ntenants; t++)
		for (int i = 0; i < nidx; i++)
		{
			int			slot = view->tenants[t].slot;
			QmPair	   *pair;
			TimestampTz pending = nnotes > 0 ?
				qm_pending_head(map->sigs[sigidx[i]].sig_id, view->tenants[t].name) : DT_NOEND;

			if ((!qm_bit(map, sigidx[i], slot) && pending == DT_NOEND) ||
				(pair = qm_find_pair(map, sigidx[i], slot)) == NULL)
				continue;
			view->queues[view->nqueues].sig = map->sigs[sigidx[i]].sig_id;
			view->queues[view->nqueues].slot = t;
			view->queues[view->nqueues].epoch = pair->epoch;
			view->queues[view->nqueues].head = Min(pair->head, pending);
			view->nqueues++;
		}

	view->urgent = palloc(sizeof(QmQueueView) * Max(nidx, 1));
	for (int i = 0; i < nidx; i++)
	{
		QmSig	   *s = &map->sigs[sigidx[i]];

		if (!s->urgent_flag || s->urgent_first > now)
			continue;
		view->urgent[view->nurgent].sig = s->sig_id;
		view->urgent[view->nurgent].slot = -1;
		view->urgent[view->nurgent].epoch = s->urgent_epoch;
		view->urgent[view->nurgent].head = s->urgent_first;
		view->nurgent++;
	}
	qm_unlock(map);
	pfree(eligible);
	pfree(sigidx);
}

/* Observations are buffered and applied with the next exclusive lock. */
typedef struct QmObservation
{
	bool		urgent;
	int32		sig;
	char		tenant[QM_TENANT_LEN];
	uint64		epoch;
	bool		empty;
	TimestampTz head;
} QmObservation;

#define MAX_OBSERVATIONS 256
static QmObservation observations[MAX_OBSERVATIONS];
static int	nobservations = 0;

static void
qm_apply_observations(QmMap *map)
{
	for (int i = 0; i < nobservations; i++)
	{
		QmObservation *o = &observations[i];
		int			sigidx = qm_find_sig(map, o->sig);

		if (sigidx < 0)
			continue;
		if (o->urgent)
		{
			QmSig	   *s = &map->sigs[sigidx];

			if (s->urgent_epoch != o->epoch)
				continue;
			if (o->empty)
			{
				s->urgent_flag = false;
				s->urgent_first = DT_NOEND;
			}
			else
				s->urgent_first = o->head;
		}
		else
		{
			int			slot = qm_find_slot(map, o->tenant);
			QmPair	   *pair = slot >= 0 ? qm_find_pair(map, sigidx, slot) : NULL;

			if (pair == NULL || pair->epoch != o->epoch)
				continue;
			if (o->empty)
			{
				map->bits[(Size) sigidx * map->words + slot / 64] &=
					~(UINT64CONST(1) << (slot % 64));
				pair->head = DT_NOEND;
			}
			else
				pair->head = o->head;
		}
	}
	nobservations = 0;
}

static void
qm_observe(bool urgent, int32 sig, const char *tenant, uint64 epoch, bool empty,
		   TimestampTz head)
{
	QmObservation *o;

	if (nobservations == MAX_OBSERVATIONS)
		qm_flush_observations();
	o = &observations[nobservations++];
	o->urgent = urgent;
	o->sig = sig;
	if (tenant)
		strlcpy(o->tenant, tenant, QM_TENANT_LEN);
	else
		o->tenant[0] = '\0';
	o->epoch = epoch;
	o->empty = empty;
	o->head = head;
}

void
qm_observe_queue(int32 sig, const char *tenant, uint64 epoch, bool empty, TimestampTz head)
{
	qm_observe(false, sig, tenant, epoch, empty, head);
}

void
qm_observe_urgent(int32 sig, uint64 epoch, bool empty, TimestampTz first)
{
	qm_observe(true, sig, NULL, epoch, empty, first);
}

void
qm_flush_observations(void)
{
	QmMap	   *map = my_map;

	if (nobservations == 0 || map == NULL)
	{
		nobservations = 0;
		return;
	}
	qm_lock(map, LW_EXCLUSIVE);
	qm_apply_observations(map);
	qm_unlock(map);
}

bool
qm_charge_claim(const char *tenant, double cost, double *vstart_before, double *vtime)
{
	QmMap	   *map = qm_map();
	int			slot;
	QmSlot	   *s;
	double		charge;
	QmNote	   *refund;

	/* Allocate the refund note before taking the lock: it may palloc. */
	refund = qm_new_note(NOTE_REFUND, tenant);

	qm_lock(map, LW_EXCLUSIVE);
	qm_apply_observations(map);
	slot = qm_find_slot(map, tenant);
	if (slot < 0)
	{
		/* Not in the map (a private map that never saw it): charge nothing. */
		qm_unlock(map);
		nnotes--;
		*vstart_before = *vtime = 0;
		return true;
	}
	s = &map->slots[slot];
	if (s->max_running >= 0 && s->running >= s->max_running)
	{
		qm_unlock(map);
		nnotes--;
		return false;
	}
	*vstart_before = Max(s->vstart, map->hdr->vtime);
	charge = cost / s->weight;
	s->vstart = *vstart_before + charge;
	s->running++;
	if (*vstart_before > map->hdr->vtime)
		map->hdr->vtime = *vstart_before;
	*vtime = map->hdr->vtime;
	qm_unlock(map);

	/* On abort: running - 1, vstart - charge (the catch-up to V stays). */
	refund->value = charge;
	return true;
}

/* A claim that could not complete after charging: refund now, not at abort. */
void
qm_cancel_charge(const char *tenant)
{
	for (int i = nnotes - 1; i >= 0; i--)
		if (notes[i].kind == NOTE_REFUND && strcmp(notes[i].tenant, tenant) == 0)
		{
			if (my_map)
			{
				qm_lock(my_map, LW_EXCLUSIVE);
				qm_apply(my_map, &notes[i]);
				qm_unlock(my_map);
			}
			memmove(&notes[i], &notes[i + 1], sizeof(QmNote) * (nnotes - i - 1));
			nnotes--;
			return;
		}
}

/* A tenant's effective virtual start, and whether it is at max_running. */
void
qm_tenant_info(const char *tenant, double *vstart_eff, bool *capped)
{
	QmMap	   *map = qm_map();
	int			slot;

	qm_lock(map, LW_SHARED);
	slot = qm_find_slot(map, tenant);
	*capped = false;
	*vstart_eff = map->hdr->vtime;
	if (slot >= 0)
	{
		QmSlot	   *s = &map->slots[slot];

		*vstart_eff = Max(s->vstart, map->hdr->vtime);
		*capped = s->max_running >= 0 && s->running >= s->max_running;
	}
	qm_unlock(map);
}

double
qm_virtual_time(void)
{
	QmMap	   *map = qm_map();
	double		v;

	qm_lock(map, LW_SHARED);
	v = map->hdr->vtime;
	qm_unlock(map);
	return v;
}

int
qm_snapshot_vstart(QmTenantState **states)
{
	QmMap	   *map = qm_map();
	int			n;

	qm_lock(map, LW_SHARED);
	n = map->hdr->nslots;
	*states = palloc(sizeof(QmTenantState) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		strlcpy((*states)[i].name, map->slots[i].name, QM_TENANT_LEN);
		(*states)[i].vstart = map->slots[i].vstart;
	}
	qm_unlock(map);
	return n;
}

/*
 * dispatch.queue_map() RETURNS TABLE (tenant, weight, vstart, running,
 * max_running, queues, shared): the map as this session sees it, one row per
 * tenant slot.  For operators, for the tests, and for the worker, which
 * writes vstart back to dispatch.tenants.
 */
PG_FUNCTION_INFO_V1(dispatch_queue_map);

Datum
dispatch_queue_map(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	QmMap	   *map;
	int		   *queues;
	int			nslots;
	QmSlot	   *copy;
	HASH_SEQ_STATUS st;
	QmPair	   *pair;
	bool		shared;

	InitMaterializedSRF(fcinfo, 0);
	map = qm_map();
	qm_ensure_built(map);

	qm_lock(map, LW_SHARED);
	nslots = map->hdr->nslots;
	shared = map->shared;
	copy = palloc(sizeof(QmSlot) * Max(nslots, 1));
	memcpy(copy, map->slots, sizeof(QmSlot) * nslots);
	queues = palloc0(sizeof(int) * Max(nslots, 1));
	hash_seq_init(&st, map->pairs);
	while ((pair = hash_seq_search(&st)) != NULL)
		if (qm_bit(map, pair->key.sigidx, pair->key.slot))
			queues[pair->key.slot]++;
	qm_unlock(map);

	for (int i = 0; i < nslots; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {0};

		values[0] = CStringGetTextDatum(copy[i].name);
		values[1] = Float8GetDatum(copy[i].weight);
		values[2] = Float8GetDatum(copy[i].vstart);
		values[3] = Int32GetDatum(copy[i].running);
		values[4] = Int32GetDatum(copy[i].max_running);
		nulls[4] = copy[i].max_running < 0;
		values[5] = Int32GetDatum(queues[i]);
		values[6] = BoolGetDatum(shared);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* dispatch.virtual_time() RETURNS float8: the fair-share virtual time V. */
PG_FUNCTION_INFO_V1(dispatch_virtual_time);

Datum
dispatch_virtual_time(PG_FUNCTION_ARGS)
{
	QmMap	   *map = qm_map();

	qm_ensure_built(map);
	PG_RETURN_FLOAT8(qm_virtual_time());
}

/*
 * dispatch.note_tenant(tenant text, weight real, max_running int): from the
 * row trigger of dispatch.tenants; the queue map takes the new values when
 * the transaction commits.
 */
PG_FUNCTION_INFO_V1(dispatch_note_tenant);

Datum
dispatch_note_tenant(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	qm_map();
	qm_note_tenant(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_FLOAT4(1),
				   PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2));
	PG_RETURN_VOID();
}
