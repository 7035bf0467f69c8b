/*-------------------------------------------------------------------------
 *
 * policy.c
 *		The scoring policy: parsing and validating a weights document, and
 *		caching the active version for the claim path.
 *
 * Every weight is in seconds of head start, so an operator reads "affinity is
 * worth 30 s of queueing".  A document names only what it changes; the rest
 * keeps its default.  Unknown keys and out-of-range values are refused.  The
 * cached copy is dropped when dispatch.policies changes (a statement trigger
 * sends a relcache invalidation for it, see dispatch_invalidate_trigger).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"

#include "dispatch.h"
#include "policy.h"

PG_FUNCTION_INFO_V1(dispatch_policy_normalize);

static const char *const prio_names[NPRIO] = {"critical", "high", "normal", "low"};

int
priority_index(const char *priority)
{
	for (int i = 0; i < NPRIO; i++)
		if (strcmp(priority, prio_names[i]) == 0)
			return i;
	return -1;
}

const char *
priority_name(int idx)
{
	return prio_names[idx];
}

double
policy_bonus(const Policy *p, int prio)
{
	if (prio == PRIO_CRITICAL && p->critical_strict)
		return 1e9;
	return p->priority_bonus[prio];
}

static void
policy_defaults(Policy *p)
{
	MemSet(p, 0, sizeof(Policy));
	p->priority_bonus[PRIO_CRITICAL] = 3600;
	p->priority_bonus[PRIO_HIGH] = 600;
	p->priority_bonus[PRIO_NORMAL] = 60;
	p->priority_bonus[PRIO_LOW] = 0;
	p->critical_strict = false;
	p->default_cost = 60;
	p->urgent_slack = 0.5;
	p->urgent_weight = 600;
	p->affinity_weight = 30;
	p->affinity_wait = 30;
	p->match_weight = 60;
	p->fair_weight = 10.0;
	p->max_age_credit = 300;
	p->fair_candidates = 4;
	p->expire_past_deadline = false;
	p->assign_hold = 60;
	for (int i = 0; i < NPRIO; i++)
		p->shed_after[i] = -1;
	p->ntraits = 3;
	strlcpy(p->traits[0], "risk", NAMEDATALEN);
	strlcpy(p->traits[1], "latency_tolerance", NAMEDATALEN);
	strlcpy(p->traits[2], "exploration", NAMEDATALEN);
	for (int i = 0; i < p->ntraits; i++)
		p->trait_weights[i] = 1.0;
}

/* ---- parsing ------------------------------------------------------------ */

static void
bad_value(const char *key, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for policy key \"%s\"", key),
			 errdetail("It must be %s.", what),
			 errhint("See the policy keys in doc/reference.md (dispatch.set_policy).")));
}

static double
num_value(const char *key, JsonbValue *v, double lo, double hi, const char *what)
{
	double		d;

	if (v->type != jbvNumeric)
		bad_value(key, what);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!(d >= lo && d <= hi))
		bad_value(key, what);
	return d;
}

static bool
bool_value(const char *key, JsonbValue *v)
{
	if (v->type != jbvBool)
		bad_value(key, "true or false");
	return v->val.boolean;
}

/* Calls fn(key, value) for each key of an object; errors when v is not one. */
typedef void (*member_fn) (Policy *p, const char *key, JsonbValue *v);

static void
for_each_member(Policy *p, const char *where, JsonbContainer *c, member_fn fn)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	if (!JsonContainerIsObject(c))
		bad_value(where, "a JSON object");
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		fn(p, key, &v);
	}
}

static JsonbContainer *
container_of(const char *key, JsonbValue *v)
{
	if (v->type != jbvBinary)
		bad_value(key, "a JSON object or array");
	return v->val.binary.data;
}

static void
bonus_member(Policy *p, const char *key, JsonbValue *v)
{
	int			prio = priority_index(key);

	if (prio < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown priority \"%s\" in policy key \"priority_bonus\"", key),
				 errhint("The priorities are critical, high, normal and low.")));
	p->priority_bonus[prio] = num_value("priority_bonus", v, -1e7, 1e7, "a number of seconds between -10000000 and 10000000");
}

static void
shed_member(Policy *p, const char *key, JsonbValue *v)
{
	int			prio = priority_index(key);

	if (prio < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown priority \"%s\" in policy key \"shed_after\"", key),
				 errhint("The priorities are critical, high, normal and low.")));
	if (prio == PRIO_CRITICAL && v->type != jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("critical work is never shed"),
				 errhint("Leave shed_after.critical out or set it to null.")));
	p->shed_after[prio] = v->type == jbvNull ? -1 :
		num_value("shed_after", v, 1, 1e8, "a number of seconds of at least 1, or null");
}

/* traits, trait_weights, trait_max are arrays over the same dimensions. */
static void
traits_value(Policy *p, const char *key, JsonbValue *v, int which)
{
	JsonbContainer *c = container_of(key, v);
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;
	bool		seen_max[POLICY_MAX_TRAITS] = {0};

	if (!JsonContainerIsArray(c))
		bad_value(key, "a JSON array");
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (which == 0)
		{
			if (e.type != jbvString || e.val.string.len == 0 || e.val.string.len >= NAMEDATALEN)
				bad_value(key, "an array of trait names (non-empty strings)");
			if (n >= POLICY_MAX_TRAITS)
				bad_value(key, "an array of at most 16 trait names");
			strlcpy(p->traits[n], pnstrdup(e.val.string.val, e.val.string.len), NAMEDATALEN);
			p->trait_weights[n] = 1.0;
			p->trait_is_max[n] = false;
		}
		else if (which == 1)
		{
			if (n >= POLICY_MAX_TRAITS)
				bad_value(key, "an array with one weight per trait");
			p->trait_weights[n] = num_value(key, &e, 0, 1e6, "an array of weights between 0 and 1000000");
		}
		else
		{
			char	   *name;
			int			i;

			if (e.type != jbvString)
				bad_value(key, "an array of trait names");
			name = pnstrdup(e.val.string.val, e.val.string.len);
			for (i = 0; i < p->ntraits; i++)
				if (strcmp(p->traits[i], name) == 0)
					break;
			if (i == p->ntraits)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("unknown trait \"%s\" in policy key \"trait_max\"", name),
						 errhint("trait_max names dimensions listed in \"traits\".")));
			seen_max[i] = true;
		}
		n++;
	}
	if (which == 0)
		p->ntraits = n;
	else if (which == 1 && n != p->ntraits)
		bad_value(key, "an array with exactly one weight per trait");
	else if (which == 2)
		for (int i = 0; i < p->ntraits; i++)
			p->trait_is_max[i] = seen_max[i];
}

/* Keys that depend on "traits" are applied after it, whatever their order. */
typedef struct Deferred
{
	JsonbValue	weights;
	JsonbValue	max;
	bool		has_weights;
	bool		has_max;
} Deferred;

static Deferred *deferred;

static void
top_member(Policy *p, const char *key, JsonbValue *v)
{
	if (strcmp(key, "priority_bonus") == 0)
		for_each_member(p, key, container_of(key, v), bonus_member);
	else if (strcmp(key, "critical_strict") == 0)
		p->critical_strict = bool_value(key, v);
	else if (strcmp(key, "default_cost") == 0)
		p->default_cost = num_value(key, v, 0.001, 1e7, "a number of seconds greater than 0");
	else if (strcmp(key, "urgent_slack") == 0)
		p->urgent_slack = num_value(key, v, 0, 100, "a number between 0 and 100 (a fraction of est_duration)");
	else if (strcmp(key, "urgent_weight") == 0)
		p->urgent_weight = num_value(key, v, 0, 1e8, "a number of seconds between 0 and 100000000");
	else if (strcmp(key, "affinity_weight") == 0)
		p->affinity_weight = num_value(key, v, 0, 1e8, "a number of seconds between 0 and 100000000");
	else if (strcmp(key, "affinity_wait") == 0)
		p->affinity_wait = num_value(key, v, 0, 1e7, "a number of seconds between 0 and 10000000");
	else if (strcmp(key, "match_weight") == 0)
		p->match_weight = num_value(key, v, 0, 1e8, "a number of seconds between 0 and 100000000");
	else if (strcmp(key, "fair_weight") == 0)
		p->fair_weight = num_value(key, v, 0, 1e6, "a number between 0 and 1000000");
	else if (strcmp(key, "max_age_credit") == 0)
		p->max_age_credit = num_value(key, v, 0, 1e8, "a number of seconds between 0 and 100000000");
	else if (strcmp(key, "fair_candidates") == 0)
		p->fair_candidates = (int) num_value(key, v, 1, 64, "a whole number between 1 and 64");
	else if (strcmp(key, "past_deadline") == 0)
	{
		char	   *s = v->type == jbvString ? pnstrdup(v->val.string.val, v->val.string.len) : "";

		if (strcmp(s, "run") == 0)
			p->expire_past_deadline = false;
		else if (strcmp(s, "expire") == 0)
			p->expire_past_deadline = true;
		else
			bad_value(key, "\"run\" (run late, counted as a miss) or \"expire\"");
	}
	else if (strcmp(key, "assign_hold") == 0)
		p->assign_hold = num_value(key, v, 1, 1e7, "a number of seconds of at least 1");
	else if (strcmp(key, "shed_after") == 0)
		for_each_member(p, key, container_of(key, v), shed_member);
	else if (strcmp(key, "traits") == 0)
		traits_value(p, key, v, 0);
	else if (strcmp(key, "trait_weights") == 0)
	{
		deferred->weights = *v;
		deferred->has_weights = true;
	}
	else if (strcmp(key, "trait_max") == 0)
	{
		deferred->max = *v;
		deferred->has_max = true;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown policy key \"%s\"", key),
				 errhint("The keys are priority_bonus, critical_strict, default_cost, urgent_slack, urgent_weight, affinity_weight, affinity_wait, match_weight, fair_weight, max_age_credit, fair_candidates, past_deadline, assign_hold, shed_after, traits, trait_weights and trait_max.")));
}

static void
policy_parse(Jsonb *jb, Policy *p)
{
	Deferred	d;

	MemSet(&d, 0, sizeof(d));
	deferred = &d;
	policy_defaults(p);
	for_each_member(p, "weights", &jb->root, top_member);
	if (d.has_weights)
		traits_value(p, "trait_weights", &d.weights, 1);
	if (d.has_max)
		traits_value(p, "trait_max", &d.max, 2);
}

/* The whole policy, every key, as a jsonb document. */
static Jsonb *
policy_to_jsonb(const Policy *p)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"priority_bonus\": {\"critical\": %g, \"high\": %g, \"normal\": %g, \"low\": %g}",
					 p->priority_bonus[0], p->priority_bonus[1], p->priority_bonus[2], p->priority_bonus[3]);
	appendStringInfo(&s, ", \"critical_strict\": %s, \"default_cost\": %g, \"urgent_slack\": %g"
					 ", \"urgent_weight\": %g, \"affinity_weight\": %g, \"affinity_wait\": %g"
					 ", \"match_weight\": %g, \"fair_weight\": %g, \"max_age_credit\": %g, \"fair_candidates\": %d"
					 ", \"past_deadline\": \"%s\", \"assign_hold\": %g, \"shed_after\": {",
					 p->critical_strict ? "true" : "false", p->default_cost, p->urgent_slack,
					 p->urgent_weight, p->affinity_weight, p->affinity_wait, p->match_weight,
					 p->fair_weight, p->max_age_credit, p->fair_candidates,
					 p->expire_past_deadline ? "expire" : "run", p->assign_hold);
	for (int i = 0; i < NPRIO; i++)
	{
		if (p->shed_after[i] < 0)
			appendStringInfo(&s, "%s\"%s\": null", i ? ", " : "", prio_names[i]);
		else
			appendStringInfo(&s, "%s\"%s\": %g", i ? ", " : "", prio_names[i], p->shed_after[i]);
	}
	appendStringInfoString(&s, "}, \"traits\": [");
	for (int i = 0; i < p->ntraits; i++)
	{
		if (i)
			appendStringInfoString(&s, ", ");
		escape_json(&s, p->traits[i]);
	}
	appendStringInfoString(&s, "], \"trait_weights\": [");
	for (int i = 0; i < p->ntraits; i++)
		appendStringInfo(&s, "%s%g", i ? ", " : "", p->trait_weights[i]);
	appendStringInfoString(&s, "], \"trait_max\": [");
	for (int i = 0, n = 0; i < p->ntraits; i++)
		if (p->trait_is_max[i])
		{
			if (n++)
				appendStringInfoString(&s, ", ");
			escape_json(&s, p->traits[i]);
		}
	appendStringInfoString(&s, "]}");
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/*
 * dispatch.policy_normalize(weights jsonb) RETURNS jsonb: validates a policy
 * document and returns it complete, with the defaults filled in.
 */
Datum
dispatch_policy_normalize(PG_FUNCTION_ARGS)
{
	Policy		p;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("policy weights must not be null"),
				 errhint("Pass '{}' for the defaults.")));
	policy_parse(PG_GETARG_JSONB_P(0), &p);
	PG_RETURN_JSONB_P(policy_to_jsonb(&p));
}

/* ---- the active policy, cached ------------------------------------------ */

static Policy active;
static bool active_valid = false;
static uint64 active_generation = 0;
static bool callback_registered = false;

static void
policy_inval(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == dispatch_catalog_cached()->policies)
		active_valid = false;
}

const Policy *
policy_active(void)
{
	DispatchCatalog *cat = dispatch_catalog();

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(policy_inval, (Datum) 0);
		callback_registered = true;
	}
	if (active_valid && active_generation == cat->generation)
		return &active;

	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	if (SPI_execute("SELECT version, weights FROM dispatch.policies WHERE active", true, 2) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: could not read dispatch.policies");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no active dispatch policy"),
				 errhint("Activate one with SELECT dispatch.set_policy('{}', 'defaults');")));
	else
	{
		bool		isnull;
		Datum		w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		int32		version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull));

		policy_parse(DatumGetJsonbP(w), &active);
		active.version = version;
	}
	SPI_finish();
	PopActiveSnapshot();
	active_valid = true;
	active_generation = cat->generation;
	return &active;
}
