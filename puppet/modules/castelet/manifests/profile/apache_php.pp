# @summary
#   Apache httpd (puppetlabs-apache, Debian's packages) with mod_php for Debian's PHP (8.4 on
#   Debian 13, 8.2 on Debian 12).
#
# * Apache with the prefork MPM (mod_php is not thread safe), no default vhost, `ServerTokens
#   Prod`, `ServerSignature Off`, `TraceEnable Off`, ServerAdmin `castelet::admin_email`,
#   mod_rewrite enabled. Virtual hosts come from the application profiles.
# * mod_php declared explicitly: the apache module's `apache::mod::php` guesses PHP 7.2 on
#   Debian 12, and with `php_version => '8.2'` it loads the module as `php8_module`, which
#   does not exist (PHP 8 names it `php_module`). So: package `libapache2-mod-php<version>`,
#   library `libphp<version>.so`, id `php_module`, and our own `php<version>.conf`.
# * one `php<version>-<extension>` package per entry of `php_extensions`.
# * `php_ini` settings written to `/etc/php/<version>/apache2/conf.d/90-castelet.ini`.
#
# @example In a role
#   include castelet::profile::apache_php
#
# @param php_version
#   Debian's PHP version, from `data/os/<major>.yaml` (`8.4` on Debian 13, `8.2` on Debian 12).
# @param php_extensions
#   Extensions to install, short names: `mysql` installs `php<version>-mysql`.
# @param php_ini
#   php.ini settings for Apache's PHP, e.g. `{ upload_max_filesize => '64M' }`.
class castelet::profile::apache_php (
  Pattern[/\A[0-9]+\.[0-9]+\z/] $php_version,
  Array[Pattern[/\A[a-z0-9][a-z0-9_-]*\z/]] $php_extensions = [],
  Hash[Pattern[/\A[A-Za-z0-9_.]+\z/], Variant[String, Integer, Boolean]] $php_ini = {},
) {
  include castelet
  include castelet::profile::firewall

  # Apache listens as soon as its package is installed: the closed firewall (public ports
  # held until the applications installed themselves) must already be loaded.
  Service['nftables'] -> Class['apache']

  $mod_php_package = "libapache2-mod-php${php_version}"
  $mod_php = "php${php_version}"

  class { 'apache':
    default_vhost     => false,
    default_ssl_vhost => false,
    mpm_module        => 'prefork',
    serveradmin       => $castelet::admin_email,
    server_tokens     => 'Prod',
    server_signature  => 'Off',
    trace_enable      => 'Off',
  }

  include apache::mod::rewrite

  # Declared before apache::mod so that it links `<mod>.conf` into mods-enabled as well.
  file { "${mod_php}.conf":
    ensure  => file,
    path    => "${apache::mod_dir}/${mod_php}.conf",
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/mod_php.conf.epp'),
    require => [Exec["mkdir ${apache::mod_dir}"], Package[$mod_php_package]],
    before  => File[$apache::mod_dir],
    notify  => Class['apache::service'],
  }

  apache::mod { $mod_php:
    package => $mod_php_package,
    lib     => "libphp${php_version}.so",
    id      => 'php_module',
  }

  ensure_resource('castelet::php_extension', $php_extensions)

  file { "/etc/php/${php_version}/apache2/conf.d/90-castelet.ini":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/php.ini.epp', { 'settings' => $php_ini }),
    require => Package[$mod_php_package],
    notify  => Class['apache::service'],
  }
}
