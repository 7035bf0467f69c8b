-- ops_reader: a member of dispatch_reader reads every table, view and report, and changes nothing.
BEGIN;
SELECT plan(16);

CREATE ROLE ops_reader_t IN ROLE dispatch_reader;
SELECT dispatch.register_agent('rd-1');
SELECT dispatch.submit('k');
SELECT dispatch.tick();

-- Privileges, from the catalog: every relation readable, none writable.
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class AS c
                 WHERE c.relnamespace = 'dispatch'::regnamespace
                   AND CASE WHEN c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
                            THEN NOT has_table_privilege('ops_reader_t', c.oid, 'SELECT') END
                 ORDER BY 1),
          '{}'::text[], 'the reader may SELECT every table and view');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class AS c
                 WHERE c.relnamespace = 'dispatch'::regnamespace
                   AND CASE WHEN c.relkind IN ('r', 'p', 'v')
                            THEN has_table_privilege('ops_reader_t', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') END
                 ORDER BY 1),
          '{}'::text[], 'the reader may not write any of them');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class AS c
                 WHERE c.relnamespace = 'dispatch'::regnamespace
                   AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('ops_reader_t', c.oid, 'USAGE, UPDATE') END
                 ORDER BY 1),
          '{}'::text[], 'nor use a sequence');
-- The functions it may call are exactly these, and each of them only reads.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc AS p
                 WHERE p.pronamespace = 'dispatch'::regnamespace
                   AND has_function_privilege('ops_reader_t', p.oid, 'EXECUTE') ORDER BY 1),
  ARRAY['dispatch.agent_channel(text)', 'dispatch.agent_row_check(dispatch.agents)',
        'dispatch.agent_row_check(text,integer,integer,text,integer,real,text[])',
        'dispatch.agent_utilization(interval)',
        'dispatch.caller()', 'dispatch.check_result(bigint,jsonb,jsonb)',
        'dispatch.check_task_template(jsonb,boolean)', 'dispatch.check_template(jsonb,boolean)',
        'dispatch.claim_sampled(bigint)',
        'dispatch.count_fires(text,timestamp with time zone,timestamp with time zone,text,timestamp with time zone)',
        'dispatch.dashboard(interval)',
        'dispatch.decision_partitions()', 'dispatch.explain(bigint)',
        'dispatch.explain_next(text)', 'dispatch.fairness(interval)',
        'dispatch.fire_times(text,timestamp with time zone,timestamp with time zone,text,timestamp with time zone,integer,boolean)',
        'dispatch.forecast(text,interval)',
        'dispatch.is_agent_status(text)', 'dispatch.is_decision_kind(text)', 'dispatch.is_live_state(text)',
        'dispatch.is_priority(text)', 'dispatch.is_task_state(text)',
        'dispatch.may_act_as(name)', 'dispatch.next_due()',
        'dispatch.next_fire(text,timestamp with time zone,text,timestamp with time zone)',
        'dispatch.output_types()', 'dispatch.overload_state(timestamp with time zone)',
        'dispatch.own_run_id(bigint)',
        'dispatch.personality_match(real[],real[])', 'dispatch.placeholders(jsonb)',
        'dispatch.policy_normalize(jsonb)', 'dispatch.policy_version()', 'dispatch.queue_map()',
        'dispatch.render(jsonb,jsonb)', 'dispatch.render_text(text,jsonb)', 'dispatch.restoring()',
        'dispatch.run_root(uuid)', 'dispatch.run_tree(uuid)', 'dispatch.sla(interval)', 'dispatch.spec_kind(text)',
        'dispatch.task_row_check(dispatch.tasks)',
        'dispatch.task_row_check(text,text,integer,interval,integer,integer,text,text,boolean,integer,timestamp with time zone,text,timestamp with time zone)',
        'dispatch.template_fields()',
        'dispatch.trait_limits_ok(real[],real[])', 'dispatch.validate_spec(text,text)', 'dispatch.virtual_time()',
        'dispatch.wait_times(interval)'],
  'the reader may call the read-only functions and no other');

SET ROLE ops_reader_t;
SELECT lives_ok($$SELECT count(*) FROM (
    SELECT 1 FROM dispatch.queue_depth UNION ALL SELECT 1 FROM dispatch.agent_utilization
    UNION ALL SELECT 1 FROM dispatch.fleet UNION ALL SELECT 1 FROM dispatch.wait_times
    UNION ALL SELECT 1 FROM dispatch.sla UNION ALL SELECT 1 FROM dispatch.fairness
    UNION ALL SELECT 1 FROM dispatch.overload UNION ALL SELECT 1 FROM dispatch.live_counts
    UNION ALL SELECT 1 FROM dispatch.wait_times('1 day') UNION ALL SELECT 1 FROM dispatch.sla('1 day')
    UNION ALL SELECT 1 FROM dispatch.fairness('1 day') UNION ALL SELECT 1 FROM dispatch.agent_utilization('1 day')
    UNION ALL SELECT 1 FROM dispatch.decision_partitions()) AS v$$, 'the reader reads every view and report');
SELECT is((SELECT (dispatch.dashboard()->'queue_depth'->'normal'->>'ready')::int), 1, 'the reader reads the dashboard');
SELECT is((SELECT count(*) FROM dispatch.decisions), 0::bigint, 'the reader reads the decision log');
SELECT is((SELECT ready FROM dispatch.queue_depth), 1::bigint, 'and sees the real numbers');

SELECT throws_ok($$SELECT dispatch.tick()$$, '42501', NULL, 'the reader may not tick');
SELECT throws_ok($$SELECT dispatch.submit('k')$$, '42501', NULL, 'nor submit');
SELECT throws_ok($$SELECT dispatch.override(1, 'rd-1', 'x')$$, '42501', NULL, 'nor override');
SELECT throws_ok($$SELECT dispatch.manage_decision_log()$$, '42501', NULL, 'nor manage partitions');
SELECT throws_ok($$SELECT dispatch.rebuild_task_counts()$$, '42501', NULL, 'nor recount');
SELECT throws_ok($$UPDATE dispatch.tasks SET priority = 'high'$$, '42501', NULL, 'nor update a task');
SELECT throws_ok($$DELETE FROM dispatch.decisions$$, '42501', NULL, 'nor delete from the log');
SELECT throws_ok($$SET dispatch.log_decisions = 'errors'$$, '42501', NULL, 'nor turn the log down');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
