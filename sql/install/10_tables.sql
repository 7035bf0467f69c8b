-- 10_tables: the tables of DESIGN.md §1 that the claim path reads and writes, with the
-- indexes it descends. The derived task columns (sig, skey, lst, urgent_at, cost) are set by
-- the C row trigger in 20_core.sql; doc/design.md §4 says what each one means.
--
-- Every table that holds user data is marked with pg_extension_config_dump() where it is created,
-- with the sequences of its ids: pg_dump then dumps the rows (and the sequences' values; an
-- identity sequence of an extension's table is not dumped unless marked itself). Restoring is
-- doc/operations.md, Backup: dispatch.restoring lets the rows in as they are.

CREATE TABLE dispatch.tenants (
  tenant          text PRIMARY KEY
                  CONSTRAINT tenants_tenant_check CHECK (tenant <> '' AND length(tenant) <= 200),
  weight          real NOT NULL DEFAULT 1
                  CONSTRAINT tenants_weight_check CHECK (weight > 0 AND weight <= 1000000),
  max_running     int CONSTRAINT tenants_max_running_check CHECK (max_running >= 0),
  max_queued      int CONSTRAINT tenants_max_queued_check CHECK (max_queued >= 0),
  max_schedules   int CONSTRAINT tenants_max_schedules_check CHECK (max_schedules >= 0),
  max_schedules_per_record int
                  CONSTRAINT tenants_max_schedules_per_record_check CHECK (max_schedules_per_record >= 0),
  credit_balance  numeric NOT NULL DEFAULT 0,
  vstart          double precision NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.tenants IS
  'One row per tenant: fair-share weight, limits and credit. A tenant named by a task or schedule is created with the defaults.';
COMMENT ON COLUMN dispatch.tenants.weight IS 'Fair-share weight: a tenant of weight 2 gets twice the service of a tenant of weight 1 while both are backlogged.';
COMMENT ON COLUMN dispatch.tenants.max_running IS 'At most this many of the tenant''s tasks are claimed at once; NULL means no limit.';
COMMENT ON COLUMN dispatch.tenants.max_queued IS 'submit() refuses new work while the tenant has this many tasks waiting (ready or scheduled); NULL means no limit.';
COMMENT ON COLUMN dispatch.tenants.max_schedules IS 'At most this many active schedules; NULL means no limit.';
COMMENT ON COLUMN dispatch.tenants.max_schedules_per_record IS 'At most this many active schedules with the same record_ref; NULL means no limit.';
COMMENT ON COLUMN dispatch.tenants.credit_balance IS 'Credit available to pre-authorise schedules: a schedule whose projected 7-day cost exceeds it is refused.';
COMMENT ON COLUMN dispatch.tenants.vstart IS 'Fair-share virtual start, in seconds of weighted service; written back by the worker, read at start-up.';
SELECT pg_catalog.pg_extension_config_dump('dispatch.tenants', '');

CREATE TABLE dispatch.policies (
  version     int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  weights     jsonb NOT NULL,
  note        text,
  active      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  created_by  name NOT NULL DEFAULT CURRENT_USER
);
CREATE UNIQUE INDEX policies_one_active ON dispatch.policies (active) WHERE active;
COMMENT ON TABLE dispatch.policies IS
  'Versioned scoring weights and hard rules; exactly one version is active. Every decision records the version that made it. Change with dispatch.set_policy().';
-- Version 1 is the default policy CREATE EXTENSION inserts (20_core.sql), in the restored database
-- too: it is left out of the dump. A restored active version retires it (policy_activate).
SELECT pg_catalog.pg_extension_config_dump('dispatch.policies', 'WHERE version > 1');
SELECT pg_catalog.pg_extension_config_dump('dispatch.policies_version_seq', '');

CREATE TABLE dispatch.signatures (
  sig_id      int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  requires    text[] NOT NULL,
  sensitivity int NOT NULL,
  region      text,
  created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT signatures_key UNIQUE NULLS NOT DISTINCT (requires, sensitivity, region)
);
COMMENT ON TABLE dispatch.signatures IS
  'Interned capability signatures: each distinct (sorted requires, sensitivity, region) of a task. The ready index is keyed by signature, so an agent only descends queues it can serve.';
-- Dumped with their ids: tasks.sig names them.
SELECT pg_catalog.pg_extension_config_dump('dispatch.signatures', '');
SELECT pg_catalog.pg_extension_config_dump('dispatch.signatures_sig_id_seq', '');

CREATE TABLE dispatch.agents (
  agent_id      text PRIMARY KEY,
  capabilities  text[] NOT NULL DEFAULT '{}',
  capacity      int NOT NULL DEFAULT 1,
  running       int NOT NULL DEFAULT 0,
  status        text NOT NULL DEFAULT 'idle',
  traits        real[],
  clearance     int NOT NULL DEFAULT 0,
  region        text,
  speed         real NOT NULL DEFAULT 1,
  owner_role    name NOT NULL DEFAULT CURRENT_USER,
  last_seen     timestamptz NOT NULL DEFAULT pg_catalog.now(),
  idle_since    timestamptz DEFAULT pg_catalog.now(),
  registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  attrs         jsonb NOT NULL DEFAULT '{}'
)
-- Every claim and every completion updates the agent's row (running, status, idle_since). The
-- only index is the primary key, so those updates are HOT; half-full pages leave them room.
WITH (fillfactor = 50);
-- One constraint for every rule of the row, a C function of the whole row (src/rowcheck.c says
-- why): agent_id has 1 to 200 characters; capacity, running and clearance are >= 0; speed > 0;
-- status is idle, busy, draining, lost or offline; capabilities has no NULL element.
CREATE FUNCTION dispatch.agent_row_check(agent dispatch.agents) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_agent_row_check_row';
COMMENT ON FUNCTION dispatch.agent_row_check(dispatch.agents) IS
  'The CHECK of dispatch.agents (agents_row_check): true, or an error (23514) naming the rule the row breaks. dispatch.agent_row_check(agent_id, capacity, ...) checks the same rules over the columns given.';
ALTER TABLE dispatch.agents ADD CONSTRAINT agents_row_check CHECK (dispatch.agent_row_check(agents));
COMMENT ON CONSTRAINT agents_row_check ON dispatch.agents IS
  'agent_id has 1 to 200 characters; capacity, running, clearance >= 0; speed > 0; status is idle, busy, draining, lost or offline; capabilities has no NULL.';
COMMENT ON TABLE dispatch.agents IS
  'One row per agent: what it can do (capabilities, clearance, region), how much at once (capacity), who may act as it (owner_role).';
COMMENT ON COLUMN dispatch.agents.capacity IS 'Most tasks the agent holds at once; dispatch_next returns NULL while running = capacity.';
COMMENT ON COLUMN dispatch.agents.running IS 'Tasks the agent holds now (claimed, not finished).';
COMMENT ON COLUMN dispatch.agents.status IS 'idle or busy (derived from running), draining (takes no new work), lost (heartbeat stopped), offline (deregistered).';
COMMENT ON COLUMN dispatch.agents.traits IS 'Personality vector over the dimensions the active policy names.';
COMMENT ON COLUMN dispatch.agents.owner_role IS 'Members of this role (and of dispatch_admin) may act as the agent.';
COMMENT ON COLUMN dispatch.agents.speed IS 'Relative speed (1 = typical); push assignment prefers faster agents when a deadline is tight.';
SELECT pg_catalog.pg_extension_config_dump('dispatch.agents', '');

CREATE TABLE dispatch.tasks (
  task_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant         text NOT NULL DEFAULT 'default',
  kind           text NOT NULL,
  payload        jsonb NOT NULL DEFAULT '{}',
  priority       text NOT NULL DEFAULT 'normal',
  requires       text[] NOT NULL DEFAULT '{}',
  profile        real[],
  sensitivity    int NOT NULL DEFAULT 0,
  region         text,
  deadline       timestamptz,
  est_duration   interval,
  session_ref    text,
  run_at         timestamptz,
  state          text NOT NULL DEFAULT 'ready',
  agent_id       text,
  attempts       int NOT NULL DEFAULT 0,
  max_attempts   int NOT NULL DEFAULT 3,
  lease_until    timestamptz,
  dispatch_key   text,
  run_id         uuid,
  parent_id      bigint,
  schedule_id    bigint,
  record_ref     text,
  depends_on     bigint[],
  on_dependency_failure text NOT NULL DEFAULT 'cancel',
  outputs        jsonb,
  shed_if_busy   boolean NOT NULL DEFAULT false,
  result         jsonb,
  error          text,
  owner_role     name NOT NULL DEFAULT CURRENT_USER,
  created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
  ready_at       timestamptz,
  claimed_at     timestamptz,
  finished_at    timestamptz,
  -- derived by the row trigger (doc/design.md §4)
  sig            int,
  skey           timestamptz,
  lst            timestamptz,
  urgent_at      timestamptz,
  cost           real,
  reserved_for   text,
  reserved_until timestamptz,
  reservation    text
);
-- One constraint for every rule of the row, a C function of the whole row (src/rowcheck.c says
-- why): priority is critical, high, normal or low; state is one of the eleven states;
-- sensitivity and attempts >= 0; max_attempts >= 1; est_duration > 0; on_dependency_failure is
-- cancel or run; reservation is session or assign; only a low task is shed_if_busy; a ready task
-- has sig and skey; a claimed task has agent_id and lease_until.
CREATE FUNCTION dispatch.task_row_check(task dispatch.tasks) RETURNS boolean
  LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'dispatch_task_row_check_row';
COMMENT ON FUNCTION dispatch.task_row_check(dispatch.tasks) IS
  'The CHECK of dispatch.tasks (tasks_row_check): true, or an error (23514) naming the rule the row breaks. dispatch.task_row_check(priority, state, ...) checks the same rules over the columns given.';
ALTER TABLE dispatch.tasks ADD CONSTRAINT tasks_row_check CHECK (dispatch.task_row_check(tasks));
COMMENT ON CONSTRAINT tasks_row_check ON dispatch.tasks IS
  'priority is critical, high, normal or low; state is scheduled, ready, claimed, done, failed, dead, aborted, cancelled, shed, expired or timeout; sensitivity, attempts >= 0; max_attempts >= 1; est_duration > 0; on_dependency_failure is cancel or run; reservation is session or assign; only low tasks are shed_if_busy; a ready task has sig and skey; a claimed task has agent_id and lease_until.';
COMMENT ON TABLE dispatch.tasks IS
  'One row per unit of work. submit() and a plain INSERT produce the same row: a C trigger validates it and derives sig, skey, lst, urgent_at and cost.';
COMMENT ON COLUMN dispatch.tasks.requires IS 'Capabilities an agent must have (requires is a subset of agents.capabilities).';
COMMENT ON COLUMN dispatch.tasks.sensitivity IS 'Only agents with clearance >= sensitivity may take the task.';
COMMENT ON COLUMN dispatch.tasks.region IS 'When set, only agents of this region may take the task.';
COMMENT ON COLUMN dispatch.tasks.state IS 'scheduled -> ready -> claimed -> done; failed attempts go back to scheduled with backoff, else dead; or aborted, cancelled, shed, expired, timeout.';
COMMENT ON COLUMN dispatch.tasks.lease_until IS 'The claim expires at this time unless extended; the worker then requeues the task.';
COMMENT ON COLUMN dispatch.tasks.dispatch_key IS 'Idempotency key: unique per tenant among unfinished tasks.';
COMMENT ON COLUMN dispatch.tasks.depends_on IS 'The task waits (scheduled) until every task listed here is done.';
COMMENT ON COLUMN dispatch.tasks.on_dependency_failure IS 'cancel (default): a dependency that ends dead, aborted or cancelled cancels this task; run: it runs anyway.';
COMMENT ON COLUMN dispatch.tasks.outputs IS 'Output contract: [{"name", "type", "required", "bind"}]; complete() refuses a result that breaks it.';
COMMENT ON COLUMN dispatch.tasks.shed_if_busy IS 'A low task that may be shed at once when the fleet is overloaded.';
COMMENT ON COLUMN dispatch.tasks.ready_at IS 'When the task last became ready (its queueing starts here).';
COMMENT ON COLUMN dispatch.tasks.sig IS 'Derived: the interned capability signature (dispatch.signatures).';
COMMENT ON COLUMN dispatch.tasks.skey IS 'Derived: priority and aging as one key, ready_at minus the priority''s head start; smaller is served first.';
COMMENT ON COLUMN dispatch.tasks.lst IS 'Derived: latest start time, deadline minus est_duration.';
COMMENT ON COLUMN dispatch.tasks.urgent_at IS 'Derived: from this time the task is in the urgent lane, deadline - (1 + urgent_slack) * est_duration.';
COMMENT ON COLUMN dispatch.tasks.cost IS 'Derived: estimated seconds of work, charged to the tenant''s fair share at claim.';
COMMENT ON COLUMN dispatch.tasks.reserved_for IS 'Reserved for this agent until reserved_until: the agent serving its session (affinity) or the one dispatch.assign chose.';
COMMENT ON COLUMN dispatch.tasks.reservation IS 'Why it is reserved: session (waits for the session''s agent at most affinity_wait) or assign (the agent takes it first).';
SELECT pg_catalog.pg_extension_config_dump('dispatch.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('dispatch.tasks_task_id_seq', '');

-- The claim path's indexes (doc/design.md §5-6). Partial, so they hold only waiting work.
-- task_id last breaks ties (tasks made ready in one transaction share skey) first come, first
-- served, whatever the rows' physical order: a released task keeps its place among its peers.
-- With task_id the keys are unique, so nbtree never folds claimed tasks into a posting list that
-- probes would have to re-read until VACUUM (tasks submitted together share skey).
CREATE INDEX tasks_ready_idx ON dispatch.tasks (sig, tenant, skey, task_id)
  WHERE state = 'ready' AND reserved_for IS NULL;
CREATE INDEX tasks_reserved_idx ON dispatch.tasks (reserved_for, skey, task_id)
  WHERE state = 'ready' AND reserved_for IS NOT NULL;
CREATE INDEX tasks_urgent_idx ON dispatch.tasks (sig, urgent_at, task_id)
  WHERE state = 'ready' AND urgent_at IS NOT NULL;
-- The worker's: due scheduled work, expiring leases (also: the tasks each agent holds).
CREATE INDEX tasks_scheduled_idx ON dispatch.tasks (run_at) WHERE state = 'scheduled';
CREATE INDEX tasks_claimed_idx ON dispatch.tasks (lease_until) WHERE state = 'claimed';
-- History, for views over a window.
CREATE INDEX tasks_finished_idx ON dispatch.tasks (finished_at) WHERE finished_at IS NOT NULL;
-- Deadlines that pass while the task waits (policy past_deadline = expire).
CREATE INDEX tasks_deadline_idx ON dispatch.tasks (deadline)
  WHERE state IN ('scheduled', 'ready') AND deadline IS NOT NULL;

CREATE TABLE dispatch.decisions (
  decision_id    bigint NOT NULL,
  at             timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  kind           text NOT NULL
                 CONSTRAINT decisions_kind_check CHECK (dispatch.is_decision_kind(kind)),
  task_id        bigint,
  agent_id       text,
  tenant         text,
  policy_version int,
  score          double precision,
  factors        jsonb,
  candidates     int,
  reason         text,
  actor          name NOT NULL DEFAULT SESSION_USER
) PARTITION BY RANGE (at);
CREATE SEQUENCE dispatch.decisions_decision_id_seq AS bigint OWNED BY dispatch.decisions.decision_id;
ALTER TABLE dispatch.decisions
  ALTER COLUMN decision_id SET DEFAULT pg_catalog.nextval('dispatch.decisions_decision_id_seq');
CREATE TABLE dispatch.decisions_default PARTITION OF dispatch.decisions DEFAULT;
COMMENT ON TABLE dispatch.decisions_default IS
  'Default partition of dispatch.decisions: rows outside every time partition land here.';
COMMENT ON SEQUENCE dispatch.decisions_decision_id_seq IS
  'Numbers the rows of dispatch.decisions in the order they were written.';
-- The day partitions are plain tables the tick makes (60_decisionlog.sql), so pg_dump dumps them
-- with their rows; the default partition belongs to the extension and is marked.
SELECT pg_catalog.pg_extension_config_dump('dispatch.decisions_default', '');
SELECT pg_catalog.pg_extension_config_dump('dispatch.decisions_decision_id_seq', '');
-- The log's indexes are the default partition's, and each day partition is made LIKE it. Not
-- indexes of the partitioned parent: a restore attaches the dumped day partitions to a parent
-- that CREATE EXTENSION already indexed, which would make their indexes before the dump does.
CREATE INDEX decisions_task_idx ON dispatch.decisions_default (task_id, at);
CREATE INDEX decisions_agent_idx ON dispatch.decisions_default (agent_id, at);
COMMENT ON TABLE dispatch.decisions IS
  'The decision log, append-only: every routing decision with the agent, the task, the policy version, the score and each factor. Partitioned by time; kept for dispatch.decision_retention.';
COMMENT ON COLUMN dispatch.decisions.kind IS 'claim, release, retry, dead, failed, abort, cancel, requeue (lease expired), lost (agent stopped), expire, shed, override, assign, timeout, deregister.';
COMMENT ON COLUMN dispatch.decisions.factors IS 'Each term of the score, in seconds of head start, and the facts behind it.';
COMMENT ON COLUMN dispatch.decisions.candidates IS 'How many candidate tasks the pick considered.';
COMMENT ON COLUMN dispatch.decisions.actor IS 'The session role that caused the decision (the operator, for an override).';

CREATE TABLE dispatch.sessions (
  session_ref  text PRIMARY KEY,
  agent_id     text NOT NULL,
  last_served  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.sessions IS
  'Session affinity: the agent that last served each session_ref; new tasks of the session wait for it up to the policy''s affinity_wait.';
SELECT pg_catalog.pg_extension_config_dump('dispatch.sessions', '');

CREATE TABLE dispatch.kinds (
  kind          text PRIMARY KEY CONSTRAINT kinds_kind_check CHECK (kind <> ''),
  timeout       interval CONSTRAINT kinds_timeout_check CHECK (timeout > interval '0'),
  avg_seconds   double precision,
  completed     bigint NOT NULL DEFAULT 0,
  updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.kinds IS
  'Per kind of task: an optional timeout (a claim running longer ends as timeout, counted as a failed attempt) and the running average duration of completed tasks, used as the cost of tasks submitted without est_duration.';
COMMENT ON COLUMN dispatch.kinds.avg_seconds IS 'Average run time of recently completed tasks of this kind, kept by the worker.';
SELECT pg_catalog.pg_extension_config_dump('dispatch.kinds', '');
