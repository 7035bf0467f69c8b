/*-------------------------------------------------------------------------
 *
 * watch.c
 *		Condition-bound tasks: the triggers behind dispatch.watch().
 *
 * A watch is two AFTER ROW triggers on the user's table, built on
 * PostgreSQL's own machinery so the condition is parsed and type-checked by
 * PostgreSQL (a WHEN clause must be boolean, its columns must exist) and runs
 * with the privileges of whoever writes the row:
 *
 *	 dispatch_watch_<id>_ins  AFTER INSERT WHEN (cond(NEW))
 *	 dispatch_watch_<id>_upd  AFTER UPDATE WHEN (cond(NEW) AND cond(OLD) IS NOT TRUE)
 *
 * so a task is placed once per transition to true, not once per write while
 * it stays true.  Both call dispatch.watch_fire(<id>).
 *
 * The user writes the condition over bare column names ("stage =
 * 'qualified'"); a WHEN clause needs NEW.stage and OLD.stage.  The condition
 * is parsed alone as the one target of "SELECT <condition>" (anything else,
 * a FROM, a second statement, a subquery, is refused), and the column
 * references in that parse tree are qualified in place: no SQL text is
 * pasted together, so the condition cannot escape into the trigger's DDL.
 *
 * The triggers are created through runas.c as the caller, with the caller's
 * search_path: PostgreSQL checks the TRIGGER privilege and resolves names as
 * the user would; watch() has already checked that the caller owns the
 * table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "dispatch.h"
#include "runas.h"

PG_FUNCTION_INFO_V1(dispatch_watch_create);
PG_FUNCTION_INFO_V1(dispatch_watch_drop);

typedef struct Qualify
{
	Oid			relid;
	const char *relname;
	const char *alias;			/* "new" or "old" */
} Qualify;

static void
check_column(Qualify *q, const char *name)
{
	if (get_attnum(q->relid, name) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", name, q->relname),
				 errhint("A watch condition names columns of the watched table, for example stage = 'qualified'.")));
}

/* Qualify every column reference of the raw expression with NEW or OLD. */
static bool
qualify_walker(Node *node, Qualify *q)
{
	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		ColumnRef  *cr = (ColumnRef *) node;
		int			n = list_length(cr->fields);
		Node	   *last = llast(cr->fields);
		const char *first;

		if (IsA(last, A_Star))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a watch condition cannot use *"),
					 errhint("Name the columns the condition tests.")));
		first = strVal(linitial(cr->fields));
		if (n == 1)
		{
			check_column(q, first);
			cr->fields = lcons(makeString(pstrdup(q->alias)), cr->fields);
		}
		else if (n == 2 && (strcmp(first, q->relname) == 0 || strcmp(first, "new") == 0))
		{
			check_column(q, strVal(lsecond(cr->fields)));
			linitial(cr->fields) = makeString(pstrdup(q->alias));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a watch condition names columns alone, not \"%s\"", NameListToString(cr->fields)),
					 errhint("Write stage = 'qualified': the condition is about the row being written, and it is tested on the old row too, to fire only when it becomes true.")));
		return false;
	}
	if (IsA(node, SubLink))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a watch condition cannot contain a subquery"),
				 errhint("It is tested on the row alone, as a trigger's WHEN clause; to select rows from other tables, use dispatch.sweep().")));
	return raw_expression_tree_walker(node, qualify_walker, (void *) q);
}

/* The condition as one raw expression. */
static Node *
parse_condition(const char *sql)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	SelectStmt *sel;
	ResTarget  *rt;

	if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		goto bad;
	sel = (SelectStmt *) linitial_node(RawStmt, raw)->stmt;
	if (sel->op != SETOP_NONE || list_length(sel->targetList) != 1 || sel->fromClause ||
		sel->whereClause || sel->groupClause || sel->havingClause || sel->windowClause ||
		sel->sortClause || sel->limitCount || sel->limitOffset || sel->lockingClause ||
		sel->withClause || sel->distinctClause || sel->valuesLists || sel->intoClause)
		goto bad;
	rt = linitial_node(ResTarget, sel->targetList);
	if (rt->name != NULL || rt->indirection != NIL)
		goto bad;
	return rt->val;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a watch condition must be one boolean expression over the table's columns"),
			 errhint("For example stage = 'qualified' AND score > 50.")));
	return NULL;				/* keep the compiler quiet */
}

/* Errors in the condition point into the condition, not into the caller's query. */
static void
condition_error_callback(void *arg)
{
	const char *sql = (const char *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(sql);
	}
	errcontext("watch condition");
}

typedef struct WatchTriggers
{
	Oid			relid;
	int64		watch_id;
	Node	   *insert_when;
	Node	   *update_when;
	const char *sql;
} WatchTriggers;

static void
create_one(Oid relid, int64 watch_id, bool update, Node *when, const char *sql)
{
	CreateTrigStmt *st = makeNode(CreateTrigStmt);

	st->trigname = psprintf("dispatch_watch_" INT64_FORMAT "_%s", watch_id, update ? "upd" : "ins");
	st->relation = makeRangeVar(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid), -1);
	st->funcname = list_make2(makeString("dispatch"), makeString("watch_fire"));
	st->args = list_make1(makeString(psprintf(INT64_FORMAT, watch_id)));
	st->row = true;
	st->timing = TRIGGER_TYPE_AFTER;
	st->events = update ? TRIGGER_TYPE_UPDATE : TRIGGER_TYPE_INSERT;
	st->whenClause = when;
	(void) CreateTrigger(st, sql, relid, InvalidOid, InvalidOid, InvalidOid, InvalidOid,
						 InvalidOid, NULL, false, false);
	CommandCounterIncrement();
}

static void
create_both(void *arg)
{
	WatchTriggers *w = (WatchTriggers *) arg;

	create_one(w->relid, w->watch_id, false, w->insert_when, w->sql);
	create_one(w->relid, w->watch_id, true, w->update_when, w->sql);
}

/*
 * dispatch.watch_create(source regclass, watch_id bigint, condition text,
 *						 search_path text) RETURNS void
 */
Datum
dispatch_watch_create(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		watch_id = PG_GETARG_INT64(1);
	char	   *condition = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *search_path = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	Oid			caller = dispatch_caller();
	char	   *relname = get_rel_name(relid);
	char	   *sql = psprintf("SELECT %s", condition);
	Qualify		q;
	Node	   *cond;
	Node	   *new_cond;
	Node	   *old_cond;
	BooleanTest *was;
	ErrorContextCallback errcb;
	WatchTriggers w;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not watch table \"%s\"", GetUserNameFromId(caller, false), relname),
				 errdetail("Only the owner of a table may watch it."),
				 errhint("Ask the table's owner to create the watch.")));

	errcb.callback = condition_error_callback;
	errcb.arg = sql;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	cond = parse_condition(sql);
	q.relid = relid;
	q.relname = relname;
	q.alias = "new";
	new_cond = copyObject(cond);
	qualify_walker(new_cond, &q);
	q.alias = "old";
	old_cond = copyObject(cond);
	qualify_walker(old_cond, &q);

	/* Fire on the transition only: true now, and not true before. */
	was = makeNode(BooleanTest);
	was->arg = (Expr *) old_cond;
	was->booltesttype = IS_NOT_TRUE;
	was->location = -1;

	w.relid = relid;
	w.watch_id = watch_id;
	w.insert_when = copyObject(new_cond);
	w.update_when = (Node *) makeBoolExpr(AND_EXPR, list_make2(new_cond, was), -1);
	w.sql = sql;
	runas_call(caller, search_path, false, "watch condition", create_both, &w);

	error_context_stack = errcb.previous;
	PG_RETURN_VOID();
}

/* dispatch.watch_drop(source oid, watch_id bigint) RETURNS void: its triggers, if they remain. */
Datum
dispatch_watch_drop(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		watch_id = PG_GETARG_INT64(1);
	const char *kinds[2] = {"ins", "upd"};

	for (int i = 0; i < 2; i++)
	{
		char	   *name = psprintf("dispatch_watch_" INT64_FORMAT "_%s", watch_id, kinds[i]);
		Oid			trig = get_trigger_oid(relid, name, true);
		ObjectAddress obj;

		if (!OidIsValid(trig))
			continue;
		ObjectAddressSet(obj, TriggerRelationId, trig);
		performDeletion(&obj, DROP_RESTRICT, 0);
		CommandCounterIncrement();
	}
	PG_RETURN_VOID();
}
