# @summary
#   The database blueprint's server: one engine, the databases listed in an answer, each owned
#   by a login role whose password is generated on the instance.
#
# * `postgresql` (default): `castelet::profile::postgresql` (remote clients from its
#   `client_cidrs`, over TLS only) and one `castelet::postgresql::database` per entry; the
#   owner's password is the secret `postgresql-<owner>`, a client service file per database is
#   `<secrets dir>/postgresql-<database>.conf`.
# * `mariadb`: `castelet::profile::mariadb` (its `override_options` from the blueprint's data:
#   every address, the database port, TLS required) and one `castelet::mariadb::database` per
#   entry (the user is the owner, secret `mariadb-<database>`; an owner owns one database), plus
#   the same user with the same password from each IPv4 network of `client_cidrs`
#   (`owner@network/netmask`, TLS required). The server certificate is made on the instance like
#   PostgreSQL's, under `tls_dir`.
#
# @example data/blueprint.yaml of the database blueprint
#   castelet::profile::database_server::engine: "%{alias('terraform.settings.engine')}"
#   castelet::profile::database_server::databases: "%{alias('terraform.settings.databases')}"
#
# @param engine
#   `postgresql` or `mariadb`.
# @param databases
#   `NAME` or `NAME:OWNER` separated by single spaces (the owner defaults to the name); empty:
#   none.
# @param client_cidrs
#   Networks of the remote clients (MariaDB: IPv4 only).
# @param tls_dir
#   Where the MariaDB server's self-signed certificate (`server.crt`, `server.key`) is made.
# @param tls_days
#   Validity of that certificate.
class castelet::profile::database_server (
  Enum['postgresql', 'mariadb'] $engine = 'postgresql',
  Array[Castelet::Cidr] $client_cidrs = [],
  Castelet::Path $tls_dir = '/etc/mysql/castelet-tls',
  Integer[60, 3650] $tls_days = 825,
  Pattern[/\A([a-z][a-z0-9_]{0,31}(:[a-z][a-z0-9_]{0,31})?( [a-z][a-z0-9_]{0,31}(:[a-z][a-z0-9_]{0,31})?)*)?\z/] $databases = '',
) {
  $entries = split($databases, ' ').filter |String $e| { $e != '' }.map |String $entry| {
    $parts = split($entry, ':')
    $pair = [$parts[0], pick($parts[1], $parts[0])]
    $pair
  }
  $names = $entries.map |Array $pair| { $pair[0] }
  if unique($names) != $names {
    fail("castelet::profile::database_server: a database is listed twice in '${databases}'")
  }

  case $engine {
    'postgresql': {
      include castelet::profile::postgresql
      $entries.each |Array $pair| {
        castelet::postgresql::database { $pair[0]:
          owner => $pair[1],
        }
      }
    }
    default: {
      include castelet
      include castelet::profile::mariadb
      $owners = $entries.map |Array $pair| { $pair[1] }
      if unique($owners) != $owners {
        fail("castelet::profile::database_server: with MariaDB an owner owns one database ('${databases}')")
      }
      $networks = $client_cidrs.map |String $cidr| {
        unless $cidr =~ Stdlib::IP::Address::V4::CIDR {
          fail("castelet::profile::database_server: MariaDB accounts take IPv4 networks only, not ${cidr}")
        }
        $parts = split($cidr, '/')
        $prefix = Integer($parts[1])
        $mask = [0, 1, 2, 3].map |Integer $i| { 256 - (1 << (8 - max(0, min(8, $prefix - 8 * $i)))) }.join('.')
        "${parts[0]}/${mask}"
      }

      castelet::self_signed_certificate { 'castelet-mariadb-certificate':
        directory => $tls_dir,
        domain    => $castelet::domain,
        owner     => 'mysql',
        days      => $tls_days,
        require   => Class['mysql::server::install'],
        before    => Class['mysql::server::service'],
        notify    => Class['mysql::server::service'],
      }

      $entries.each |Array $pair| {
        castelet::mariadb::database { $pair[0]:
          user => $pair[1],
        }
        $hash = mysql::password(castelet::secret("mariadb-${pair[0]}").unwrap)
        $networks.each |String $network| {
          mysql_user { "${pair[1]}@${network}":
            ensure        => present,
            password_hash => $hash,
            tls_options   => ['SSL'],
            require       => Class['mysql::server'],
          }
          mysql_grant { "${pair[1]}@${network}/${pair[0]}.*":
            user       => "${pair[1]}@${network}",
            table      => "${pair[0]}.*",
            privileges => ['ALL'],
            require    => [Mysql_user["${pair[1]}@${network}"], Castelet::Mariadb::Database[$pair[0]]],
          }
        }
      }
    }
  }
}
