/*-------------------------------------------------------------------------
 *
 * pick.c
 *		Candidates and scores: what dispatch_next and explain_next consider.
 *
 * The pick never scans or sorts the queue.  It reads the queue map for the
 * fairest tenants that have work this agent can do, then makes index
 * descents only:
 *
 *	 reserved	tasks_reserved_idx (reserved_for = agent): this agent's sticky
 *				and push-assigned tasks;
 *	 fair		tasks_ready_idx (sig, tenant, skey): for each chosen tenant,
 *				its best task over its queues, probing queues in order of
 *				their head hints and stopping when the next hint is worse than
 *				the best found (hints are lower bounds, so this is exact);
 *	 urgent		tasks_urgent_idx (sig, urgent_at): signatures whose urgent
 *				hint has come.
 *
 * Each candidate is scored in seconds (doc/design.md §6):
 *	 score = age (incl. priority bonus) + urgent + affinity + match - fair
 *
 * A task whose row an in-progress transaction has locked or updated (another
 * claim) is passed over without waiting; the descent goes on to the next
 * entry.  What each probe saw goes back to the queue map as an observation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "nodes/bitmapset.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "match.h"
#include "pick.h"
#include "taskcols.h"

#define MAX_WALK 64				/* entries one probe may pass over */
#define MAX_RESERVED 4			/* reserved tasks considered per pick */
#define ASSIGNED_BONUS 1e8		/* dispatch.assign: the agent takes it first */
#define MAX_FAIR_WIDEN 65536	/* tenants the fair lane may widen to */

typedef struct ProbeCtx
{
	const PickAgent *agent;
	const Policy *policy;
	const TaskCols *tc;
	TimestampTz now;
	Relation	heap;
	TupleTableSlot *slot;
	int			probes;
} ProbeCtx;

/*
 * Has an in-progress transaction (another claim, most likely) locked or
 * updated this row?  Read without the buffer lock: a stale answer costs only
 * a failed lock attempt later.
 */
static bool
in_flight(TupleTableSlot *slot)
{
	HeapTuple	tup = ((BufferHeapTupleTableSlot *) slot)->base.tuple;
	HeapTupleHeader h;
	TransactionId xmax;

	if (tup == NULL || tup->t_data == NULL)
		return false;
	h = tup->t_data;
	if (h->t_infomask & HEAP_XMAX_INVALID)
		return false;
	if (h->t_infomask & HEAP_XMAX_IS_MULTI)
		return true;
	xmax = HeapTupleHeaderGetRawXmax(h);
	if (!TransactionIdIsValid(xmax))
		return false;
	return TransactionIdIsCurrentTransactionId(xmax) || TransactionIdIsInProgress(xmax);
}

static TimestampTz
ts_attr(TupleTableSlot *slot, AttrNumber att)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/* Fill a candidate from the slot; false if the agent may not take it. */
static bool
read_candidate(ProbeCtx *ctx, PickLane lane, Candidate *c)
{
	TupleTableSlot *slot = ctx->slot;
	const TaskCols *tc = ctx->tc;
	bool		isnull;
	Datum		d;
	ArrayType  *profile = NULL;
	bool		has_match = false,
				violates = false;
	double		m = 0;

	MemSet(c, 0, sizeof(Candidate));
	c->tid = slot->tts_tid;
	c->lane = lane;
	c->task_id = DatumGetInt64(slot_getattr(slot, tc->task_id, &isnull));
	c->sig = DatumGetInt32(slot_getattr(slot, tc->sig, &isnull));
	strlcpy(c->tenant, TextDatumGetCString(slot_getattr(slot, tc->tenant, &isnull)), QM_TENANT_LEN);
	c->prio = priority_index(TextDatumGetCString(slot_getattr(slot, tc->priority, &isnull)));
	c->skey = ts_attr(slot, tc->skey);
	c->urgent_at = ts_attr(slot, tc->urgent_at);
	c->deadline = ts_attr(slot, tc->deadline);
	d = slot_getattr(slot, tc->cost, &isnull);
	c->cost = isnull ? ctx->policy->default_cost : DatumGetFloat4(d);
	c->lst = c->deadline == DT_NOEND ? DT_NOEND : c->deadline - (int64) (c->cost * USECS_PER_SEC);
	if (lane == LANE_RESERVED)
	{
		d = slot_getattr(slot, tc->reservation, &isnull);
		c->assigned = !isnull && strcmp(TextDatumGetCString(d), "assign") == 0;
	}

	/* A task already past its deadline under past_deadline = expire: the worker expires it. */
	if (ctx->policy->expire_past_deadline && c->deadline != DT_NOEND && c->deadline < ctx->now)
		return false;

	d = slot_getattr(slot, tc->profile, &isnull);
	if (!isnull)
		profile = DatumGetArrayTypePCopy(d);
	if (profile && ctx->agent->traits)
		m = personality_match(ctx->policy, ctx->agent->traits, profile, &has_match, &violates);
	if (violates)
		return false;			/* a hard trait limit: not for this agent */
	c->match_value = has_match ? m : -1;
	return true;
}

/*
 * One descent of the ready index for (sig, tenant).  Returns whether a
 * candidate was found; reports what it saw to the queue map.
 *
 * nbtree reads every matching entry of a leaf page when it lands on it, so a
 * long queue made each probe check a whole page of entries (about 200) to
 * use the first one or two.  When the queue's head hint is known, the probe
 * first scans only skey <= hint + PROBE_WINDOW, where the head almost always
 * is, and only if that finds no candidate goes on with skey > hint +
 * PROBE_WINDOW.  The two ranges split the index order exactly, so the entries
 * walked, the candidate and the observation are those of one unbounded scan.
 */
#define PROBE_WINDOW ((TimestampTz) 10 * USECS_PER_SEC)

static bool
probe_queue(ProbeCtx *ctx, IndexScanDesc scan, Relation idx, int32 sig, const char *tenant,
			uint64 epoch, TimestampTz hint, Candidate *out)
{
	ScanKeyData keys[3];
	bool		seen = false;
	bool		found = false;
	TimestampTz head = DT_NOEND;
	bool		windowed = hint > DT_NOBEGIN && hint < DT_NOEND - PROBE_WINDOW;
	int			walked = 0;

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(sig));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[1], F_TEXTEQ, CStringGetTextDatum(tenant));
	/* The window, then the rest; or, without a hint, everything at once. */
	for (int part = windowed ? 0 : 2; part < (windowed ? 2 : 3) && !found && walked < MAX_WALK; part++)
	{
		if (part == 0)
			ScanKeyInit(&keys[2], 3, BTLessEqualStrategyNumber, F_TIMESTAMPTZ_LE,
						TimestampTzGetDatum(hint + PROBE_WINDOW));
		else if (part == 1)
			ScanKeyInit(&keys[2], 3, BTGreaterStrategyNumber, F_TIMESTAMPTZ_GT,
						TimestampTzGetDatum(hint + PROBE_WINDOW));
		else
			ScanKeyInit(&keys[2], 3, BTGreaterEqualStrategyNumber, F_TIMESTAMPTZ_GE,
						TimestampTzGetDatum(DT_NOBEGIN));
		index_rescan(scan, keys, 3, NULL, 0);
		ctx->probes++;
		for (; walked < MAX_WALK &&
			 index_getnext_slot(scan, ForwardScanDirection, ctx->slot); walked++)
		{
			if (!seen)
			{
				head = ts_attr(ctx->slot, ctx->tc->skey);
				seen = true;
			}
			if (in_flight(ctx->slot))
				continue;
			if (read_candidate(ctx, LANE_FAIR, out))
			{
				found = true;
				break;
			}
		}
	}
	qm_observe_queue(sig, tenant, epoch, !seen, head);
	return found;
}

static int
queue_head_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const QmQueueView *) a)->head;
	TimestampTz y = ((const QmQueueView *) b)->head;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* The tenant's best task over its queues: branch and bound on head hints. */
static bool
best_of_tenant(ProbeCtx *ctx, IndexScanDesc scan, Relation idx, QmPickView *view, int t,
			   Candidate *best)
{
	QmQueueView *qs = palloc(sizeof(QmQueueView) * Max(view->nqueues, 1));
	int			n = 0;
	bool		have = false;

	for (int i = 0; i < view->nqueues; i++)
		if (view->queues[i].slot == t)
			qs[n++] = view->queues[i];
	qsort(qs, n, sizeof(QmQueueView), queue_head_cmp);
	for (int i = 0; i < n; i++)
	{
		Candidate	c;

		/*
		 * A hint is a lower bound, and a candidate replaces the best only
		 * with a strictly smaller skey, so a queue whose hint merely ties the
		 * best cannot change the answer: stop there too.  (Ties are common:
		 * tasks submitted in one statement share ready_at, so each priority
		 * of a bulk submit is one skey.)
		 */
		if (have && qs[i].head >= best->skey)
			break;
		if (probe_queue(ctx, scan, idx, qs[i].sig, view->tenants[t].name, qs[i].epoch,
						qs[i].head, &c) &&
			(!have || c.skey < best->skey))
		{
			*best = c;
			have = true;
		}
	}
	pfree(qs);
	return have;
}

/*
 * The fair lane: each tenant of the view not probed before, its best task.
 * Appends to cands (room for view->ntenants more); returns how many it found.
 */
static int
probe_fair(ProbeCtx *ctx, QmPickView *view, Snapshot snap, Bitmapset **probed,
		   Candidate *cands, int *n)
{
	Relation	idx = index_open(dispatch_catalog()->tasks_ready_idx, AccessShareLock);
	IndexScanDesc scan = index_beginscan(ctx->heap, idx, snap, 3, 0);
	int			found = 0;

	for (int t = 0; t < view->ntenants; t++)
	{
		if (bms_is_member(view->tenants[t].slot, *probed))
			continue;
		*probed = bms_add_member(*probed, view->tenants[t].slot);
		if (best_of_tenant(ctx, scan, idx, view, t, &cands[*n]))
		{
			(*n)++;
			found++;
		}
	}
	index_endscan(scan);
	index_close(idx, AccessShareLock);
	return found;
}

/* This agent's reserved tasks (session affinity, dispatch.assign). */
static int
probe_reserved(ProbeCtx *ctx, Relation idx, Candidate *out)
{
	IndexScanDesc scan = index_beginscan(ctx->heap, idx, GetActiveSnapshot(), 1, 0);
	ScanKeyData key;
	int			n = 0;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(ctx->agent->agent_id));
	index_rescan(scan, &key, 1, NULL, 0);
	ctx->probes++;
	for (int walked = 0; walked < MAX_WALK && n < MAX_RESERVED &&
		 index_getnext_slot(scan, ForwardScanDirection, ctx->slot); walked++)
	{
		bool		isnull;
		int32		sig = DatumGetInt32(slot_getattr(ctx->slot, ctx->tc->sig, &isnull));

		if (in_flight(ctx->slot) || !agent_satisfies(ctx->agent->sigs, ctx->agent->nsigs, sig))
			continue;
		if (read_candidate(ctx, LANE_RESERVED, &out[n]))
			n++;
	}
	index_endscan(scan);
	return n;
}

/*
 * The urgent lane of one signature: its first task past urgent_at that can
 * still start in time.  One past its latest start time (deadline - cost) will
 * miss its deadline whatever happens now; hurrying it would only make the
 * next ones late too, so it is passed over here (the tick takes it out of the
 * lane) and waits in the fair order like any other task.
 */
static bool
probe_urgent(ProbeCtx *ctx, IndexScanDesc scan, QmQueueView *u, Candidate *out)
{
	ScanKeyData key;
	bool		seen = false;
	bool		found = false;
	TimestampTz first = DT_NOEND;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(u->sig));
	index_rescan(scan, &key, 1, NULL, 0);
	ctx->probes++;
	for (int walked = 0; walked < MAX_WALK &&
		 index_getnext_slot(scan, ForwardScanDirection, ctx->slot); walked++)
	{
		TimestampTz at = ts_attr(ctx->slot, ctx->tc->urgent_at);
		bool		isnull;
		Datum		rf;

		if (!seen)
		{
			first = at;
			seen = true;
		}
		if (at > ctx->now)
			break;
		if (in_flight(ctx->slot))
			continue;
		/* Reserved for another agent, and the reservation holds. */
		rf = slot_getattr(ctx->slot, ctx->tc->reserved_for, &isnull);
		if (!isnull && strcmp(TextDatumGetCString(rf), ctx->agent->agent_id) != 0 &&
			ts_attr(ctx->slot, ctx->tc->reserved_until) > ctx->now)
			continue;
		if (read_candidate(ctx, LANE_URGENT, out))
		{
			if (out->lst < ctx->now)
				continue;
			found = true;
			break;
		}
	}
	qm_observe_urgent(u->sig, u->epoch, !seen, first);
	return found;
}

/*
 * The score, in seconds of head start.  Between tenants fair share leads:
 * age (with the priority bonus) counts only up to max_age_credit, and each
 * weighted second a tenant is ahead of V costs fair_weight seconds.  Within a
 * tenant the index already ordered the work by skey.  Deadlines (from
 * urgent_at until the latest start time: after that hurrying is in vain),
 * affinity and personality can overrule the fair order by their weights, no
 * more: a tenant flooding deadlines gets at most urgent_weight / fair_weight
 * seconds of extra service.  A strict critical class outranks everything.
 */
static void
score(const Policy *pol, TimestampTz now, double vtime, Candidate *c)
{
	bool		strict = c->prio == PRIO_CRITICAL && pol->critical_strict;

	c->bonus = strict ? pol->priority_bonus[PRIO_CRITICAL] : policy_bonus(pol, c->prio);
	c->age = (double) (now - c->skey) / USECS_PER_SEC - (strict ? policy_bonus(pol, c->prio) - c->bonus : 0);
	c->urgent = (c->urgent_at != DT_NOEND && c->urgent_at <= now && now <= c->lst) ?
		pol->urgent_weight : 0;
	c->affinity = c->lane == LANE_RESERVED ? (c->assigned ? ASSIGNED_BONUS : pol->affinity_weight) : 0;
	c->match = c->match_value >= 0 ? pol->match_weight * c->match_value : 0;
	c->fair = -pol->fair_weight * Max(0.0, c->tenant_vstart - vtime);
	c->age_credit = Min(c->age, pol->max_age_credit) + (strict ? 1e9 : 0);
	c->score = c->age_credit + c->urgent + c->affinity + c->match + c->fair;
}

static int
score_cmp(const void *a, const void *b)
{
	const Candidate *x = a,
			   *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->task_id < y->task_id ? -1 : x->task_id > y->task_id ? 1 : 0;
}

void
pick_candidates(const PickAgent *agent, TimestampTz now, PickResult *res)
{
	DispatchCatalog *cat = dispatch_catalog();
	ProbeCtx	ctx;
	QmPickView	view;
	Snapshot	snap;
	Relation	idx;
	IndexScanDesc scan;
	Candidate  *cands;
	Bitmapset  *probed = NULL;
	int			n = 0;
	int			nfair;
	int			k;

	MemSet(&ctx, 0, sizeof(ctx));
	ctx.agent = agent;
	ctx.policy = policy_active();
	ctx.tc = task_cols();
	ctx.now = now;
	k = ctx.policy->fair_candidates;

	/* Read the map first, then take the snapshot the probes use (design §5). */
	qm_read_for_pick(agent->sigs, agent->nsigs, k, now, &view);
	snap = GetLatestSnapshot();
	PushActiveSnapshot(snap);
	snap = GetActiveSnapshot();

	cands = palloc(sizeof(Candidate) * (MAX_RESERVED + view.ntenants + view.nurgent + 1));
	ctx.heap = table_open(cat->tasks, AccessShareLock);
	ctx.slot = table_slot_create(ctx.heap, NULL);

	idx = index_open(cat->tasks_reserved_idx, AccessShareLock);
	n += probe_reserved(&ctx, idx, cands + n);
	index_close(idx, AccessShareLock);

	nfair = probe_fair(&ctx, &view, snap, &probed, cands, &n);

	if (view.nurgent > 0)
	{
		idx = index_open(cat->tasks_urgent_idx, AccessShareLock);
		scan = index_beginscan(ctx.heap, idx, snap, 1, 0);
		for (int u = 0; u < view.nurgent; u++)
		{
			Candidate	c;
			bool		dup = false;

			if (!probe_urgent(&ctx, scan, &view.urgent[u], &c))
				continue;
			for (int i = 0; i < n; i++)
				if (cands[i].task_id == c.task_id)
				{
					cands[i].lane = LANE_URGENT;
					dup = true;
				}
			if (!dup)
				cands[n++] = c;
		}
		index_endscan(scan);
		index_close(idx, AccessShareLock);
	}

	/*
	 * The k fairest tenants may hold nothing this agent can take after all:
	 * every task walked breaks a trait limit or is being claimed, or the
	 * queues emptied since the map was read.  Rather than answer nothing
	 * while tenants further down the fair order have work for it, look at
	 * four times as many, skipping those already probed.  Each round reads
	 * the map again, so it takes a new snapshot after that read (design §5).
	 */
	while (nfair == 0 && view.ntenants == k && k < MAX_FAIR_WIDEN)
	{
		PopActiveSnapshot();
		k *= 4;
		qm_read_for_pick(agent->sigs, agent->nsigs, k, now, &view);
		PushActiveSnapshot(GetLatestSnapshot());
		snap = GetActiveSnapshot();
		cands = repalloc(cands, sizeof(Candidate) * (n + view.ntenants + 1));
		nfair = probe_fair(&ctx, &view, snap, &probed, cands, &n);
	}

	ExecDropSingleTupleTableSlot(ctx.slot);
	table_close(ctx.heap, AccessShareLock);
	PopActiveSnapshot();

	/* Each candidate's tenant: its effective virtual start, and whether it is capped. */
	{
		int			kept = 0;

		for (int i = 0; i < n; i++)
		{
			bool		capped = false;
			int			t;

			for (t = 0; t < view.ntenants; t++)
				if (strcmp(view.tenants[t].name, cands[i].tenant) == 0)
					break;
			if (t < view.ntenants)
				cands[i].tenant_vstart = view.tenants[t].vstart;
			else
				qm_tenant_info(cands[i].tenant, &cands[i].tenant_vstart, &capped);
			if (capped)
				continue;
			score(ctx.policy, now, view.vtime, &cands[i]);
			cands[kept++] = cands[i];
		}
		n = kept;
	}
	qsort(cands, n, sizeof(Candidate), score_cmp);

	/* The fairest tenant this agent found work for: V may advance to it, no further. */
	res->vfloor = n > 0 ? cands[0].tenant_vstart : view.vtime;
	for (int i = 1; i < n; i++)
		res->vfloor = Min(res->vfloor, cands[i].tenant_vstart);

	res->ncandidates = n;
	res->candidates = cands;
	res->vtime = view.vtime;
	res->probes = ctx.probes;
	res->policy = ctx.policy;
}
