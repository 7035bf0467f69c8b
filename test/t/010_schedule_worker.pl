# 010_schedule_worker.pl: standing orders fired by the background worker. A schedule fires on
# time (never early); pause, resume, end, soft delete and auto-pause behave while the worker
# ticks; a lost agent's work is requeued; a restart (fast and immediate) does not double or lose
# a fire; kill -9 of the worker and of a backend in the middle of ticks loses nothing; the worker
# stays idle on a standby and starts when it is promoted.
#
# Every wait polls a condition with a generous limit (poll_query_until); no assertion depends on
# how long something took. "Loses nothing" is checked slot by slot: from a schedule's first fire
# to its last, every slot of its spec has exactly one row in dispatch.fires (fired, or skipped
# with a reason), every fired row has exactly one task, and no task lacks its fire.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sched');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'dispatch'
dispatch.database_name = 'postgres'
dispatch.naptime = 200
dispatch.agent_timeout = 2
restart_after_crash = on
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dispatch');

sub query { return $node->safe_psql('postgres', shift); }

sub wait_for
{
	my ($what, $sql, $expected, $on) = @_;
	$expected = 't' unless defined $expected;
	$on ||= $node;
	$on->poll_query_until('postgres', $sql, $expected)
	  or die "timed out waiting for: $what";
	return;
}

# Every slot between a schedule's first and last fire accounted for once, one task per fire.
sub ledger
{
	my ($name, $on) = @_;
	$on ||= $node;
	return $on->safe_psql(
		'postgres', qq{
SELECT format('slots %s accounted %s fired %s tasks %s orphans %s',
  dispatch.count_fires(s.spec, min(f.scheduled_for) - interval '1 microsecond',
                       max(coalesce(f.through, f.scheduled_for)), s.timezone, s.anchor),
  sum(f.slots),
  count(*) FILTER (WHERE f.status = 'fired'),
  (SELECT count(*) FROM dispatch.tasks t JOIN dispatch.fires g ON g.run_id = t.run_id
    WHERE g.schedule_id = s.schedule_id AND g.status = 'fired'),
  (SELECT count(*) FROM dispatch.tasks t WHERE t.schedule_id = s.schedule_id
      AND NOT EXISTS (SELECT FROM dispatch.fires g WHERE g.run_id = t.run_id)))
  FROM dispatch.schedules s JOIN dispatch.fires f USING (schedule_id)
 WHERE s.name = '$name' AND s.deleted_at IS NULL
 GROUP BY s.schedule_id, s.spec, s.timezone, s.anchor});
}

sub ledger_ok
{
	my ($name, $label, $on) = @_;
	my $l = ledger($name, $on);
	like($l, qr/^slots (\d+) accounted \1 fired (\d+) tasks \2 orphans 0$/, "$label: $l");
	return;
}

# The count of a live schedule's fires (matching $where): as SQL to poll, or its value now.
sub fires_sql
{
	my ($name, $where) = @_;
	$where ||= 'true';
	return qq{SELECT (SELECT count(*) FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
	                  WHERE s.name = '$name' AND s.deleted_at IS NULL AND $where)};
}
sub fires_of { return query(fires_sql(@_)); }

wait_for('the worker', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'dispatch worker'});
pass('one dispatch worker runs for the database');

# A clock: fires every second, so "the worker has ticked a few times since T" can be polled.
query(q{SELECT dispatch.schedule('clock', 'rate(1 second)', '{"kind": "clock", "requires": ["none"]}', jitter => '0')});
sub wait_ticks
{
	my ($since, $n) = @_;
	wait_for("$n clock fires after $since", qq{
SELECT count(*) >= $n FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
 WHERE s.name = 'clock' AND s.deleted_at IS NULL AND f.fired_at > '$since'});
	return;
}

# --- On time ---------------------------------------------------------------------------------
my $planned = query(q{SELECT to_char((date_trunc('second', now()) + interval '3 seconds') AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
query(qq{SELECT dispatch.schedule('on-time', 'at $planned', '{"kind": "ping", "requires": ["none"]}')});
wait_for('the one-shot to fire', q{SELECT count(*) = 1 FROM dispatch.fires f JOIN dispatch.schedules s
  USING (schedule_id) WHERE s.name = 'on-time'});
is( query(qq{SELECT f.status || ' ' || (f.scheduled_for = '$planned'::timestamptz) || ' ' || (f.fired_at >= f.due_at)
           || ' ' || t.kind || ' ' || t.state || ' ' || s.status
         FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) JOIN dispatch.tasks t ON t.task_id = f.task_id
        WHERE s.name = 'on-time'}),
	'fired true true ping ready ended',
	'the one-shot fired for its instant, not before it was due, submitted its task, and ended');

# --- Pause, resume, soft delete, end -----------------------------------------------------------
query(q{SELECT dispatch.schedule('p', 'rate(1 second)', '{"kind": "p", "requires": ["none"]}', jitter => '0')});
wait_for('p to fire twice', fires_sql('p') . ' >= 2');
query(q{SELECT dispatch.pause('p')});
my $paused_at = query(q{SELECT paused_at FROM dispatch.schedules WHERE name = 'p' AND deleted_at IS NULL});
wait_ticks($paused_at, 3);
is((fires_of('p', "f.fired_at > '$paused_at'")), 0, 'a paused schedule does not fire');
my $resumed_at = query(q{SELECT clock_timestamp()});
is(query(q{SELECT dispatch.resume('p')}), 'active', 'resume');
wait_for('p to fire after resume', fires_sql('p', "f.fired_at > '$resumed_at'") . ' >= 1');
is((fires_of('p', "f.scheduled_for > '$paused_at' AND f.scheduled_for < '$resumed_at'")),
	0, 'the slots that passed while paused were not fired or caught up');

query(q{SELECT dispatch.unschedule('p')});
my $deleted_at = query(q{SELECT max(deleted_at) FROM dispatch.schedules WHERE name = 'p'});
wait_ticks($deleted_at, 3);
is( query(qq{SELECT count(*) FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id)
          WHERE s.name = 'p' AND f.fired_at > '$deleted_at'}),
	0, 'a deleted schedule does not fire');
is(query(q{SELECT status FROM dispatch.schedules WHERE name = 'p'}), 'deleted', 'it reads deleted');
ok(query(q{SELECT dispatch.schedule('p', '@daily', '{"kind": "p"}') > 0}), 'and its name is free again');

query(q{SELECT dispatch.schedule('e', 'rate(1 second)', '{"kind": "e", "requires": ["none"]}', jitter => '0',
                            ends_at => clock_timestamp() + interval '3 seconds')});
wait_for('e to end', q{SELECT status = 'ended' FROM dispatch.schedules WHERE name = 'e'});
is( query(q{SELECT count(*) > 0 AND bool_and(f.scheduled_for <= s.ends_at)
          FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'e'}),
	't', 'a schedule fires until ends_at, then reads ended');

# --- Auto-pause: a sweep that starts failing ------------------------------------------------------
query(q{CREATE TABLE public.leads (id int); INSERT INTO public.leads VALUES (1)});
query(q{SELECT dispatch.schedule('ap', 'rate(1 second)', '{"kind": "lead", "requires": ["none"]}', jitter => '0',
                            sweep => 'SELECT id FROM leads')});
wait_for('ap to fire', fires_sql('ap', "f.status = 'fired'") . ' >= 1');
query(q{DROP TABLE public.leads});
wait_for('ap to pause itself', q{SELECT status = 'paused' FROM dispatch.schedules WHERE name = 'ap'});
is( query(q{SELECT consecutive_failures || ' ' || (pause_reason LIKE 'paused itself after 3 consecutive failed fires%')
          FROM dispatch.schedules WHERE name = 'ap'}),
	'3 true', 'three failed fires in a row paused it, with the reason');
is((fires_of('ap', "f.status = 'failed' AND f.sqlstate = '42P01'")), 3, 'each failed fire is recorded with its error');
ok(query(q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'dispatch worker'}), 'the worker did not fail');

# --- A lost agent's work is requeued ----------------------------------------------------------------
query(q{SELECT dispatch.register_agent('w1', '{lost}', 1)});
my $task = query(q{SELECT dispatch.submit('needs-w1', requires => '{lost}')});
is(query(q{SELECT (dispatch.dispatch_next('w1')).task_id}), $task, 'the agent claims its task');
wait_for('the agent to be lost and its task requeued', qq{
SELECT t.state = 'ready' AND a.status = 'lost' FROM dispatch.tasks t, dispatch.agents a
 WHERE t.task_id = $task AND a.agent_id = 'w1'});
is(query(qq{SELECT string_agg(kind, ',' ORDER BY decision_id) FROM dispatch.decisions WHERE task_id = $task}),
	'claim,lost', 'the move is logged as lost');

# --- Restarts do not double or lose a fire ------------------------------------------------------------
query(q{SELECT dispatch.schedule('r', 'rate(1 second)', '{"kind": "r", "requires": ["none"]}', jitter => '0')});
query(q{UPDATE dispatch.schedules SET catch_up = 'all' WHERE name = 'r'});
wait_for('r to fire', fires_sql('r') . ' >= 3');
$node->restart;
my $n = (fires_of('r'));
wait_for('r to fire after a restart', fires_sql('r') . " >= $n + 3");
$node->stop('immediate');
$node->start;
$n = (fires_of('r'));
wait_for('r to fire after a crash restart', fires_sql('r') . " >= $n + 3");
ledger_ok('r', 'after a fast restart and an immediate stop');

# --- kill -9 in the middle of ticks -------------------------------------------------------------------------
# 200 schedules firing every second keep the worker busy; kill it while a tick runs, three times,
# then a backend that holds a tick open. The postmaster restarts everything each time.
query(q{SELECT count(dispatch.schedule('k-' || i, 'rate(1 second)', '{"kind": "k", "requires": ["none"]}', jitter => '0'))
      FROM generate_series(1, 200) AS i});
query(q{UPDATE dispatch.schedules SET catch_up = 'all' WHERE name LIKE 'k-%'});
wait_for('the k schedules to fire', q{SELECT count(DISTINCT schedule_id) = 200 FROM dispatch.fires f
  JOIN dispatch.schedules s USING (schedule_id) WHERE s.name LIKE 'k-%'});
for my $round (1 .. 3)
{
	my $pid = '';
	foreach my $try (1 .. 2000)
	{
		$pid = $node->safe_psql('postgres',
			q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'dispatch worker' AND state = 'active'});
		last if $pid ne '';
	}
	isnt($pid, '', "round $round: caught the worker in a tick");
	kill 'KILL', $pid;
	wait_for("round $round: a new worker", qq{SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE backend_type = 'dispatch worker' AND pid <> $pid});
}
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('BEGIN');
$holder->query_safe('SELECT dispatch.fire_due()');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $holder_pid;
eval { $holder->quit; };
wait_for('the server back after the backend was killed', q{SELECT count(*) = 1 FROM pg_stat_activity
  WHERE backend_type = 'dispatch worker'});
my $k_fires = query(q{SELECT count(*) FROM dispatch.fires f JOIN dispatch.schedules s USING (schedule_id) WHERE s.name LIKE 'k-%'});
wait_for('the k schedules to go on firing', qq{SELECT count(*) >= $k_fires + 600 FROM dispatch.fires f
  JOIN dispatch.schedules s USING (schedule_id) WHERE s.name LIKE 'k-%'});
query(q{UPDATE dispatch.schedules SET enabled = false WHERE name LIKE 'k-%' OR name IN ('r', 'clock')});
is( query(q{
SELECT count(*) FILTER (WHERE l ~ '^slots (\d+) accounted \1 fired (\d+) tasks \2 orphans 0$') || ' of ' || count(*)
  FROM (SELECT format('slots %s accounted %s fired %s tasks %s orphans %s',
          dispatch.count_fires(s.spec, min(f.scheduled_for) - interval '1 microsecond',
                               max(coalesce(f.through, f.scheduled_for)), s.timezone, s.anchor),
          sum(f.slots), count(*) FILTER (WHERE f.status = 'fired'),
          (SELECT count(*) FROM dispatch.tasks t JOIN dispatch.fires g ON g.run_id = t.run_id
            WHERE g.schedule_id = s.schedule_id AND g.status = 'fired'),
          (SELECT count(*) FROM dispatch.tasks t WHERE t.schedule_id = s.schedule_id
              AND NOT EXISTS (SELECT FROM dispatch.fires g WHERE g.run_id = t.run_id))) AS l
          FROM dispatch.schedules s JOIN dispatch.fires f USING (schedule_id)
         WHERE s.name LIKE 'k-%' GROUP BY s.schedule_id, s.spec, s.timezone, s.anchor) AS x}),
	'200 of 200',
	'after three kills of the worker and one of a backend, every k schedule has every slot once, one task per fire');
is(query(q{SELECT count(*) FROM dispatch.fires WHERE status = 'failed'}), 3, 'no fire failed but the three of ap');

# --- Standby: idle until promoted -------------------------------------------------------------------------------
query(q{UPDATE dispatch.schedules SET enabled = true WHERE name = 'clock'});
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
wait_for('the standby to replay clock fires', q{SELECT count(*) > 0 FROM dispatch.fires}, 't', $standby);
is( $standby->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'dispatch worker'}),
	0, 'no dispatch worker on the standby');
$node->stop;
$standby->promote;
wait_for('a worker on the promoted standby',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'dispatch worker'}, 't', $standby);
my $promoted_at = $standby->safe_psql('postgres', 'SELECT clock_timestamp()');
wait_for('the promoted standby to fire', qq{SELECT count(*) >= 2 FROM dispatch.fires f
  JOIN dispatch.schedules s USING (schedule_id) WHERE s.name = 'clock' AND f.fired_at > '$promoted_at'}, 't', $standby);
ledger_ok('clock', 'the clock across everything, then the promotion', $standby);

$standby->stop;
done_testing();
