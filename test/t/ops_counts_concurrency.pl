# ops_counts_concurrency.pl: the live counts stay exact under concurrency. Eight clients submit,
# claim, complete, fail and cancel at once while the worker folds the counts every 100 ms; after
# the storm, dispatch.live_counts must equal a full count of the tasks, and so must the folded
# table once the worker has folded the rest. A lost or doubled delta anywhere would show.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('counts',
	defined $ENV{DISPATCH_TAP_PORT} ? (port => $ENV{DISPATCH_TAP_PORT}) : ());
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'dispatch'
dispatch.database_name = 'postgres'
dispatch.naptime = 100
max_connections = 40
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION dispatch;
SELECT dispatch.register_agent('c-' || i, capacity => 1000) FROM generate_series(0, 7) AS i;
SELECT dispatch.submit('k', tenant => 't' || (i % 3), priority => (ARRAY['high', 'normal', 'low'])[1 + i % 3])
  FROM generate_series(1, 3000) AS i;
});

my $truth = q{
	SELECT coalesce(string_agg(tenant || '/' || priority || '/' || state || '=' || n, ' ' ORDER BY tenant, priority, state), '')
	  FROM (SELECT tenant, priority, state, count(*) AS n FROM dispatch.tasks
	         WHERE state IN ('ready', 'scheduled', 'claimed') GROUP BY 1, 2, 3) AS t};
my $live = q{
	SELECT coalesce(string_agg(tenant || '/' || priority || '/' || state || '=' || n, ' ' ORDER BY tenant, priority, state), '')
	  FROM dispatch.live_counts};
my $folded = q{
	SELECT coalesce(string_agg(tenant || '/' || priority || '/' || state || '=' || n, ' ' ORDER BY tenant, priority, state), '')
	  FROM dispatch.task_counts};

$node->pgbench(
	'--no-vacuum --client=8 --jobs=8 --time=8',
	0, [qr{processed: [1-9]}], [qr{^$}],
	'eight clients submit, claim, complete, fail and cancel at once',
	{
		'ops_counts_storm' => q{
\set t random(0, 2)
\set p random(1, 3)
\set r random(1, 10)
SELECT dispatch.submit('k', tenant => 't' || :t, priority => (ARRAY['high', 'normal', 'low'])[:p],
                       run_at => CASE WHEN :r = 1 THEN now() + interval '1 second' END);
SELECT coalesce((dispatch.dispatch_next('c-' || :client_id)).task_id, 0) AS tid \gset
\if :r <= 6
SELECT dispatch.complete(:tid) WHERE :tid > 0;
\elif :r <= 8
SELECT dispatch.fail(:tid, 'storm') WHERE :tid > 0;
\elif :r = 9
SELECT dispatch.cancel(:tid) WHERE :tid > 0;
\else
SELECT dispatch.release(:tid) WHERE :tid > 0;
\endif
}
	});

# Each comparison reads both sides in one statement, so one snapshot: the worker keeps promoting
# retries meanwhile, and must not make the two sides differ.
my ($now_truth, $now_live) = split /\|/, $node->safe_psql('postgres', "SELECT ($truth) || '|' || ($live)");
isnt($now_truth, '', 'the storm left live work behind');
is($now_live, $now_truth, 'right after the storm, live_counts equals a full count of the tasks');
ok($node->poll_query_until('postgres',
		"SELECT (SELECT count(*) FROM dispatch.task_count_deltas) = 0 AND ($folded) = ($truth)"),
	'once the worker has folded every delta, task_counts alone equals a full count');
($now_truth, $now_live) = split /\|/, $node->safe_psql('postgres', "SELECT ($truth) || '|' || ($live)");
is($now_live, $now_truth, 'and live_counts still does');

$node->stop;
done_testing();
