/*-------------------------------------------------------------------------
 *
 * runas.c
 *		Run one user query as a given role, with its search_path pinned; and
 *		dispatch.sweep_check(), which checks a schedule's sweep when it is
 *		stored (at each fire, dispatch.place_sweep() runs it: sweep.c).
 *
 * Why: dispatch's functions are SECURITY DEFINER and the worker connects as
 * the bootstrap superuser, so user SQL run from them would run with all
 * privileges.  Here the user id is switched for the one query the way a
 * SECURITY DEFINER function switches it (SetUserIdAndSecContext with
 * SECURITY_LOCAL_USERID_CHANGE, so SET ROLE is refused inside), plus
 * SECURITY_RESTRICTED_OPERATION, which also refuses what could outlive the
 * query: temporary objects, cursors WITH HOLD, session-level changes.
 * search_path is set at a new GUC nest level to the value stored with the
 * query, so names resolve as they did for its owner.
 *
 * Restoring: on success both are put back at once; on error they are put
 * back before the error propagates (and the transaction or subtransaction
 * abort would do it too).  The query is cut out of the input by the parser's
 * own statement location after it parsed alone as exactly one SELECT, so
 * wrapping it in a subquery cannot change what it does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/plancache.h"

#include "runas.h"

#define SELECT_HINT "A sweep only reads: give one SELECT whose rows become tasks."

/* No INTO, no row locks and no data-modifying WITH, anywhere in the SELECT tree. */
static void
check_select(SelectStmt *sel)
{
	ListCell   *lc;

	if (sel == NULL)
		return;
	if (sel->intoClause)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query cannot be SELECT INTO"),
				 errhint(SELECT_HINT)));
	/* Row locks would be held by the tick until it commits, stalling the owner's own work. */
	if (sel->lockingClause)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query cannot lock rows (FOR UPDATE, FOR SHARE)"),
				 errhint(SELECT_HINT)));
	if (sel->withClause)
		foreach(lc, sel->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a sweep query cannot contain %s in WITH",
								CreateCommandName(cte->ctequery)),
						 errhint(SELECT_HINT)));
			check_select((SelectStmt *) cte->ctequery);
		}
	check_select(sel->larg);
	check_select(sel->rarg);
}

/* A syntax error points into the sweep query, not into the SQL that passed it along. */
static void
sweep_parse_context(void *arg)
{
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery((const char *) arg);
	}
	errcontext("sweep query");
}

char *
runas_select_text(const char *query)
{
	ErrorContextCallback context;
	List	   *raw;
	RawStmt    *rs;

	context.callback = sweep_parse_context;
	context.arg = unconstify(char *, query);
	context.previous = error_context_stack;
	error_context_stack = &context;
	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	error_context_stack = context.previous;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query must be exactly one SELECT statement, not %d statements",
						list_length(raw)),
				 errhint(SELECT_HINT)));
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query must be a SELECT, not %s", CreateCommandName(rs->stmt)),
				 errhint(SELECT_HINT)));
	check_select((SelectStmt *) rs->stmt);
	return rs->stmt_len > 0 ? pnstrdup(query + rs->stmt_location, rs->stmt_len)
		: pstrdup(query + rs->stmt_location);
}

typedef struct RunAsSave
{
	Oid			user;
	int			sec;
	int			nestlevel;
	ErrorContextCallback context;
} RunAsSave;

static void
runas_context(void *arg)
{
	const char *name = GetUserNameFromId(*(Oid *) arg, true);

	errcontext("sweep query run as role \"%s\"", name ? name : "?");
}

static void
runas_push(Oid role, const char *search_path, RunAsSave *save, Oid *role_arg)
{
	if (search_path == NULL)
		elog(ERROR, "dispatch: a query run as another role needs a search_path");
	GetUserIdAndSecContext(&save->user, &save->sec);
	SetUserIdAndSecContext(role, save->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->nestlevel = NewGUCNestLevel();
	*role_arg = role;
	save->context.callback = runas_context;
	save->context.arg = role_arg;
	save->context.previous = error_context_stack;
	error_context_stack = &save->context;
}

/* Inside the nest level runas_push opened: undone by runas_pop. */
static void
set_search_path(const char *search_path)
{
	(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

static void
runas_pop(RunAsSave *save, bool ok)
{
	error_context_stack = save->context.previous;
	AtEOXact_GUC(ok, save->nestlevel);
	SetUserIdAndSecContext(save->user, save->sec);
}

TupleDesc
runas_spi_prepare(Oid role, const char *search_path, const char *sql)
{
	RunAsSave	save;
	Oid			role_arg;
	SPIPlanPtr	plan;
	CachedPlanSource *source;
	TupleDesc	desc;

	/* desc is copied into the caller's SPI procedure context: valid until SPI_finish. */
	runas_push(role, search_path, &save, &role_arg);
	PG_TRY();
	{
		set_search_path(search_path);
		plan = SPI_prepare(sql, 0, NULL);
		if (plan == NULL)
			elog(ERROR, "dispatch: could not prepare a sweep query: %s",
				 SPI_result_code_string(SPI_result));
		source = linitial(SPI_plan_get_plan_sources(plan));
		if (source->resultDesc == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a sweep query must return rows"),
					 errhint(SELECT_HINT)));
		desc = CreateTupleDescCopy(source->resultDesc);
		SPI_freeplan(plan);
	}
	PG_CATCH();
	{
		runas_pop(&save, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	runas_pop(&save, true);
	return desc;
}

int
runas_spi_execute(Oid role, const char *search_path, const char *sql, long tcount)
{
	RunAsSave	save;
	Oid			role_arg;
	int			rc;

	runas_push(role, search_path, &save, &role_arg);
	PG_TRY();
	{
		set_search_path(search_path);
		rc = SPI_execute(sql, false, tcount);
	}
	PG_CATCH();
	{
		runas_pop(&save, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	runas_pop(&save, true);
	return rc;
}

/* The role to run as: it must exist (42704 otherwise). */
static Oid
role_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a sweep query needs a role to run as")));
	return get_role_oid(NameStr(*PG_GETARG_NAME(argno)), false);
}

static char *
text_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what),
				 errhint(SELECT_HINT)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

PG_FUNCTION_INFO_V1(dispatch_sweep_check);

/*
 * sweep_check(query text, run_as name, search_path text) RETURNS text[]
 *
 * One SELECT that parses and analyses as run_as with that search_path, on
 * tables run_as may read; returns the names of its result columns (for the
 * template's {{column}} placeholders).
 */
Datum
dispatch_sweep_check(PG_FUNCTION_ARGS)
{
	char	   *query = text_arg(fcinfo, 0, "a sweep query");
	Oid			role = role_arg(fcinfo, 1);
	char	   *search_path = text_arg(fcinfo, 2, "the search_path of a sweep query");
	char	   *stmt = runas_select_text(query);
	TupleDesc	desc;
	Datum	   *names;
	int			n = 0;
	ArrayType  *result;
	MemoryContext caller_cxt = CurrentMemoryContext;
	MemoryContext spi_cxt;

	SPI_connect();
	desc = runas_spi_prepare(role, search_path, stmt);
	/*
	 * Started, never run: LIMIT 0 returns before the query's plan is asked
	 * for a row, but executor start checks the role's privileges on every
	 * table, so a sweep its owner may not read fails now, not at each fire.
	 */
	(void) runas_spi_execute(role, search_path,
							 psprintf("SELECT FROM (\n%s\n) AS sweep_row LIMIT 0", stmt), 0);
	/* The names outlive SPI_finish: build them in the caller's context. */
	spi_cxt = MemoryContextSwitchTo(caller_cxt);
	names = palloc(sizeof(Datum) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			names[n++] = CStringGetTextDatum(NameStr(TupleDescAttr(desc, i)->attname));
	result = construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
	MemoryContextSwitchTo(spi_cxt);
	SPI_finish();
	PG_RETURN_ARRAYTYPE_P(result);
}
