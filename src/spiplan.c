/*-------------------------------------------------------------------------
 *
 * spiplan.c
 *		Kept SPI plans (spiplan.h): the statements of the claim path, the
 *		counters and the dependency graph run once per task, so each is
 *		prepared once per backend and reused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "spiplan.h"

SPIPlanPtr
keep_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "dispatch: could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*cache = p;
	}
	return *cache;
}
