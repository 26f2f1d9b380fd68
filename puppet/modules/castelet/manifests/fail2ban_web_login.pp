# @summary
#   A fail2ban jail for a web application's login form: a POST to `path` answered with
#   `failure_status` in the access log `logpath` counts as a failed login.
#
# @example Omeka S re-renders its login form (HTTP 200) on a failure and redirects on success
#   castelet::fail2ban_web_login { 'omeka-s':
#     path           => '/login',
#     failure_status => 200,
#     logpath        => '/var/log/apache2/castelet-portal.example.org-https.log',
#   }
#
# @param path
#   The login form's path (POST target).
# @param failure_status
#   HTTP status of a failed attempt.
# @param logpath
#   Access log in Apache's/nginx's combined format.
define castelet::fail2ban_web_login (
  Pattern[/\A\/[A-Za-z0-9_.\/-]*\z/] $path,
  Integer[100, 599] $failure_status,
  Castelet::Path $logpath,
) {
  include castelet::profile::fail2ban

  $filter = "castelet-${title}"

  # fail2ban refuses to start while a jail's log file is missing (the web server creates it only
  # when it first starts with the site): make sure it exists, as the web server would.
  file { $logpath:
    ensure => file,
    owner  => 'root',
    group  => 'adm',
    mode   => '0640',
    before => Service['fail2ban'],
  }

  file { "/etc/fail2ban/filter.d/${filter}.conf":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/fail2ban-web-filter.conf.epp', {
        'path_regex'     => regsubst($path, '([.])', '\\\\\\1', 'G'),
        'failure_status' => $failure_status,
    }),
    require => Package['fail2ban'],
    notify  => Service['fail2ban'],
  }

  file { "/etc/fail2ban/jail.d/${filter}.local":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => @("JAIL"),
      # Managed by Puppet (castelet::fail2ban_web_login)
      [${filter}]
      enabled  = true
      port     = http,https
      filter   = ${filter}
      logpath  = ${logpath}
      backend  = polling
      | JAIL
    require => File["/etc/fail2ban/filter.d/${filter}.conf"],
    notify  => Service['fail2ban'],
  }
}
