# 030_settings_documented.pl: every dispatch.* setting the server knows is in doc/reference.md's
# settings table and nothing there is unknown to the server; the documented unit and "changes"
# column agree with pg_settings; each setting's own description (SHOW ALL, pg_settings) says
# whether it needs a restart, and in which unit a number is.
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $doc = dirname(__FILE__) . '/../../doc/reference.md';
open(my $fh, '<', $doc) or die "cannot read $doc: $!";
my %documented;    # name => [type and unit, changes]
while (my $line = <$fh>)
{
	next unless $line =~ /^\| `(dispatch\.[a-z_]+)` \|([^|]*)\|[^|]*\|[^|]*\|([^|]*)\|/;
	my ($name, $type, $changes) = ($1, $2, $3);
	s/^\s+|\s+$//g for ($type, $changes);
	$documented{$name} = [ $type, $changes ];
}
close($fh);
cmp_ok(scalar(keys %documented), '>=', 20, 'the reference lists the settings');

my $node = PostgreSQL::Test::Cluster->new('settings',
	defined $ENV{DISPATCH_TAP_PORT} ? (port => $ENV{DISPATCH_TAP_PORT}) : ());
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'dispatch'\n");
$node->start;

my %server;
for my $row (split /\n/, $node->safe_psql('postgres',
		q{SELECT name, coalesce(unit, ''), context, vartype, short_desc FROM pg_settings
		   WHERE name LIKE 'dispatch.%' ORDER BY name}))
{
	my ($name, $unit, $context, $vartype, $desc) = split /\|/, $row, 5;
	$server{$name} = { unit => $unit, context => $context, vartype => $vartype, desc => $desc };
}
cmp_ok(scalar(keys %server), '>=', 20, 'the server defines the settings');

is_deeply([ sort keys %documented ], [ sort keys %server ],
	'doc/reference.md documents exactly the settings the server defines');

# pg_settings context => what the reference's "changes" column says.
my %changes = (postmaster => 'restart', sighup => 'reload', superuser => 'superuser', user => 'user');
# pg_settings unit => the unit the reference names after the type.
my %unit = (s => 's', ms => 'ms', B => 'bytes', kB => 'kB');

for my $name (sort keys %server)
{
	my $s = $server{$name};
	next unless $documented{$name};
	my ($type, $doc_changes) = @{ $documented{$name} };
	is($doc_changes, $changes{ $s->{context} }, "$name: documented as changed by '$changes{$s->{context}}'");
	if ($s->{unit} ne '')
	{
		like($type, qr/\b\Q$unit{$s->{unit}}\E\b/, "$name: documented unit is $unit{$s->{unit}}");
	}
	my $restart = $s->{context} eq 'postmaster' ? qr/Needs a restart/ : qr/No restart needed/;
	like($s->{desc}, $restart, "$name: its description says whether it needs a restart");
	if ($s->{vartype} eq 'integer' || $s->{vartype} eq 'real')
	{
		like($s->{desc}, qr/\((?:[^()]*\b)?(?:seconds|milliseconds|bytes|count)\b[^()]*\)/,
			"$name: its description names its unit");
	}
}

$node->stop;
done_testing();
