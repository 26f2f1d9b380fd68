# @summary
#   A static web site on the data volume, served by nginx over HTTPS (`castelet::nginx_site`),
#   published atomically in releases.
#
# The site lives in `site_dir` (default `<castelet::data_dir>/site`): `releases/<name>/` holds
# each published version and `current` is a symbolic link to the one nginx serves, switched
# atomically (a visitor sees the old site or the new one, never a half-copied mix); the newest
# `keep_releases` are kept. `/usr/local/sbin/castelet-site-deploy` (files/castelet-site-deploy.py)
# does every publication, reading its settings from `/etc/castelet/site.json`:
# * at first, a placeholder page naming the deployment (`castelet-site-deploy init`);
# * `deploy_ssh_keys`: the `deploy_user` account accepts those keys for one thing only, an
#   rsync upload of the built site (`rsync -a --delete _site/ deploy@HOST:`), through a forced
#   command wrapping Debian's `rrsync` (write only, links munged) into a fresh copy of the
#   current release, then the switch. No shell, no other command, no scp or sftp, no
#   forwarding, no terminal: `restrict` in its keys file (owned by root, outside its home) and
#   an sshd `Match User` drop-in with `ForceCommand` and `DisableForwarding`. It is a member of
#   `castelet::profile::base::ssh_group`, the one group sshd lets in (`AllowGroups`).
# * `git_url`: the instance fetches `git_ref` from that repository and builds it with Debian's
#   `jekyll` (`--safe`: no custom plugins) as `deploy_user`, in a sandboxed systemd service,
#   then publishes it the same way; at the first Puppet run and whenever the URL or the ref
#   changes, then every `build_interval_minutes` when the ref points at a new commit.
#
# @example `data/blueprint.yaml` of the static-site blueprint
#   castelet::profile::static_site::deploy_ssh_keys: "%{alias('terraform.settings.deploy_ssh_keys')}"
#
# @param servername
#   The site's name; defaults to `castelet::domain`.
# @param site_dir
#   Where the releases and the `current` link live; defaults to `<castelet::data_dir>/site`
#   (`/srv/site` on a node without a data volume).
# @param deploy_user
#   The account that owns the site and receives uploads.
# @param deploy_uid
#   Its fixed uid and gid: a rebuilt instance owns the site files it finds on the volume.
# @param deploy_ssh_keys
#   Public keys allowed to upload (one key line each, separated by commas); empty: none.
# @param git_url
#   `https://...` (or `http://` to a private address) of a git repository holding a Jekyll
#   site; empty: no build on the instance.
# @param git_ref
#   The branch, tag or commit of `git_url` to build.
# @param keep_releases
#   How many releases are kept (the served one always is).
# @param build_interval_minutes
#   How often the instance looks for a new commit of `git_ref` (0: only when Puppet runs after
#   a change of `git_url` or `git_ref`).
# @param state_dir
#   The deploy account's home: the fetched repository, the build's state.
class castelet::profile::static_site (
  Optional[Stdlib::Fqdn] $servername = undef,
  Optional[Castelet::Path] $site_dir = undef,
  Pattern[/\A[a-z_][a-z0-9_-]{0,31}\z/] $deploy_user = 'deploy',
  Integer[100, 999] $deploy_uid = 990,
  Pattern[/\A([^,\n]+(,[^,\n]+)*)?\z/] $deploy_ssh_keys = '',
  Variant[Enum[''], Pattern[/\Ahttps?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~%+\/-]*)?\z/]] $git_url = '',
  Pattern[/\A[A-Za-z0-9][A-Za-z0-9._\/-]{0,99}\z/] $git_ref = 'main',
  Integer[1, 100] $keep_releases = 5,
  Integer[0, 1440] $build_interval_minutes = 15,
  Castelet::Path $state_dir = '/var/lib/castelet-site',
) {
  include castelet
  include castelet::profile::base
  include castelet::installed
  include castelet::profile::volumes
  include castelet::profile::nginx

  $_servername = pick($servername, $castelet::domain)
  $_site_dir = pick($site_dir, $castelet::data_dir ? {
      undef   => '/srv/site',
      default => "${castelet::data_dir}/site",
  })
  $build = $git_url != ''
  $keys = split($deploy_ssh_keys, ',').map |String $k| { $k.strip }.filter |String $k| { $k != '' }
  $tool = '/usr/local/sbin/castelet-site-deploy'

  # --- the deploy account --------------------------------------------------------------
  group { $deploy_user:
    ensure => present,
    gid    => $deploy_uid,
    system => true,
  }

  # A shell is needed for sshd to run the forced command; sshd never runs anything else.
  user { $deploy_user:
    ensure     => present,
    uid        => $deploy_uid,
    gid        => $deploy_uid,
    home       => $state_dir,
    managehome => false,
    shell      => '/bin/sh',
    password   => '!',
    system     => true,
    # sshd lets in the members of this group only (AllowGroups).
    groups     => [$castelet::profile::base::ssh_group],
    membership => inclusive,
    require    => Group[$deploy_user, $castelet::profile::base::ssh_group],
  }

  file { $state_dir:
    ensure  => directory,
    owner   => $deploy_user,
    group   => $deploy_user,
    mode    => '0750',
    require => User[$deploy_user],
  }

  ensure_packages(['rsync', 'python3'])

  file { '/etc/castelet/site.json':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "${to_json_pretty({
        'site_dir'      => $_site_dir,
        'state_dir'     => $state_dir,
        'keep_releases' => $keep_releases,
        'deployment'    => $castelet::deployment,
        'domain'        => $_servername,
        'git_url'       => $git_url,
        'git_ref'       => $git_ref,
    })}\n",
  }

  file { $tool:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    content => file('castelet/castelet-site-deploy.py'),
  }

  # --- the site on the volume ----------------------------------------------------------
  exec { 'castelet-site-dir':
    command => "mkdir -p '${_site_dir}/releases'",
    creates => "${_site_dir}/releases",
    path    => ['/usr/bin', '/bin'],
    require => Class['castelet::profile::volumes'],
  }

  file { [$_site_dir, "${_site_dir}/releases"]:
    ensure  => directory,
    owner   => $deploy_user,
    group   => $deploy_user,
    mode    => '0755',
    require => [Exec['castelet-site-dir'], User[$deploy_user]],
  }

  # A restored or moved volume may hold files of another uid: they are the site's.
  exec { 'castelet-site-owner':
    command => "chown -R -h '${deploy_user}:${deploy_user}' '${_site_dir}'",
    onlyif  => "find '${_site_dir}' \\( -not -user '${deploy_user}' -o -not -group '${deploy_user}' \\) -print -quit | grep -q .",
    path    => ['/usr/bin', '/bin'],
    require => File[$_site_dir, "${_site_dir}/releases"],
  }

  exec { 'castelet-site-placeholder':
    command => "${tool} init",
    user    => $deploy_user,
    unless  => "/usr/bin/test -e '${_site_dir}/current'",
    require => [File[$tool, '/etc/castelet/site.json'], Exec['castelet-site-owner']],
    before  => Class['castelet::installed'],
  }

  castelet::requires_mount { "nginx.service ${_site_dir}":
    unit => 'nginx.service',
    path => $_site_dir,
  }

  castelet::nginx_site { $_servername:
    root    => "${_site_dir}/current",
    require => Exec['castelet-site-placeholder'],
  }

  # --- uploads: rsync only -------------------------------------------------------------
  $keys_file = "/etc/ssh/castelet-authorized-keys-${deploy_user}"
  $key_lines = $keys.map |String $k| { "restrict,command=\"${tool} rsync\" ${k}\n" }

  file { $keys_file:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "# Managed by Puppet (castelet::profile::static_site): rsync uploads of the site only.\n${join($key_lines, '')}",
  }

  file { '/etc/ssh/sshd_config.d/50-castelet-deploy.conf':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    content      => epp('castelet/static_site-sshd.conf.epp', {
        'user'      => $deploy_user,
        'keys_file' => $keys_file,
        'command'   => "${tool} rsync",
    }),
    validate_cmd => '/usr/sbin/sshd -t -f %',
    require      => [Package['openssh-server'], File['/run/sshd', $keys_file, $tool], User[$deploy_user]],
    notify       => Exec['castelet-sshd-config-test'],
  }

  # --- build on the instance (git + Jekyll) ------------------------------------------------
  $unit_dir = '/etc/systemd/system'
  if $build {
    ensure_packages(['git', 'jekyll'])

    file { "${unit_dir}/castelet-site-build.service":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => epp('castelet/static_site-build.service.epp', {
          'user'      => $deploy_user,
          'site_dir'  => $_site_dir,
          'state_dir' => $state_dir,
          'tool'      => $tool,
      }),
      notify  => Exec['castelet-site-systemd-reload'],
    }

    $timer_ensure = $build_interval_minutes ? { 0 => absent, default => file }
    file { "${unit_dir}/castelet-site-build.timer":
      ensure  => $timer_ensure,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => "# Managed by Puppet (castelet::profile::static_site)\n[Unit]\nDescription=Castelet: build the static site when its git ref moved\n\n[Timer]\nOnUnitInactiveSec=${build_interval_minutes}min\nOnBootSec=5min\n\n[Install]\nWantedBy=timers.target\n", # lint:ignore:140chars
      notify  => Exec['castelet-site-systemd-reload'],
    }

    exec { 'castelet-site-systemd-reload':
      command     => '/bin/systemctl daemon-reload',
      refreshonly => true,
    }

    # The first build, and a new one whenever git_url or git_ref changed (the timer follows
    # new commits). A failed build fails this run: the previous release stays served.
    # The build's own words (its journal) in Puppet's report when it fails.
    exec { 'castelet-site-build':
      command => "/bin/sh -c 'systemctl start castelet-site-build.service || { journalctl -u castelet-site-build.service -n 40 --no-pager -o cat; exit 1; }'", # lint:ignore:140chars
      path    => ['/usr/bin', '/bin'],
      unless  => "${tool} built",
      timeout => 1800,
      require => [
        Exec['castelet-site-systemd-reload', 'castelet-site-placeholder'],
        File["${unit_dir}/castelet-site-build.service", $state_dir],
        Package['git', 'jekyll'],
      ],
    }

    if $build_interval_minutes > 0 {
      service { 'castelet-site-build.timer':
        ensure  => running,
        enable  => true,
        require => Exec['castelet-site-build'],
      }
    }
  } else {
    service { 'castelet-site-build.timer':
      ensure => stopped,
      enable => false,
      before => File["${unit_dir}/castelet-site-build.timer"],
    }
    file { ["${unit_dir}/castelet-site-build.service", "${unit_dir}/castelet-site-build.timer"]:
      ensure => absent,
    }
  }
}
