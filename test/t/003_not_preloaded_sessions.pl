# 003_not_preloaded_sessions.pl: dispatch without shared_preload_libraries, as seen from several
# sessions (002_not_preloaded.pl covers loading, claims and the tick there). Eight concurrent
# sessions never hand one task to two agents; a session's private queue map learns of a queue
# another session created within dispatch.local_refresh, or at once after rebuild_queue_map();
# queue_map() reports shared = false; fair share is kept per session and not written back
# (doc/design.md §5).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sessions');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_connections = 40
synchronous_commit = off
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

is(sql('SHOW shared_preload_libraries'), '', 'the library is not preloaded');
sql('CREATE EXTENSION dispatch');

# Never a double claim: 8 sessions, 8 agents, 2,000 tasks over 5 tenants and 3 signatures.
sql(q{
  CREATE TABLE got (agent_id text, task_id bigint, tenant text);
  CREATE TABLE empty_polls (agent_id text, ready bigint);
  SELECT dispatch.register_agent('w' || i, capabilities => '{x,y}', capacity => 100000)
    FROM generate_series(1, 8) AS i;
  INSERT INTO dispatch.tasks (tenant, kind, requires)
  SELECT 'ten' || (i % 5), 'job', (ARRAY['{}', '{x}', '{y}'])[1 + i % 3]::text[]
    FROM generate_series(1, 2000) AS i;
  -- Claim until nothing is left; a NULL while others still hold rows in flight is retried.
  CREATE PROCEDURE claim_all(agent text) LANGUAGE plpgsql AS $$
  DECLARE
    r dispatch.tasks;
    n bigint;
  BEGIN
    LOOP
      r := dispatch.dispatch_next(agent);
      IF r.task_id IS NULL THEN
        SELECT count(*) INTO n FROM dispatch.tasks WHERE state = 'ready';
        EXIT WHEN n = 0;
        INSERT INTO empty_polls VALUES (agent, n);
      ELSE
        INSERT INTO got VALUES (agent, r.task_id, r.tenant);
      END IF;
      COMMIT;
    END LOOP;
  END
  $$;
});
my (@h, @out, @err);
for my $i (1 .. 8)
{
	push @h,
	  IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-c', "CALL claim_all('w$i')"
		],
		'>', \$out[$i], '2>', \$err[$i]);
}
my $failed = 0;
for my $i (0 .. 7) { $failed++ unless $h[$i]->finish; }
is($failed, 0, 'all 8 sessions finished without error');
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT task_id) FROM got}),
	'2000 2000', '8 sessions claimed 2,000 tasks, each exactly once');
is( sql(q{SELECT count(*) FROM dispatch.decisions WHERE kind = 'claim' AND agent_id LIKE 'w%'}),
	'2000', 'one claim decision per task');
is(sql(q{SELECT string_agg(DISTINCT shared::text, ',') FROM dispatch.queue_map()}),
	'false', 'queue_map() reports shared = false');
is(sql(q{SELECT sum(running) FROM dispatch.agents WHERE agent_id LIKE 'w%'}),
	'2000', "the agents' running counts add up to 2,000");
note('claims per session: '
	  . sql(q{SELECT string_agg(agent_id || '=' || n, ' ' ORDER BY agent_id)
                FROM (SELECT agent_id, count(*) AS n FROM got GROUP BY 1) AS s}));
note('NULL answers while others held the rest in flight: ' . sql(q{SELECT count(*) FROM empty_polls}));

# A queue made by another session: a session's private map learns of it when the map is
# older than dispatch.local_refresh.
sql(q{
  SELECT dispatch.register_agent('watcher', capacity => 1000);
  INSERT INTO dispatch.tasks (tenant, kind, ready_at)
  SELECT 'known', 'job', now() FROM generate_series(1, 20);
});
my $bg = $node->background_psql('postgres');
$bg->query_safe(q{SET dispatch.local_refresh = '1h'});
is($bg->query_safe(q{SELECT (dispatch.dispatch_next('watcher')).tenant}), 'known',
	'the watching session builds its map and claims from the only tenant');
# Another session adds a new tenant whose work is older: the fairest and oldest.
sql(q{
  INSERT INTO dispatch.tasks (tenant, kind, ready_at)
  SELECT 'newcomer', 'job', now() - interval '1 hour' FROM generate_series(1, 5);
});
is($bg->query_safe(q{SELECT (dispatch.dispatch_next('watcher')).tenant}), 'known',
	'with local_refresh = 1h the session does not see the new queue yet');
is( $bg->query_safe(
		q{SELECT count(*) FROM dispatch.queue_map() WHERE tenant = 'newcomer'}),
	'0', 'its queue_map() does not list the new tenant');
# Once the map is older than local_refresh (10 ms here) the next claim rebuilds it.
$bg->query_safe(q{SET dispatch.local_refresh = '10ms'});
$bg->query_safe(q{SELECT pg_sleep(0.05)});
is($bg->query_safe(q{SELECT (dispatch.dispatch_next('watcher')).tenant}), 'newcomer',
	"after local_refresh the map is rebuilt and the new tenant's older work is claimed");
# rebuild_queue_map() makes it visible at once, whatever local_refresh says.
$bg->query_safe(q{SET dispatch.local_refresh = '1h'});
sql(q{INSERT INTO dispatch.tasks (tenant, kind, ready_at) VALUES ('latecomer', 'job', now() - interval '2 hours')});
$bg->query_safe(q{SELECT dispatch.rebuild_queue_map()});
is($bg->query_safe(q{SELECT (dispatch.dispatch_next('watcher')).tenant}), 'latecomer',
	'dispatch.rebuild_queue_map() makes a new queue visible at once');

# Fair share is per session: the watcher's map charged its claims; a fresh session's map
# knows nothing of them.
my $watcher_vstart =
  $bg->query_safe(q{SELECT vstart FROM dispatch.queue_map() WHERE tenant = 'known'});
cmp_ok($watcher_vstart, '>', 0, "the watcher's map charged 'known' ($watcher_vstart s)");
is(sql(q{SELECT coalesce(max(vstart), 0) FROM dispatch.queue_map() WHERE tenant = 'known'}),
	'0', "a new session's map starts from dispatch.tenants: nothing charged");
is(sql(q{SELECT dispatch.persist_fair_share()}), '0',
	'the tick writes no per-session virtual start back to dispatch.tenants');
$bg->quit;

$node->stop;
done_testing();
