/*-------------------------------------------------------------------------
 *
 * template.h
 *		Task templates with {{column}} placeholders (template.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEMPLATE_H
#define TEMPLATE_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* Append the distinct placeholder names (String nodes) used in a template. */
extern void tpl_placeholders(Jsonb *tpl, List **names);
extern void text_placeholders(const char *s, List **names);

/* The template filled from row (a jsonb object of column -> value). */
extern Jsonb *tpl_render(Jsonb *tpl, Jsonb *row);
extern char *text_render(const char *s, Jsonb *row);

#endif							/* TEMPLATE_H */
