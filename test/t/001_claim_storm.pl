# 001_claim_storm.pl: 16 concurrent clients, one agent each (capacity 1, each with a different
# set of capabilities), claim and complete 20,000 tasks of mixed requirements, tenants and
# priorities through pgbench: each client claims in one transaction and completes in the next.
# Then every task is done, claimed exactly once (one 'claim' decision), only by an agent that
# has all of its requires; nothing was requeued or lost, and every agent's capacity is back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $ntasks = 20_000;
my $nclients = 16;

my $node = PostgreSQL::Test::Cluster->new('storm');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'dispatch'
dispatch.database_name = 'postgres'
max_connections = 40
synchronous_commit = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dispatch');

# Agents storm-1 .. storm-16: every subset of {gpu, py, sql, web}, from none to all four.
$node->safe_psql(
	'postgres', qq{
SELECT count(dispatch.register_agent('storm-' || i,
         ARRAY(SELECT c FROM unnest(ARRAY['gpu', 'py', 'sql', 'web']) WITH ORDINALITY AS u(c, b)
                WHERE ((i - 1) >> (b::int - 1)) & 1 = 1), 1))
  FROM generate_series(1, $nclients) AS i;
});
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE capacity = 1) || '/' || count(DISTINCT capabilities) FROM dispatch.agents"),
	"$nclients/$nclients",
	"$nclients agents of capacity 1, each with its own capabilities");

# Tasks: requires of zero to two capabilities (every set is covered by some agents), four
# tenants, four priorities, in random order.
$node->safe_psql(
	'postgres', qq{
SELECT setseed(0.42);
INSERT INTO dispatch.tasks (kind, tenant, priority, requires, payload)
SELECT 'storm', 'tenant-' || (random() * 3)::int,
       (ARRAY['critical', 'high', 'normal', 'low'])[1 + (random() * 3)::int],
       (ARRAY['{}', '{gpu}', '{py}', '{sql}', '{web}', '{gpu,py}', '{py,sql}', '{sql,web}',
              '{gpu,web}', '{py,web}', '{gpu,sql}'])[1 + (random() * 10)::int]::text[],
       jsonb_build_object('n', i)
  FROM generate_series(1, $ntasks) AS i;
});
is($node->safe_psql('postgres', "SELECT count(*) FROM dispatch.tasks WHERE state = 'ready'"),
	$ntasks, "$ntasks ready tasks");
is( $node->safe_psql(
		'postgres',
		"SELECT count(DISTINCT requires) || ' ' || count(DISTINCT tenant) || ' ' || count(DISTINCT priority) FROM dispatch.tasks"
	),
	'11 4 4',
	'11 capability sets, 4 tenants, 4 priorities');

# The client script: claim for this client's agent (one transaction), complete (the next).
my $script = q{
\set agent :client_id + 1
SELECT coalesce(task_id, 0) AS tid FROM dispatch.dispatch_next('storm-' || :agent) \gset
SELECT dispatch.complete(:tid, '{"done_by": "storm"}') WHERE :tid > 0;
};

# Rounds of pgbench until the queue is empty: clients whose agents can do little run dry
# first, so the last rounds are the well-equipped agents finishing the rest.
my $rounds = 0;
my $left = $ntasks;
while ($left > 0 && $rounds < 12)
{
	$rounds++;
	$node->pgbench(
		"--no-vacuum --client=$nclients --jobs=4 --transactions=" . int(1.5 * $left / $nclients + 50),
		0,
		[qr{processed: \d+/\d+}],
		[qr{^$}],
		"pgbench round $rounds: $nclients clients claim and complete",
		{ '001_claim_storm' => $script },
		'postgres');
	$left = $node->safe_psql('postgres',
		"SELECT count(*) FROM dispatch.tasks WHERE state <> 'done'");
	note("after round $rounds: $left tasks not done");
}

is($left, 0, "every task is done (after $rounds rounds)");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM dispatch.tasks WHERE state = 'done' AND attempts = 1 AND result ->> 'done_by' = 'storm'"
	),
	$ntasks,
	'each task was done on its first attempt, with the result its agent gave');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (SELECT task_id FROM dispatch.decisions WHERE kind = 'claim'
                       GROUP BY task_id HAVING count(*) = 1) AS once}),
	$ntasks,
	"exactly one 'claim' decision for each of the $ntasks tasks");
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM dispatch.decisions WHERE kind = 'claim'}),
	$ntasks,
	'and no other claim decision');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM dispatch.decisions d
  JOIN dispatch.tasks t USING (task_id)
  JOIN dispatch.agents a ON a.agent_id = d.agent_id
 WHERE d.kind = 'claim' AND NOT t.requires <@ a.capabilities}),
	0,
	'no task was claimed by an agent lacking one of its requires');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM dispatch.decisions d JOIN dispatch.tasks t USING (task_id)
 WHERE d.kind = 'claim' AND d.agent_id IS DISTINCT FROM t.agent_id}),
	0,
	'the agent in each claim decision is the agent that completed the task');
is($node->safe_psql('postgres', "SELECT count(*) FROM dispatch.decisions WHERE kind <> 'claim'"),
	0, 'nothing was requeued, lost or retried');
is( $node->safe_psql(
		'postgres',
		"SELECT sum(running) || ' ' || count(*) FILTER (WHERE status = 'idle') FROM dispatch.agents"),
	"0 $nclients",
	'agents.running is 0 for every agent, and every agent is idle');
cmp_ok(
	$node->safe_psql(
		'postgres', q{
SELECT count(DISTINCT agent_id) FROM dispatch.decisions WHERE kind = 'claim'}),
	'==', $nclients,
	'every agent took part');

$node->stop;
done_testing();
