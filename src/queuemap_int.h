/*-------------------------------------------------------------------------
 *
 * queuemap_int.h
 *		The queue map's layout, shared by queuemap.c (protocol) and
 *		queuemap_build.c (filling a map from the ready index).
 *
 *-------------------------------------------------------------------------
 */
#ifndef QUEUEMAP_INT_H
#define QUEUEMAP_INT_H

#include "port/pg_bitutils.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"

#include "queuemap.h"

typedef enum QmState
{
	QM_EMPTY = 0,
	QM_BUILDING,
	QM_READY
} QmState;

typedef struct QmHeader
{
	QmState		state;
	Oid			tasks_relid;	/* the dispatch.tasks this map describes */
	int			builder_pid;
	TimestampTz build_started;
	TimestampTz built_at;
	bool		rebuild_requested;
	double		vtime;			/* SFQ virtual time V, in weighted seconds */
	int			nslots;
	int			nsigs;
	uint64		generation;		/* bumped by every reset */
} QmHeader;

typedef struct QmSlot
{
	char		name[QM_TENANT_LEN];
	double		weight;
	double		vstart;
	int32		running;
	int32		max_running;	/* -1: no limit */
} QmSlot;

typedef struct QmSig
{
	int32		sig_id;
	bool		urgent_flag;	/* its urgent lane may hold work */
	uint64		urgent_epoch;
	TimestampTz urgent_first;	/* lower bound on the smallest urgent_at */
} QmSig;

typedef struct QmTenantEnt
{
	char		name[QM_TENANT_LEN];	/* key */
	int32		slot;
} QmTenantEnt;

typedef struct QmSigEnt
{
	int32		sig_id;			/* key */
	int32		idx;
} QmSigEnt;

typedef struct QmPairKey
{
	int32		sigidx;
	int32		slot;
} QmPairKey;

typedef struct QmPair
{
	QmPairKey	key;
	uint64		epoch;
	TimestampTz head;			/* lower bound on the queue's smallest skey */
} QmPair;

typedef struct QmMap
{
	QmHeader   *hdr;
	QmSlot	   *slots;
	QmSig	   *sigs;
	uint64	   *bits;			/* nsigs rows of `words` words */
	int			words;
	HTAB	   *tenants;
	HTAB	   *sigix;
	HTAB	   *pairs;
	LWLock	   *lock;			/* NULL for a private map */
	bool		shared;
} QmMap;

extern QmMap *qm_map(void);
extern void qm_lock(QmMap *map, LWLockMode mode);
extern void qm_unlock(QmMap *map);
extern int	qm_find_slot(QmMap *map, const char *tenant);
extern int	qm_find_sig(QmMap *map, int32 sig);
extern QmPair *qm_find_pair(QmMap *map, int sigidx, int slot);
extern int	qm_ensure_slot(QmMap *map, const char *tenant, double weight,
						   int32 max_running, double vstart);
extern int	qm_ensure_sig(QmMap *map, int32 sig);
extern QmPair *qm_ensure_pair(QmMap *map, int sigidx, int slot);
extern void qm_raise(QmMap *map, int sigidx, int slot, QmPair *pair, TimestampTz head);
extern void qm_reset(QmMap *map);

/* queuemap_build.c */
extern void qm_ensure_built(QmMap *map);

#endif							/* QUEUEMAP_INT_H */
