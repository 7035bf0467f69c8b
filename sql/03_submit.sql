-- 03_submit: submit() and a plain INSERT INTO dispatch.tasks produce the same row, with the
-- derived columns the claim path needs: sig (interned, requires canonicalised), skey (ready_at
-- minus the priority's head start), cost, lst and urgent_at; a future run_at means scheduled.
\i sql/include/fresh.sql

-- A parent for both (parent_id must name an existing task).
SELECT dispatch.submit('k3-parent', tenant => 't03') AS parent \gset
-- The same task twice, in one transaction (so both have the same ready_at).
BEGIN;
SELECT dispatch.submit('k3', '{"n": 1}', tenant => 't03', priority => 'high',
                       requires => '{sql,py,sql}', deadline => now() + interval '1 hour',
                       est_duration => interval '10 minutes', sensitivity => 1, region => 'eu',
                       profile => '{0.5,0.25,1}', max_attempts => 5, session_ref => 's-1',
                       parent_id => :parent) AS via_submit \gset
INSERT INTO dispatch.tasks (kind, payload, tenant, priority, requires, deadline, est_duration,
                            sensitivity, region, profile, max_attempts, session_ref, parent_id)
VALUES ('k3', '{"n": 1}', 't03', 'high', '{py,sql}', now() + interval '1 hour',
        interval '10 minutes', 1, 'eu', '{0.5,0.25,1}', 5, 's-1', :parent)
RETURNING task_id AS via_insert \gset
SELECT ready_at = now() AS ready_now FROM dispatch.tasks WHERE task_id = :via_submit;
COMMIT;

SELECT CASE task_id WHEN :via_submit THEN 'submit' ELSE 'insert' END AS path,
       state, requires, skey - ready_at AS skey_offset, cost, deadline - lst AS deadline_minus_lst,
       deadline - urgent_at AS deadline_minus_urgent_at, attempts, max_attempts, payload,
       profile, session_ref, parent_id = :parent AS parent_ok, owner_role = current_user AS owner_is_submitter
  FROM dispatch.tasks WHERE task_id IN (:via_submit, :via_insert) ORDER BY task_id;
-- Every derived column is the same on both paths.
SELECT a.sig = b.sig AS same_sig, a.skey = b.skey AS same_skey, a.cost = b.cost AS same_cost,
       a.lst = b.lst AS same_lst, a.urgent_at = b.urgent_at AS same_urgent_at,
       a.ready_at = b.ready_at AS same_ready_at, a.requires = b.requires AS same_requires
  FROM dispatch.tasks a, dispatch.tasks b WHERE a.task_id = :via_submit AND b.task_id = :via_insert;
-- The signature is interned once: (sorted requires, sensitivity, region).
SELECT s.requires, s.sensitivity, s.region, count(*) AS tasks
  FROM dispatch.signatures s JOIN dispatch.tasks t ON t.sig = s.sig_id
 WHERE t.task_id IN (:via_submit, :via_insert) GROUP BY 1, 2, 3;
-- The tenant named by the task got its row, with the defaults.
SELECT tenant, weight, max_running, max_queued FROM dispatch.tenants WHERE tenant = 't03';

-- skey offsets by priority: critical 1 h, high 10 min, normal 1 min, low 0 of head start.
BEGIN;
SELECT count(dispatch.submit('prio', tenant => 't03p', priority => p))
  FROM unnest(ARRAY['critical', 'high', 'normal', 'low']) AS p;
INSERT INTO dispatch.tasks (kind, tenant, priority)
SELECT 'prio-insert', 't03p', p FROM unnest(ARRAY['critical', 'high', 'normal', 'low']) AS p;
SELECT kind, priority, skey - ready_at AS skey_offset, ready_at = now() AS ready_now, cost
  FROM dispatch.tasks WHERE tenant = 't03p' ORDER BY kind, skey;
COMMIT;
-- Defaults on both paths: tenant 'default', priority normal, payload {}, no requirements.
SELECT dispatch.submit('defaults') AS d_submit \gset
INSERT INTO dispatch.tasks (kind) VALUES ('defaults') RETURNING task_id AS d_insert \gset
SELECT tenant, priority, payload, requires, sensitivity, region, max_attempts, state, cost,
       skey - ready_at AS skey_offset, lst, urgent_at
  FROM dispatch.tasks WHERE task_id IN (:d_submit, :d_insert) ORDER BY task_id;

-- run_at in the future: scheduled (no skey, not yet ready); in the past: ready at once.
SELECT dispatch.submit('later', tenant => 't03s', run_at => now() + interval '1 hour') AS s_later \gset
INSERT INTO dispatch.tasks (kind, tenant, run_at) VALUES ('later-insert', 't03s', now() + interval '1 hour');
SELECT dispatch.submit('past', tenant => 't03s', run_at => now() - interval '1 hour') AS s_past \gset
SELECT kind, state, sig IS NOT NULL AS has_sig, skey IS NULL AS no_skey, ready_at IS NULL AS not_ready_yet,
       run_at > now() AS in_future
  FROM dispatch.tasks WHERE tenant = 't03s' ORDER BY task_id;

-- A plain INSERT cannot forge derived columns: the trigger recomputes them.
INSERT INTO dispatch.tasks (kind, tenant, priority, sig, skey, cost, lst, urgent_at)
VALUES ('forged', 't03f', 'low', -7, '2000-01-01', 0.5, '2000-01-01', '2000-01-01')
RETURNING sig > 0 AS real_sig, skey = ready_at AS low_skey, cost, lst, urgent_at;

-- Derived columns follow their inputs on UPDATE.
SELECT dispatch.submit('move', tenant => 't03u', priority => 'low', requires => '{a}') AS m \gset
SELECT sig AS sig_a FROM dispatch.tasks WHERE task_id = :m \gset
UPDATE dispatch.tasks SET requires = '{b,a}' WHERE task_id = :m;
SELECT requires, sig <> :sig_a AS new_sig FROM dispatch.tasks WHERE task_id = :m;
UPDATE dispatch.tasks SET priority = 'critical' WHERE task_id = :m;
SELECT priority, skey - ready_at AS skey_offset FROM dispatch.tasks WHERE task_id = :m;
UPDATE dispatch.tasks SET ready_at = ready_at - interval '1 day' WHERE task_id = :m;
SELECT skey - ready_at AS skey_offset, skey < now() - interval '1 day' AS aged_a_day
  FROM dispatch.tasks WHERE task_id = :m;
UPDATE dispatch.tasks SET deadline = now() + interval '2 hours', est_duration = interval '20 minutes'
 WHERE task_id = :m;
SELECT cost, deadline - lst AS deadline_minus_lst, deadline - urgent_at AS deadline_minus_urgent_at
  FROM dispatch.tasks WHERE task_id = :m;

-- A scheduled task made ready by hand gets its skey from the ready_at it is given.
UPDATE dispatch.tasks SET state = 'ready', ready_at = now() - interval '5 minutes'
 WHERE task_id = :s_later
RETURNING state, skey - ready_at AS skey_offset, ready_at = now() - interval '5 minutes' AS ready_as_given;

SELECT state, count(*) FROM dispatch.tasks GROUP BY 1 ORDER BY 1;
