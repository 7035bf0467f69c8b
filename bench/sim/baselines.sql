-- baselines.sql: the two queues dispatch is compared with in the simulation, each a plain SQL
-- claim (FOR UPDATE SKIP LOCKED) on a table equivalent to dispatch.tasks. Both apply the same
-- hard filters as dispatch (requires within the agent's capabilities, sensitivity within its
-- clearance), so every system may only give an agent work it can do; they differ in order:
--   fifo      oldest first (task_id is the arrival order);
--   priority  critical, high, normal, low; oldest first within a priority.
-- Neither knows tenants' weights, deadlines or sessions: that is what they are baselines for.

CREATE SCHEMA base;

CREATE TABLE base.tasks (
  task_id     bigint PRIMARY KEY,
  tenant      text NOT NULL,
  prio        int NOT NULL,              -- 0 critical .. 3 low
  requires    text[] NOT NULL,
  sensitivity int NOT NULL,
  deadline    timestamptz,
  state       text NOT NULL DEFAULT 'ready',
  agent_id    text,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  claimed_at  timestamptz,
  finished_at timestamptz
);
CREATE INDEX tasks_fifo_idx ON base.tasks (task_id) WHERE state = 'ready';
CREATE INDEX tasks_prio_idx ON base.tasks (prio, task_id) WHERE state = 'ready';

CREATE FUNCTION base.fifo_next(agent text, caps text[], clearance int) RETURNS bigint
  LANGUAGE sql AS $$
  UPDATE base.tasks AS t SET state = 'claimed', agent_id = agent, claimed_at = clock_timestamp()
   WHERE t.task_id = (SELECT task_id FROM base.tasks
                       WHERE state = 'ready' AND requires <@ caps AND sensitivity <= clearance
                       ORDER BY task_id
                       LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING t.task_id
$$;

CREATE FUNCTION base.priority_next(agent text, caps text[], clearance int) RETURNS bigint
  LANGUAGE sql AS $$
  UPDATE base.tasks AS t SET state = 'claimed', agent_id = agent, claimed_at = clock_timestamp()
   WHERE t.task_id = (SELECT task_id FROM base.tasks
                       WHERE state = 'ready' AND requires <@ caps AND sensitivity <= clearance
                       ORDER BY prio, task_id
                       LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING t.task_id
$$;

CREATE FUNCTION base.complete(id bigint) RETURNS void
  LANGUAGE sql AS $$
  UPDATE base.tasks SET state = 'done', finished_at = clock_timestamp() WHERE task_id = id
$$;
