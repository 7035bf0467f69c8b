/*-------------------------------------------------------------------------
 *
 * taskrow.h
 *		The row trigger of dispatch.tasks (taskrow.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKROW_H
#define TASKROW_H

/* Around dispatch_next's own UPDATE: the claim has charged agent and tenant. */
extern void taskrow_claim_begin(void);
extern void taskrow_claim_end(void);

#endif							/* TASKROW_H */
