/*-------------------------------------------------------------------------
 *
 * kinds.h
 *		Per-kind statistics (dispatch.kinds), cached per session.
 *
 *-------------------------------------------------------------------------
 */
#ifndef KINDS_H
#define KINDS_H

/* Average seconds of completed tasks of this kind, or -1 when unknown. */
extern double kind_avg_seconds(const char *kind);

#endif							/* KINDS_H */
