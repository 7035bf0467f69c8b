/*
 * module_stub.c: PG_MODULE_MAGIC for the cron worktree only, so the library loads while the
 * extension's main C file (dispatch.c, with _PG_init) is written elsewhere. Drop this file
 * when merging.
 */
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;
