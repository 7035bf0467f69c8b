/*-------------------------------------------------------------------------
 *
 * kinds.c
 *		The running average duration of each kind of task, as the row
 *		trigger needs it: the cost of a task submitted without est_duration.
 *
 * The worker keeps dispatch.kinds.avg_seconds (dispatch.update_kind_stats);
 * each session caches the table and drops the cache when it changes (the
 * table's statement trigger sends a relcache invalidation).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "kinds.h"

typedef struct KindEnt
{
	char		kind[201];		/* key; kinds are at most 200 bytes */
	double		avg_seconds;
} KindEnt;

static HTAB *kinds = NULL;
static bool kinds_valid = false;
static Oid	kinds_relid = InvalidOid;
static uint64 kinds_generation = 0;

/*
 * Only marks the cache stale: invalidations are also processed while the
 * cache is being loaded (the SPI query accepts them), and freeing it then
 * would pull the table from under the load.
 */
static void
kinds_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == kinds_relid)
		kinds_valid = false;
}

static void
kinds_load(void)
{
	static bool registered = false;
	DispatchCatalog *cat = dispatch_catalog();
	HASHCTL		ctl;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(kinds_inval, (Datum) 0);
		registered = true;
	}
	if (kinds && kinds_valid && kinds_generation == cat->generation)
		return;
	if (kinds)
		hash_destroy(kinds);
	kinds_relid = get_relname_relid("kinds", cat->namespace);
	MemSet(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((KindEnt *) 0)->kind);
	ctl.entrysize = sizeof(KindEnt);
	ctl.hcxt = TopMemoryContext;
	kinds = hash_create("dispatch kinds", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	kinds_generation = cat->generation;
	/* Set before loading: an invalidation arriving during the load clears it again. */
	kinds_valid = true;

	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute("SELECT kind, avg_seconds FROM dispatch.kinds WHERE avg_seconds > 0", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.kinds");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		char		key[201];
		KindEnt    *k;

		MemSet(key, 0, sizeof(key));
		strlcpy(key, TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)),
				sizeof(key));
		k = hash_search(kinds, key, HASH_ENTER, NULL);
		k->avg_seconds = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	PopActiveSnapshot();
}

double
kind_avg_seconds(const char *kind)
{
	char		key[201];
	KindEnt    *k;

	kinds_load();
	MemSet(key, 0, sizeof(key));
	strlcpy(key, kind, sizeof(key));
	k = hash_search(kinds, key, HASH_FIND, NULL);
	return k ? k->avg_seconds : -1;
}
