# @summary
#   One MariaDB database with its own user, password generated on the node.
#
# Creates the database (`utf8mb4` / `utf8mb4_unicode_ci`), the user `user@localhost` with
# all privileges on it, and a root-only client file `<secrets dir>/mariadb-<title>.cnf`
# (`[client]` user, password, database) for operators and tests
# (`mariadb --defaults-extra-file=/var/lib/castelet/secrets/mariadb-omeka.cnf`).
# The password is `castelet::secret("mariadb-<title>")`.
#
# @example
#   castelet::mariadb::database { 'omeka':
#     user => 'omeka',
#   }
#
# @param user
#   Name of the database user (MariaDB account `user@localhost`).
define castelet::mariadb::database (
  Castelet::Dbname $user = $title,
) {
  include castelet
  include castelet::profile::mariadb

  unless $title =~ Castelet::Dbname {
    fail("castelet::mariadb::database: '${title}' is not a valid database name (lower case letters, digits, '_')")
  }

  $password = castelet::secret("mariadb-${title}")

  mysql::db { $title:
    user     => $user,
    # mysql::db takes a clear text password or its hash: pass the hash, so the clear text
    # value stays out of the catalog.
    password => mysql::password($password.unwrap),
    host     => 'localhost',
    charset  => 'utf8mb4',
    collate  => 'utf8mb4_unicode_ci',
    grant    => ['ALL'],
    require  => Class['mysql::server'],
  }

  file { "${castelet::secrets_dir}/mariadb-${title}.cnf":
    ensure    => file,
    owner     => 'root',
    group     => 'root',
    mode      => '0600',
    show_diff => false,
    content   => Sensitive(epp('castelet/mariadb-client.cnf.epp', {
          'user'     => $user,
          'password' => $password,
          'database' => $title,
    })),
  }
}
