/*-------------------------------------------------------------------------
 *
 * pick.h
 *		Choosing the best task for one agent: candidates and scores.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PICK_H
#define PICK_H

#include "postgres.h"

#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#include "policy.h"
#include "queuemap.h"

/* The agent as the pick needs it. */
typedef struct PickAgent
{
	const char *agent_id;
	const int32 *sigs;			/* signatures it satisfies */
	int			nsigs;
	ArrayType  *traits;			/* NULL: no personality */
} PickAgent;

typedef enum PickLane
{
	LANE_FAIR,					/* head of one of the fairest tenants' queues */
	LANE_URGENT,				/* past its urgent_at */
	LANE_RESERVED				/* reserved for this agent: session or assign */
} PickLane;

typedef struct Candidate
{
	ItemPointerData tid;
	int64		task_id;
	int32		sig;
	char		tenant[QM_TENANT_LEN];
	PickLane	lane;
	bool		assigned;		/* reserved by dispatch.assign, not by a session */
	int			prio;
	TimestampTz skey;
	TimestampTz urgent_at;		/* DT_NOEND: no deadline */
	TimestampTz deadline;		/* DT_NOEND: none */
	double		cost;			/* s */
	/* the score and its terms, all in seconds */
	double		score;
	double		age;			/* now - skey: waiting time plus priority bonus */
	double		age_credit;		/* the part of age the score counts (capped; +1e9 strict) */
	double		bonus;			/* the priority part of age */
	double		urgent;
	double		affinity;
	double		match;
	double		match_value;	/* in [0, 1], or -1 without vectors */
	double		fair;
	double		tenant_vstart;	/* effective virtual start of its tenant */
} Candidate;

typedef struct PickResult
{
	int			ncandidates;
	Candidate  *candidates;		/* best first */
	double		vtime;			/* V when read */
	int			probes;			/* index descents made */
	const Policy *policy;
} PickResult;

/*
 * Gather and score the candidates for this agent, best first, without
 * locking anything.  `snap` is the snapshot the probes scan with; it must be
 * taken after this call reads the queue map, so the caller passes NULL and
 * the function takes a fresh one (doc/design.md §5).
 */
extern void pick_candidates(const PickAgent *agent, TimestampTz now, PickResult *result);

#endif							/* PICK_H */
