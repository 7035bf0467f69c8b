/*-------------------------------------------------------------------------
 *
 * runas.h
 *		Run user SQL as the role that owns it (runas.c): the one way
 *		dispatch does it, for sweeps, schedules' sweeps, output binds and
 *		watch set-up.
 *
 * dispatch's functions are SECURITY DEFINER and the worker connects as the
 * bootstrap superuser, so user SQL run from them would run with all
 * privileges.  runas_call() switches the user id the way a SECURITY DEFINER
 * function does, plus SECURITY_RESTRICTED_OPERATION, pins search_path at a
 * new GUC nest level, and (read_only) makes the transaction read-only for
 * the duration; all of it comes back on success and on error.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISPATCH_RUNAS_H
#define DISPATCH_RUNAS_H

#include "postgres.h"

#include "access/tupdesc.h"

typedef void (*RunAsFn) (void *arg);

/*
 * fn(arg) as role, with search_path (not NULL: 22004) and, when read_only,
 * in a read-only transaction state: a write anywhere below, even in a
 * volatile function the query calls, fails with 25006.  what names the SQL
 * in the error context ("sweep query run as role ...").
 */
extern void runas_call(Oid role, const char *search_path, bool read_only, const char *what,
					   RunAsFn fn, void *arg);

/*
 * The text of the one plain SELECT in query: no second statement, and
 * nowhere in it INTO, FOR UPDATE/SHARE or a data-modifying WITH.  A syntax
 * error is the parser's (42601); anything else that is not one SELECT is
 * 22023.  The text returned may be wrapped in a subquery safely.
 */
extern char *runas_select_text(const char *query);

/*
 * Prepare (parse and analyse, not run) sql as role with search_path, read
 * only: unknown tables and columns raise their usual errors.  Returns the
 * result's tuple descriptor (in the caller's SPI procedure context), or
 * raises 22023 when the statement returns no rows.  The caller is connected
 * to SPI.
 */
extern TupleDesc runas_spi_prepare(Oid role, const char *search_path, const char *sql);

/*
 * SPI_execute(sql, false, tcount) as role with search_path, read only; the
 * result is in SPI_tuptable / SPI_processed as usual.  The caller is
 * connected to SPI.
 */
extern int	runas_spi_execute(Oid role, const char *search_path, const char *sql, long tcount);

#endif							/* DISPATCH_RUNAS_H */
