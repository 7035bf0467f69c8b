-- claim_setup.sql: the workload of bench/claim_throughput.sh.
-- Two queues holding the same tasks: dispatch.tasks (claimed with dispatch_next) and the plain
-- baseline bench.plain_tasks, a table with the same columns, a primary key and one partial index
-- on (priority, task_id) WHERE state = 'ready', claimed with UPDATE ... FOR UPDATE SKIP LOCKED.
-- Tasks: 10 tenants, four priorities (5% critical, 20% high, 50% normal, 25% low), four
-- capability sets, ready_at spread over the last hour (a backlog built up over time, so keys
-- differ); eight generalist agents (agent-0 .. agent-7, one per pgbench client).

CREATE SCHEMA bench;

CREATE TABLE bench.plain_tasks (LIKE dispatch.tasks INCLUDING DEFAULTS INCLUDING IDENTITY);
ALTER TABLE bench.plain_tasks ADD PRIMARY KEY (task_id);
CREATE INDEX plain_tasks_ready_idx ON bench.plain_tasks (priority, task_id) WHERE state = 'ready';

-- Tasks first .. first + n - 1 of the workload; both queues draw from this one generator.
CREATE FUNCTION bench.task_rows(first bigint, n int)
  RETURNS TABLE (tenant text, kind text, payload jsonb, priority text, requires text[],
                 ready_at timestamptz)
  LANGUAGE sql STABLE AS $$
  SELECT 't' || (i % 10), 'bench', jsonb_build_object('n', i, 'input', 'some task input'),
         CASE WHEN h % 20 = 0 THEN 'critical' WHEN h % 20 < 5 THEN 'high'
              WHEN h % 20 < 15 THEN 'normal' ELSE 'low' END,
         (ARRAY['{}', '{python}', '{python,gpu}', '{browser}'])[1 + (h / 20) % 4]::text[],
         now() - make_interval(secs => (h % 3600000) / 1000.0)
    FROM generate_series(first, first + n - 1) AS i,
         LATERAL (SELECT abs(hashint8(i)) AS h) AS x
$$;

CREATE SEQUENCE bench.task_seq;

-- Bring both queues to n ready tasks, drawing the new tasks from the one generator.
CREATE PROCEDURE bench.top_up(n int) LANGUAGE plpgsql AS $$
DECLARE
  need int;
  first bigint;
BEGIN
  need := n - (SELECT count(*) FROM dispatch.tasks WHERE state = 'ready' AND reserved_for IS NULL);
  WHILE need > 0 LOOP
    first := nextval('bench.task_seq');
    PERFORM setval('bench.task_seq', first + least(need, 100000) - 1);
    INSERT INTO dispatch.tasks (tenant, kind, payload, priority, requires, ready_at)
      SELECT * FROM bench.task_rows(first, least(need, 100000));
    need := need - least(need, 100000);
    COMMIT;
  END LOOP;
  need := n - (SELECT count(*) FROM bench.plain_tasks WHERE state = 'ready');
  WHILE need > 0 LOOP
    first := nextval('bench.task_seq');
    PERFORM setval('bench.task_seq', first + least(need, 100000) - 1);
    INSERT INTO bench.plain_tasks (tenant, kind, payload, priority, requires, ready_at, state)
      SELECT r.*, 'ready' FROM bench.task_rows(first, least(need, 100000)) AS r;
    need := need - least(need, 100000);
    COMMIT;
  END LOOP;
END
$$;

SELECT dispatch.register_agent('agent-' || i, '{python,gpu,browser}', capacity => 4)
  FROM generate_series(0, 7) AS i;
