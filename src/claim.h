/*-------------------------------------------------------------------------
 *
 * claim.h
 *		The agent row and the decision log, as the claim path and the other
 *		C entry points (explain) use them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLAIM_H
#define CLAIM_H

#include "postgres.h"

#include "utils/array.h"
#include "utils/timestamp.h"

#include "pick.h"

typedef struct AgentRow
{
	const char *agent_id;
	ArrayType  *capabilities;
	int32		capacity;
	int32		running;
	char	   *status;
	ArrayType  *traits;
	int32		clearance;
	char	   *region;
	char	   *owner_role;
	TimestampTz last_seen;
} AgentRow;

/* Both need SPI connected. */
extern bool agent_load(const char *agent_id, AgentRow *a);
extern void agent_load_checked(const char *agent_id, AgentRow *a);

extern char *candidate_factors(const Candidate *c, double vtime, int probes);
extern void log_decision(const char *kind, int64 task_id, const char *agent_id,
						 const char *tenant, int32 policy_version, double score,
						 const char *factors, int candidates, const char *reason,
						 TimestampTz at);

#endif							/* CLAIM_H */
