/*-------------------------------------------------------------------------
 *
 * runas.c
 *		Run user SQL as the role that owns it: the one mechanism behind
 *		sweeps (sweep.c), schedules' sweeps, output binds (outputs.c) and
 *		the creation of a watch's triggers (watch.c).
 *
 * Why: dispatch's functions are SECURITY DEFINER and the worker connects as
 * the bootstrap superuser, so user SQL run from them would run with all
 * privileges.  Here the user id is switched for the one call the way a
 * SECURITY DEFINER function switches it (SetUserIdAndSecContext with
 * SECURITY_LOCAL_USERID_CHANGE, so SET ROLE is refused inside), plus
 * SECURITY_RESTRICTED_OPERATION, which also refuses what could outlive the
 * call: temporary objects, cursors WITH HOLD, session-level changes.
 * search_path is set at a new GUC nest level to the value stored with the
 * SQL, so names resolve as they did for its owner.
 *
 * A query that should only read (a sweep) also runs with
 * transaction_read_only on, at the same nest level: parsing it as one
 * SELECT cannot see what a function it calls does, but the executor refuses
 * every write below it, whoever wrote the function (25006).  Turning it off
 * again inside is refused too, since the transaction has taken a snapshot.
 *
 * Restoring: on success everything is put back at once; on error it is put
 * back before the error propagates (the transaction or subtransaction abort
 * would do it too).  A query is cut out of its input by the parser's own
 * statement location after it parsed alone as exactly one SELECT, so
 * wrapping it in a subquery cannot change what it does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/plancache.h"

#include "runas.h"

#define SELECT_HINT "A sweep only reads: give one SELECT whose rows become tasks."

/*
 * No INTO, no row locks and no data-modifying WITH anywhere in the raw tree:
 * in subqueries, sublinks and CTEs too, not only at the top.
 */
static bool
only_reads_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SelectStmt))
	{
		SelectStmt *sel = (SelectStmt *) node;

		if (sel->intoClause)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a sweep query cannot be SELECT INTO"),
					 errhint(SELECT_HINT)));
		/* Row locks would be held by the placing transaction until it commits. */
		if (sel->lockingClause)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a sweep query cannot lock rows (FOR UPDATE, FOR SHARE)"),
					 errhint(SELECT_HINT)));
	}
	else if (IsA(node, CommonTableExpr) &&
			 !IsA(((CommonTableExpr *) node)->ctequery, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query cannot contain %s in WITH",
						CreateCommandName(((CommonTableExpr *) node)->ctequery)),
				 errhint(SELECT_HINT)));
	return raw_expression_tree_walker(node, only_reads_walker, context);
}

/* A syntax error points into the sweep query, not into the SQL that passed it along. */
static void
select_parse_context(void *arg)
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

	context.callback = select_parse_context;
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
	(void) only_reads_walker(rs->stmt, NULL);
	return rs->stmt_len > 0 ? pnstrdup(query + rs->stmt_location, rs->stmt_len)
		: pstrdup(query + rs->stmt_location);
}

typedef struct RunAsContext
{
	Oid			role;
	const char *what;
} RunAsContext;

static void
runas_error_context(void *arg)
{
	RunAsContext *c = (RunAsContext *) arg;
	const char *name = GetUserNameFromId(c->role, true);

	errcontext("%s run as role \"%s\"", c->what, name ? name : "?");
}

/* Inside the nest level runas_call opened: undone with it. */
static void
set_at_nest_level(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
runas_call(Oid role, const char *search_path, bool read_only, const char *what,
		   RunAsFn fn, void *arg)
{
	Oid			save_user;
	int			save_sec;
	int			nestlevel;
	RunAsContext c;
	ErrorContextCallback context;

	if (search_path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the search_path to run a %s with must not be null", what),
				 errhint("Pass the search_path the SQL was written for, for example current_setting('search_path').")));

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestlevel = NewGUCNestLevel();
	c.role = role;
	c.what = what;
	context.callback = runas_error_context;
	context.arg = &c;
	context.previous = error_context_stack;
	error_context_stack = &context;
	PG_TRY();
	{
		set_at_nest_level("search_path", search_path);
		if (read_only)
			set_at_nest_level("transaction_read_only", "on");
		fn(arg);
	}
	PG_CATCH();
	{
		error_context_stack = context.previous;
		AtEOXact_GUC(false, nestlevel);
		SetUserIdAndSecContext(save_user, save_sec);
		PG_RE_THROW();
	}
	PG_END_TRY();
	error_context_stack = context.previous;
	AtEOXact_GUC(true, nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
}

/* ---- SPI on top of runas_call ---------------------------------------------- */

typedef struct SpiCall
{
	const char *sql;
	long		tcount;
	TupleDesc	desc;			/* prepare: the result's descriptor */
	int			rc;				/* execute: SPI's result code */
} SpiCall;

static void
spi_prepare_fn(void *arg)
{
	SpiCall    *call = (SpiCall *) arg;
	SPIPlanPtr	plan = SPI_prepare(call->sql, 0, NULL);
	CachedPlanSource *source;

	if (plan == NULL)
		elog(ERROR, "dispatch: could not prepare a sweep query: %s",
			 SPI_result_code_string(SPI_result));
	source = linitial(SPI_plan_get_plan_sources(plan));
	if (source->resultDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sweep query must return rows"),
				 errhint(SELECT_HINT)));
	/* Copied into the caller's SPI procedure context: valid until SPI_finish. */
	call->desc = CreateTupleDescCopy(source->resultDesc);
	SPI_freeplan(plan);
}

static void
spi_execute_fn(void *arg)
{
	SpiCall    *call = (SpiCall *) arg;

	call->rc = SPI_execute(call->sql, false, call->tcount);
}

TupleDesc
runas_spi_prepare(Oid role, const char *search_path, const char *sql)
{
	SpiCall		call = {.sql = sql};

	runas_call(role, search_path, true, "sweep query", spi_prepare_fn, &call);
	return call.desc;
}

int
runas_spi_execute(Oid role, const char *search_path, const char *sql, long tcount)
{
	SpiCall		call = {.sql = sql,.tcount = tcount};

	runas_call(role, search_path, true, "sweep query", spi_execute_fn, &call);
	return call.rc;
}
