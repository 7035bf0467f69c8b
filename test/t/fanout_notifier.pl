# fanout_notifier.pl: task events travel through the notifier worker (src/notifier.c): a
# committed submit() is announced on dispatch_events and wakes the agent, both sent by the
# notifier process, not by the submitting backend; rolled-back work is never announced.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notifier');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'dispatch'\ndispatch.database_name = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION dispatch');
$node->safe_psql('postgres', "SELECT dispatch.register_agent('agent-7', '{}', 2)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'dispatch notifier'")
  or die 'the notifier did not start';
my $notifier = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'dispatch notifier'");

# Listen, commit a submit and roll one back, then stay connected a while: psql prints the
# notifications it receives after each command.
my ($out, $err) = ('', '');
$node->psql(
	'postgres',
	qq{LISTEN dispatch_events;
LISTEN "dispatch_agent_agent-7";
BEGIN; SELECT dispatch.submit('gone', run_id => '00000000-0000-7000-8000-0000000000bb'); ROLLBACK;
SELECT dispatch.submit('a', run_id => '00000000-0000-7000-8000-0000000000aa');
} . ("SELECT pg_sleep(0.1);\n" x 60),
	stdout => \$out,
	stderr => \$err);

like(
	$out,
	qr/Asynchronous notification "dispatch_events" with payload "\{"task_id":2,"state":"ready","tenant":"default","run_id":"00000000-0000-7000-8000-0000000000aa"\}" received from server process with PID $notifier\./,
	'the task event is sent by the notifier');
like(
	$out,
	qr/Asynchronous notification "dispatch_agent_agent-7" with payload "\{"ready":1\}" received from server process with PID $notifier\./,
	'the agent is woken by the notifier');
unlike($out, qr/0000000000bb/, 'rolled-back work is not announced');
is($err, '', 'no errors');

# Turned off for a session, events are sent by the committing backend itself.
($out, $err) = ('', '');
$node->psql(
	'postgres',
	qq{SET dispatch.notify_deferred = off;
LISTEN dispatch_events;
SELECT pg_backend_pid();
SELECT dispatch.submit('b', run_id => '00000000-0000-7000-8000-0000000000cc');
SELECT 1;
},
	stdout => \$out,
	stderr => \$err);
my ($self) = $out =~ /^(\d+)$/m;
like($out,
	qr/"task_id":3,"state":"ready".*0000000000cc"\}" received from server process with PID $self\./,
	'without the notifier, the committing backend sends it');

$node->stop;
done_testing();
