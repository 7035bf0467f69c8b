/*-------------------------------------------------------------------------
 *
 * match.c
 *		Capability signatures (interning, and the set each agent satisfies)
 *		and the personality match between an agent and a task.
 *
 * A signature is a distinct (sorted requires, sensitivity, region).  The
 * ready index is keyed by signature first, so an agent only ever descends
 * queues it is able to serve: capability, clearance and region are all hard
 * filters applied before any task is read.
 *
 * Each session caches the signature catalog (reloaded when dispatch.signatures
 * changes: a statement trigger sends a relcache invalidation) and, per agent,
 * the list of signatures it satisfies.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "match.h"

/* ---- text arrays -------------------------------------------------------- */

static int
cstring_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Elements of a 1-D text[] as sorted, distinct C strings. */
static char **
text_array_sorted(ArrayType *arr, int *n, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	char	  **out;
	int			k = 0;

	if (arr == NULL || ARR_NDIM(arr) == 0)
	{
		*n = 0;
		return NULL;
	}
	if (ARR_NDIM(arr) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
	out = palloc(sizeof(char *) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL elements", what),
					 errhint("Remove the NULL from the array.")));
		out[i] = TextDatumGetCString(elems[i]);
		if (out[i][0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain empty strings", what),
					 errhint("Name each capability with a non-empty string.")));
	}
	qsort(out, count, sizeof(char *), cstring_cmp);
	for (int i = 0; i < count; i++)
		if (k == 0 || strcmp(out[k - 1], out[i]) != 0)
			out[k++] = out[i];
	*n = k;
	return out;
}

static ArrayType *
text_array_build(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT);
}

ArrayType *
text_array_canonical(ArrayType *arr, const char *what)
{
	int			n;
	char	  **items = text_array_sorted(arr, &n, what);

	return text_array_build(items, n);
}

/* ---- the signature catalog, per session --------------------------------- */

typedef struct SigDef
{
	int32		sig_id;
	int			nreq;
	char	  **requires;		/* sorted by strcmp */
	int32		sensitivity;
	char	   *region;			/* NULL: any */
} SigDef;

static MemoryContext sig_cxt = NULL;
static SigDef *sigdefs = NULL;
static int	nsigdefs = 0;
static bool sigs_valid = false;
static uint64 sigs_generation = 0;	/* catalog generation they were loaded for */
static uint64 sigs_version = 0;		/* bumped by every reload: agent caches key on it */
static bool sig_callback_registered = false;

static void
sig_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == dispatch_catalog_cached()->signatures)
		sigs_valid = false;
}

static void
sigs_load(void)
{
	DispatchCatalog *cat = dispatch_catalog();
	MemoryContext old;

	if (!sig_callback_registered)
	{
		CacheRegisterRelcacheCallback(sig_inval, (Datum) 0);
		sig_callback_registered = true;
	}
	if (sigs_valid && sigs_generation == cat->generation)
		return;
	if (sig_cxt == NULL)
		sig_cxt = AllocSetContextCreate(TopMemoryContext, "dispatch signatures",
										ALLOCSET_SMALL_SIZES);
	MemoryContextReset(sig_cxt);
	sigdefs = NULL;
	nsigdefs = 0;

	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute("SELECT sig_id, requires, sensitivity, region FROM dispatch.signatures ORDER BY sig_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.signatures");
	old = MemoryContextSwitchTo(sig_cxt);
	sigdefs = palloc0(sizeof(SigDef) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		SigDef	   *s = &sigdefs[nsigdefs++];
		Datum		region;

		s->sig_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		s->requires = text_array_sorted(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)),
										&s->nreq, "requires");
		s->sensitivity = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		region = SPI_getbinval(tup, desc, 4, &isnull);
		s->region = isnull ? NULL : TextDatumGetCString(region);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	PopActiveSnapshot();
	sigs_valid = true;
	sigs_generation = cat->generation;
	sigs_version++;
}

static bool
same_requires(const SigDef *s, char **req, int nreq)
{
	if (s->nreq != nreq)
		return false;
	for (int i = 0; i < nreq; i++)
		if (strcmp(s->requires[i], req[i]) != 0)
			return false;
	return true;
}

static int32
sig_lookup(char **req, int nreq, int32 sensitivity, const char *region)
{
	for (int i = 0; i < nsigdefs; i++)
	{
		SigDef	   *s = &sigdefs[i];

		if (s->sensitivity == sensitivity && same_requires(s, req, nreq) &&
			((s->region == NULL && region == NULL) ||
			 (s->region && region && strcmp(s->region, region) == 0)))
			return s->sig_id;
	}
	return -1;
}

int32
sig_intern(ArrayType *requires, int32 sensitivity, text *region, ArrayType **canonical)
{
	int			nreq;
	char	  **req = text_array_sorted(requires, &nreq, "requires");
	char	   *reg = region ? text_to_cstring(region) : NULL;
	int32		sig;

	*canonical = text_array_build(req, nreq);
	sigs_load();
	sig = sig_lookup(req, nreq, sensitivity, reg);
	if (sig >= 0)
		return sig;

	/*
	 * A new signature.  ON CONFLICT makes a concurrent insert of the same one
	 * wait for us and then find ours; the relcache invalidation sent by the
	 * table's statement trigger tells every session to reload.
	 */
	{
		Oid			types[3] = {TEXTARRAYOID, INT4OID, TEXTOID};
		Datum		values[3];
		char		nulls[3] = {' ', ' ', reg ? ' ' : 'n'};
		bool		isnull;
		Oid			save_user;
		int			save_sec;

		values[0] = PointerGetDatum(*canonical);
		values[1] = Int32GetDatum(sensitivity);
		values[2] = reg ? CStringGetTextDatum(reg) : (Datum) 0;
		as_owner_begin(&save_user, &save_sec);
		SPI_connect();
		if (SPI_execute_with_args("INSERT INTO dispatch.signatures (requires, sensitivity, region) "
								  "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", 3, types, values, nulls,
								  false, 0) != SPI_OK_INSERT)
			elog(ERROR, "dispatch: could not insert a signature");
		if (SPI_execute_with_args("SELECT sig_id FROM dispatch.signatures "
								  "WHERE requires = $1 AND sensitivity = $2 AND region IS NOT DISTINCT FROM $3",
								  3, types, values, nulls, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "dispatch: could not find a signature just inserted");
		sig = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		as_owner_end(save_user, save_sec);
		sigs_valid = false;
	}
	return sig;
}

/* ---- each agent's signature set ----------------------------------------- */

typedef struct AgentSigs
{
	char		agent_id[NAMEDATALEN * 4];	/* key (agent ids are <= 200 bytes) */
	uint64		version;		/* sigs_version it was computed for */
	uint32		fingerprint;	/* of capabilities, clearance, region */
	int			nsigs;
	int32	   *sigs;
} AgentSigs;

static HTAB *agent_cache = NULL;

static uint32
fingerprint(ArrayType *caps, int32 clearance, const char *region)
{
	uint32		h = hash_bytes((unsigned char *) caps, VARSIZE(caps));

	h = hash_combine(h, (uint32) clearance);
	if (region)
		h = hash_combine(h, hash_bytes((const unsigned char *) region, strlen(region)));
	return h;
}

static bool
satisfies(const SigDef *s, char **caps, int ncaps, int32 clearance, const char *region)
{
	int			j = 0;

	if (s->sensitivity > clearance)
		return false;
	if (s->region && (region == NULL || strcmp(s->region, region) != 0))
		return false;
	/* Both sorted by strcmp: one merge pass. */
	for (int i = 0; i < s->nreq; i++)
	{
		while (j < ncaps && strcmp(caps[j], s->requires[i]) < 0)
			j++;
		if (j == ncaps || strcmp(caps[j], s->requires[i]) != 0)
			return false;
	}
	return true;
}

int
agent_signatures(const char *agent_id, ArrayType *capabilities, int32 clearance,
				 const char *region, const int32 **sigs)
{
	char		key[NAMEDATALEN * 4];
	AgentSigs  *a;
	bool		found;
	uint32		fp;

	sigs_load();
	if (agent_cache == NULL)
	{
		HASHCTL		ctl;

		MemSet(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(AgentSigs);
		ctl.hcxt = TopMemoryContext;
		agent_cache = hash_create("dispatch agent signatures", 64, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	MemSet(key, 0, sizeof(key));
	strlcpy(key, agent_id, sizeof(key));
	fp = fingerprint(capabilities, clearance, region);
	a = hash_search(agent_cache, key, HASH_ENTER, &found);
	if (!found)
		a->sigs = NULL;
	if (!found || a->version != sigs_version || a->fingerprint != fp)
	{
		int			ncaps;
		char	  **caps = text_array_sorted(capabilities, &ncaps, "capabilities");
		int32	   *out = MemoryContextAlloc(TopMemoryContext, sizeof(int32) * Max(nsigdefs, 1));
		int			n = 0;

		for (int i = 0; i < nsigdefs; i++)
			if (satisfies(&sigdefs[i], caps, ncaps, clearance, region))
				out[n++] = sigdefs[i].sig_id;
		if (a->sigs)
			pfree(a->sigs);
		a->sigs = out;
		a->nsigs = n;
		a->version = sigs_version;
		a->fingerprint = fp;
	}
	*sigs = a->sigs;
	return a->nsigs;
}

bool
agent_satisfies(const int32 *sigs, int nsigs, int32 sig)
{
	for (int i = 0; i < nsigs; i++)
		if (sigs[i] == sig)
			return true;
	return false;
}

/* ---- personality -------------------------------------------------------- */

/*
 * The elements of a real[] without NULLs.  (ARR_DATA_PTR would do, but it
 * trips -Wsign-compare in PostgreSQL 15's headers.)
 */
float4 *
real_array_data(ArrayType *arr)
{
	Assert(!ARR_HASNULL(arr));
	return (float4 *) ((char *) arr + ARR_OVERHEAD_NONULLS(ARR_NDIM(arr)));
}

static float4 *
real_array(ArrayType *arr, int *n)
{
	if (arr == NULL || ARR_NDIM(arr) != 1 || array_contains_nulls(arr))
	{
		*n = 0;
		return NULL;
	}
	*n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	return real_array_data(arr);
}

double
personality_match(const Policy *p, ArrayType *traits, ArrayType *profile,
				  bool *has_match, bool *violates)
{
	int			na,
				nt;
	float4	   *a = real_array(traits, &na);
	float4	   *t = real_array(profile, &nt);
	int			n = Min(Min(na, nt), p->ntraits);
	double		dist = 0,
				norm = 0;

	*has_match = false;
	*violates = false;
	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++)
	{
		double		d = (double) a[i] - (double) t[i];

		if (p->trait_is_max[i] && a[i] > t[i])
			*violates = true;
		dist += p->trait_weights[i] * d * d;
		norm += p->trait_weights[i];
	}
	*has_match = norm > 0;
	if (norm <= 0)
		return 0;
	/* Traits live in [0, 1]: the largest weighted distance is sqrt(norm). */
	return Max(0.0, 1.0 - sqrt(dist) / sqrt(norm));
}
