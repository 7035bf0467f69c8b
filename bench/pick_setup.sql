-- pick_setup.sql: the workload of bench/pick_latency.sh and bench/explain_claim_path.sh.
-- 1,000 tenants and 50 capability signatures (every 1- and 2-capability set over c0 .. c9, first
-- 50); each tenant submits work under 5 of them. Four priorities (5% critical, 20% high, 50%
-- normal, 25% low); ready_at spread over the last hour, so keys differ as with a live stream.
-- 100 agents: 10 generalists holding all ten capabilities, 90 specialists holding 3 to 6.
-- bench.fill(n) adds n ready tasks; bench.measure(n, size) claims n times (one agent after the
-- other), timing each dispatch_next with clock_timestamp() inside its own transaction, then
-- completes the task and submits a like one, so the queue keeps its size and shape.

CREATE SCHEMA bench;

CREATE TABLE bench.sigs (k int PRIMARY KEY, requires text[] NOT NULL);
INSERT INTO bench.sigs
SELECT row_number() OVER (ORDER BY n, a, b) - 1, r
  FROM (SELECT 1 AS n, a, a AS b, ARRAY['c' || a] AS r FROM generate_series(0, 9) AS a
        UNION ALL
        SELECT 2, a, b, ARRAY['c' || a, 'c' || b] FROM generate_series(0, 9) AS a, generate_series(0, 9) AS b
         WHERE a < b) AS s
 ORDER BY n, a, b
 LIMIT 50;

CREATE SEQUENCE bench.task_seq;

-- Task i: tenant, signature (one of the tenant's five), priority, all from i.
CREATE FUNCTION bench.task_rows(first bigint, n int)
  RETURNS TABLE (tenant text, kind text, payload jsonb, priority text, requires text[], ready_at timestamptz)
  LANGUAGE sql AS $$
  SELECT 't' || lpad((h % 1000)::text, 4, '0'), 'bench', jsonb_build_object('n', i),
         CASE WHEN i % 20 = 0 THEN 'critical' WHEN i % 5 = 1 THEN 'high'
              WHEN i % 4 = 2 THEN 'low' ELSE 'normal' END,
         (SELECT s.requires FROM bench.sigs AS s WHERE s.k = ((h % 1000) * 7 + ((h / 1000) % 5) * 11) % 50),
         now() - make_interval(secs => (h % 3600000) / 1000.0)
    FROM generate_series(first, first + n - 1) AS i,
         LATERAL (SELECT abs(hashint8(i)) AS h) AS x
$$;

CREATE PROCEDURE bench.fill(n int) LANGUAGE plpgsql AS $$
DECLARE
  first bigint;
  chunk int;
BEGIN
  WHILE n > 0 LOOP
    chunk := least(n, 100000);
    first := nextval('bench.task_seq');
    PERFORM setval('bench.task_seq', first + chunk - 1);
    INSERT INTO dispatch.tasks (tenant, kind, payload, priority, requires, ready_at)
      SELECT * FROM bench.task_rows(first, chunk);
    n := n - chunk;
    COMMIT;
  END LOOP;
END
$$;

-- Agents: 10 generalists, 90 specialists with 3 to 6 of the ten capabilities.
SELECT dispatch.register_agent('agent-' || lpad(g::text, 3, '0'),
         CASE WHEN g < 10 THEN ARRAY(SELECT 'c' || c FROM generate_series(0, 9) AS c)
              ELSE ARRAY(SELECT 'c' || c FROM generate_series(0, 9) AS c
                          ORDER BY hashint4(g * 16 + c) LIMIT 3 + g % 4) END,
         capacity => 1000)
  FROM generate_series(0, 99) AS g;

CREATE TABLE bench.latency (size text, agent text, us double precision, task_id bigint,
                            tenant text, sig int);

-- Read every page of the tasks heap, of the ready index and of the primary key (the claim's
-- update inserts there) in this backend. shared_buffers already holds them (pg_prewarm), but a
-- backend maps each shared page on first touch (a page fault): a fresh session probing 1M
-- tasks paid thousands of those that a pooled connection would not, and the 10k side few.
CREATE FUNCTION bench.touch() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL max_parallel_workers_per_gather = 0;
  PERFORM count(*) FROM dispatch.tasks;
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_bitmapscan = off;
  PERFORM count(*) FROM dispatch.tasks WHERE sig > -1 AND state = 'ready' AND reserved_for IS NULL;
  PERFORM count(*) FROM dispatch.tasks WHERE task_id > 0;
END
$$;

-- n claims, each in its own transaction; the timed part is dispatch_next alone.
CREATE PROCEDURE bench.measure(n int, size text, record boolean) LANGUAGE plpgsql AS $$
DECLARE
  agents text[] := ARRAY(SELECT agent_id FROM dispatch.agents ORDER BY agent_id);
  a text;
  t0 timestamptz;
  t1 timestamptz;
  got dispatch.tasks;
BEGIN
  FOR i IN 1..n LOOP
    a := agents[1 + (i * 37) % array_length(agents, 1)];
    t0 := clock_timestamp();
    SELECT * INTO got FROM dispatch.dispatch_next(a);
    t1 := clock_timestamp();
    COMMIT;
    IF record THEN
      INSERT INTO bench.latency VALUES (size, a, extract(epoch FROM t1 - t0) * 1e6, got.task_id,
                                        got.tenant, got.sig);
    END IF;
    IF got.task_id IS NOT NULL THEN
      PERFORM dispatch.complete(got.task_id, '{}');
      INSERT INTO dispatch.tasks (tenant, kind, payload, priority, requires)
      VALUES (got.tenant, got.kind, got.payload, got.priority, got.requires);
    END IF;
    COMMIT;
  END LOOP;
END
$$;
