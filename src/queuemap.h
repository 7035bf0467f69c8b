/*-------------------------------------------------------------------------
 *
 * queuemap.h
 *		The queue map: which (signature, tenant) queues may hold ready work,
 *		a lower bound on each queue's head, and each tenant's fair-share state.
 *
 * It is a hint; the ready index is the truth.  Invariant: a queue that holds
 * visible ready work is flagged.  doc/design.md §5 gives the protocol that
 * keeps it under concurrency.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QUEUEMAP_H
#define QUEUEMAP_H

#include "postgres.h"

#include "utils/timestamp.h"

#define QM_TENANT_LEN 201		/* bytes, with the NUL; tenants are <= 200 bytes */

/* Shared-memory set-up (called from dispatch.c hooks). */
extern void queuemap_shmem_request(void);
extern void queuemap_shmem_startup(void);

/* One tenant as the claim path sees it. */
typedef struct QmTenantView
{
	int			slot;
	char		name[QM_TENANT_LEN];
	double		weight;
	double		vstart;			/* effective: max(own vstart, V) */
	int32		running;
	int32		max_running;	/* -1: no limit */
} QmTenantView;

/* One queue to probe, with what the map knew when it was read. */
typedef struct QmQueueView
{
	int32		sig;
	int			slot;			/* index into the tenant views' slots */
	uint64		epoch;
	TimestampTz head;			/* lower bound on the queue's smallest skey */
} QmQueueView;

/* What the claim path learns from one pick's read of the map. */
typedef struct QmPickView
{
	double		vtime;			/* V */
	int			ntenants;
	QmTenantView *tenants;		/* fairest first */
	int			nqueues;
	QmQueueView *queues;		/* grouped by tenant, in tenants order */
	int			nurgent;
	QmQueueView *urgent;		/* signatures whose urgent lane may have come */
	bool		shared;			/* the map is in shared memory */
	bool		overflow;		/* some tenant could not be considered */
} QmPickView;

/*
 * Reading the map for one pick: the k fairest tenants that may have work in
 * any of the given signatures, and their queues.  Builds the map first when
 * this database has none yet (or a private one that is too old).
 */
extern void qm_read_for_pick(const int32 *sigs, int nsigs, int k, TimestampTz now,
							 QmPickView *view);

/* After a probe: the queue held nothing visible, or its head is `head`. */
extern void qm_observe_queue(int32 sig, const char *tenant, uint64 epoch,
							 bool empty, TimestampTz head);
extern void qm_observe_urgent(int32 sig, uint64 epoch, bool empty, TimestampTz first);

/*
 * Charging a claim at once: running + 1 unless the tenant is at max_running,
 * vstart advanced by cost / weight, V advanced to at most `vfloor` (the
 * smallest effective vstart among the tenants the pick found work for).
 * Undone if the transaction aborts.  Returns false (and changes nothing)
 * when the tenant is capped.
 */
extern bool qm_charge_claim(const char *tenant, double cost, double vfloor,
							double *vstart_before, double *vtime);
extern void qm_cancel_charge(const char *tenant);
extern double qm_virtual_time(void);
extern void qm_tenant_info(const char *tenant, double *vstart_eff, bool *capped);
extern void qm_flush_observations(void);

/*
 * Notes from the row trigger, applied when the transaction commits.  The
 * trigger calls qm_prepare_queue() first, which may raise an error (map
 * full); the commit-time application can then never fail.
 */
extern void qm_prepare_queue(int32 sig, const char *tenant, double weight,
							 int32 max_running, double vstart);
extern void qm_note_ready(int32 sig, const char *tenant, TimestampTz skey);
extern void qm_note_urgent(int32 sig, TimestampTz urgent_at);
extern void qm_note_running(const char *tenant, int delta);
extern void qm_note_charge(const char *tenant, double seconds);
extern void qm_note_tenant(const char *tenant, double weight, int32 max_running);
extern void qm_note_rebuild(void);

/* Is the tenant known to the map (so the trigger may skip reading its row)? */
extern bool qm_knows_queue(int32 sig, const char *tenant);

/* SQL-visible: dispatch.rebuild_queue_map(), dispatch.queue_map() */
extern void qm_rebuild_now(void);

/* The worker persists the tenants' virtual start once per tick. */
typedef struct QmTenantState
{
	char		name[QM_TENANT_LEN];
	double		vstart;
} QmTenantState;
extern int	qm_snapshot_vstart(QmTenantState **states);

#endif							/* QUEUEMAP_H */
