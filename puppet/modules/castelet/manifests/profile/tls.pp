# @summary
#   The node's TLS certificate: self-signed at once, then from an ACME CA (certbot, HTTP-01
#   webroot), renewed by Debian's certbot.timer, switched into place without downtime.
#
# Web servers read `${dir}/current/fullchain.pem` and `${dir}/current/privkey.pem`. That link
# is managed by `/usr/local/sbin/castelet-tls` (files/castelet-tls.py), which points it at a
# self-signed certificate made at first boot (the site starts before DNS points here) and at
# certbot's `/etc/letsencrypt/live/<domain>/` once a certificate was issued. Issuance is tried
# once the public ports are open (after `castelet::installed`), then every `retry_minutes`
# by `castelet-tls-issue.timer` until it succeeds; certbot's deploy hook switches the link and
# reloads `reload_unit` (a graceful reload: no request is dropped). The state is recorded in
# `/var/lib/castelet/tls-status.json`, which `nox -s verify` reads.
#
# Why certbot's webroot method and not its Apache plugin or mod_md: see docs/decisions.md
# ("HTTPS: certbot webroot behind a stable link").
#
# @example `data/common.yaml` (the deployment's answers, from Terraform)
#   castelet::profile::tls::acme_server: "%{alias('terraform.settings.acme_server')}"
#
# @param acme_server
#   ACME directory URL (Let's Encrypt's by default on OpenStack), or `self-signed` for a
#   deployment without a public domain (the local LXD cloud): then no CA is contacted.
# @param acme_ca_certificate
#   PEM certificate(s) of a private ACME CA's API (e.g. an institutional CA, or pebble in
#   tests), trusted by certbot only (`/etc/castelet/acme-ca.pem` given to it as
#   REQUESTS_CA_BUNDLE), never added to the system's trust store. Empty: the public trust
#   store is enough.
# @param domain
#   The name the certificate is for (`castelet::domain`).
# @param email
#   Contact address registered with the CA (`castelet::admin_email`).
# @param dir
#   Where the self-signed pair and the `current` link live.
# @param webroot
#   Directory served at `/.well-known/acme-challenge/` on port 80 by the web server profile.
# @param reload_unit
#   systemd unit reloaded after a new certificate (`apache2` or `nginx`).
# @param retry_minutes
#   How often the timer retries issuance while no ACME certificate exists.
# @param versions
#   TLS versions every web server profile accepts (Mozilla's "intermediate" profile).
# @param ciphers
#   Cipher suites for TLS 1.2, OpenSSL names (TLS 1.3 suites are OpenSSL's defaults, all strong).
class castelet::profile::tls (
  Variant[Enum['self-signed'], Pattern[/\Ahttps:\/\/[A-Za-z0-9.-]+(:[0-9]+)?(\/[A-Za-z0-9._~\/-]*)?\z/]] $acme_server,
  String $acme_ca_certificate = '',
  Stdlib::Fqdn $domain = $castelet::domain,
  Stdlib::Email $email = $castelet::admin_email,
  Castelet::Path $dir = '/etc/castelet/tls',
  Castelet::Path $webroot = '/var/lib/castelet/acme',
  Enum['apache2', 'nginx'] $reload_unit = 'apache2',
  Integer[1, 59] $retry_minutes = 10,
  Array[Enum['TLSv1.2', 'TLSv1.3'], 1] $versions = ['TLSv1.2', 'TLSv1.3'],
  Pattern[/\A[A-Za-z0-9:-]+\z/] $ciphers = join([
      'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
      'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-CHACHA20-POLY1305',
  ], ':'),
) {
  include castelet
  include castelet::installed
  include castelet::profile::firewall

  $acme = $acme_server != 'self-signed'
  $packages = $acme ? {
    true  => ['openssl', 'ca-certificates', 'python3', 'certbot'],
    false => ['openssl', 'ca-certificates', 'python3'],
  }
  ensure_packages($packages)

  # A private ACME CA is trusted by certbot alone (REQUESTS_CA_BUNDLE, for castelet-tls's first
  # issue and for Debian's certbot.service renewals), never by the system trust store that apt,
  # pip, npm, git and restic use: whoever runs that CA cannot intercept the rest of the node's TLS.
  $ca_bundle = '/etc/castelet/acme-ca.pem'
  $certbot_dropin = '/etc/systemd/system/certbot.service.d/castelet-acme-ca.conf'
  $private_ca = $acme and $acme_ca_certificate =~ /-----BEGIN CERTIFICATE-----/
  # Where the private CA went before (the system trust store): taken out, and the bundle rebuilt.
  file { '/usr/local/share/ca-certificates/castelet-acme-ca.crt':
    ensure => absent,
    notify => Exec['castelet-tls-untrust-ca'],
  }
  exec { 'castelet-tls-untrust-ca':
    command     => '/usr/sbin/update-ca-certificates --fresh',
    refreshonly => true,
    require     => Package['ca-certificates'],
  }
  if $private_ca {
    file { $ca_bundle:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => "${acme_ca_certificate.strip}\n",
    }
    file { '/etc/systemd/system/certbot.service.d':
      ensure => directory,
      owner  => 'root',
      group  => 'root',
      mode   => '0755',
    }
    file { $certbot_dropin:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => join([
          '# written by Puppet (castelet::profile::tls): the private ACME CA, for certbot only',
          '[Service]',
          "Environment=REQUESTS_CA_BUNDLE=${ca_bundle}",
          '',
      ], "\n"),
      notify  => Exec['castelet-tls-systemd-reload'],
    }
  } else {
    file { [$ca_bundle, $certbot_dropin]:
      ensure => absent,
      notify => Exec['castelet-tls-systemd-reload'],
    }
  }

  file { $dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  file { [$webroot, "${webroot}/.well-known", "${webroot}/.well-known/acme-challenge"]:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  $ca_bundle_setting = $private_ca ? {
    true    => $ca_bundle,
    default => '',
  }
  $config = {
    'domain'      => $domain,
    'email'       => $email,
    'acme_server' => $acme_server,
    'dir'         => $dir,
    'webroot'     => $webroot,
    'reload_unit' => $reload_unit,
    'ca_bundle'   => $ca_bundle_setting,
  }

  file { '/etc/castelet/tls.json':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "${to_json_pretty($config)}\n",
  }

  file { '/usr/local/sbin/castelet-tls':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    content => file('castelet/castelet-tls.py'),
  }

  # Before the web server starts: it must find a certificate at `current/`.
  exec { 'castelet-tls-ensure':
    command => '/usr/local/sbin/castelet-tls ensure',
    unless  => "/usr/bin/test -f ${dir}/current/fullchain.pem -a -f ${dir}/current/privkey.pem",
    require => [Package[$packages], File['/etc/castelet/tls.json', '/usr/local/sbin/castelet-tls', $dir, $ca_bundle]],
  }

  # Retries while no ACME certificate exists; skipped (not failed) once certbot has one.
  file { '/etc/systemd/system/castelet-tls-issue.service':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/castelet-tls-issue.service.epp', { 'domain' => $domain }),
  }

  file { '/etc/systemd/system/castelet-tls-issue.timer':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/castelet-tls-issue.timer.epp', { 'retry_minutes' => $retry_minutes }),
  }

  exec { 'castelet-tls-systemd-reload':
    command     => '/bin/systemctl daemon-reload',
    refreshonly => true,
    subscribe   => File['/etc/systemd/system/castelet-tls-issue.service', '/etc/systemd/system/castelet-tls-issue.timer'],
  }

  $timer_ensure = $acme ? {
    true  => running,
    false => stopped,
  }
  service { 'castelet-tls-issue.timer':
    ensure  => $timer_ensure,
    enable  => $acme,
    require => [Exec['castelet-tls-systemd-reload'], Exec['castelet-tls-ensure']],
  }

  # The first attempt, once the public ports answer (HTTP-01 needs port 80 from outside).
  # A failure is not an error of this run: the site serves self-signed, the timer retries.
  if $acme {
    exec { 'castelet-tls-issue':
      command => '/usr/local/sbin/castelet-tls issue',
      returns => [0, 75],
      unless  => "/usr/bin/test -f /etc/letsencrypt/live/${domain}/fullchain.pem",
      require => [
        Exec['castelet-tls-ensure', 'castelet-nftables-open-public'],
        File["${castelet::profile::firewall::include_dir}/public.nft", "${webroot}/.well-known/acme-challenge"],
        Class['castelet::installed'],
      ],
    }
  }
}
