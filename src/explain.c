/*-------------------------------------------------------------------------
 *
 * explain.c
 *		dispatch.explain_next(agent_id): what dispatch_next would consider for
 *		this agent now, every candidate with each term of its score, without
 *		claiming or locking anything.  And the personality helpers that
 *		dispatch.assign() uses from SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "claim.h"
#include "dispatch.h"
#include "match.h"
#include "pick.h"

PG_FUNCTION_INFO_V1(dispatch_explain_next);
PG_FUNCTION_INFO_V1(dispatch_personality_match);
PG_FUNCTION_INFO_V1(dispatch_trait_limits_ok);

static const char *const lane_names[] = {"fair", "urgent", "reserved"};

/* The agent's owner, dispatch_admin, and dispatch_reader may look. */
static void
check_may_explain(AgentRow *a)
{
	Oid			reader = get_role_oid("dispatch_reader", true);

	if (dispatch_may_act_as(a->owner_role) ||
		(OidIsValid(reader) && is_member_of_role(dispatch_caller(), reader)))
		return;
	dispatch_check_agent_owner(a->agent_id, a->owner_role);
}

Datum
dispatch_explain_next(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *agent_id;
	AgentRow	a;
	const int32 *sigs;
	int			nsigs;
	PickAgent	pa;
	PickResult	res;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("agent_id must not be null")));
	agent_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	if (!agent_load(agent_id, &a))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("agent \"%s\" does not exist", agent_id),
				 errhint("Register it first with dispatch.register_agent('%s', ...).", agent_id)));
	check_may_explain(&a);
	nsigs = agent_signatures(agent_id, a.capabilities, a.clearance, a.region, &sigs);
	pa.agent_id = agent_id;
	pa.sigs = sigs;
	pa.nsigs = nsigs;
	pa.traits = a.traits;
	res.ncandidates = 0;
	if (nsigs > 0)
		pick_candidates(&pa, GetCurrentTimestamp(), &res);
	qm_flush_observations();

	for (int i = 0; i < res.ncandidates; i++)
	{
		Candidate  *c = &res.candidates[i];
		Datum		values[13];
		bool		nulls[13] = {0};

		values[0] = Int32GetDatum(i + 1);
		values[1] = Int64GetDatum(c->task_id);
		values[2] = CStringGetTextDatum(c->tenant);
		values[3] = CStringGetTextDatum(lane_names[c->lane]);
		values[4] = CStringGetTextDatum(priority_name(c->prio));
		values[5] = Float8GetDatum(c->score);
		values[6] = Float8GetDatum(c->age);
		values[7] = Float8GetDatum(c->urgent);
		values[8] = Float8GetDatum(c->affinity);
		values[9] = Float8GetDatum(c->match);
		values[10] = Float8GetDatum(c->fair);
		values[11] = Float8GetDatum(c->tenant_vstart);
		/* The winner, unless the agent cannot take work now. */
		values[12] = BoolGetDatum(i == 0 && a.running < a.capacity &&
								  strcmp(a.status, "draining") != 0 && strcmp(a.status, "offline") != 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/* dispatch.personality_match(traits real[], profile real[]) RETURNS float8 */
Datum
dispatch_personality_match(PG_FUNCTION_ARGS)
{
	bool		has,
				violates;
	double		m;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	m = personality_match(policy_active(), PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1),
						  &has, &violates);
	if (!has)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(m);
}

/* dispatch.trait_limits_ok(traits real[], profile real[]) RETURNS boolean */
Datum
dispatch_trait_limits_ok(PG_FUNCTION_ARGS)
{
	bool		has,
				violates;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(true);
	(void) personality_match(policy_active(), PG_GETARG_ARRAYTYPE_P(0), PG_GETARG_ARRAYTYPE_P(1),
							 &has, &violates);
	PG_RETURN_BOOL(!violates);
}
