/*
 * vocab.h: the closed vocabularies of dispatch's tables (vocab.c), for the
 * SQL predicates and the row checks (rowcheck.c).  Lists end with NULL.
 */
#ifndef DISPATCH_VOCAB_H
#define DISPATCH_VOCAB_H

extern const char *const live_states[];
extern const char *const task_states[];
extern const char *const priorities[];
extern const char *const agent_statuses[];
extern const char *const decision_kinds[];
extern const char *const dependency_policies[];
extern const char *const reservations[];

/* Is the text one of the list's words? */
extern bool vocab_has(text *value, const char *const *list);

/* Is the state one of a task not yet finished (scheduled, ready, claimed)?  NULL is not. */
extern bool vocab_is_live(const char *state);

#endif
