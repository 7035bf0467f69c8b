# 020_dump_restore.pl: pg_dump carries dispatch's data, and a restore into a fresh database on the
# same cluster (doc/operations.md, Backup) gives back the same fleet: the same rows in every
# table, tasks in every state, the same active policy, the decision log without duplicates
# (day partitions with their indexes, today's rows still in the default partition, a stray row
# moved to its day), live counts recounted; dispatch_next hands out only what was ready in the dump; a schedule goes
# on firing where it stopped, never twice for a slot; a watch still fires. Both formats: custom
# (pg_restore --exit-on-error) and plain (psql ON_ERROR_STOP).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump',
	defined $ENV{DISPATCH_TAP_PORT} ? (port => $ENV{DISPATCH_TAP_PORT}) : ());
$node->init;
# The worker serves 'postgres' only: the test drives the tick of its own databases by hand.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'dispatch'
dispatch.database_name = 'postgres'
dispatch.max_databases = 8
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION dispatch;
INSERT INTO dispatch.tenants (tenant, weight) VALUES ('acme', 3), ('beta', 1);
SELECT dispatch.set_policy('{"past_deadline": "expire", "shed_after": {"low": 60}}', 'expire and shed');
SELECT dispatch.register_agent('g1', capabilities => '{crawl}', capacity => 50);
SELECT dispatch.register_agent('w-' || s, capabilities => ARRAY[s], capacity => 5)
  FROM unnest(ARRAY['done', 'failed', 'dead', 'aborted', 'held']) AS s;
SELECT dispatch.submit('crawl', tenant => 'acme', requires => '{crawl}') FROM generate_series(1, 4);
SELECT dispatch.submit('crawl', tenant => 'beta', priority => 'high', requires => '{crawl}') FROM generate_series(1, 3);
SELECT dispatch.submit('work', requires => ARRAY[s], max_attempts => CASE WHEN s = 'dead' THEN 1 ELSE 3 END)
  FROM unnest(ARRAY['done', 'failed', 'dead', 'aborted', 'held']) AS s;
});
# One task per end state, each claimed by the one agent that may take it.
$node->safe_psql('src', "SELECT dispatch.dispatch_next('w-$_')")
  for qw(done failed dead aborted held);
$node->safe_psql('src', q{
SELECT dispatch.complete(task_id, '{"ok": true}') FROM dispatch.tasks WHERE requires = '{done}';
SELECT dispatch.fail(task_id, 'broken', retry => false) FROM dispatch.tasks WHERE requires = '{failed}';
SELECT dispatch.fail(task_id, 'broken again') FROM dispatch.tasks WHERE requires = '{dead}';
SELECT dispatch.abort(task_id, 'not mine') FROM dispatch.tasks WHERE requires = '{aborted}';
SELECT dispatch.submit('later', run_at => now() + interval '1 day');
SELECT dispatch.submit('after', depends_on => ARRAY[(SELECT task_id FROM dispatch.tasks WHERE requires = '{held}')]);
SELECT dispatch.cancel(dispatch.submit('unwanted'));
SELECT dispatch.submit('late', deadline => now() - interval '1 minute', est_duration => '1 second');
SELECT dispatch.submit('old', priority => 'low');
UPDATE dispatch.tasks SET ready_at = now() - interval '1 hour' WHERE kind = 'old';  -- waited past shed_after
SELECT dispatch.tick();
-- A schedule with three fires (in 2030, so only the explicit fire_due calls fire it).
SELECT dispatch.schedule('hourly', '1H', '{"kind": "report", "requires": ["report"]}', tenant => 'acme',
                         starts_at => '2030-01-01', jitter => '0');
SELECT dispatch.fire_due(at => '2030-01-01 00:00Z');
SELECT dispatch.fire_due(at => '2030-01-01 01:00Z');
SELECT dispatch.fire_due(at => '2030-01-01 02:00Z');
-- Decisions of days with partitions of their own: one three days ago and one in 2031, stranded
-- in the default partition until the log's upkeep moves each into its day's partition.
INSERT INTO dispatch.decisions (at, kind, reason)
VALUES (now() - interval '3 days', 'override', 'past'), ('2031-01-01 12:00Z', 'override', 'future');
SELECT dispatch.manage_decision_log();
-- A stray decision left in the default partition when the dump is made.
INSERT INTO dispatch.decisions (at, kind, reason) VALUES ('2032-01-01 12:00Z', 'override', 'stray');
-- A watch on a user table.
CREATE TABLE public.leads (id int PRIMARY KEY, stage text);
INSERT INTO public.leads VALUES (1, 'new');
SELECT dispatch.watch('qualified', 'public.leads', $$stage = 'qualified'$$, '{"kind": "research", "requires": ["research"]}');
UPDATE public.leads SET stage = 'qualified' WHERE id = 1;
});

is($node->safe_psql('src', 'SELECT string_agg(DISTINCT state, \',\' ORDER BY state) FROM dispatch.tasks'),
	'aborted,cancelled,claimed,dead,done,expired,failed,ready,scheduled,shed',
	'the source has tasks in every state a task ends or waits in');
# Today's (and yesterday's) decisions stay in the default partition: no partition is ever
# attached for a day inserts may still reach through it (60_decisionlog.sql).
my $recent = q{at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 day'
                AND at < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'};
my $where = q{SELECT string_agg(reason || ':' || tableoid::regclass::text, ',' ORDER BY at)
                FROM dispatch.decisions WHERE kind = 'override'};
is($node->safe_psql('src', $where),
	'past:dispatch.decisions_p' . $node->safe_psql('src', q{SELECT to_char((now() - interval '3 days') AT TIME ZONE 'UTC', 'YYYYMMDD')})
	  . ',future:dispatch.decisions_p20310101,stray:dispatch.decisions_default',
	'the source has decisions in day partitions and a stray one in the default partition');
my $src_recent = $node->safe_psql('src', "SELECT count(*) FROM dispatch.decisions WHERE $recent");
cmp_ok($src_recent, '>', 10, 'and today\'s many decisions');
is($node->safe_psql('src', "SELECT count(*) FROM dispatch.decisions_default WHERE NOT ($recent)"), '1',
	'which wait in the default partition with the stray one');

# What must come back the same: every row of every dumped table (derived counts aside), by key.
my %fingerprint = (
	tenants    => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY tenant)) FROM dispatch.tenants AS t',
	agents     => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY agent_id)) FROM dispatch.agents AS t',
	tasks      => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY task_id)) FROM dispatch.tasks AS t',
	signatures => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY sig_id)) FROM dispatch.signatures AS t',
	policies   => 'SELECT md5(string_agg((version, weights, note, active)::text, \'|\' ORDER BY version)) FROM dispatch.policies',
	schedules  => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY schedule_id)) FROM dispatch.schedules AS t',
	fires      => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY schedule_id, scheduled_for)) FROM dispatch.fires AS t',
	decisions  => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY decision_id)) FROM dispatch.decisions AS t',
	deps       => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY task_id, depends_on)) FROM dispatch.task_deps AS t',
	waits      => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY task_id)) FROM dispatch.task_waits AS t',
	sessions   => 'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY session_ref), \'\')) FROM dispatch.sessions AS t',
	kinds      => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY kind)) FROM dispatch.kinds AS t',
	watches    => 'SELECT md5(string_agg(t::text, \'|\' ORDER BY watch_id)) FROM dispatch.watches AS t',
	counts     => 'SELECT string_agg(format(\'%s/%s/%s=%s\', tenant, priority, state, n), \',\' ORDER BY tenant, priority, state) FROM dispatch.live_counts',
	states     => 'SELECT string_agg(format(\'%s=%s\', state, n), \',\' ORDER BY state) FROM (SELECT state, count(*) AS n FROM dispatch.tasks GROUP BY state) AS s',
	rows       => q{SELECT string_agg(format('%s=%s', c.relname, (xpath('/row/n/text()',
	                  query_to_xml(format('SELECT count(*) AS n FROM dispatch.%I', c.relname), false, true, '')))[1]), ',' ORDER BY c.relname)
	                  FROM pg_class AS c WHERE c.relnamespace = 'dispatch'::regnamespace AND c.relkind = 'r'
	                   AND c.relname NOT LIKE 'decisions_%' AND c.relname NOT LIKE 'task_count%'},
	active     => 'SELECT version || \' \' || weights::text FROM dispatch.policies WHERE active',
	log_ids    => 'SELECT count(*) || \' \' || count(DISTINCT decision_id) || \' \' || max(decision_id) FROM dispatch.decisions',
);
my %before = map { $_ => $node->safe_psql('src', $fingerprint{$_}) } keys %fingerprint;
my $src_max_task = $node->safe_psql('src', 'SELECT max(task_id) FROM dispatch.tasks');
my $ready_crawl = $node->safe_psql('src',
	q{SELECT string_agg(task_id::text, ',' ORDER BY task_id) FROM dispatch.tasks WHERE state = 'ready' AND requires = '{crawl}'});

my $dir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$dir/src.dump", '-d', 'src' ], 'pg_dump -Fc');
$node->command_ok([ 'pg_dump', '-Fp', '-f', "$dir/src.sql", '-d', 'src' ], 'pg_dump -Fp');

# The restore: a fresh database marked as restoring, pg_restore, then dispatch.finish_restore().
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->safe_psql('postgres', 'ALTER DATABASE dst SET dispatch.restoring = on');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'dst', "$dir/src.dump" ],
	'pg_restore --exit-on-error restores the custom dump without an error');
like($node->safe_psql('dst', 'SELECT dispatch.tick()'), qr/"skipped": "a dump is being restored/,
	'while the database restores, the tick does nothing');
my $live = $node->safe_psql('src', q{SELECT count(*) FROM dispatch.tasks WHERE state IN ('scheduled', 'ready', 'claimed')});
like($node->safe_psql('dst', 'SELECT dispatch.finish_restore()'), qr/"live_tasks": $live\b/,
	'finish_restore recounts the live tasks');
is($node->safe_psql('dst', q{SELECT current_setting('dispatch.restoring')}), 'off',
	'and a new session is no longer restoring');

for my $what (sort keys %fingerprint)
{
	is($node->safe_psql('dst', $fingerprint{$what}), $before{$what}, "restored: $what as dumped");
}
is($node->safe_psql('dst', $where),
	$node->safe_psql('src', $where) =~ s/stray:dispatch\.decisions_default/stray:dispatch.decisions_p20320101/r,
	'each decision in its day partition as dumped; the stray one moved to a day partition of its own by finish_restore');
is($node->safe_psql('dst', "SELECT count(*) FROM dispatch.decisions_default WHERE $recent"), $src_recent,
	'today\'s decisions stay in the default partition');
is($node->safe_psql('dst', q{SELECT string_agg(partition_name, ',' ORDER BY partition_name) FROM dispatch.decision_partitions()}),
	$node->safe_psql('src', q{SELECT string_agg(partition_name, ',' ORDER BY partition_name) FROM dispatch.decision_partitions()})
	  . ',decisions_p20320101',
	'the restored log has the dumped partitions, and one for the stray day');
# Each day partition came back with the log's indexes, once: an auditor's question by task_id
# descends an index in every partition.
my $index_defs = q{(SELECT string_agg(d, '; ' ORDER BY d) FROM (SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING ', '') AS d
                     FROM pg_index AS i WHERE i.indrelid = %s) AS x)};
is($node->safe_psql('dst', 'SELECT count(*) FROM dispatch.decision_partitions() AS p WHERE '
		. sprintf($index_defs, q{('dispatch.' || p.partition_name)::regclass}) . ' = '
		. sprintf($index_defs, q{'dispatch.decisions_default'::regclass})),
	$node->safe_psql('dst', 'SELECT count(*) FROM dispatch.decision_partitions()'),
	'every partition has exactly the indexes of the default partition');
my $plan = $node->safe_psql('dst', q{SET enable_seqscan = off;
	EXPLAIN (COSTS OFF) SELECT * FROM dispatch.decisions WHERE task_id = 1 ORDER BY at});
my $scans = () = $plan =~ /Index Scan using (?:decisions_task_idx|decisions_p\d{8}_task_id_at_idx) on /g;
is($scans, $node->safe_psql('dst', 'SELECT count(*) FROM dispatch.decision_partitions()'),
	'a question by task_id uses an index on every partition');

# Claims in the restored database: exactly what was ready, never what was claimed or finished.
is($node->safe_psql('dst',
		q{SELECT string_agg(task_id::text, ',' ORDER BY task_id) FROM dispatch.dispatch_next('g1', 50)}),
	$ready_crawl, 'dispatch_next hands out exactly the tasks that were ready in the dump');
is($node->safe_psql('dst', q{SELECT count(*) FROM dispatch.dispatch_next('w-held', 5) AS t WHERE t.task_id IS NOT NULL}), '0',
	'the task claimed in the dump stays with its agent');
is($node->safe_psql('dst', q{SELECT running FROM dispatch.agents WHERE agent_id = 'g1'}), '7',
	'the agent counts its new claims');

# New ids continue after the dumped ones: sequences came with the dump.
cmp_ok($node->safe_psql('dst', q{SELECT dispatch.submit('new')}), '>', $src_max_task,
	'a new task gets an id after every dumped one');
is($node->safe_psql('dst', q{SELECT dispatch.set_policy('{}', 'after the restore')}), '3',
	'a new policy version follows the dumped ones');
is($node->safe_psql('dst', q{SELECT string_agg(version::text, ',') FROM dispatch.policies WHERE active}), '3',
	'and is the only active one');

# The schedule goes on from its next slot; a slot that fired in the dump does not fire again.
is($node->safe_psql('dst', q{SELECT dispatch.fire_due(at => '2030-01-01 02:00Z') ->> 'fired'}), '0',
	'the slots fired before the dump do not fire again');
is($node->safe_psql('dst', q{SELECT dispatch.fire_due(at => '2030-01-01 03:00Z') ->> 'fired'}), '1',
	'the next slot fires');
is($node->safe_psql('dst', q{
	SELECT string_agg(to_char(scheduled_for AT TIME ZONE 'UTC', 'HH24:MI') || '/' || (t.task_id IS NOT NULL), ',' ORDER BY scheduled_for)
	  FROM dispatch.fires AS f LEFT JOIN dispatch.tasks AS t USING (task_id)}),
	'00:00/true,01:00/true,02:00/true,03:00/true', 'one fire per slot, each with its own task');

# The watch's triggers came back with the table and still place tasks.
$node->safe_psql('dst', q{INSERT INTO public.leads VALUES (2, 'qualified')});
is($node->safe_psql('dst', q{SELECT count(*) FROM dispatch.tasks WHERE kind = 'research'}), '2',
	'the watch fires in the restored database');
unlike($node->safe_psql('dst', 'SELECT dispatch.tick()'), qr/"skipped"/, 'the tick runs again');

# Without dispatch.restoring the triggers treat the rows as new work, and say what to do.
$node->safe_psql('postgres', 'CREATE DATABASE dst_forgot');
$node->command_fails_like([ 'pg_restore', '--exit-on-error', '-d', 'dst_forgot', "$dir/src.dump" ],
	qr/set dispatch\.restoring first/, 'a restore without dispatch.restoring fails, with a hint that says so');

# The plain format through psql, stopping at the first error.
$node->safe_psql('postgres', 'CREATE DATABASE dst_plain');
$node->safe_psql('postgres', 'ALTER DATABASE dst_plain SET dispatch.restoring = on');
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_plain', '-f', "$dir/src.sql" ],
	'psql restores the plain dump without an error');
$node->safe_psql('dst_plain', 'SELECT dispatch.finish_restore()');
for my $what (qw(tasks agents decisions fires counts active))
{
	is($node->safe_psql('dst_plain', $fingerprint{$what}), $before{$what}, "plain restore: $what as dumped");
}

$node->stop;
done_testing();
