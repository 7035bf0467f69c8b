/*-------------------------------------------------------------------------
 *
 * taskcols.h
 *		Attribute numbers of the dispatch.tasks columns the C code reads,
 *		looked up by name so the C code does not depend on column order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKCOLS_H
#define TASKCOLS_H

#include "access/attnum.h"

typedef struct TaskCols
{
	AttrNumber	task_id;
	AttrNumber	tenant;
	AttrNumber	kind;
	AttrNumber	priority;
	AttrNumber	requires;
	AttrNumber	profile;
	AttrNumber	sensitivity;
	AttrNumber	region;
	AttrNumber	deadline;
	AttrNumber	est_duration;
	AttrNumber	session_ref;
	AttrNumber	state;
	AttrNumber	agent_id;
	AttrNumber	sig;
	AttrNumber	skey;
	AttrNumber	lst;
	AttrNumber	urgent_at;
	AttrNumber	cost;
	AttrNumber	reserved_for;
	AttrNumber	reserved_until;
	AttrNumber	ready_at;
	AttrNumber	claimed_at;
	AttrNumber	payload;
	AttrNumber	run_at;
	AttrNumber	reservation;
	/* fan-out (doc/fanout.md) */
	AttrNumber	run_id;
	AttrNumber	parent_id;
	AttrNumber	depends_on;
	AttrNumber	has_dependents;
	AttrNumber	schedule_id;
	AttrNumber	error;
} TaskCols;

extern const TaskCols *task_cols(void);

#endif							/* TASKCOLS_H */
