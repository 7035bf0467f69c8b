/*-------------------------------------------------------------------------
 *
 * spiplan.h
 *		SPI statements the C code runs again and again: prepared once per
 *		backend and kept, and the arguments handed to them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPIPLAN_H
#define SPIPLAN_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

/*
 * The plan in *cache, prepared and kept on first use.  A statement that does
 * not prepare is a bug in dispatch, not a user's error: elog names it.
 */
extern SPIPlanPtr keep_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types);

/* Argument i of a plan, a text that may be NULL (nulls[] as SPI_execute_plan reads it). */
static inline void
plan_text_arg(Datum *values, char *nulls, int i, const char *s)
{
	values[i] = s ? CStringGetTextDatum(s) : (Datum) 0;
	nulls[i] = s ? ' ' : 'n';
}

#endif							/* SPIPLAN_H */
