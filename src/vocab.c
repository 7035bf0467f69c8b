/*
 * vocab.c: the closed vocabularies of dispatch's tables (task states,
 * priorities, agent statuses, decision kinds) as IMMUTABLE C predicates, for
 * the tables' CHECK constraints and the tasks' trigger WHEN clauses.
 *
 * Why functions and not `state IN ('scheduled', ...)`: PostgreSQL re-reads
 * (stringToNode) and re-plans every CHECK constraint and every trigger WHEN
 * clause of a table once per statement execution, and a text IN list is
 * stored as a long array constant.  On the claim path (one UPDATE of the
 * task, of the agent and an INSERT of the decision per claim, the same again
 * per completion) that re-reading was a third of all the instructions a
 * claim+complete executed (bench/callgrind_claim.sh).  A call of one of these
 * functions is a short node to read, and as cheap to evaluate.
 *
 * The lists here are the contract of doc/reference.md; rowcheck.c uses them
 * for the tasks' and agents' row checks.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "vocab.h"

static bool
has_word(const char *s, int len, const char *const *list)
{
	for (; *list; list++)
		if ((int) strlen(*list) == len && memcmp(*list, s, len) == 0)
			return true;
	return false;
}

bool
vocab_has(text *value, const char *const *list)
{
	return has_word(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), list);
}

bool
vocab_is_live(const char *state)
{
	return state != NULL && has_word(state, strlen(state), live_states);
}

const char *const live_states[] = {"scheduled", "ready", "claimed", NULL};
const char *const task_states[] = {"scheduled", "ready", "claimed", "done", "failed",
	"dead", "aborted", "cancelled", "shed", "expired", "timeout", NULL};
const char *const priorities[] = {"critical", "high", "normal", "low", NULL};
const char *const agent_statuses[] = {"idle", "busy", "draining", "lost", "offline", NULL};
const char *const decision_kinds[] = {"claim", "release", "retry", "dead", "failed",
	"abort", "cancel", "requeue", "lost", "expire", "shed", "override", "assign", "timeout",
	"deregister", NULL};
const char *const dependency_policies[] = {"cancel", "run", NULL};
const char *const reservations[] = {"session", "assign", NULL};

#define VOCAB_PREDICATE(sqlname, list) \
	PG_FUNCTION_INFO_V1(sqlname); \
	Datum sqlname(PG_FUNCTION_ARGS) \
	{ \
		PG_RETURN_BOOL(vocab_has(PG_GETARG_TEXT_PP(0), list)); \
	}

/* All are STRICT in SQL: NULL in, NULL out, so a CHECK lets NULL through as IN did. */
VOCAB_PREDICATE(dispatch_is_task_state, task_states)
VOCAB_PREDICATE(dispatch_is_live_state, live_states)
VOCAB_PREDICATE(dispatch_is_priority, priorities)
VOCAB_PREDICATE(dispatch_is_agent_status, agent_statuses)
VOCAB_PREDICATE(dispatch_is_decision_kind, decision_kinds)
