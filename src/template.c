/*-------------------------------------------------------------------------
 *
 * template.c
 *		Task templates: jsonb with {{column}} placeholders, filled from a
 *		row (a watched table's row, a sweep query's row).
 *
 * A string value that is exactly one placeholder takes the column's JSON
 * value as it is ("{{id}}" becomes 42, an object stays an object); a
 * placeholder inside a longer string is replaced by the value's text
 * ("lead {{id}}" becomes "lead 42"; NULL becomes the empty string).  Object
 * keys are never substituted.  A placeholder naming no column of the row is
 * an error: callers check the names first (dispatch.placeholders), so that
 * a bad template is refused before anything is placed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "template.h"

PG_FUNCTION_INFO_V1(dispatch_render);
PG_FUNCTION_INFO_V1(dispatch_render_text);
PG_FUNCTION_INFO_V1(dispatch_placeholders);

/*
 * The next placeholder in s at or after *pos: its name (trimmed) in *name,
 * its extent in [*start, *end).  False when there is none.
 */
static bool
next_placeholder(const char *s, int *pos, int *start, int *end, char **name)
{
	const char *open = strstr(s + *pos, "{{");
	const char *close;
	const char *a;
	const char *b;

	if (open == NULL)
		return false;
	close = strstr(open + 2, "}}");
	if (close == NULL)
		return false;
	a = open + 2;
	b = close;
	while (a < b && (*a == ' ' || *a == '\t'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	if (a == b)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("empty placeholder {{}} in task template"),
				 errhint("Name a column between the braces, for example {{id}}.")));
	*name = pnstrdup(a, b - a);
	*start = open - s;
	*end = close + 2 - s;
	*pos = *end;
	return true;
}

void
text_placeholders(const char *s, List **names)
{
	int			pos = 0,
				start,
				end;
	char	   *name;

	while (next_placeholder(s, &pos, &start, &end, &name))
		*names = list_append_unique(*names, makeString(name));
}

void
tpl_placeholders(Jsonb *tpl, List **names)
{
	JsonbIterator *it = JsonbIteratorInit(&tpl->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		if ((tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString)
		{
			char	   *s = pnstrdup(v.val.string.val, v.val.string.len);

			text_placeholders(s, names);
		}
}

/* The row's value for a column, or an error naming the placeholder. */
static JsonbValue *
row_value(Jsonb *row, const char *name)
{
	JsonbValue	buf;
	JsonbValue *v = NULL;

	if (JB_ROOT_IS_OBJECT(row))
		v = getKeyJsonValueFromContainer(&row->root, name, strlen(name), &buf);
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("task template placeholder {{%s}} names no column of the row", name),
				 errhint("Placeholders name columns of the watched table or of the sweep query's result.")));
	return v == &buf ? memcpy(palloc(sizeof(JsonbValue)), &buf, sizeof(JsonbValue)) : v;
}

/* A value as text inside a longer string. */
static void
append_value_text(StringInfo out, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			break;
		case jbvString:
			appendBinaryStringInfo(out, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			{
				StringInfoData s;

				initStringInfo(&s);
				JsonbToCString(&s, v->val.binary.data, v->val.binary.len);
				appendStringInfoString(out, s.data);
				break;
			}
		default:
			elog(ERROR, "dispatch: unexpected jsonb value type %d", (int) v->type);
	}
}

char *
text_render(const char *s, Jsonb *row)
{
	StringInfoData out;
	int			pos = 0,
				start,
				end,
				last = 0;
	char	   *name;

	initStringInfo(&out);
	while (next_placeholder(s, &pos, &start, &end, &name))
	{
		appendBinaryStringInfo(&out, s + last, start - last);
		append_value_text(&out, row_value(row, name));
		last = end;
	}
	appendStringInfoString(&out, s + last);
	return out.data;
}

/* Push a template string, substituted. */
static void
push_string(JsonbParseState **state, JsonbIteratorToken tok, JsonbValue *v, Jsonb *row)
{
	char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
	int			pos = 0,
				start,
				end;
	char	   *name;
	JsonbValue	out;

	if (strstr(s, "{{") == NULL)
	{
		pushJsonbValue(state, tok, v);
		return;
	}
	if (next_placeholder(s, &pos, &start, &end, &name) && start == 0 && s[end] == '\0')
	{
		/* The whole string is one placeholder: the value keeps its JSON type. */
		pushJsonbValue(state, tok, row_value(row, name));
		return;
	}
	out.type = jbvString;
	out.val.string.val = text_render(s, row);
	out.val.string.len = strlen(out.val.string.val);
	pushJsonbValue(state, tok, &out);
}

Jsonb *
tpl_render(Jsonb *tpl, Jsonb *row)
{
	JsonbIterator *it = JsonbIteratorInit(&tpl->root);
	JsonbParseState *state = NULL;
	JsonbValue *res = NULL;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (JB_ROOT_IS_SCALAR(tpl))
	{
		/* A lone scalar, such as a run_at of "{{due}}". */
		JsonbValue	scalar;
		char	   *str;
		int			pos = 0,
					start,
					end;
		char	   *name;

		(void) JsonbIteratorNext(&it, &v, false);	/* the raw-scalar array */
		(void) JsonbIteratorNext(&it, &scalar, false);
		if (scalar.type != jbvString)
			return tpl;
		str = pnstrdup(scalar.val.string.val, scalar.val.string.len);
		if (next_placeholder(str, &pos, &start, &end, &name) && start == 0 && str[end] == '\0')
			return JsonbValueToJsonb(row_value(row, name));
		scalar.val.string.val = text_render(str, row);
		scalar.val.string.len = strlen(scalar.val.string.val);
		return JsonbValueToJsonb(&scalar);
	}

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if ((tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvString)
			push_string(&state, tok, &v, row);
		else
			res = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	}
	/* The last token closed the root container; res is the whole value. */
	return JsonbValueToJsonb(res);
}

/* dispatch.render(template jsonb, row_data jsonb) RETURNS jsonb */
Datum
dispatch_render(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(tpl_render(PG_GETARG_JSONB_P(0), PG_GETARG_JSONB_P(1)));
}

/* dispatch.render_text(template text, row_data jsonb) RETURNS text */
Datum
dispatch_render_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(text_render(text_to_cstring(PG_GETARG_TEXT_PP(0)),
												 PG_GETARG_JSONB_P(1))));
}

/* dispatch.placeholders(template jsonb) RETURNS text[]: the column names it uses. */
Datum
dispatch_placeholders(PG_FUNCTION_ARGS)
{
	List	   *names = NIL;
	Datum	   *elems;
	int			n = 0;
	ListCell   *lc;

	tpl_placeholders(PG_GETARG_JSONB_P(0), &names);
	elems = palloc(sizeof(Datum) * Max(list_length(names), 1));
	foreach(lc, names)
		elems[n++] = CStringGetTextDatum(strVal(lfirst(lc)));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}
