# @summary
#   Completes a web application's installation through its own web installer, before the
#   public ports open.
#
# Installs the application's installer script (`files/<title>-install.py` of this module) as
# `/usr/local/sbin/castelet-<title>-install`, root-only, with the Python module every installer
# imports (`castelet::web_installer::library`), and runs it once from
# `Exec['castelet-<title>-install']`: the script posts the installer's form over HTTPS on the
# loopback address (settings in `environment`, the administrator's password read from a root-only
# file) and checks that the administrator can log in. The exec runs unless the application's
# database already has an administrator (`admin_query`, asked with the database's client file
# `${castelet::secrets_dir}/mariadb-<db_name>.cnf`: a marker file could lie), and always before
# `castelet::installed`, after which `castelet::profile::firewall` opens the public ports.
#
# @example In an application profile
#   castelet::web_installer { 'omeka':
#     db_name     => $db_name,
#     admin_query => "SELECT COUNT(*) FROM user WHERE role = 'global_admin' AND is_active = 1",
#     environment => ['OMEKA_BASE_URL=https://127.0.0.1', "OMEKA_HOST=${servername}"],
#     timeout     => 900,
#     requires    => [Castelet::Mariadb::Database[$db_name], Class['apache::service']],
#   }
#
# @param db_name
#   The application's MariaDB database (`castelet::mariadb::database`), whose client file the
#   "installed" check uses.
# @param admin_query
#   SQL counting the application's administrators: the application is installed when it
#   answers a number above zero.
# @param environment
#   The script's settings, `NAME=value` (never a password: the script reads it from its file).
# @param timeout
#   Seconds the installation may take (the exec's `timeout`).
# @param requires
#   What must be in place before the installation runs (the application's files and
#   configuration, its database, its virtual host, Apache running), besides the script itself.
# @param script
#   The installer script in this module's files, as `file()` names it.
define castelet::web_installer (
  String[1] $db_name,
  String[1] $admin_query,
  Array[Pattern[/\A[A-Z][A-Z0-9_]*=/]] $environment,
  Integer[1] $timeout,
  Array[Type[Catalogentry]] $requires = [],
  String[1] $script = "castelet/${title}-install.py",
) {
  unless $title =~ /\A[a-z][a-z0-9-]*\z/ {
    fail("castelet::web_installer: '${title}' must be lower-case letters, digits and dashes (castelet-<title>-install)")
  }
  include castelet::web_installer::library

  $command = "/usr/local/sbin/castelet-${title}-install"

  file { $command:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0700',
    content => file($script),
  }

  # Installed = the database has an administrator (a marker file could lie).
  $db_client_file = "${castelet::secrets_dir}/mariadb-${db_name}.cnf"
  $installed_check = @("CHECK"/L)
    mariadb --defaults-extra-file='${db_client_file}' --batch --skip-column-names \
    --execute="${admin_query}" '${db_name}' | grep -qx '[1-9][0-9]*'
    | CHECK

  exec { "castelet-${title}-install":
    command     => $command,
    environment => $environment,
    unless      => $installed_check,
    provider    => 'shell',
    path        => ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
    timeout     => $timeout,
    logoutput   => 'on_failure',
    require     => [File[$command], File[$castelet::web_installer::library::path], Package['python3']] + $requires,
  }

  include castelet::installed
  Exec["castelet-${title}-install"] -> Class['castelet::installed']
}
