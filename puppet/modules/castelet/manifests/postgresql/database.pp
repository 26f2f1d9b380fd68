# @summary
#   One PostgreSQL database owned by a login role whose password is generated on the node.
#
# Creates the role `owner` (`castelet::postgresql::role`, password
# `castelet::secret("postgresql-<owner>")`) and the database (UTF-8, owned by it; only its owner
# and superusers may connect: `CONNECT` is revoked from `PUBLIC`), and a root-only client file
# `<secrets dir>/postgresql-<title>.conf`, a libpq service file for operators and tests:
# `PGSERVICEFILE=/var/lib/castelet/secrets/postgresql-app.conf psql service=app`.
# An existing database keeps its data; its owner is set to `owner` when it differs.
#
# @example
#   castelet::postgresql::database { 'app':
#     owner => 'app',
#   }
#
# @param owner
#   The role owning the database (created when missing).
define castelet::postgresql::database (
  Castelet::Dbname $owner = $title,
) {
  include castelet
  include castelet::profile::postgresql

  unless $title =~ Castelet::Dbname {
    fail("castelet::postgresql::database: '${title}' is not a valid database name (lower case letters, digits, '_')")
  }

  ensure_resource('castelet::postgresql::role', $owner)

  $psql = 'psql -X -q -v ON_ERROR_STOP=1 -d postgres'
  # Names are Castelet::Dbname: safe in the shell and in SQL without quoting.
  exec { "castelet-postgresql-database-${title}":
    command  => "createdb --owner=${owner} --encoding=UTF8 ${title} && ${psql} -c 'REVOKE ALL ON DATABASE ${title} FROM PUBLIC'",
    unless   => "${psql} -tAc \"SELECT 1 FROM pg_database WHERE datname = '${title}'\" | grep -qx 1",
    provider => 'shell',
    user     => 'postgres',
    cwd      => '/',
    path     => ['/usr/bin', '/bin'],
    require  => Castelet::Postgresql::Role[$owner],
  }

  exec { "castelet-postgresql-database-owner-${title}":
    command  => "${psql} -c 'ALTER DATABASE ${title} OWNER TO ${owner}'",
    unless   => "${psql} -tAc \"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${title}'\" | grep -qx '${owner}'",
    provider => 'shell',
    user     => 'postgres',
    cwd      => '/',
    path     => ['/usr/bin', '/bin'],
    require  => Exec["castelet-postgresql-database-${title}"],
  }

  file { "${castelet::secrets_dir}/postgresql-${title}.conf":
    ensure    => file,
    owner     => 'root',
    group     => 'root',
    mode      => '0600',
    show_diff => false,
    content   => Sensitive(epp('castelet/postgresql-service.conf.epp', {
          'service'  => $title,
          'user'     => $owner,
          'password' => castelet::secret("postgresql-${owner}"),
          'database' => $title,
          'port'     => $castelet::profile::postgresql::port,
    })),
  }
}
