# @summary
#   nginx (Debian's package) as the node's HTTPS front: sites come from `castelet::nginx_site`.
#
# * `/etc/nginx/nginx.conf` is ours (Debian's layout: modules-enabled, mime.types, conf.d,
#   sites-enabled): `server_tokens off`, the TLS versions and ciphers of
#   `castelet::profile::tls` (shared with Apache), no session tickets, the client's cipher
#   preference (every listed cipher is strong). Debian's `default` site is removed.
# * The closed firewall is loaded before the package (it starts listening on install), as for
#   Apache: public ports open only after `castelet::installed`.
# * Every configuration change is checked with `nginx -t`, then nginx is **reloaded** (graceful:
#   running requests finish on the old workers), never restarted; a configuration that fails
#   the check fails the Puppet run and leaves the running nginx on its previous configuration.
# * The node's certificate comes from `castelet::profile::tls`, whose `reload_unit` must be
#   `nginx` (set `castelet::profile::tls::reload_unit: nginx` in the blueprint's
#   `data/blueprint.yaml`): the catalogue refuses to compile otherwise, naming the key.
#
# @example In a role (sites are declared by the application profile)
#   include castelet::profile::nginx
#
# @param worker_connections
#   `worker_connections` of each worker process.
# @param ipv6
#   Whether sites also listen on `[::]`. Default: when the kernel has IPv6 (loopback has `::1`).
class castelet::profile::nginx (
  Integer[64, 65535] $worker_connections = 768,
  Boolean $ipv6 = $facts.dig('networking', 'interfaces', 'lo', 'ip6') =~ NotUndef,
) {
  include castelet
  include castelet::profile::firewall
  include castelet::profile::tls

  if $castelet::profile::tls::reload_unit != 'nginx' {
    fail("castelet::profile::nginx: castelet::profile::tls::reload_unit is '${castelet::profile::tls::reload_unit}'; set it to 'nginx' in the blueprint's data/blueprint.yaml (castelet::profile::tls::reload_unit: nginx) so that a renewed certificate reloads nginx") # lint:ignore:140chars
  }

  # nginx listens as soon as its package is installed: the closed firewall must be loaded.
  Service['nftables'] -> Package['nginx']

  package { 'nginx':
    ensure => installed,
  }

  file { '/etc/nginx/nginx.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/nginx.conf.epp', {
        'protocols'          => $castelet::profile::tls::versions,
        'ciphers'            => $castelet::profile::tls::ciphers,
        'worker_connections' => $worker_connections,
    }),
    require => Package['nginx'],
    notify  => Exec['castelet-nginx-check'],
  }

  # Debian's welcome site (a default_server on port 80) is not ours.
  file { ['/etc/nginx/sites-enabled/default', '/etc/nginx/sites-available/default']:
    ensure  => absent,
    require => Package['nginx'],
    notify  => Exec['castelet-nginx-check'],
  }

  file { '/etc/nginx/sites-enabled':
    ensure  => directory,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    require => Package['nginx'],
  }

  # Checks the whole configuration before the reload (a failure stops here: nginx keeps
  # serving the previous configuration).
  exec { 'castelet-nginx-check':
    command     => '/usr/sbin/nginx -t -q',
    refreshonly => true,
    require     => Package['nginx'],
    notify      => Service['nginx'],
  }

  # The site's certificate must exist before nginx (re)reads a configuration naming it.
  Exec['castelet-tls-ensure'] -> Exec['castelet-nginx-check']

  service { 'nginx':
    ensure  => running,
    enable  => true,
    restart => '/bin/systemctl reload nginx',
    require => [Package['nginx'], Exec['castelet-tls-ensure']],
  }

  # The CA fetches its challenge from the port-80 server: nginx must have (re)loaded it first.
  if $castelet::profile::tls::acme {
    Service['nginx'] -> Exec['castelet-tls-issue']
  }
}
