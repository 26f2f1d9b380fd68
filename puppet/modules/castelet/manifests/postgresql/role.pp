# @summary
#   A PostgreSQL login role whose password is generated on the node.
#
# The password is `castelet::secret("postgresql-<title>")` (a root-only file). The role is
# created when missing and its password (re)set whenever logging in with the secret over
# loopback fails, so the secret file and the server never disagree, also after a restore.
# The password is read from that file by the shell of the exec, reaches `psql` through its
# environment, is hashed by the server (scram-sha-256) and is never in a command line, the
# catalog or the server log.
# Usually declared by `castelet::postgresql::database` (`ensure_resource`), once per owner.
#
# @example
#   castelet::postgresql::role { 'app': }
define castelet::postgresql::role {
  include castelet
  include castelet::profile::postgresql

  unless $title =~ Castelet::Dbname {
    fail("castelet::postgresql::role: '${title}' is not a valid role name (lower case letters, digits, '_')")
  }

  # Generated now (at compile time, on the node); read back from its root-only file by the shell.
  castelet::secret("postgresql-${title}")
  $secret_file = "${castelet::secrets_dir}/postgresql-${title}"
  $psql = 'psql -X -q -v ON_ERROR_STOP=1'
  # Role names are Castelet::Dbname: no quoting needed in the shell; SQL quotes them itself (%I).
  $sql = join([
      "SET log_min_error_statement = 'panic';",
      'SET log_statement = \'none\';',
      '\getenv password CASTELET_PG_PASSWORD',
      "SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec",
      "SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',",
      ":'role', :'password') \\gexec",
  ], "\n")

  $login = "host=127.0.0.1 port=${castelet::profile::postgresql::port} dbname=postgres user=${title} sslmode=disable"
  exec { "castelet-postgresql-role-${title}":
    command     => join([
        "printf '%s\\n' \"\$CASTELET_SQL\" | CASTELET_PG_PASSWORD=\"\$(cat ${secret_file})\"",
        "runuser -u postgres -- ${psql} -d postgres -v role=${title}",
    ], ' '),
    unless      => "PGPASSWORD=\"\$(cat ${secret_file})\" ${psql} -c 'SELECT 1' '${login}' >/dev/null",
    environment => ["CASTELET_SQL=${sql}"],
    provider    => 'shell',
    cwd         => '/',
    path        => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'],
    require     => [Service['postgresql'], Exec['castelet-postgresql-reload']],
  }
}
