# ops_monitoring.pl: doc/monitoring/queries.yaml parses, every query in it runs as a member of
# dispatch_reader against a live fleet and returns the columns it declares (numbers where
# Prometheus wants numbers), and every metric the Grafana dashboard plots is one of them.
# The YAML is read with CPAN::Meta::YAML and the JSON with JSON::PP, both part of Perl itself.
use strict;
use warnings;

use CPAN::Meta::YAML;
use File::Basename qw(dirname);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = dirname(__FILE__) . '/../..';

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "cannot read $path: $!";
	local $/;
	return scalar <$fh>;
}

my $yaml = CPAN::Meta::YAML->read_string(slurp("$root/doc/monitoring/queries.yaml"));
ok($yaml, 'queries.yaml parses') or BAIL_OUT(CPAN::Meta::YAML->errstr);
my $queries = $yaml->[0];
ok(keys %$queries >= 8, 'queries.yaml has an entry per view');

my $node = PostgreSQL::Test::Cluster->new('monitoring',
	defined $ENV{DISPATCH_TAP_PORT} ? (port => $ENV{DISPATCH_TAP_PORT}) : ());
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'dispatch'
dispatch.database_name = 'postgres'
dispatch.naptime = 200
});
$node->start;

# A small live fleet: agents, queued, running and finished work, a deadline, two tenants.
$node->safe_psql('postgres', q{
CREATE EXTENSION dispatch;
CREATE ROLE exporter LOGIN IN ROLE dispatch_reader;
INSERT INTO dispatch.tenants (tenant, weight) VALUES ('acme', 1), ('beta', 2);
SELECT dispatch.register_agent('m-' || i, capacity => 2) FROM generate_series(1, 3) AS i;
SELECT dispatch.submit('report', tenant => 'acme', deadline => now() + interval '1 hour') FROM generate_series(1, 6);
SELECT dispatch.submit('crawl', tenant => 'beta', priority => 'high') FROM generate_series(1, 6);
SELECT dispatch.submit('crawl', tenant => 'beta', priority => 'low', run_at => now() + interval '1 hour');
});
$node->safe_psql('postgres', q{SELECT count(*) FROM dispatch.dispatch_next('m-1', 2)});
$node->safe_psql('postgres', q{SELECT count(*) FROM dispatch.dispatch_next('m-2', 2)});
$node->safe_psql('postgres',
	q{SELECT dispatch.complete(task_id, '{}') FROM dispatch.tasks WHERE agent_id = 'm-1' AND state = 'claimed'});
# The worker folds the counts within a tick or two.
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM dispatch.task_count_deltas})
  or die 'the worker did not fold the counts';

my %numeric = map { $_ => 1 } qw(int2 int4 int8 numeric float4 float8);
my %series;    # every metric name the file defines
# Until the schedules part of dispatch is installed, stand-in tables with the columns of
# DESIGN.md section 1 let the schedules query run too (test/pgtap/ops_schedule_health.sql does the same).
my $standin = $node->safe_psql('postgres', q{SELECT to_regclass('dispatch.schedules') IS NULL}) eq 't';
if ($standin)
{
	$node->safe_psql('postgres', q{
		CREATE TABLE dispatch.schedules (schedule_id bigint PRIMARY KEY, name text, tenant text, spec text,
		  enabled boolean, next_fire_at timestamptz, consecutive_failures int, status text, deleted_at timestamptz);
		CREATE TABLE dispatch.fires (schedule_id bigint, scheduled_for timestamptz, fired_at timestamptz,
		  task_id bigint, status text, PRIMARY KEY (schedule_id, scheduled_for));
		INSERT INTO dispatch.schedules VALUES (1, 'nightly', 'acme', '@daily', true, now() + interval '1 hour', 0, 'active', NULL);
	});
	$node->safe_psql('postgres', slurp("$root/sql/install/85_schedule_health.sql")
		  . 'GRANT SELECT ON dispatch.schedule_health TO dispatch_reader;');
	note 'schedules: stand-in tables';
}
else
{
	$node->safe_psql('postgres',
		q{SELECT dispatch.schedule('nightly', '@daily', '{"kind": "report"}', tenant => 'acme')});
	note 'schedules: one real schedule';
}

foreach my $name (sort keys %$queries)
{
	my $entry = $queries->{$name};
	like($name, qr/^dispatch_[a-z0-9_]+$/, "$name: a metric family name");
	ok(defined $entry->{query} && ref $entry->{metrics} eq 'ARRAY', "$name: has a query and metrics");

	my (@declared, %usage);
	foreach my $m (@{ $entry->{metrics} })
	{
		my ($col) = keys %$m;
		push @declared, $col;
		$usage{$col} = $m->{$col}{usage};
		ok($m->{$col}{description}, "$name.$col: described");
		$series{"${name}_$col"} = 1 if $usage{$col} ne 'LABEL';
	}

	# Run it as the exporter would: a reader, in a read-only transaction.
	my ($rc, $out, $err) = $node->psql('postgres',
		"BEGIN READ ONLY; $entry->{query}; COMMIT;",
		extra_params => [ '-U', 'exporter' ]);
	is($rc, 0, "$name: the query runs as a dispatch_reader") or diag $err;

	# The columns it returns, with their types.
	my $desc = $node->safe_psql('postgres', qq{
		CREATE TEMP VIEW q AS $entry->{query};
		SELECT string_agg(a.attname || ':' || t.typname, ',' ORDER BY a.attnum)
		  FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid
		 WHERE a.attrelid = 'q'::regclass AND a.attnum > 0;
	});
	my %type = map { split /:/ } split /,/, $desc;
	is_deeply([ sort keys %type ], [ sort @declared ], "$name: returns exactly the declared columns");
	my @bad = grep { $usage{$_} ne 'LABEL' && !$numeric{ $type{$_} // '' } } @declared;
	is_deeply(\@bad, [], "$name: every gauge is a number");
}

# Numbers, not just rows: the queue and the fleet as the scenario left them.
is($node->safe_psql('postgres', $queries->{dispatch_queue}{query} . ' ORDER BY 1, 2'),
	$node->safe_psql('postgres', q{
		SELECT tenant, priority, count(*) FILTER (WHERE state = 'ready'),
		       count(*) FILTER (WHERE state = 'scheduled'), count(*) FILTER (WHERE state = 'claimed')
		  FROM dispatch.tasks WHERE state IN ('ready', 'scheduled', 'claimed')
		 GROUP BY 1, 2 ORDER BY 1, 2}),
	'dispatch_queue: ready, scheduled and claimed per tenant and priority equal a direct count');
is($node->safe_psql('postgres', 'SELECT sum(ready), sum(scheduled), sum(claimed) FROM dispatch.queue_depth'),
	'8|1|2', 'dispatch_queue: 8 ready, 1 scheduled, 2 claimed in all');
is($node->safe_psql('postgres', $queries->{dispatch_fleet}{query}),
	'3|1|2|0|0|0|0|6|2|33.3', 'dispatch_fleet: 3 agents, 1 busy, 2 of 6 slots in use');
is($node->safe_psql('postgres', $queries->{dispatch_schedules}{query}), 'active|1|0|0',
	'dispatch_schedules: one active schedule') if $standin;
is($node->safe_psql('postgres', $queries->{dispatch_finished}{query} . " ORDER BY 1"),
	"aborted|0\ncancelled|0\ndead|0\ndone|2\nexpired|0\nfailed|0\nshed|0",
	'dispatch_finished: the two completed tasks');

# The Grafana dashboard plots only metrics the query file defines.
my $dash = decode_json(slurp("$root/doc/monitoring/grafana-dispatch.json"));
ok(@{ $dash->{panels} } >= 10, 'the Grafana dashboard parses and has its panels');
my (%used, @unknown);
foreach my $panel (@{ $dash->{panels} })
{
	foreach my $target (@{ $panel->{targets} })
	{
		foreach my $metric ($target->{expr} =~ /\b(dispatch_[a-z0-9_]+)/g)
		{
			$used{$metric} = 1;
			push @unknown, $metric unless $series{$metric};
		}
	}
}
is_deeply(\@unknown, [], 'every metric in the dashboard is defined in queries.yaml');
ok(keys %used >= 15, 'the dashboard plots the views: ' . scalar(keys %used) . ' metrics');

$node->stop;
done_testing();
