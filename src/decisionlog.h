/*-------------------------------------------------------------------------
 *
 * decisionlog.h
 *		dispatch.log_decisions: which decisions are written to the log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DECISIONLOG_H
#define DECISIONLOG_H

#include "postgres.h"

/* Should a decision of this kind (about this task, if any) be written? */
extern bool decision_wanted(const char *kind, int64 task_id, bool has_task);

#endif							/* DECISIONLOG_H */
