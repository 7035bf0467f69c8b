/*-------------------------------------------------------------------------
 *
 * outputs.c
 *		dispatch.write_output(): write a completed task's output into a
 *		column of a user table, as the task's owner.
 *
 * complete() calls it for each output bound to a table, in the completing
 * transaction.  The statement runs through runas.c as the task's owner,
 * never as the extension's owner, so the owner's column privileges and
 * row-level security apply (and the table's triggers run as a restricted
 * operation).  It is assembled only from catalog names (quoted) and types,
 * so its search_path is pinned to pg_catalog; the key and the value are
 * parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "runas.h"

PG_FUNCTION_INFO_V1(dispatch_write_output);

typedef struct OutputUpdate
{
	const char *sql;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;
	uint64		rows;			/* out: rows written */
} OutputUpdate;

static void
output_update(void *arg)
{
	OutputUpdate *u = (OutputUpdate *) arg;

	SPI_connect();
	if (SPI_execute_with_args(u->sql, 2, u->types, u->values, u->nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "dispatch: could not write a task's output");
	u->rows = SPI_processed;
	SPI_finish();
}

static Oid
column_type(Oid relid, const char *col, int32 *typmod)
{
	HeapTuple	tup = SearchSysCacheAttName(relid, col);
	Oid			type;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table \"%s\" does not exist", col, get_rel_name(relid)),
				 errhint("The output's bind names a column that has gone; fix the task's outputs or the table.")));
	type = ((Form_pg_attribute) GETSTRUCT(tup))->atttypid;
	*typmod = ((Form_pg_attribute) GETSTRUCT(tup))->atttypmod;
	ReleaseSysCache(tup);
	return type;
}

/*
 * dispatch.write_output(tbl regclass, col name, key_col name, key text,
 *						 value jsonb, as_role name) RETURNS bigint: rows written.
 */
Datum
dispatch_write_output(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *col = NameStr(*PG_GETARG_NAME(1));
	char	   *key_col = NameStr(*PG_GETARG_NAME(2));
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(3));
	Jsonb	   *value = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	Oid			role = get_role_oid(NameStr(*PG_GETARG_NAME(5)), false);
	char	   *relname = get_rel_name(relid);
	int32		col_typmod,
				key_typmod;
	Oid			col_type,
				key_type;
	bool		as_json;
	char	   *sql;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	OutputUpdate u;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table an output is bound to no longer exists")));
	col_type = column_type(relid, col, &col_typmod);
	key_type = column_type(relid, key_col, &key_typmod);
	as_json = col_type == JSONBOID || col_type == JSONOID;

	/* JSON columns take the value as JSON; others its text, cast to the column's type. */
	if (value == NULL)
		nulls[0] = 'n';
	else
	{
		if (as_json)
		{
			types[0] = JSONBOID;
			values[0] = JsonbPGetDatum(value);
		}
		else
		{
			JsonbValue	v;
			JsonbIterator *it;

			if (JB_ROOT_IS_SCALAR(value))
			{
				it = JsonbIteratorInit(&value->root);
				(void) JsonbIteratorNext(&it, &v, false);
				(void) JsonbIteratorNext(&it, &v, false);
				if (v.type == jbvNull)
					nulls[0] = 'n';
				else if (v.type == jbvString)
					values[0] = PointerGetDatum(cstring_to_text_with_len(v.val.string.val, v.val.string.len));
				else
					values[0] = CStringGetTextDatum(JsonbToCString(NULL, &value->root, VARSIZE(value)));
			}
			else
				values[0] = CStringGetTextDatum(JsonbToCString(NULL, &value->root, VARSIZE(value)));
		}
	}
	values[1] = CStringGetTextDatum(key);

	sql = psprintf("UPDATE %s SET %s = $1::%s WHERE %s = $2::%s",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), relname),
				   quote_identifier(col),
				   format_type_extended(col_type, col_typmod,
										FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY),
				   quote_identifier(key_col),
				   format_type_extended(key_type, key_typmod,
										FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));

	u.sql = sql;
	u.types = types;
	u.values = values;
	u.nulls = nulls;
	runas_call(role, "pg_catalog, pg_temp", false, "output bind", output_update, &u);
	PG_RETURN_INT64((int64) u.rows);
}
