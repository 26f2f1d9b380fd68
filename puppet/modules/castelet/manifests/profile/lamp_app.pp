# @summary
#   A generic LAMP application slot: document root, virtual host, database and a health check.
#
# * `docroot` (default `/var/www/<deployment>`) owned by `docroot_owner` (root: the web server
#   cannot modify the application; data the application writes belongs on the data volume),
#   served over HTTPS by `castelet::apache_site` with `AllowOverride All` and mod_rewrite.
#   With a data volume it is a bind mount of `<castelet::data_dir>/<docroot_source>`
#   (`castelet::persistent_dir`, Apache requires the mount): the application's code survives
#   `nox -s rebuild` and is in the backups of the volume. A document root that already held an
#   application (a deployment made before) is copied onto the volume first.
# * A MariaDB database `db_name` (user of the same name) through
#   `castelet::mariadb::database`; its credentials in `config_file` (outside the document
#   root, mode 0640, root:www-data) for the application to read.
# * `health.php`: connects with those credentials and runs `SELECT 1`; answers HTTP 200
#   `castelet-lamp: ok`, or HTTP 500 `castelet-lamp: database unreachable`. End-to-end
#   checks request it. Managed: always rewritten.
# * `index.php`: a placeholder page naming the deployment, written only when no `index.php`
#   exists, so the application's own page replaces it for good.
#
# @example In hiera
#   castelet::profile::lamp_app::db_name: 'survey'
#
# @param servername
#   Apache ServerName; defaults to `castelet::domain`.
# @param docroot
#   Document root; defaults to `/var/www/<castelet::deployment>`.
# @param db_name
#   Name of the MariaDB database and of its user.
# @param docroot_source
#   Directory under `castelet::data_dir` that holds the document root (letters, digits, `_ . -`).
# @param docroot_owner
#   Owner and group of the document root and the placeholder page. Not the web server's user:
#   a compromised application must not be able to rewrite itself.
# @param config_file
#   The INI file holding the database credentials (`host`, `dbname`, `user`, `password`).
class castelet::profile::lamp_app (
  Optional[Stdlib::Fqdn] $servername = undef,
  Optional[Castelet::Path] $docroot = undef,
  Castelet::Dbname $db_name = 'app',
  Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]*\z/] $docroot_source = 'www',
  String[1] $docroot_owner = 'root',
  Castelet::Path $config_file = '/etc/castelet/lamp-app.ini',
) {
  include castelet
  include castelet::profile::apache_php
  include castelet::profile::mariadb
  include castelet::profile::volumes

  $_servername = pick($servername, $castelet::domain)
  $_docroot = pick($docroot, "/var/www/${castelet::deployment}")
  $config_dir = dirname($config_file)

  ensure_resource('castelet::php_extension', ['mysql'])

  castelet::mariadb::database { $db_name:
    user => $db_name,
  }

  # --- credentials, outside the document root ---------------------------------------
  exec { 'castelet-lamp-config-dir':
    command => "mkdir -p '${config_dir}'",
    creates => $config_dir,
    path    => ['/usr/bin', '/bin'],
  }

  file { $config_file:
    ensure    => file,
    owner     => 'root',
    group     => 'www-data',
    mode      => '0640',
    show_diff => false,
    content   => Sensitive(epp('castelet/lamp-database.ini.epp', {
          'user'     => $db_name,
          'password' => castelet::secret("mariadb-${db_name}"),
          'dbname'   => $db_name,
    })),
    require   => Exec['castelet-lamp-config-dir'],
  }

  # --- document root -------------------------------------------------------------------
  exec { 'castelet-lamp-docroot':
    command => "mkdir -p '${_docroot}'",
    creates => $_docroot,
    path    => ['/usr/bin', '/bin'],
    require => Class['castelet::profile::volumes'],
  }

  # On the data volume (when there is one): bound before anything is written into it.
  castelet::persistent_dir { $_docroot:
    source  => $docroot_source,
    units   => ['apache2.service'],
    require => Exec['castelet-lamp-docroot'],
  }

  file { $_docroot:
    ensure  => directory,
    owner   => $docroot_owner,
    group   => $docroot_owner,
    mode    => '0755',
    require => [Castelet::Persistent_dir[$_docroot], Package['httpd']],
  }

  file { "${_docroot}/health.php":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/health.php.epp', { 'config_file' => $config_file }),
  }

  file { "${_docroot}/index.php":
    ensure  => file,
    replace => false,
    owner   => $docroot_owner,
    group   => $docroot_owner,
    mode    => '0644',
    content => epp('castelet/index.php.epp', {
        'deployment' => $castelet::deployment,
        'domain'     => $_servername,
    }),
  }

  castelet::apache_site { $_servername:
    docroot     => $_docroot,
    directories => [
      {
        'path'           => $_docroot,
        'options'        => ['FollowSymLinks'],
        'allow_override' => ['All'],
        'require'        => 'all granted',
      },
    ],
    require     => File[$_docroot],
  }
}
