# @summary
#   One site behind nginx: HTTPS on 443, port 80 only for ACME and a redirect.
#
# Writes `/etc/nginx/sites-enabled/castelet-<servername>.conf` with two servers for
# `servername` (the same contract as `castelet::apache_site`):
# * port 80: serves `castelet::profile::tls::webroot` at `/.well-known/acme-challenge/` and
#   answers everything else with a permanent redirect to `https://<servername>/...`;
# * port 443: the node's certificate (`castelet::profile::tls`, self-signed until the CA issued
#   one), HSTS and the security headers of the Apache sites, and either static files from
#   `root` or a reverse proxy to `proxy_to` (exactly one of them). nginx never advertises its
#   version (`castelet::profile::nginx`); a proxied application's `X-Powered-By` is dropped.
#
# Static files: `root` may be a symbolic link switched atomically (a new release of the site):
# nginx resolves it on each request. Symbolic links *inside* the site are followed only when
# the link and its target have the same owner (`disable_symlinks if_not_owner`): whoever
# uploads the site cannot publish the system's files through a link.
#
# @example Static files
#   castelet::nginx_site { 'www.example.org':
#     root => '/srv/data/site/current',
#   }
# @example A reverse proxy to an application on loopback
#   castelet::nginx_site { $castelet::domain:
#     proxy_to => 'http://127.0.0.1:3000',
#   }
#
# @param servername
#   The site's name: the certificate's name and the redirect's target.
# @param root
#   Directory of static files (index `index.html`; 404 for anything missing).
# @param proxy_to
#   `http://HOST:PORT` of the application the site forwards every request to (with `Host`,
#   `X-Forwarded-For`, `X-Forwarded-Proto` and WebSocket upgrades).
# @param hsts_max_age
#   `Strict-Transport-Security: max-age` in seconds (two years by default; subdomains are not
#   included: they may be other people's services).
# @param content_security_policy
#   A `Content-Security-Policy` value, or empty for none. The default only restricts what
#   every application tolerates (framing, `<base>`, plugins).
# @param client_max_body_size
#   Largest request body accepted (nginx size, e.g. `16m`).
# @param login
#   The application's login form, `{ path, failure_status }`: failed logins (a POST to `path`
#   answered with `failure_status`) are counted by a fail2ban jail (`castelet::fail2ban_web_login`).
define castelet::nginx_site (
  Stdlib::Fqdn $servername = $title,
  Optional[Castelet::Path] $root = undef,
  Optional[Pattern[/\Ahttp:\/\/[A-Za-z0-9.-]+:[0-9]{1,5}\z/, /\Ahttp:\/\/\[[0-9a-f:]+\]:[0-9]{1,5}\z/]] $proxy_to = undef,
  Integer[0] $hsts_max_age = 63072000,
  Pattern[/\A[^"\\\n$]*\z/] $content_security_policy = "frame-ancestors 'self'; base-uri 'self'; object-src 'none'",
  Pattern[/\A[0-9]{1,6}[kKmMgG]?\z/] $client_max_body_size = '16m',
  Optional[Struct[{ path => String[1], failure_status => Integer[100, 599] }]] $login = undef,
) {
  include castelet::profile::nginx
  include castelet::profile::tls

  if ($root =~ Undef) == ($proxy_to =~ Undef) {
    fail("castelet::nginx_site[${title}]: give exactly one of root and proxy_to")
  }

  $access_log = "/var/log/nginx/castelet-${servername}-https.log"

  file { "/etc/nginx/sites-enabled/castelet-${servername}.conf":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/nginx-site.conf.epp', {
        'servername'              => $servername,
        'root'                    => $root,
        'proxy_to'                => $proxy_to,
        'webroot'                 => $castelet::profile::tls::webroot,
        'tls_dir'                 => $castelet::profile::tls::dir,
        'hsts_max_age'            => $hsts_max_age,
        'content_security_policy' => $content_security_policy,
        'client_max_body_size'    => $client_max_body_size,
        'access_log'              => $access_log,
        'ipv6'                    => $castelet::profile::nginx::ipv6,
        # nginx 1.25.1 (Debian 13) has `http2 on`; 1.22 (Debian 12) only `listen ... http2`.
        'http2_directive'         => versioncmp($facts['os']['release']['major'], '13') >= 0,
    }),
    require => [Package['nginx'], File['/etc/nginx/sites-enabled']],
    notify  => Exec['castelet-nginx-check'],
  }

  if $login {
    castelet::fail2ban_web_login { $servername:
      path           => $login['path'],
      failure_status => $login['failure_status'],
      logpath        => $access_log,
    }
  }
}
