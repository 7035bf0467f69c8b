/*-------------------------------------------------------------------------
 *
 * sweep.c
 *		dispatch.sweep_rows(): the rows of a sweep, rendered from the task
 *		template, for dispatch.place_sweep() to insert in one statement.
 *
 * The query is the user's, so it runs as the role the sweep is for (the
 * caller of dispatch.sweep, or a schedule's owner) with that role's
 * search_path, never as the extension's owner that place_sweep runs as:
 * the user id is switched for the query alone, the way a SECURITY DEFINER
 * function switches it, and SET ROLE is refused inside it.  Only one plain
 * SELECT is accepted (no INTO, no data-modifying WITH, no second statement);
 * it is wrapped in a subquery to turn each row into jsonb, which is safe
 * because it parsed alone as exactly one statement and is cut out of the
 * input by the parser's own location and length.
 *
 * Every placeholder of the template and the key must name a column of the
 * query before it runs.  Rows are rendered into a tuplestore: (t jsonb,
 * dispatch_key text, run_at timestamptz).  With a spread, row i of n runs at
 * base + spread * (i + u) / n, u uniform in [0, 1): evenly spread, jittered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"

#include "template.h"

PG_FUNCTION_INFO_V1(dispatch_sweep_rows);

static void
check_select(SelectStmt *sel)
{
	if (sel == NULL)
		return;
	if (sel->intoClause)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query cannot be SELECT INTO"),
				 errhint("A sweep only reads: give a plain SELECT whose rows become tasks.")));
	if (sel->withClause)
	{
		ListCell   *lc;

		foreach(lc, sel->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a sweep query cannot contain %s in WITH",
								CreateCommandName(cte->ctequery)),
						 errhint("A sweep only reads: give a plain SELECT whose rows become tasks.")));
			check_select((SelectStmt *) cte->ctequery);
		}
	}
	check_select(sel->larg);
	check_select(sel->rarg);
}

/* A syntax error points into the sweep query, not into the statement that ran it. */
static void
query_error_callback(void *arg)
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

/* The text of the one SELECT in query, or an error. */
static char *
select_text(const char *query)
{
	ErrorContextCallback errcb;
	List	   *raw;
	RawStmt    *rs;

	errcb.callback = query_error_callback;
	errcb.arg = (void *) query;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	error_context_stack = errcb.previous;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query must be exactly one SELECT statement, not %d statements",
						list_length(raw)),
				 errhint("Give one SELECT whose rows become tasks.")));
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query must be a SELECT, not %s", CreateCommandName(rs->stmt)),
				 errhint("A sweep only reads: give a plain SELECT whose rows become tasks.")));
	check_select((SelectStmt *) rs->stmt);
	return rs->stmt_len > 0 ? pnstrdup(query + rs->stmt_location, rs->stmt_len)
		: pstrdup(query + rs->stmt_location);
}

/* Every placeholder names a column of the query's result. */
static void
check_columns(TupleDesc desc, List *names)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		const char *name = strVal(lfirst(lc));
		bool		found = false;

		for (int i = 0; i < desc->natts && !found; i++)
			found = !TupleDescAttr(desc, i)->attisdropped &&
				strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0;
		if (!found)
		{
			StringInfoData cols;

			initStringInfo(&cols);
			for (int i = 0; i < desc->natts; i++)
				appendStringInfo(&cols, "%s%s", i ? ", " : "", NameStr(TupleDescAttr(desc, i)->attname));
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("task template placeholder {{%s}} names no column of the sweep query", name),
					 errdetail("The query returns: %s.", cols.data),
					 errhint("Name a column of the query, or add it to the SELECT list.")));
		}
	}
}

/*
 * dispatch.sweep_rows(query text, task jsonb, key text, spread interval,
 *					   run_at jsonb, run_as name, search_path text)
 *	 RETURNS TABLE (t jsonb, dispatch_key text, run_at timestamptz)
 */
Datum
dispatch_sweep_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query;
	Jsonb	   *task;
	char	   *key = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	Interval   *spread = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	Jsonb	   *run_at = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	Oid			role;
	char	   *search_path = PG_ARGISNULL(6) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(6));
	char	   *stmt;
	List	   *names = NIL;
	Oid			save_user;
	int			save_sec;
	int			nestlevel;
	uint64		n;
	SPITupleTable *rows;
	MemoryContext per_row;
	TimestampTz base = GetCurrentTimestamp();
	int64		spread_us = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a sweep needs a query, a task template and a role")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	task = PG_GETARG_JSONB_P(1);
	role = get_role_oid(NameStr(*PG_GETARG_NAME(5)), false);
	if (spread)
		spread_us = spread->time + (int64) spread->day * USECS_PER_DAY +
			(int64) spread->month * DAYS_PER_MONTH * USECS_PER_DAY;

	InitMaterializedSRF(fcinfo, 0);

	stmt = select_text(query);
	tpl_placeholders(task, &names);
	if (key)
		text_placeholders(key, &names);
	if (run_at)
		tpl_placeholders(run_at, &names);

	/* The user's query, as the user. */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nestlevel = NewGUCNestLevel();
	PG_TRY();
	{
		SPIPlanPtr	plan;
		CachedPlanSource *source;

		if (search_path)
			(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
		SPI_connect();
		plan = SPI_prepare(stmt, 0, NULL);
		if (plan == NULL)
			elog(ERROR, "dispatch: could not prepare the sweep query: %s", SPI_result_code_string(SPI_result));
		source = linitial(SPI_plan_get_plan_sources(plan));
		if (source->resultDesc == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a sweep query must return rows")));
		check_columns(source->resultDesc, names);
		if (SPI_execute(psprintf("SELECT pg_catalog.to_jsonb(dispatch_sweep_row.*) FROM (\n%s\n) AS dispatch_sweep_row",
								 stmt), false, 0) != SPI_OK_SELECT)
			elog(ERROR, "dispatch: the sweep query did not return rows");
	}
	PG_FINALLY();
	{
		AtEOXact_GUC(true, nestlevel);
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();

	/* Back as ourselves: render every row. */
	n = SPI_processed;
	rows = SPI_tuptable;
	per_row = AllocSetContextCreate(CurrentMemoryContext, "dispatch sweep row", ALLOCSET_DEFAULT_SIZES);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Jsonb	   *row = DatumGetJsonbP(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		MemoryContext old = MemoryContextSwitchTo(per_row);

		values[0] = JsonbPGetDatum(tpl_render(task, row));
		if (key)
			values[1] = CStringGetTextDatum(text_render(key, row));
		else
			nulls[1] = true;
		nulls[2] = true;
		if (run_at)
		{
			Jsonb	   *r = tpl_render(run_at, row);
			char	   *s = JsonbToCString(NULL, &r->root, VARSIZE(r));

			/* A JSON string renders quoted: strip the quotes for timestamptz_in. */
			if (s[0] == '"')
				s = pnstrdup(s + 1, strlen(s) - 2);
			if (strcmp(s, "null") != 0)
			{
				values[2] = DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
												ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
				nulls[2] = false;
			}
		}
		if (spread)
		{
			TimestampTz at = nulls[2] ? base : DatumGetTimestampTz(values[2]);

			at += (int64) (spread_us * ((double) i + pg_prng_double(&pg_global_prng_state)) / (double) n);
			values[2] = TimestampTzGetDatum(at);
			nulls[2] = false;
		}
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextReset(per_row);
	}
	SPI_finish();
	return (Datum) 0;
}
