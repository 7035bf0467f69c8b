/*-------------------------------------------------------------------------
 *
 * fanout.h
 *		Runs (fanout.c) and task events (events.c): what the row trigger
 *		asks of the fan-out features.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FANOUT_H
#define FANOUT_H

#include "postgres.h"

#include "utils/uuid.h"

/* A new time-ordered run id (UUID version 7). */
extern Datum fanout_new_run_id(void);

/* The run a task without parent or run_id starts: made from its task_id. */
extern Datum fanout_own_run_id(int64 task_id);
extern bool fanout_run_task(const pg_uuid_t *u, int64 *task_id);

/* The run of this parent task; errors when the parent does not exist. */
extern Datum fanout_parent_run_id(int64 parent_id);

/* Settings (events.c). */
extern bool dispatch_notify;
extern int	dispatch_notify_max_tasks;
extern void events_define_settings(void);

/*
 * A task was inserted or changed state (not by a claim).  Sent as NOTIFY at
 * commit: dispatch_events, and dispatch_agent_<id> for agents that can take
 * it when it became ready (reserved_for: only that agent).
 */
extern void events_note_task(int64 task_id, const char *state, const char *tenant,
							 const pg_uuid_t *run_id, int32 sig, const char *reserved_for);

/* The channel agent_id listens on: dispatch_agent_<id>, hashed when too long. */
extern char *events_agent_channel(const char *agent_id);

/*
 * Wake agents for newly ready work: for entry i, counts[i] tasks reserved for
 * agents[i], or (agents[i] NULL) of signature sigs[i].  Inside a transaction.
 */
extern void events_send_wakes(int n, const int32 *sigs, const int64 *counts, const char **agents);

/* The notifier (notifier.c): sends the NOTIFYs of committed transactions. */
extern bool dispatch_notify_deferred;
extern void notifier_shmem_request(void);
extern void notifier_shmem_startup(void);
extern void notifier_register_all(void);
extern bool notifier_available(void);
extern bool notifier_push(const char *buf, Size len);

#endif							/* FANOUT_H */
