# @summary
#   WordPress from Debian's `wordpress` package, installed by the deployment, its content on the
#   data volume.
#
# * Updates, precisely: WordPress itself is Debian's code (`/usr/share/wordpress`), updated by
#   Debian (its security archive and point releases, through unattended-upgrades, daily), never
#   by WordPress's core updater (`WP_AUTO_UPDATE_CORE` false). WordPress's background updater
#   (WP-Cron, twice a day) stays on for everything installed in `content_dir`: the must-use
#   plugin `<content_dir>/mu-plugins/castelet.php` (root-owned, from Puppet) forces automatic
#   updates of every plugin and theme from wordpress.org, except what Debian's packages link
#   there (symlinks into `/usr/share/wordpress`: Debian updates those), so the plugins' screen
#   says "Auto-updates enabled" and WordPress mails the administration e-mail after each one.
#   Translations update the same way. The package's recommended default theme and translations
#   come with it.
# * `content_dir` (Debian's `WP_CONTENT_DIR`, `/var/lib/wordpress/wp-content`: uploads, added
#   plugins and themes, and the package's links to its own) is a bind mount of
#   `<castelet::data_dir>/<content_source>` made before the package is installed
#   (`castelet::persistent_dir`), so that what the site's users upload survives a rebuild;
#   Apache requires that mount. PHP never runs from `uploads/`.
# * `/etc/wordpress/config-default.php` (read by Debian's `wp-config.php` for any host name;
#   mode 0640, root:www-data): the database credentials of `castelet::mariadb::database[db_name]`,
#   the keys and salts, derived in PHP (HMAC-SHA256 per constant) from
#   `castelet::secret('wordpress-salts')`, the site's URL `https://<servername>`, HTTPS for the
#   admin, no core updates and no file editor in the admin (`DISALLOW_FILE_EDIT`).
# * An HTTPS virtual host (`castelet::apache_site`) on `/usr/share/wordpress`; `/wp-content` is
#   an Apache alias of `content_dir` (server configuration), whose `uploads/` never runs PHP.
# * XML-RPC (`/xmlrpc.php`) is refused by Apache (403) unless `xmlrpc` is true; WordPress then
#   does not advertise it either (no RSD link, no X-Pingback header, `xmlrpc_enabled` false).
# * Failed logins on every path that checks a password (`/wp-login.php`, `/xmlrpc.php`, the REST
#   API's application passwords) are written by the must-use plugin to the journal
#   (`castelet-wordpress[PID]: authentication failure from ADDRESS`, once per request, nothing
#   the client sent) and feed the fail2ban jail `castelet-wordpress` (`castelet::profile::fail2ban`'s
#   limits: 5 failures in 10 minutes ban the address for 15 minutes).
# * Completes WordPress's installation so that no one ever gets its installer:
#   `castelet-wordpress-install` (files/wordpress-install.py, `castelet::web_installer`) posts WordPress's own installation
#   form (`/wp-admin/install.php?step=2`) to the virtual host over 127.0.0.1: site title
#   `site_title`, first administrator `admin_user` (never `admin`: by default a login name
#   generated on the instance, `castelet::secret('wordpress-admin-user')`) with e-mail
#   `admin_email` and the password
#   `castelet::secret('wordpress-admin')`, read from its root-only file (never on a command
#   line, in the environment or a log); then it logs in through `/wp-login.php` to prove the
#   administrator can use the site. It runs only while the database has no administrator,
#   after the configuration, the database, the virtual host and Apache, and before
#   `castelet::installed` (the firewall opens the public ports only after that class). A failed
#   installation fails the Puppet run with WordPress's own message.
#
# @example The installation's settings in the blueprint's hiera data
#   castelet::profile::wordpress::site_title: 'Carnet de terrain'
#
# @param site_title
#   The site's title (WordPress's "Site Title"), set by the installation; change it later in
#   WordPress's settings.
# @param servername
#   Apache ServerName and the site's URL `https://<servername>`; defaults to `castelet::domain`.
# @param db_name
#   Name of the MariaDB database and of its user.
# @param admin_user
#   Login name of the first administrator (WordPress also accepts its e-mail to log in); not
#   `admin`, the first name password guessers try. Undef (the default): the secret
#   `wordpress-admin-user`, generated on the instance (`nox -s secrets` shows it). Used only when
#   the site is installed.
# @param admin_email
#   E-mail of the first administrator and the site's administration e-mail; defaults to
#   `castelet::admin_email`.
# @param search_engines
#   Whether search engines may index the site (WordPress's "blog_public"), set by the
#   installation; a Boolean or its string form (`terraform.settings` values are strings).
# @param xmlrpc
#   Whether `/xmlrpc.php` (XML-RPC: pingbacks, the mobile apps, older publishing tools) is
#   served; refused by default. A Boolean or its string form (`terraform.settings` values are
#   strings).
# @param content_dir
#   WordPress's `WP_CONTENT_DIR` (Debian's default), kept on the data volume.
# @param content_source
#   Directory name on the data volume holding `content_dir` (what the backups copy).
# @param install_dir
#   Debian's WordPress code: the document root.
# @param php_extensions
#   PHP extensions WordPress uses (see `castelet::php_extension`).
# @param packages
#   Debian packages: WordPress itself (its recommended theme and translations come with it).
class castelet::profile::wordpress (
  String[1] $site_title,
  Optional[Stdlib::Fqdn] $servername = undef,
  Castelet::Dbname $db_name = 'wordpress',
  Optional[Pattern[/\A(?!admin\z)[a-z0-9][a-z0-9_.-]{0,59}\z/]] $admin_user = undef,
  Optional[Stdlib::Email] $admin_email = undef,
  Variant[Boolean, Enum['true', 'false']] $search_engines = true,
  Variant[Boolean, Enum['true', 'false']] $xmlrpc = false,
  Castelet::Path $content_dir = '/var/lib/wordpress/wp-content',
  Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]*\z/] $content_source = 'wordpress',
  Castelet::Path $install_dir = '/usr/share/wordpress',
  Array[Pattern[/\A[a-z0-9][a-z0-9_-]*\z/]] $php_extensions = ['curl', 'gd', 'imagick', 'intl', 'mbstring', 'mysql', 'xml', 'zip'],
  Array[String[1]] $packages = ['wordpress'],
) {
  include castelet
  include castelet::profile::apache_php
  include castelet::profile::mariadb
  include castelet::profile::volumes

  $_servername = pick($servername, $castelet::domain)
  $_admin_email = pick($admin_email, $castelet::admin_email)
  # Terraform hands settings over as strings.
  $blog_public = $search_engines ? {
    true    => '1',
    'true'  => '1',
    default => '0',
  }
  $_xmlrpc = $xmlrpc ? {
    true    => true,
    'true'  => true,
    default => false,
  }
  # A login name, not a password: the installer gets it in its environment.
  $_admin_user = $admin_user.lest || { castelet::secret('wordpress-admin-user').unwrap }

  ensure_resource('castelet::php_extension', $php_extensions)

  castelet::mariadb::database { $db_name:
    user => $db_name,
  }

  # --- content on the data volume, bound before the package fills it ---------------------
  castelet::persistent_dir { $content_dir:
    source => $content_source,
    units  => ['apache2.service'],
    before => Package[$packages],
  }

  ensure_packages($packages, { 'require' => Package[$castelet::profile::apache_php::mod_php_package] })

  # --- configuration: credentials and keys, readable by the web server only ---------------
  file { '/etc/wordpress/config-default.php':
    ensure    => file,
    owner     => 'root',
    group     => 'www-data',
    mode      => '0640',
    show_diff => false,
    content   => Sensitive(epp('castelet/wordpress-config.php.epp', {
          'db_name'     => $db_name,
          'password'    => castelet::secret("mariadb-${db_name}"),
          'keys'        => castelet::secret('wordpress-salts'),
          'servername'  => $_servername,
          'content_dir' => $content_dir,
    })),
    require   => Package[$packages],
  }

  # --- must-use plugin: updates, failed logins, XML-RPC ----------------------------------
  # On the data volume with the rest of wp-content, root's: www-data cannot change it.
  file { "${content_dir}/mu-plugins":
    ensure  => directory,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    require => Package[$packages],
  }

  file { "${content_dir}/mu-plugins/castelet.php":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/wordpress-mu-plugin.php.epp', { 'xmlrpc' => $_xmlrpc, 'ident' => 'castelet-wordpress' }),
  }

  # --- fail2ban: failed logins on every path, from the journal -----------------------------
  include castelet::profile::fail2ban

  file { '/etc/fail2ban/filter.d/castelet-wordpress.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/wordpress-fail2ban-filter.conf.epp', { 'ident' => 'castelet-wordpress' }),
    require => Package['fail2ban'],
    notify  => Service['fail2ban'],
  }

  file { '/etc/fail2ban/jail.d/castelet-wordpress.local':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => @(JAIL),
      # Managed by Puppet (castelet::profile::wordpress)
      [castelet-wordpress]
      enabled = true
      port    = http,https
      filter  = castelet-wordpress
      backend = systemd
      | JAIL
    require => File['/etc/fail2ban/filter.d/castelet-wordpress.conf'],
    notify  => Service['fail2ban'],
  }

  # --- Apache ------------------------------------------------------------------------------
  # Debian's layout: the code in install_dir, /wp-content from content_dir. Uploaded files are
  # served, never run; /xmlrpc.php is refused unless asked for. Its check (apachectl -t) reads
  # the virtual host's certificate: that must exist first.
  apache::custom_config { 'castelet-wordpress-content':
    content => epp('castelet/wordpress-content.conf.epp', {
        'content_dir' => $content_dir,
        'install_dir' => $install_dir,
        'xmlrpc'      => $_xmlrpc,
    }),
    require => [Package[$packages], Exec['castelet-tls-ensure']],
  }

  # Failed logins are counted by the jail above, on every login path.
  castelet::apache_site { $_servername:
    docroot     => $install_dir,
    directories => [
      {
        'path'           => $install_dir,
        'options'        => ['FollowSymLinks'],
        'allow_override' => ['All'],
        'require'        => 'all granted',
      },
    ],
    require     => Package[$packages],
  }

  # --- installation: no one ever gets WordPress's installer ------------------------------
  $admin_password_file = "${castelet::secrets_dir}/wordpress-admin"
  castelet::secret('wordpress-admin')

  # Installed = the database has an administrator.
  castelet::web_installer { 'wordpress':
    db_name     => $db_name,
    admin_query => "SELECT COUNT(*) FROM wp_usermeta WHERE meta_key = 'wp_capabilities' AND meta_value LIKE '%administrator%'",
    environment => [
      'WORDPRESS_BASE_URL=https://127.0.0.1',
      "WORDPRESS_HOST=${_servername}",
      "WORDPRESS_ADMIN_USER=${_admin_user}",
      "WORDPRESS_ADMIN_EMAIL=${_admin_email}",
      "WORDPRESS_ADMIN_PASSWORD_FILE=${admin_password_file}",
      "WORDPRESS_SITE_TITLE=${site_title}",
      "WORDPRESS_PUBLIC=${blog_public}",
    ],
    timeout     => 600,
    requires    => [
      File['/etc/wordpress/config-default.php'],
      File["${content_dir}/mu-plugins/castelet.php"],
      Apache::Custom_config['castelet-wordpress-content'],
      Castelet::Mariadb::Database[$db_name],
      Castelet::Apache_site[$_servername],
      Class['apache::service'],
    ],
  }
}
