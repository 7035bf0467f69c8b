/*-------------------------------------------------------------------------
 *
 * events.c
 *		NOTIFY on task state changes: dispatch_events for anyone watching the
 *		fleet, and dispatch_agent_<id> to wake agents that can take newly
 *		ready work, so agents need not poll.
 *
 * The row trigger notes each insert and each state change (claims aside:
 * the agent that claims knows, and the claim path stays as lean as it is).
 * Notes are kept per transaction; at pre-commit they become messages, which
 * go to the notifier worker (notifier.c) once the commit is durable, or,
 * without one, are sent by this transaction's own NOTIFY.  A rolled-back
 * change sends nothing; a rolled-back subtransaction drops its own notes.
 *
 * Flood control, per transaction:
 *	 - up to dispatch.notify_max_tasks changes: one dispatch_events message
 *	   each, {"task_id", "state", "tenant", "run_id"};
 *	 - more: one message per (tenant, run_id, state) with a "count"; and if
 *	   even those are too many (a bulk INSERT makes a run per task), one per
 *	   (tenant, state) with a "count".  A sweep of 100,000 tasks sends one
 *	   message, not 100,000; a bulk write counts each row in O(1) (the last
 *	   group is remembered), never more than a few hundred hash entries.
 *	 - agents: one message per agent channel, {"ready": n}.  For each
 *	   signature that got n newly ready tasks, at most n agents are woken
 *	   (idle ones first, longest idle first; then busy ones with spare
 *	   capacity): no thundering herd.  A task reserved for an agent wakes
 *	   only that agent.  This reads the agents table without an index: a
 *	   fleet is small, and an index on idle_since would make every claim's
 *	   update of the agent's row a non-HOT one.
 *
 * Channel names are identifiers of at most 63 bytes: an agent id of up to
 * 48 bytes is used as is (LISTEN "dispatch_agent_Agent 7" when it is not a
 * plain lower-case identifier); a longer one is replaced by its md5 in hex.
 * dispatch.agent_channel(agent_id) returns the name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "fanout.h"
#include "queuemap.h"

PG_FUNCTION_INFO_V1(dispatch_agent_channel);

bool		dispatch_notify = true;
int			dispatch_notify_max_tasks = 100;

void
events_define_settings(void)
{
	DefineCustomBoolVariable("dispatch.notify",
							 "Send NOTIFY dispatch_events and dispatch_agent_<id> when tasks change state. No restart needed.",
							 "Turn off for bulk loads nobody listens to; notifications serialize commits briefly.",
							 &dispatch_notify, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("dispatch.notify_deferred",
							 "Hand task events to the notifier worker instead of sending NOTIFY from the committing transaction. No restart needed.",
							 "PostgreSQL serializes the commits of transactions that NOTIFY; the notifier keeps that off submit() and complete(). Needs the library preloaded and the database in dispatch.database_name.",
							 &dispatch_notify_deferred, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dispatch.notify_max_tasks",
							"Most dispatch_events messages one transaction sends about single tasks (count). No restart needed.",
							"A transaction that changes more tasks sends one message per run and state, with a count.",
							&dispatch_notify_max_tasks, 100, 0, 100000,
							PGC_USERSET, 0, NULL, NULL, NULL);
}

#define STATE_LEN 16

typedef struct EventKey
{
	char		tenant[QM_TENANT_LEN];
	char		state[STATE_LEN];
	pg_uuid_t	run_id;
	bool		has_run;
	int			level;			/* transaction nesting level that noted it */
} EventKey;

typedef struct TaskEvent
{
	EventKey	key;			/* the hash key when grouped; must be first */
	int64		task_id;		/* single events; the count when grouped */
} TaskEvent;

typedef struct WakeKey
{
	int32		sig;
	char		agent[QM_TENANT_LEN];	/* reserved for this agent, or "" */
	int			level;
} WakeKey;

typedef struct Wake
{
	WakeKey		key;
	int64		count;
} Wake;

typedef struct Woken
{
	char		agent[QM_TENANT_LEN];	/* key */
	int64		count;
} Woken;

/* All in TopTransactionContext; the pointers are reset at transaction end. */
static TaskEvent *singles = NULL;
static int	nsingles = 0;
static int	maxsingles = 0;
static HTAB *groups = NULL;		/* once the singles overflowed */
static bool coarse = false;		/* groups ignore the run: too many runs */
static HTAB *wakes = NULL;
static TaskEvent *last_group = NULL;	/* the entry counted last, for bulk writes */
static Wake *last_wake = NULL;
static bool callbacks_registered = false;
static bool sending = false;	/* our own subtransaction at pre-commit */
static StringInfo deferred = NULL;	/* records for the notifier, pushed at commit */

static void
events_reset(void)
{
	singles = NULL;
	nsingles = 0;
	groups = NULL;
	coarse = false;
	wakes = NULL;
	last_group = NULL;
	last_wake = NULL;
}

static HTAB *
new_table(const char *name, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	MemSet(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = TopTransactionContext;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
group_add(const EventKey *key, int64 count)
{
	bool		found;
	TaskEvent  *e = hash_search(groups, key, HASH_ENTER, &found);

	e->task_id = found ? e->task_id + count : count;
	last_group = e;
}

/* A task became ready: count it for its signature, or for the agent it is reserved for. */
static void
note_wake(int32 sig, const char *agent, int level)
{
	WakeKey		wk;
	bool		found;

	if (last_wake && last_wake->key.level == level && last_wake->key.sig == sig &&
		strcmp(last_wake->key.agent, agent ? agent : "") == 0)
	{
		last_wake->count++;
		return;
	}
	MemSet(&wk, 0, sizeof(wk));
	wk.sig = sig;
	if (agent)
		strlcpy(wk.agent, agent, sizeof(wk.agent));
	wk.level = level;
	if (wakes == NULL)
		wakes = new_table("dispatch agent wake-ups", sizeof(WakeKey), sizeof(Wake));
	last_wake = hash_search(wakes, &wk, HASH_ENTER, &found);
	last_wake->count = found ? last_wake->count + 1 : 1;
}

/* Too many single events: from now on, count them per (tenant, run, state). */
static void
overflow_to_groups(void)
{
	groups = new_table("dispatch task events", sizeof(EventKey), sizeof(TaskEvent));
	for (int i = 0; i < nsingles; i++)
		group_add(&singles[i].key, 1);
	nsingles = 0;
}

/*
 * Too many runs as well (a bulk INSERT makes one run per task): count per
 * (tenant, state) from now on.
 */
static void
coarsen_groups(void)
{
	HTAB	   *old = groups;
	HASH_SEQ_STATUS seq;
	TaskEvent  *e;

	groups = new_table("dispatch task events", sizeof(EventKey), sizeof(TaskEvent));
	coarse = true;
	hash_seq_init(&seq, old);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		EventKey	key = e->key;

		MemSet(&key.run_id, 0, sizeof(key.run_id));
		key.has_run = false;
		group_add(&key, e->task_id);
	}
	hash_destroy(old);
}

/* ---- transaction boundaries --------------------------------------------- */

static void send_all(void);

static void
events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (singles || groups || wakes)
				send_all();
			events_reset();
			break;
		case XACT_EVENT_COMMIT:
			/* Durable now: hand the records over (this cannot fail). */
			if (deferred)
				(void) notifier_push(deferred->data, deferred->len);
			deferred = NULL;
			events_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* A prepared transaction cannot NOTIFY: its changes go unannounced. */
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			deferred = NULL;
			events_reset();
			break;
		default:
			break;
	}
}

/*
 * Subtransaction end: an abort drops the notes made inside it; a commit hands
 * them to the parent.  Notes of inner levels are a suffix of the singles.
 */
static void
relevel_table(HTAB *table, Size entrysize, Size level_off, Size count_off, int level, bool keep)
{
	HASH_SEQ_STATUS seq;
	char	   *entry;
	List	   *moved = NIL;
	ListCell   *lc;

	hash_seq_init(&seq, table);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (*(int *) (entry + level_off) < level)
			continue;
		if (keep)
		{
			char	   *copy = palloc(entrysize);

			memcpy(copy, entry, entrysize);
			moved = lappend(moved, copy);
		}
		hash_search(table, entry, HASH_REMOVE, NULL);
	}
	foreach(lc, moved)
	{
		char	   *copy = lfirst(lc);
		bool		found;
		char	   *e;

		*(int *) (copy + level_off) = level - 1;
		e = hash_search(table, copy, HASH_ENTER, &found);
		*(int64 *) (e + count_off) = (found ? *(int64 *) (e + count_off) : 0) + *(int64 *) (copy + count_off);
	}
	list_free_deep(moved);
}

static void
events_subxact_callback(SubXactEvent event, SubTransactionId my, SubTransactionId parent, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	bool		keep;

	if (sending)
		return;
	last_group = NULL;
	last_wake = NULL;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		keep = true;
	else if (event == SUBXACT_EVENT_ABORT_SUB)
		keep = false;
	else
		return;

	if (keep)
	{
		for (int i = nsingles - 1; i >= 0 && singles[i].key.level >= level; i--)
			singles[i].key.level = level - 1;
	}
	else
	{
		while (nsingles > 0 && singles[nsingles - 1].key.level >= level)
			nsingles--;
	}
	if (groups)
		relevel_table(groups, sizeof(TaskEvent), offsetof(TaskEvent, key.level),
					  offsetof(TaskEvent, task_id), level, keep);
	if (wakes)
		relevel_table(wakes, sizeof(Wake), offsetof(Wake, key.level),
					  offsetof(Wake, count), level, keep);
}

/* ---- noting ------------------------------------------------------------- */

/* Does the last group counted have this key?  Bulk writes repeat one key. */
static bool
same_group(const TaskEvent *g, const char *state, const char *tenant,
		   const pg_uuid_t *run_id, int level)
{
	return g != NULL && g->key.level == level && strcmp(g->key.state, state) == 0 &&
		strcmp(g->key.tenant, tenant) == 0 && g->key.has_run == (run_id != NULL) &&
		(run_id == NULL || memcmp(&g->key.run_id, run_id, sizeof(pg_uuid_t)) == 0);
}

void
events_note_task(int64 task_id, const char *state, const char *tenant,
				 const pg_uuid_t *run_id, int32 sig, const char *reserved_for)
{
	EventKey	key;
	int			level;

	if (!dispatch_notify || IsParallelWorker())
		return;
	if (!callbacks_registered)
	{
		RegisterXactCallback(events_xact_callback, NULL);
		RegisterSubXactCallback(events_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (tenant == NULL)
		tenant = "";
	if (coarse)
		run_id = NULL;
	level = GetCurrentTransactionNestLevel();

	if (strcmp(state, "ready") == 0)
		note_wake(reserved_for ? 0 : sig, reserved_for, level);

	if (groups && same_group(last_group, state, tenant, run_id, level))
	{
		last_group->task_id++;
		return;
	}

	/* Hash keys are compared as bytes: clear the padding. */
	MemSet(&key, 0, sizeof(key));
	strlcpy(key.tenant, tenant, sizeof(key.tenant));
	strlcpy(key.state, state, sizeof(key.state));
	if (run_id)
	{
		key.run_id = *run_id;
		key.has_run = true;
	}
	key.level = level;

	if (singles == NULL && groups == NULL)
	{
		maxsingles = dispatch_notify_max_tasks;
		singles = MemoryContextAlloc(TopTransactionContext, sizeof(TaskEvent) * Max(maxsingles, 1));
	}
	if (groups == NULL && nsingles >= maxsingles)
		overflow_to_groups();
	if (groups && !coarse && hash_get_num_entries(groups) >= Max(maxsingles, 1))
	{
		coarsen_groups();
		MemSet(&key.run_id, 0, sizeof(key.run_id));
		key.has_run = false;
	}
	if (groups)
		group_add(&key, 1);
	else
	{
		singles[nsingles].key = key;
		singles[nsingles].task_id = task_id;
		nsingles++;
	}
}

/* ---- sending ------------------------------------------------------------ */

char *
events_agent_channel(const char *agent_id)
{
	const char *prefix = "dispatch_agent_";
	size_t		room = NAMEDATALEN - 1 - strlen(prefix);
	char		hex[33];
	const char *err = NULL;

	if (strlen(agent_id) <= room)
		return psprintf("%s%s", prefix, agent_id);
	if (!pg_md5_hash(agent_id, strlen(agent_id), hex, &err))
		elog(ERROR, "dispatch: could not hash agent id: %s", err ? err : "out of memory");
	return psprintf("%s%s", prefix, hex);
}

/* dispatch.agent_channel(agent_id text) RETURNS text */
Datum
dispatch_agent_channel(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(events_agent_channel(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/* One record for the notifier (notifier.c describes the format). */
static void
defer_record(char kind, const void *body, uint32 len)
{
	appendBinaryStringInfo(deferred, (const char *) &len, 4);
	appendStringInfoChar(deferred, kind);
	appendBinaryStringInfo(deferred, body, len);
}

static void
emit_event(const char *payload)
{
	if (deferred)
		defer_record('E', payload, strlen(payload));
	else
		Async_Notify("dispatch_events", payload);
}

static void
append_common(StringInfo buf, const EventKey *k)
{
	appendStringInfoString(buf, "\"state\":");
	escape_json(buf, k->state);
	appendStringInfoString(buf, ",\"tenant\":");
	escape_json(buf, k->tenant);
	if (k->has_run)
		appendStringInfo(buf, ",\"run_id\":\"%s\"",
						 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) &k->run_id))));
}


static void
send_task_events(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < nsingles; i++)
	{
		resetStringInfo(&buf);
		appendStringInfo(&buf, "{\"task_id\":" INT64_FORMAT ",", singles[i].task_id);
		append_common(&buf, &singles[i].key);
		appendStringInfoChar(&buf, '}');
		emit_event(buf.data);
	}
	if (groups)
	{
		HASH_SEQ_STATUS seq;
		TaskEvent  *e;

		hash_seq_init(&seq, groups);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			resetStringInfo(&buf);
			appendStringInfoChar(&buf, '{');
			append_common(&buf, &e->key);
			appendStringInfo(&buf, ",\"count\":" INT64_FORMAT "}", e->task_id);
			emit_event(buf.data);
		}
	}
	pfree(buf.data);
}

static SPIPlanPtr wake_plan = NULL;

/* Which agents to wake for n newly ready tasks of each signature. */
static void
choose_agents(HTAB *woken, int nsigs, Datum *sigs, Datum *counts)
{
	Oid			types[2] = {INT4ARRAYOID, INT4ARRAYOID};
	Datum		values[2];
	Oid			save_user;
	int			save_sec;

	values[0] = PointerGetDatum(construct_array(sigs, nsigs, INT4OID, 4, true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(counts, nsigs, INT4OID, 4, true, TYPALIGN_INT));
	as_owner_begin(&save_user, &save_sec);
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (wake_plan == NULL)
	{
		const char *sql =
			"SELECT g.agent_id, sum(q.n)::int8 FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS q(sig, n) "
			"JOIN dispatch.signatures AS s ON s.sig_id = q.sig "
			"CROSS JOIN LATERAL ("
			"  (SELECT a.agent_id FROM dispatch.agents AS a"
			"    WHERE a.status = 'idle' AND a.capacity > a.running"
			"      AND a.capabilities @> s.requires AND a.clearance >= s.sensitivity"
			"      AND (s.region IS NULL OR a.region = s.region)"
			"    ORDER BY a.idle_since LIMIT q.n)"
			"  UNION ALL"
			"  (SELECT a.agent_id FROM dispatch.agents AS a"
			"    WHERE a.status = 'busy' AND a.capacity > a.running"
			"      AND a.capabilities @> s.requires AND a.clearance >= s.sensitivity"
			"      AND (s.region IS NULL OR a.region = s.region)"
			"    LIMIT q.n)"
			"  LIMIT q.n) AS g "
			"GROUP BY g.agent_id";
		SPIPlanPtr	p = SPI_prepare(sql, 2, types);

		if (p == NULL)
			elog(ERROR, "dispatch: could not prepare the agent wake-up query");
		SPI_keepplan(p);
		wake_plan = p;
	}
	if (SPI_execute_plan(wake_plan, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not choose agents to wake");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		char	   *agent = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		int64		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		char		key[QM_TENANT_LEN];
		bool		found;
		Woken	   *w;

		MemSet(key, 0, sizeof(key));
		strlcpy(key, agent, sizeof(key));
		w = hash_search(woken, key, HASH_ENTER, &found);
		w->count = found ? w->count + n : n;
	}
	SPI_finish();
	PopActiveSnapshot();
	as_owner_end(save_user, save_sec);
}

void
events_send_wakes(int n, const int32 *sig_in, const int64 *count_in, const char **agent_in)
{
	HASHCTL		ctl;
	HTAB	   *woken;
	HASH_SEQ_STATUS seq;
	Woken	   *r;
	Datum	   *sigs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *counts = palloc(sizeof(Datum) * Max(n, 1));
	int			nsigs = 0;

	MemSet(&ctl, 0, sizeof(ctl));
	ctl.keysize = QM_TENANT_LEN;
	ctl.entrysize = sizeof(Woken);
	ctl.hcxt = CurrentMemoryContext;
	woken = hash_create("dispatch woken agents", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	for (int i = 0; i < n; i++)
	{
		if (agent_in[i] != NULL)
		{
			char		key[QM_TENANT_LEN];
			bool		found;

			MemSet(key, 0, sizeof(key));
			strlcpy(key, agent_in[i], sizeof(key));
			r = hash_search(woken, key, HASH_ENTER, &found);
			r->count = found ? r->count + count_in[i] : count_in[i];
		}
		else
		{
			sigs[nsigs] = Int32GetDatum(sig_in[i]);
			/* Never wake more agents than there is work, nor too many at once. */
			counts[nsigs] = Int32GetDatum((int32) Min(count_in[i], 1000));
			nsigs++;
		}
	}
	if (nsigs > 0 && OidIsValid(get_namespace_oid("dispatch", true)))
	{
		/*
		 * A wake-up is a hint: failing to choose agents must not fail the
		 * commit, so the query runs in a subtransaction and an error in it
		 * becomes a warning.
		 */
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			choose_agents(woken, nsigs, sigs, counts);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			ereport(WARNING,
					(errmsg("dispatch: could not choose agents to wake: %s", edata->message),
					 errhint("New work is not announced on dispatch_agent_* channels; agents still find it when they ask.")));
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}

	hash_seq_init(&seq, woken);
	while ((r = hash_seq_search(&seq)) != NULL)
		Async_Notify(events_agent_channel(r->agent),
					 psprintf("{\"ready\":" INT64_FORMAT "}", r->count));
	hash_destroy(woken);
}

/* This transaction's wake-ups: sent now, or recorded for the notifier. */
static void
send_wake_ups(void)
{
	HASH_SEQ_STATUS seq;
	Wake	   *w;
	long		n = hash_get_num_entries(wakes);
	int32	   *sigs = palloc(sizeof(int32) * Max(n, 1));
	int64	   *counts = palloc(sizeof(int64) * Max(n, 1));
	const char **agents = palloc(sizeof(char *) * Max(n, 1));
	int			k = 0;

	hash_seq_init(&seq, wakes);
	while ((w = hash_seq_search(&seq)) != NULL)
	{
		int32		count = (int32) Min(w->count, PG_INT32_MAX);

		if (deferred && w->key.agent[0] != '\0')
		{
			StringInfoData body;

			initStringInfo(&body);
			appendBinaryStringInfo(&body, (const char *) &count, 4);
			appendStringInfoString(&body, w->key.agent);
			defer_record('A', body.data, body.len);
		}
		else if (deferred)
		{
			char		body[8];

			memcpy(body, &w->key.sig, 4);
			memcpy(body + 4, &count, 4);
			defer_record('W', body, 8);
		}
		else
		{
			sigs[k] = w->key.sig;
			counts[k] = w->count;
			agents[k++] = w->key.agent[0] != '\0' ? w->key.agent : NULL;
		}
	}
	if (k > 0)
		events_send_wakes(k, sigs, counts, agents);
}

static void
send_all(void)
{
	if (!dispatch_notify)
		return;
	/* With a notifier serving this database, records go to it at commit. */
	if (notifier_available())
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		deferred = makeStringInfo();
		MemoryContextSwitchTo(old);
	}
	sending = true;
	PG_TRY();
	{
		send_task_events();
		if (wakes)
			send_wake_ups();
	}
	PG_FINALLY();
	{
		sending = false;
	}
	PG_END_TRY();
}
