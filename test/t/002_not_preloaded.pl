# 002_not_preloaded.pl: dispatch without shared_preload_libraries (only CREATE EXTENSION),
# where each session keeps a private queue map. Concurrent clients still claim each task
# exactly once, only by capable agents; work another session commits later is found (the
# private map refreshes within dispatch.local_refresh); the tick runs as a function.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $ntasks = 2_000;
my $nclients = 4;

my $node = PostgreSQL::Test::Cluster->new('plain');
$node->init;
$node->append_conf('postgresql.conf', "synchronous_commit = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dispatch');

is($node->safe_psql('postgres', "SELECT current_setting('shared_preload_libraries')"),
	'', 'the library is not preloaded');

$node->safe_psql(
	'postgres', qq{
SELECT count(dispatch.register_agent('plain-' || i, CASE WHEN i % 2 = 0 THEN ARRAY['x'] ELSE ARRAY[]::text[] END, 1))
  FROM generate_series(1, $nclients) AS i;
SELECT setseed(0.7);
INSERT INTO dispatch.tasks (kind, tenant, priority, requires)
SELECT 'plain', 'tenant-' || (random() * 2)::int, (ARRAY['high', 'normal', 'low'])[1 + (random() * 2)::int],
       CASE WHEN random() < 0.5 THEN '{x}' ELSE '{}' END::text[]
  FROM generate_series(1, $ntasks) AS i;
});
is($node->safe_psql('postgres', 'SELECT bool_or(shared) FROM dispatch.queue_map()'),
	'f', 'the queue map is private to each session');

my $script = q{
\set agent :client_id + 1
SELECT coalesce(task_id, 0) AS tid FROM dispatch.dispatch_next('plain-' || :agent) \gset
SELECT dispatch.complete(:tid) WHERE :tid > 0;
};
my $rounds = 0;
my $left = $ntasks;
while ($left > 0 && $rounds < 12)
{
	$rounds++;
	$node->pgbench(
		"--no-vacuum --client=$nclients --jobs=2 --transactions=" . int(1.5 * $left / $nclients + 50),
		0,
		[qr{processed: \d+/\d+}],
		[qr{^$}],
		"pgbench round $rounds: $nclients clients claim and complete",
		{ '002_not_preloaded' => $script },
		'postgres');
	$left = $node->safe_psql('postgres', "SELECT count(*) FROM dispatch.tasks WHERE state <> 'done'");
}
is($left, 0, "every task is done (after $rounds rounds)");
is( $node->safe_psql(
		'postgres', q{
SELECT count(DISTINCT task_id) || ' ' || count(*) FROM dispatch.decisions WHERE kind = 'claim'}),
	"$ntasks $ntasks",
	'each task was claimed exactly once');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
  JOIN dispatch.agents a ON a.agent_id = d.agent_id
 WHERE d.kind = 'claim' AND NOT t.requires <@ a.capabilities}),
	0,
	'only by capable agents');
is($node->safe_psql('postgres', 'SELECT sum(running) FROM dispatch.agents'),
	0, 'every agent has its capacity back');

# An agent session that found nothing, then work committed by another session.
my $agent = $node->background_psql('postgres');
is($agent->query_safe("SELECT dispatch.dispatch_next('plain-1') IS NULL"),
	't', 'an idle agent finds nothing');
$node->safe_psql('postgres', "SELECT dispatch.submit('late-work', tenant => 'tenant-late')");
my $got = '';
foreach my $try (1 .. 300)
{
	$got = $agent->query_safe("SELECT coalesce((dispatch.dispatch_next('plain-1')).kind, '')");
	last if $got eq 'late-work';
	usleep(100_000);
}
is($got, 'late-work', 'the same session finds work another session committed later');
$agent->quit;

# Without a worker, dispatch.tick() does its work when called.
$node->safe_psql(
	'postgres', q{
UPDATE dispatch.tasks SET lease_until = now() - interval '1 second' WHERE kind = 'late-work'});
like($node->safe_psql('postgres', 'SELECT dispatch.tick()'),
	qr/"requeued": 1/, 'dispatch.tick() requeues the expired lease');
is($node->safe_psql('postgres', "SELECT state FROM dispatch.tasks WHERE kind = 'late-work'"),
	'ready', 'the task is ready again');

$node->stop;
done_testing();
