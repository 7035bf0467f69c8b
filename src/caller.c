/*-------------------------------------------------------------------------
 *
 * caller.c
 *		Who is calling, and may they act as this agent or on this task.
 *
 * dispatch's functions are SECURITY DEFINER, so current_user inside them is
 * the extension's owner.  The identity checked is the role the session acts
 * as: the session user, or the role chosen with SET ROLE (GetOuterUserId),
 * which a SECURITY DEFINER function does not change.  doc/design.md §2.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "dispatch.h"

PG_FUNCTION_INFO_V1(dispatch_caller_sql);
PG_FUNCTION_INFO_V1(dispatch_may_act_as_sql);

Oid
dispatch_caller(void)
{
	return GetOuterUserId();
}

/* Member of owner_role, or of dispatch_admin (superusers are members of all). */
bool
dispatch_may_act_as(const char *owner_role)
{
	Oid			caller = dispatch_caller();
	Oid			owner = owner_role ? get_role_oid(owner_role, true) : InvalidOid;
	Oid			admin = get_role_oid("dispatch_admin", true);

	if (OidIsValid(owner) && is_member_of_role(caller, owner))
		return true;
	return OidIsValid(admin) && is_member_of_role(caller, admin);
}

void
dispatch_check_agent_owner(const char *agent_id, const char *owner_role)
{
	if (!dispatch_may_act_as(owner_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not act as agent \"%s\"",
						GetUserNameFromId(dispatch_caller(), false), agent_id),
				 errdetail("The agent belongs to role \"%s\".", owner_role),
				 errhint("Connect as a member of \"%s\" or of dispatch_admin.", owner_role)));
}

/* dispatch.caller() RETURNS name */
Datum
dispatch_caller_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(dispatch_caller(), false))));
}

/* dispatch.may_act_as(role name) RETURNS boolean */
Datum
dispatch_may_act_as_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(dispatch_may_act_as(NULL));
	PG_RETURN_BOOL(dispatch_may_act_as(NameStr(*PG_GETARG_NAME(0))));
}

/*
 * Run dispatch's own bookkeeping SQL as the extension's owner (the owner of
 * schema dispatch), whoever fired the trigger.  Restored by as_owner_end, or
 * by transaction abort.
 */
void
as_owner_begin(Oid *save_user, int *save_sec)
{
	Oid			owner = dispatch_catalog()->owner;

	GetUserIdAndSecContext(save_user, save_sec);
	SetUserIdAndSecContext(owner, *save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

void
as_owner_end(Oid save_user, int save_sec)
{
	SetUserIdAndSecContext(save_user, save_sec);
}
