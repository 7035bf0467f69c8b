/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The background worker (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WORKER_H
#define WORKER_H

#include "postgres.h"

/* From _PG_init, when preloaded: one worker per database in dispatch.database_name. */
extern void worker_register_all(void);

#endif							/* WORKER_H */
