# 011_schedule_pg_cron.pl: the tick driven by pg_cron, for hosts that preload pg_cron but not
# dispatch (doc/schedules.md, "Without the worker: pg_cron"). shared_preload_libraries holds
# pg_cron only; pg_cron runs its jobs in background workers, so no connection and no pg_hba
# entry is needed. pg_cron 1.4 schedules by the minute ("N seconds" came in 1.5), so:
#   1. a job 'SELECT dispatch.tick()' every minute fires dispatch schedules, a minute at a time;
#   2. a job 'CALL dispatch.run_ticks(...)' every minute ticks all through the minute, so a
#      schedule's fires are spread out as with the worker.
# Every wait polls with a generous limit; the first tick can take up to a minute to come.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
dispatch.misfire_grace = 120
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron; CREATE EXTENSION dispatch');

sub query { return $node->safe_psql('postgres', shift); }

sub wait_for
{
	my ($what, $sql) = @_;
	$node->poll_query_until('postgres', $sql) or die "timed out waiting for: $what";
	return;
}

is(query(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dispatch worker'}),
	0, 'dispatch is not preloaded: no dispatch worker');
like(query(q{SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'}), qr/^1\./, 'pg_cron is installed');

# 1. One tick a minute.
query(q{SELECT dispatch.schedule('via-cron', 'rate(5 seconds)', '{"kind": "cron-fired"}', jitter => '0')});
query(q{SELECT cron.schedule('dispatch-tick', '* * * * *', 'SELECT dispatch.tick()')});
wait_for('a succeeded pg_cron run of the tick', q{SELECT count(*) > 0 FROM cron.job_run_details
  WHERE command = 'SELECT dispatch.tick()' AND status = 'succeeded'});
wait_for('the schedule to fire', q{SELECT count(*) > 0 FROM dispatch.fires WHERE status = 'fired'});
is( query(q{SELECT count(*) FROM dispatch.fires f JOIN dispatch.tasks t ON t.run_id = f.run_id
             WHERE t.kind = 'cron-fired' AND t.schedule_id = f.schedule_id}),
	query(q{SELECT count(*) FROM dispatch.fires WHERE status = 'fired'}),
	'each fire made by the pg_cron-driven tick submitted its task');
is(query(q{SELECT count(*) FROM dispatch.fires WHERE status <> 'fired'}),
	0, 'with misfire_grace above the minute, every slot of the minute fired (none skipped)');

# 2. A job that ticks through the minute.
query(q{SELECT cron.unschedule('dispatch-tick')});
query(q{SELECT dispatch.unschedule('via-cron')});
query(q{SELECT cron.schedule('dispatch-ticks', '* * * * *', 'CALL dispatch.run_ticks(''50 seconds'')')});
wait_for('the run_ticks job to run', q{SELECT count(*) > 0 FROM cron.job_run_details
  WHERE command LIKE 'CALL dispatch.run_ticks%' AND status = 'running'});
# Created while run_ticks runs: its fires come one tick each, not a minute's worth at once.
query(q{SELECT dispatch.schedule('via-run-ticks', 'rate(2 seconds)', '{"kind": "run-ticks"}', jitter => '0')});
wait_for('five fires from run_ticks', q{SELECT count(*) >= 5 FROM dispatch.fires f
  JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'via-run-ticks'});
is( query(q{SELECT count(*) = count(DISTINCT date_trunc('second', f.fired_at)) FROM dispatch.fires f
             JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'via-run-ticks'}),
	't', 'run_ticks fires each slot in its own tick, not a minute at a time');
is( query(q{SELECT count(*) FROM cron.job_run_details WHERE command LIKE 'CALL dispatch.run_ticks%'
             AND status = 'failed'}),
	0, 'no run_ticks job failed');
my $ledger = query(q{
SELECT dispatch.count_fires(s.spec, min(f.scheduled_for) - interval '1 microsecond', max(f.scheduled_for),
                            s.timezone, s.anchor) || ' ' || sum(f.slots)
  FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'via-run-ticks'
 GROUP BY s.spec, s.timezone, s.anchor});
like($ledger, qr/^(\d+) \1$/, "every slot of run_ticks' schedule accounted for once ($ledger)");

query(q{SELECT cron.unschedule('dispatch-ticks')});
$node->stop;
done_testing();
