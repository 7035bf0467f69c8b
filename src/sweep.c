/*-------------------------------------------------------------------------
 *
 * sweep.c
 *		Sweeps: dispatch.sweep_check(), which checks a schedule's sweep when
 *		it is stored, and dispatch.sweep_rows(), the rows of a sweep rendered
 *		from the task template, for dispatch.place_sweep() to insert in one
 *		statement.
 *
 * The query is the user's, so it runs through runas.c as the role the sweep
 * is for (the caller of dispatch.sweep, or a schedule's owner) with that
 * role's search_path, read only, never as the extension's owner that
 * place_sweep runs as.  runas_select_text() accepts one plain SELECT and
 * returns its text, which is then wrapped in a subquery to turn each row
 * into jsonb.
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
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "runas.h"
#include "template.h"

PG_FUNCTION_INFO_V1(dispatch_sweep_rows);
PG_FUNCTION_INFO_V1(dispatch_sweep_check);

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

	stmt = runas_select_text(query);
	tpl_placeholders(task, &names);
	if (key)
		text_placeholders(key, &names);
	if (run_at)
		tpl_placeholders(run_at, &names);

	/* The user's query, as the user; then back as ourselves, render every row. */
	SPI_connect();
	check_columns(runas_spi_prepare(role, search_path, stmt), names);
	if (runas_spi_execute(role, search_path,
						  psprintf("SELECT pg_catalog.to_jsonb(dispatch_sweep_row.*) FROM (\n%s\n) AS dispatch_sweep_row",
								   stmt), 0) != SPI_OK_SELECT)
		elog(ERROR, "dispatch: the sweep query did not return rows");

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
				 errhint("A sweep only reads: give one SELECT whose rows become tasks.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

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
