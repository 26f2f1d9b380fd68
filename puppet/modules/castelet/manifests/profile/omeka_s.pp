# @summary
#   Omeka S from its pinned release zip, verified before it is unpacked.
#
# * Downloads `release_url` with puppet-archive, checks its SHA-256 against
#   `release_sha256` before anything is unpacked (a mismatch fails the run and changes
#   nothing), and unpacks it into `<install_dir>-<version>/` (the zip's top directory,
#   `archive_root`, is the release root). Only when every step succeeded does the symlink
#   `install_dir` move to the new release, so a failed upgrade leaves the running version
#   in place.
# * Refuses to compile without `release_sha256`: unverified code is never installed.
# * `config/database.ini` (mode 0640, root:www-data) with the password of
#   `castelet::mariadb::database[db_name]`.
# * The release's `files/` is a symlink to `files_dir` (owned by www-data), normally on the
#   data volume, so uploads survive upgrades. What is in it is served, never run
#   (`castelet-omeka-files.conf`, as WordPress's uploads): PHP's engine is off there, PHP file
#   names are refused (403) and no `.htaccess` of its own is read, both at the path Apache serves
#   (`<install_dir>/files`) and at `files_dir`.
# * A port 80 virtual host on `install_dir` with `AllowOverride All` (Omeka S's .htaccess
#   needs mod_rewrite), ImageMagick and the PHP extensions Omeka S needs.
# * Completes Omeka S's own installation, so that no one ever gets its `/install` form:
#   `castelet-omeka-install` (files/omeka-install.py, `castelet::web_installer`) posts Omeka S's installation form to
#   the virtual host over 127.0.0.1 (first global administrator `admin_email`, installation
#   title `site_title`, `timezone`, `locale`), then logs in through `/login` to prove the
#   administrator can use the site. The password is `castelet::secret('omeka-admin')`: the
#   installer reads it from its root-only file (`<secrets dir>/omeka-admin`), so it is never
#   in a command line, an environment or a log. The exec runs only while the database has no
#   active global administrator, after the virtual host, Apache, `database.ini`, the database
#   and the `install_dir` symlink, and before `castelet::installed` (the firewall opens the
#   public ports only after that class). A failed installation fails the Puppet run with
#   Omeka S's own error messages.
#
# @example Pinning a release in the blueprint's hiera data
#   castelet::profile::omeka_s::version: '4.1.1'
#   castelet::profile::omeka_s::release_url: 'https://github.com/omeka/omeka-s/releases/download/v4.1.1/omeka-s-4.1.1.zip'
#   castelet::profile::omeka_s::release_sha256: '<64 hexadecimal digits>'
#
# @example The installation's settings in the blueprint's hiera data
#   castelet::profile::omeka_s::site_title: 'Atlas of medieval charters'
#   castelet::profile::omeka_s::timezone: 'America/Toronto'
#
# @param version
#   Omeka S version, part of the release directory's name.
# @param release_url
#   URL of the release zip for `version` (http, https, or `file:///` for offline tests).
# @param release_sha256
#   SHA-256 of the release zip (64 lower case hexadecimal digits). Required: undef or an empty
#   string (an unpinned release, as Terraform hands it) fails the compilation, naming this key.
# @param install_dir
#   Path of the symlink to the current release; the Apache document root.
# @param files_dir
#   Directory of uploaded files (the release's `files/` points at it).
# @param servername
#   Apache ServerName; defaults to `castelet::domain`.
# @param db_name
#   Name of the MariaDB database and of its user.
# @param archive_root
#   Name of the top directory inside the release zip.
# @param php_extensions
#   PHP extensions Omeka S needs (see `castelet::php_extension`).
# @param packages
#   Other Debian packages Omeka S needs (ImageMagick for thumbnails, unzip for the archive).
# @param site_title
#   Omeka S's installation title, shown on every page: the project's name. Set once, by the
#   installation; change it later in Omeka S's settings.
# @param admin_email
#   E-mail address (the login) of the first global administrator, created by the installation;
#   also Omeka S's `administrator_email` setting. Defaults to `castelet::admin_email`.
#   Omeka S rejects addresses whose top-level domain is unknown (e.g. `.test`).
# @param admin_name
#   Display name of that administrator.
# @param timezone
#   Omeka S's time zone setting: a PHP time zone identifier such as `UTC` or `America/Toronto`.
# @param locale
#   Omeka S's locale setting: `en_US` or a locale of the release's `application/language`.
class castelet::profile::omeka_s (
  Pattern[/\A[0-9A-Za-z][0-9A-Za-z.+~-]*\z/] $version,
  Variant[Stdlib::HTTPUrl, Pattern[/\Afile:\/\/\/\S+\z/]] $release_url,
  String[1] $site_title,
  Optional[Variant[Pattern[/\A[0-9a-f]{64}\z/], Enum['']]] $release_sha256 = undef,
  Castelet::Path $install_dir = '/var/www/omeka-s',
  Castelet::Path $files_dir = '/srv/data/omeka-files',
  Optional[Stdlib::Fqdn] $servername = undef,
  Castelet::Dbname $db_name = 'omeka',
  Pattern[/\A[A-Za-z0-9_.-]+\z/] $archive_root = 'omeka-s',
  Array[Pattern[/\A[a-z0-9][a-z0-9_-]*\z/]] $php_extensions = ['curl', 'gd', 'imagick', 'intl', 'mbstring', 'mysql', 'xml', 'zip'],
  Array[String[1]] $packages = ['imagemagick', 'unzip'],
  Optional[Stdlib::Email] $admin_email = undef,
  String[1] $admin_name = 'Administrator',
  Pattern[/\A[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*\z/] $timezone = 'UTC',
  Pattern[/\A[a-z]{2,3}([_-][A-Za-z0-9]+)*(@[a-z]+)?\z/] $locale = 'en_US',
) {
  include castelet
  include castelet::profile::apache_php
  include castelet::profile::mariadb
  include castelet::profile::volumes

  if $release_sha256 =~ Undef or $release_sha256 == '' {
    fail(@("MSG"/L))
      castelet::profile::omeka_s: no checksum for the Omeka S ${version} release. Set the hiera key \
      'castelet::profile::omeka_s::release_sha256' to the SHA-256 of ${release_url} \
      (64 lower case hex digits): Castelet does not install unverified code.
      | MSG
  }

  $_servername = pick($servername, $castelet::domain)
  $_admin_email = pick($admin_email, $castelet::admin_email)
  $release_parent = "${install_dir}-${version}"
  $release_dir = "${release_parent}/${archive_root}"
  $zip = "/var/cache/castelet/omeka-s-${version}.zip"

  ensure_packages($packages)
  ensure_resource('castelet::php_extension', $php_extensions)

  castelet::mariadb::database { $db_name:
    user => $db_name,
  }

  # --- release -------------------------------------------------------------------------
  # Castelet's download cache, shared with other profiles (nodejs_app's npm archive).
  ensure_resource('file', '/var/cache/castelet', {
      ensure => directory, owner => 'root', group => 'root', mode => '0755',
  })
  file { $release_parent:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  # puppet-archive downloads to a temporary file, compares its checksum and only then
  # moves it into place and unpacks it: a wrong checksum fails here, before extraction.
  archive { $zip:
    ensure          => present,
    source          => $release_url,
    checksum        => $release_sha256,
    checksum_type   => 'sha256',
    checksum_verify => true,
    extract         => true,
    extract_path    => $release_parent,
    creates         => "${release_dir}/index.php",
    cleanup         => true,
    user            => 'root',
    group           => 'root',
    require         => [File['/var/cache/castelet', $release_parent], Package['unzip']],
  }

  file { "${release_dir}/config/database.ini":
    ensure    => file,
    owner     => 'root',
    group     => 'www-data',
    mode      => '0640',
    show_diff => false,
    content   => Sensitive(epp('castelet/omeka-database.ini.epp', {
          'user'     => $db_name,
          'password' => castelet::secret("mariadb-${db_name}"),
          'dbname'   => $db_name,
    })),
    require   => [Archive[$zip], Package['httpd']],
  }

  # --- uploaded files ------------------------------------------------------------------
  exec { 'castelet-omeka-files-dir':
    command => "mkdir -p '${files_dir}'",
    creates => $files_dir,
    path    => ['/usr/bin', '/bin'],
    require => Class['castelet::profile::volumes'],
  }

  # Apache never serves the root disk's empty directory in place of a missing volume.
  castelet::requires_mount { "apache2.service ${files_dir}":
    unit => 'apache2.service',
    path => $files_dir,
  }

  file { $files_dir:
    ensure  => directory,
    owner   => 'www-data',
    group   => 'www-data',
    mode    => '0750',
    require => [Exec['castelet-omeka-files-dir'], Package['httpd']],
  }

  # Uploaded files are served, never run (the release's AllowOverride All ends there too).
  # Its check (apachectl -t) reads the virtual host's certificate: that must exist first.
  apache::custom_config { 'castelet-omeka-files':
    content => epp('castelet/omeka-files.conf.epp', { 'dirs' => ["${install_dir}/files", $files_dir] }),
    require => [Package['httpd'], Exec['castelet-tls-ensure']],
  }

  # Replaces the (empty) files/ directory of the freshly unpacked release.
  file { "${release_dir}/files":
    ensure  => link,
    target  => $files_dir,
    force   => true,
    require => [Archive[$zip], File[$files_dir]],
  }

  # --- switch to the release -----------------------------------------------------------
  file { $install_dir:
    ensure  => link,
    target  => $release_dir,
    require => [
      Archive[$zip],
      File["${release_dir}/config/database.ini"],
      File["${release_dir}/files"],
    ],
    notify  => Class['apache::service'],
  }

  # A failed Omeka S login re-renders the form (HTTP 200); a successful one redirects.
  castelet::apache_site { $_servername:
    docroot     => $install_dir,
    login       => { 'path' => '/login', 'failure_status' => 200 },
    directories => [
      {
        'path'           => $install_dir,
        'options'        => ['FollowSymLinks'],
        'allow_override' => ['All'],
        'require'        => 'all granted',
      },
    ],
  }

  # --- installation: no one ever gets Omeka S's /install form --------------------------
  # Generated on the node (root-only file) at compile time; the installer reads that file.
  $admin_password_file = "${castelet::secrets_dir}/omeka-admin"
  castelet::secret('omeka-admin')

  # Installed = the database has an active global administrator.
  castelet::web_installer { 'omeka':
    db_name     => $db_name,
    admin_query => "SELECT COUNT(*) FROM user WHERE role = 'global_admin' AND is_active = 1",
    environment => [
      'OMEKA_BASE_URL=https://127.0.0.1',
      "OMEKA_HOST=${_servername}",
      "OMEKA_ADMIN_EMAIL=${_admin_email}",
      "OMEKA_ADMIN_NAME=${admin_name}",
      "OMEKA_ADMIN_PASSWORD_FILE=${admin_password_file}",
      "OMEKA_SITE_TITLE=${site_title}",
      "OMEKA_TIMEZONE=${timezone}",
      "OMEKA_LOCALE=${locale}",
    ],
    timeout     => 900,
    requires    => [
      File[$install_dir],
      File["${release_dir}/config/database.ini"],
      File["${release_dir}/files"],
      Apache::Custom_config['castelet-omeka-files'],
      Castelet::Mariadb::Database[$db_name],
      Castelet::Apache_site[$_servername],
      Class['apache::service'],
    ],
  }
}
