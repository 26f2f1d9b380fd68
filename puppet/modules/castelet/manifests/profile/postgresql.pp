# @summary
#   PostgreSQL server (Debian's own: 15 on Debian 12, 17 on Debian 13), local connections by
#   default, TLS-only password connections from `client_cidrs` when given.
#
# * With a data volume (`castelet::data_dir`), `/var/lib/postgresql` is `<data_dir>/postgresql`
#   and `/etc/postgresql` `<data_dir>/postgresql-config`, bound before the package creates the
#   cluster (`castelet::persistent_dir`): a new volume is initialised by the package, a rebuilt
#   instance finds its whole cluster there (data and configuration: the package then creates
#   none), and the cluster's unit (`postgresql@<version>-main.service`) requires both mounts.
# * Settings in `/etc/postgresql/<version>/main/conf.d/castelet.conf` (Debian's postgresql.conf
#   includes `conf.d`): `listen_addresses` (see `listen`), `password_encryption` scram-sha-256,
#   `ssl` on with a certificate made on the instance.
# * `pg_hba.conf` is Castelet's whole file: unix socket `peer`; TCP from loopback with
#   `scram-sha-256`; `hostssl ... scram-sha-256` from each of `client_cidrs`; `postgres` never
#   over TCP; anything else (non-TLS remote connections included) rejected.
# * The server certificate is self-signed, for `castelet::domain` (subjectAltName), ECDSA P-256,
#   valid `tls_days` days, made on the instance under `<data dir>/castelet-tls/` (on the data
#   volume: a rebuilt instance keeps it, so clients that pinned it keep working) and made again
#   when the domain changes or 30 days before it expires. Clients verify it by pinning it:
#   `sslmode=verify-full sslrootcert=server.crt` with the file copied from
#   `/var/lib/postgresql/castelet-tls/server.crt` (it is public).
# * One `castelet::postgresql::database` per entry of `databases`. Application profiles declare
#   their own database the same way, so it need not be listed here.
#
# @example An application's database (the owner's password is `castelet::secret('postgresql-app')`)
#   include castelet::profile::postgresql
#   castelet::postgresql::database { 'app':
#     owner => 'app',
#   }
#
# @param databases
#   Extra databases: database name => `{ owner => role name }`.
# @param client_cidrs
#   Networks whose clients may connect over TLS with a password (`hostssl`). Empty: local
#   connections only.
# @param listen
#   `listen_addresses`: `localhost`, or `*` (every address: the host firewall and pg_hba decide
#   who gets in). Undef: `*` when `client_cidrs` is not empty, else `localhost`.
# @param version
#   Major version of the Debian package; undef: the release's own (15 on Debian 12, 17 on 13).
# @param port
#   TCP port.
# @param tls_days
#   Validity of the self-signed server certificate.
class castelet::profile::postgresql (
  Hash[Castelet::Dbname, Struct[{ owner => Castelet::Dbname }]] $databases = {},
  Array[Castelet::Cidr] $client_cidrs = [],
  Optional[Enum['localhost', '*']] $listen = undef,
  Optional[Pattern[/\A[0-9]{2}\z/]] $version = undef,
  Stdlib::Port $port = 5432,
  Integer[60, 3650] $tls_days = 825,
) {
  include castelet

  $_version = $version ? {
    undef   => $facts['os']['release']['major'] ? {
      '12'    => '15',
      '13'    => '17',
      default => fail("castelet::profile::postgresql: no PostgreSQL version known for Debian ${facts['os']['release']['major']}"),
    },
    default => $version,
  }
  $unit = "postgresql@${_version}-main.service"
  $conf_dir = "/etc/postgresql/${_version}/main"
  $tls_dir = '/var/lib/postgresql/castelet-tls'
  $domain = $castelet::domain
  $path = ['/usr/lib/postgresql/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

  # The cluster is its data and its configuration: both on the volume (Debian's pg_createcluster
  # cannot adopt a data directory whose configuration is gone, as after a rebuild).
  castelet::persistent_dir { '/var/lib/postgresql':
    source => 'postgresql',
    units  => [$unit],
    stop   => ['postgresql'],
    before => Package['postgresql'],
  }
  castelet::persistent_dir { '/etc/postgresql':
    source => 'postgresql-config',
    units  => [$unit],
    stop   => ['postgresql'],
    before => Package['postgresql'],
  }

  package { ['postgresql', 'postgresql-client']:
    ensure => installed,
  }
  # Shared with castelet::profile::tls, in any order.
  ensure_packages(['openssl'])

  # The package makes the cluster (or integrates the volume's); this only repairs a missing one.
  exec { 'castelet-postgresql-cluster':
    command => "pg_createcluster ${_version} main",
    creates => "${conf_dir}/postgresql.conf",
    path    => $path,
    require => Package['postgresql'],
  }

  file { $tls_dir:
    ensure  => directory,
    owner   => 'postgres',
    group   => 'postgres',
    mode    => '0755',
    require => Exec['castelet-postgresql-cluster'],
  }

  $cert = "${tls_dir}/server.crt"
  $key = "${tls_dir}/server.key"
  castelet::self_signed_certificate { 'castelet-postgresql-certificate':
    directory => $tls_dir,
    domain    => $domain,
    owner     => 'postgres',
    days      => $tls_days,
    require   => File[$tls_dir],
    notify    => Exec['castelet-postgresql-reload'],
  }

  file { "${conf_dir}/conf.d/castelet.conf":
    ensure  => file,
    owner   => 'postgres',
    group   => 'postgres',
    mode    => '0644',
    content => epp('castelet/postgresql.conf.epp', {
        'listen_addresses' => pick($listen, $client_cidrs.empty ? { true => 'localhost', false => '*' }),
        'port'             => $port,
        'cert'             => $cert,
        'key'              => $key,
    }),
    require => [Exec['castelet-postgresql-cluster'], Castelet::Self_signed_certificate['castelet-postgresql-certificate']],
    notify  => Service['postgresql'],
  }

  file { "${conf_dir}/pg_hba.conf":
    ensure  => file,
    owner   => 'postgres',
    group   => 'postgres',
    mode    => '0640',
    content => epp('castelet/pg_hba.conf.epp', { 'client_cidrs' => $client_cidrs }),
    require => Exec['castelet-postgresql-cluster'],
    notify  => Exec['castelet-postgresql-reload'],
  }

  # postgresql.service starts and restarts every cluster (postgresql@*.service are part of it).
  service { 'postgresql':
    ensure  => running,
    enable  => true,
    require => Exec['castelet-postgresql-cluster'],
  }

  exec { 'castelet-postgresql-reload':
    command     => 'systemctl reload postgresql',
    refreshonly => true,
    path        => $path,
    require     => Service['postgresql'],
  }

  # The server listens only once the closed firewall is loaded.
  include castelet::profile::firewall
  Service['nftables'] -> Package['postgresql']

  $databases.each |String $db, Hash $settings| {
    castelet::postgresql::database { $db:
      owner => $settings['owner'],
    }
  }
}
