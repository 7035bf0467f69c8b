/*-------------------------------------------------------------------------
 *
 * match.h
 *		Capability signatures and personality match.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MATCH_H
#define MATCH_H

#include "postgres.h"

#include "utils/array.h"

#include "policy.h"

/*
 * The signature of a task's (requires, sensitivity, region), interned in
 * dispatch.signatures.  *canonical receives requires sorted and without
 * duplicates (what the row stores).  May insert a new signature row.
 */
extern int32 sig_intern(ArrayType *requires, int32 sensitivity, text *region,
						ArrayType **canonical);

/* The elements of a real[] that has no NULLs. */
extern float4 *real_array_data(ArrayType *arr);

/* Sorted, de-duplicated copy of a text[]; errors on NULL elements. */
extern ArrayType *text_array_canonical(ArrayType *arr, const char *what);

/*
 * The signatures an agent satisfies: requires ⊆ capabilities, sensitivity ≤
 * clearance, region NULL or equal.  Cached per agent until the signatures or
 * the agent's capabilities, clearance or region change.
 */
extern int	agent_signatures(const char *agent_id, ArrayType *capabilities,
							 int32 clearance, const char *region, const int32 **sigs);

/* Does this agent satisfy this signature (for explain and push assignment)? */
extern bool agent_satisfies(const int32 *sigs, int nsigs, int32 sig);

/*
 * Personality match in [0, 1]: 1 - weighted distance / max distance over the
 * policy's trait dimensions present in both vectors (NULL if either vector is
 * NULL).  *violates is set when a trait_max dimension is exceeded.
 */
extern double personality_match(const Policy *p, ArrayType *traits, ArrayType *profile,
								 bool *has_match, bool *violates);

#endif							/* MATCH_H */
