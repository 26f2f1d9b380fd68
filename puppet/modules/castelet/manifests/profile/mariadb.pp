# @summary
#   MariaDB server (puppetlabs-mysql on Debian's `mariadb-server`), local connections only.
#
# * Listens on 127.0.0.1 only; server character set `utf8mb4` / `utf8mb4_unicode_ci`.
# * `root@localhost` keeps Debian's unix_socket authentication: no root password exists,
#   root on the node connects with `mariadb` (the puppetlabs-mysql providers do the same).
# * Anonymous accounts and the `test` database are removed.
# * With a data volume (`castelet::data_dir`), `/var/lib/mysql` is `<data_dir>/mariadb`, bound
#   before the package is installed (`castelet::persistent_dir`): a new volume is initialised by
#   the package, a rebuilt instance finds its databases there, and mariadb.service requires the
#   mount.
# * One `castelet::mariadb::database` per entry of `databases`. Application profiles
#   (`castelet::profile::omeka_s`, `castelet::profile::lamp_app`) declare their own database
#   the same way, so it need not be listed here.
#
# @example Extra databases in hiera
#   castelet::profile::mariadb::databases:
#     analytics:
#       user: analytics
#
# @param databases
#   Extra databases: database name => `{ user => user name }`.
# @param override_options
#   Extra `my.cnf` settings, merged over Castelet's (section => { option => value }).
class castelet::profile::mariadb (
  Hash[Castelet::Dbname, Struct[{ user => Castelet::Dbname }]] $databases = {},
  Hash[String[1], Hash[String[1], Data]] $override_options = {},
) {
  include castelet

  $base_options = {
    'mysqld' => {
      'bind-address'         => '127.0.0.1',
      'character-set-server' => 'utf8mb4',
      'collation-server'     => 'utf8mb4_unicode_ci',
    },
    'client' => {
      'default-character-set' => 'utf8mb4',
    },
  }

  castelet::persistent_dir { '/var/lib/mysql':
    source => 'mariadb',
    units  => ['mariadb.service'],
    stop   => ['mariadb'],
    before => Class['mysql::server::install'],
  }

  class { 'mysql::server':
    package_name            => 'mariadb-server',
    service_name            => 'mariadb',
    remove_default_accounts => true,
    restart                 => true,
    override_options        => deep_merge($base_options, $override_options),
  }

  $databases.each |String $db, Hash $settings| {
    castelet::mariadb::database { $db:
      user => $settings['user'],
    }
  }
}
