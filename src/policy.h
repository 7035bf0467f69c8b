/*-------------------------------------------------------------------------
 *
 * policy.h
 *		The active scoring policy: every weight in seconds of head start.
 *
 *-------------------------------------------------------------------------
 */
#ifndef POLICY_H
#define POLICY_H

#include "postgres.h"

#define PRIO_CRITICAL 0
#define PRIO_HIGH 1
#define PRIO_NORMAL 2
#define PRIO_LOW 3
#define NPRIO 4

#define POLICY_MAX_TRAITS 16

typedef struct Policy
{
	int32		version;
	double		priority_bonus[NPRIO];	/* s of head start */
	bool		critical_strict;	/* critical ahead of everything else */
	double		default_cost;	/* s, when no est_duration nor kind average */
	double		urgent_slack;	/* g: urgent from deadline - (1+g)*est */
	double		urgent_weight;	/* s */
	double		affinity_weight;	/* s */
	double		affinity_wait;	/* s */
	double		match_weight;	/* s */
	double		fair_weight;	/* s of score per weighted second of lead */
	double		max_age_credit;	/* s: most age (incl. bonus) a candidate brings across tenants */
	int			fair_candidates;	/* tenants re-scored per pick */
	bool		expire_past_deadline;	/* else run late, counted as a miss */
	double		assign_hold;	/* s a dispatch.assign reservation holds */
	double		shed_after[NPRIO];	/* s; < 0: never */
	int			ntraits;
	char		traits[POLICY_MAX_TRAITS][NAMEDATALEN];
	double		trait_weights[POLICY_MAX_TRAITS];
	bool		trait_is_max[POLICY_MAX_TRAITS];	/* task value is a hard max */
} Policy;

extern const Policy *policy_active(void);
extern int	priority_index(const char *priority);
extern const char *priority_name(int idx);

/* The bonus used for the skey: strict critical is 10^9 s. */
extern double policy_bonus(const Policy *p, int prio);

#endif							/* POLICY_H */
