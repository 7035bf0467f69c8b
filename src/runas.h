/*-------------------------------------------------------------------------
 *
 * runas.h
 *		Run one user query as a given role (runas.c).
 *
 * User SQL (a schedule's sweep) runs as the role that owns it, never as the
 * extension's owner that dispatch's SECURITY DEFINER functions and the
 * worker run as.  The switch is the one a SECURITY DEFINER function makes,
 * plus SECURITY_RESTRICTED_OPERATION, and search_path is pinned to the value
 * the owner had when the query was stored.  Both come back on success and on
 * error.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISPATCH_RUNAS_H
#define DISPATCH_RUNAS_H

#include "postgres.h"

#include "executor/spi.h"

/*
 * The text of the one plain SELECT in query: no second statement, no INTO,
 * no data-modifying WITH.  A syntax error is the parser's (42601); anything
 * else that is not one SELECT is 22023.  The text returned may be wrapped in
 * a subquery safely.
 */
extern char *runas_select_text(const char *query);

/*
 * Prepare (parse and analyse, not run) sql as role with search_path: unknown
 * tables and columns raise their usual errors.  Returns the result's tuple
 * descriptor, or raises 22023 when the statement returns no rows.  The caller
 * is connected to SPI.
 */
extern TupleDesc runas_spi_prepare(Oid role, const char *search_path, const char *sql);

/*
 * SPI_execute(sql, false, tcount) as role with search_path; the result is in
 * SPI_tuptable / SPI_processed as usual.  The caller is connected to SPI.
 */
extern int	runas_spi_execute(Oid role, const char *search_path, const char *sql, long tcount);

#endif							/* DISPATCH_RUNAS_H */
