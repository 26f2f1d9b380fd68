# @summary
#   One web application behind Apache: HTTPS on 443, port 80 only for ACME and a redirect.
#
# Declares two `apache::vhost`s for `servername`:
# * port 80: serves `castelet::profile::tls::webroot` at `/.well-known/acme-challenge/` and
#   answers everything else with a permanent redirect to `https://<servername>/...`;
# * port 443: the application (`docroot`, `directories`), with the node's certificate
#   (`castelet::profile::tls`, self-signed until the CA issued one), HSTS and security
#   headers. Apache itself never advertises its version (`castelet::profile::apache_php`).
#
# @example In an application profile
#   castelet::apache_site { $castelet::domain:
#     docroot     => '/var/www/app',
#     directories => [{ 'path' => '/var/www/app', 'require' => 'all granted' }],
#   }
#
# @param docroot
#   The application's document root (managed by the application profile).
# @param directories
#   `apache::vhost` `directories` of the HTTPS virtual host.
# @param servername
#   The site's name: the certificate's name and the redirect's target.
# @param hsts_max_age
#   `Strict-Transport-Security: max-age` in seconds (two years by default; subdomains of the
#   lab's domain are not included: they may be other people's services).
# @param content_security_policy
#   A `Content-Security-Policy` value, or empty for none. The default only restricts what
#   every application tolerates (framing, `<base>`, plugins).
# @param login
#   The application's login form, `{ path, failure_status }`: failed logins (a POST to `path`
#   answered with `failure_status`) are counted by a fail2ban jail (`castelet::fail2ban_web_login`).
define castelet::apache_site (
  Castelet::Path $docroot,
  Array[Hash] $directories = [],
  Stdlib::Fqdn $servername = $title,
  Integer[0] $hsts_max_age = 63072000,
  Pattern[/\A[^"\\\n]*\z/] $content_security_policy = "frame-ancestors 'self'; base-uri 'self'; object-src 'none'",
  Optional[Struct[{ path => String[1], failure_status => Integer[100, 599] }]] $login = undef,
) {
  include castelet::profile::apache_tls
  include castelet::profile::tls

  $webroot = $castelet::profile::tls::webroot
  $tls_dir = $castelet::profile::tls::dir

  Exec['castelet-tls-ensure'] -> Class['apache::service']
  # The CA fetches its challenge from the port-80 vhost: Apache must have (re)loaded it first.
  if $castelet::profile::tls::acme {
    Class['apache::service'] -> Exec['castelet-tls-issue']
  }

  apache::vhost { "${servername}-http":
    servername     => $servername,
    port           => 80,
    docroot        => $webroot,
    manage_docroot => false,
    directories    => [{ 'path' => $webroot, 'options' => ['None'], 'allow_override' => ['None'], 'require' => 'all granted' }],
    rewrites       => [
      {
        'comment'      => 'everything but ACME challenges goes to HTTPS',
        'rewrite_cond' => ['%{REQUEST_URI} !^/\.well-known/acme-challenge/'],
        'rewrite_rule' => ["^ https://${servername}%{REQUEST_URI} [R=301,L]"],
      },
    ],
  }

  $csp = $content_security_policy ? {
    ''      => [],
    default => ["always set Content-Security-Policy \"${content_security_policy}\""],
  }

  $access_log = "castelet-${servername}-https.log"

  apache::vhost { "${servername}-https":
    servername      => $servername,
    port            => 443,
    ssl             => true,
    ssl_cert        => "${tls_dir}/current/fullchain.pem",
    ssl_key         => "${tls_dir}/current/privkey.pem",
    docroot         => $docroot,
    manage_docroot  => false,
    directories     => $directories,
    access_log_file => $access_log,
    headers         => [
      "always set Strict-Transport-Security \"max-age=${hsts_max_age}\"",
      'always set X-Content-Type-Options "nosniff"',
      'always set Referrer-Policy "strict-origin-when-cross-origin"',
    ] + $csp,
  }

  if $login {
    castelet::fail2ban_web_login { $servername:
      path           => $login['path'],
      failure_status => $login['failure_status'],
      logpath        => "/var/log/apache2/${access_log}",
    }
  }
}
