# @summary
#   What every Castelet node gets: admin accounts, hardened SSH, automatic security
#   updates, time synchronisation, the host firewall, the data volumes and their backups.
#
# * Each admin user gets a home, a login shell, membership of `ssh_group` (and of no other
#   supplementary group), passwordless sudo and exactly the SSH keys listed
#   (`~/.ssh/authorized_keys` is managed as a whole).
# * One place grants sudo: `/etc/sudoers.d/castelet-admins` (checked with `visudo -c`). Admins
#   are not in Debian's `sudo` group, and cloud-init's `/etc/sudoers.d/90-cloud-init-users` (the
#   same grant to the admin user, written at first boot) is removed once that file is in place.
# * sshd: `/etc/ssh/sshd_config.d/00-castelet.conf` (read first, so it wins over other drop-ins
#   such as cloud-init's) forbids root and password logins, allows 3 key attempts per
#   connection, lets only members of `ssh_group` log in (`AllowGroups`), drops unresponsive
#   clients (`ClientAliveInterval`) and names its algorithms: AEAD ciphers and AES-CTR,
#   curve25519 and post-quantum hybrid key exchanges (ML-KEM on Debian 13, whose OpenSSH 10 knows
#   it), SHA-2 MACs, Ed25519 (or RSA-SHA2) host keys; what OpenSSH's default client on Debian 12
#   and 13 offers first is in every list. fail2ban bans addresses that keep failing
#   (`castelet::profile::fail2ban`). The file is checked with `sshd -t` before it is put in
#   place, and the whole configuration again before sshd reloads; it is written only after the
#   admins are in `ssh_group`.
# * `unattended-upgrades` installed, `/etc/apt/apt.conf.d/20auto-upgrades` enables the daily runs,
#   `/etc/apt/apt.conf.d/52castelet-unattended-upgrades` keeps local configuration files on
#   upgrades (else packages whose configuration Puppet manages would be held back) and reboots
#   at `reboot_time` when an update needs it (never, by default).
# * `needrestart` installed and set to restart, after every package installation or upgrade,
#   the services that still run replaced libraries (`/etc/needrestart/conf.d/castelet.conf`:
#   `$nrconf{restart} = 'a'`), except one-shot jobs a restart would run again from the start
#   (cloud-init's stages, which run the first Puppet run, castelet's backup and certificate
#   jobs, transient units). A reboot still pending (a new kernel) is reported by `nox -s verify`.
# * `systemd-timesyncd` installed and enabled (started except in containers, where systemd
#   skips it by design); the time zone set through `/etc/localtime` and `/etc/timezone`.
#
# @example In a role
#   include castelet::profile::base
#
# @param admin_users
#   Admin accounts: user name => `{ ssh_keys => [full public key lines] }` (from Terraform:
#   `terraform.admin_users`). The list may be empty (a local LXD sandbox is reached with
#   `lxc exec`): `authorized_keys` then holds no key. Users not listed are left alone.
# @param admin_cidr
#   Network the admins connect from (CIDR). The firewall always lets SSH in from it (see
#   `castelet::profile::firewall::admin_cidr`, which defaults to this value).
# @param timezone
#   Time zone name from the tz database, e.g. `UTC` or `America/Toronto`.
# @param ssh_service
#   Name of the OpenSSH server's systemd unit.
# @param reboot_time
#   `HH:MM`: let unattended-upgrades reboot at that time when an update requires it. Unset: it
#   never reboots (the MOTD says a reboot is required, and `nox -s verify` warns).
# @param ssh_group
#   The only group whose members may log in over SSH (`AllowGroups`): the admin users, and
#   accounts that profiles give SSH access to (the static site's deploy account).
# @param client_alive_interval
#   Seconds of silence from a client after which sshd asks it for a sign of life; a client that
#   misses two in a row is disconnected.
class castelet::profile::base (
  Hash[Pattern[/\A[a-z_][a-z0-9_-]{0,31}\z/], Struct[{ ssh_keys => Array[Pattern[/\A\S.*\S\z/]] }]] $admin_users,
  Castelet::Cidr $admin_cidr,
  Pattern[/\A[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*\z/] $timezone = 'UTC',
  String[1] $ssh_service = 'ssh',
  Optional[Pattern[/\A([01][0-9]|2[0-3]):[0-5][0-9]\z/]] $reboot_time = undef,
  Pattern[/\A[a-z_][a-z0-9_-]{0,31}\z/] $ssh_group = 'castelet-ssh',
  Integer[30, 3600] $client_alive_interval = 300,
) {
  include castelet
  include castelet::profile::firewall
  include castelet::profile::volumes
  include castelet::profile::fail2ban
  include castelet::profile::backup

  # --- admin users -------------------------------------------------------------------
  package { 'sudo':
    ensure => installed,
  }

  group { $ssh_group:
    ensure => present,
    system => true,
  }

  $admin_users.each |String $user, Hash $settings| {
    $home = "/home/${user}"

    group { $user:
      ensure => present,
    }

    # Inclusive: an admin leaves Debian's `sudo` group (sudo is granted in one place, below).
    user { $user:
      ensure     => present,
      gid        => $user,
      home       => $home,
      managehome => true,
      shell      => '/bin/bash',
      groups     => [$ssh_group],
      membership => inclusive,
      require    => [Package['sudo'], Group[$user, $ssh_group]],
    }

    file { "${home}/.ssh":
      ensure  => directory,
      owner   => $user,
      group   => $user,
      mode    => '0700',
      require => User[$user],
    }

    file { "${home}/.ssh/authorized_keys":
      ensure  => file,
      owner   => $user,
      group   => $user,
      mode    => '0600',
      content => "# Managed by Puppet (castelet::profile::base)\n${join($settings['ssh_keys'], "\n")}\n",
    }
  }

  file { '/etc/sudoers.d/castelet-admins':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0440',
    content      => epp('castelet/sudoers.epp', { 'users' => $admin_users.keys.sort }),
    validate_cmd => '/usr/sbin/visudo -c -f %',
    require      => Package['sudo'],
  }

  # cloud-init's grant to the admin user (its `sudo` user-data key, at first boot): the same as
  # castelet-admins, which replaces it.
  file { '/etc/sudoers.d/90-cloud-init-users':
    ensure  => absent,
    require => File['/etc/sudoers.d/castelet-admins'],
  }

  # --- sshd ----------------------------------------------------------------------------
  package { 'openssh-server':
    ensure => installed,
  }

  # Key exchanges: ML-KEM hybrid (OpenSSH 9.9+, Debian 13), sntrup761 hybrid (OpenSSH 8.5+),
  # curve25519, then finite-field groups of 4096 bits or more for old clients. An unknown name
  # would fail `sshd -t`: the list follows the release.
  $kex_common = [
    'sntrup761x25519-sha512@openssh.com',
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group-exchange-sha256',
  ]
  $kex_algorithms = versioncmp(String($facts['os']['release']['major']), '13') >= 0 ? {
    true    => ['mlkem768x25519-sha256'] + $kex_common,
    default => $kex_common,
  }

  # sshd -t refuses to run without its privilege separation directory, which systemd only
  # creates while ssh.service runs.
  file { '/run/sshd':
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  $admin_refs = $admin_users.keys.map |String $user| { User[$user] }
  file { '/etc/ssh/sshd_config.d/00-castelet.conf':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    content      => epp('castelet/sshd_hardening.conf.epp', {
        'ssh_group'             => $ssh_group,
        'client_alive_interval' => $client_alive_interval,
        'kex_algorithms'        => $kex_algorithms,
    }),
    validate_cmd => '/usr/sbin/sshd -t -f %',
    # AllowGroups locks out whoever is not in the group yet: the admins join it first.
    require      => [Package['openssh-server'], File['/run/sshd'], Group[$ssh_group]] + $admin_refs,
  }

  # The complete configuration (main file and every drop-in) must pass `sshd -t` before
  # sshd reloads: a failure here stops the reload and leaves the running daemon as it was.
  exec { 'castelet-sshd-config-test':
    command     => '/usr/sbin/sshd -t',
    refreshonly => true,
    subscribe   => File['/etc/ssh/sshd_config.d/00-castelet.conf'],
    notify      => Service[$ssh_service],
  }

  service { $ssh_service:
    ensure  => running,
    enable  => true,
    restart => "/bin/systemctl reload ${ssh_service}",
    require => Package['openssh-server'],
  }

  # --- automatic security updates ------------------------------------------------------
  package { 'unattended-upgrades':
    ensure => installed,
  }

  file { '/etc/apt/apt.conf.d/20auto-upgrades':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => @(AUTOUPGRADES),
      // Managed by Puppet (castelet::profile::base)
      APT::Periodic::Update-Package-Lists "1";
      APT::Periodic::Unattended-Upgrade "1";
      | AUTOUPGRADES
    require => Package['unattended-upgrades'],
  }

  # Reboot after an update that needs it (a new kernel, libc) only when a window is given.
  $reboot = $reboot_time ? {
    undef   => 'Unattended-Upgrade::Automatic-Reboot "false";',
    default => "Unattended-Upgrade::Automatic-Reboot \"true\";\nUnattended-Upgrade::Automatic-Reboot-Time \"${reboot_time}\";",
  }

  # Keep locally changed (Puppet-managed) configuration files when a package update ships a
  # new version: without this, unattended-upgrades holds back any such package.
  file { '/etc/apt/apt.conf.d/52castelet-unattended-upgrades':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => @("DPKGOPTIONS"),
      // Managed by Puppet (castelet::profile::base)
      Dpkg::Options {
        "--force-confdef";
        "--force-confold";
      };
      ${reboot}
      | DPKGOPTIONS
    require => Package['unattended-upgrades'],
  }

  service { 'unattended-upgrades':
    ensure  => running,
    enable  => true,
    require => Package['unattended-upgrades'],
  }

  # needrestart: apt runs it after each installation or upgrade (unattended-upgrades included).
  # Its own conf.d is read after its defaults (which keep dbus, logind, getty and the like from
  # being restarted): restart the rest automatically, never a one-shot job mid-run.
  package { 'needrestart':
    ensure => installed,
  }

  file { '/etc/needrestart/conf.d/castelet.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => @(NEEDRESTART),
      # Managed by Puppet (castelet::profile::base). Perl, read by needrestart after its defaults.
      # Restart the services that run replaced libraries, without asking.
      $nrconf{restart} = 'a';
      # Never one-shot jobs, which a restart would run again from the start: cloud-init's stages
      # (the first Puppet run is one of them), castelet's backup and certificate jobs, transient
      # units (systemd-run: the Node.js build steps).
      $nrconf{override_rc}->{qr(^cloud-)} = 0;
      $nrconf{override_rc}->{qr(^castelet-(backup|tls-issue)\.service$)} = 0;
      $nrconf{override_rc}->{qr(^run-)} = 0;
      | NEEDRESTART
    require => Package['needrestart'],
  }

  # --- time ----------------------------------------------------------------------------
  package { ['systemd-timesyncd', 'tzdata']:
    ensure => installed,
  }

  # systemd-timesyncd.service has ConditionVirtualization=!container: in a container it is
  # skipped (the host keeps the clock), so asking for it to run would report a change on
  # every Puppet run. Enable it everywhere, require it to run only on VMs and hardware.
  $timesyncd_ensure = $facts['virtual'] ? {
    Enum['lxc', 'docker', 'podman', 'systemd_nspawn', 'openvz', 'container_other'] => undef,
    default                                                                     => running,
  }
  service { 'systemd-timesyncd':
    ensure  => $timesyncd_ensure,
    enable  => true,
    require => Package['systemd-timesyncd'],
  }

  file { '/etc/localtime':
    ensure  => link,
    target  => "/usr/share/zoneinfo/${timezone}",
    require => Package['tzdata'],
  }

  file { '/etc/timezone':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "${timezone}\n",
  }
}
