# @summary
#   Installs one PHP extension package for the PHP of `castelet::profile::apache_php`.
#
# The title is the extension's short name: `mysql` installs `php<version>-mysql`. Profiles declare
# the extensions they need with `ensure_resource('castelet::php_extension', [...])`, so two
# profiles asking for the same extension do not clash. Apache restarts after an install.
#
# @example
#   ensure_resource('castelet::php_extension', ['gd', 'intl'])
define castelet::php_extension {
  include castelet::profile::apache_php

  unless $title =~ /\A[a-z0-9][a-z0-9_-]*\z/ {
    fail("castelet::php_extension: '${title}' is not a PHP extension package suffix (e.g. 'mysql', 'gd')")
  }

  package { "php${castelet::profile::apache_php::php_version}-${title}":
    ensure  => installed,
    require => Package[$castelet::profile::apache_php::mod_php_package],
    notify  => Class['apache::service'],
  }
}
