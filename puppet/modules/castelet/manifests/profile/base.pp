# @summary
#   What every Castelet node gets: admin accounts, hardened SSH, automatic security
#   updates, time synchronisation, the host firewall, the data volumes and their backups.
#
# * Each admin user gets a home, a login shell, membership of `sudo`, passwordless sudo
#   (`/etc/sudoers.d/castelet-admins`, checked with `visudo -c`) and exactly the SSH keys
#   listed (`~/.ssh/authorized_keys` is managed as a whole).
# * sshd: `/etc/ssh/sshd_config.d/00-castelet.conf` (read first, so it wins over other drop-ins
#   such as cloud-init's) forbids root and password logins and allows 3 key attempts per
#   connection; fail2ban bans addresses that keep failing (`castelet::profile::fail2ban`); the file is checked with
#   `sshd -t` before it is put in place, and the whole configuration again before sshd reloads.
# * `unattended-upgrades` installed, `/etc/apt/apt.conf.d/20auto-upgrades` enables the daily runs,
#   `/etc/apt/apt.conf.d/52castelet-unattended-upgrades` keeps local configuration files on
#   upgrades (else packages whose configuration Puppet manages would be held back) and reboots
#   at `reboot_time` when an update needs it (never, by default).
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
#   never reboots (the MOTD says a reboot is required).
class castelet::profile::base (
  Hash[Pattern[/\A[a-z_][a-z0-9_-]{0,31}\z/], Struct[{ ssh_keys => Array[Pattern[/\A\S.*\S\z/]] }]] $admin_users,
  Castelet::Cidr $admin_cidr,
  Pattern[/\A[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*\z/] $timezone = 'UTC',
  String[1] $ssh_service = 'ssh',
  Optional[Pattern[/\A([01][0-9]|2[0-3]):[0-5][0-9]\z/]] $reboot_time = undef,
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

  $admin_users.each |String $user, Hash $settings| {
    $home = "/home/${user}"

    group { $user:
      ensure => present,
    }

    user { $user:
      ensure     => present,
      gid        => $user,
      home       => $home,
      managehome => true,
      shell      => '/bin/bash',
      groups     => ['sudo'],
      membership => minimum,
      require    => [Package['sudo'], Group[$user]],
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

  # --- sshd ----------------------------------------------------------------------------
  package { 'openssh-server':
    ensure => installed,
  }

  # sshd -t refuses to run without its privilege separation directory, which systemd only
  # creates while ssh.service runs.
  file { '/run/sshd':
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  file { '/etc/ssh/sshd_config.d/00-castelet.conf':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0644',
    content      => epp('castelet/sshd_hardening.conf.epp'),
    validate_cmd => '/usr/sbin/sshd -t -f %',
    require      => [Package['openssh-server'], File['/run/sshd']],
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
