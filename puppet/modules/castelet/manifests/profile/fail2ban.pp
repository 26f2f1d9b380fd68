# @summary
#   fail2ban: repeated failed logins ban the source address for a while (SSH and web logins).
#
# The `sshd` jail reads the journal (`backend = systemd`: Debian's minimal images have no
# /var/log/auth.log). Bans are nftables sets (`banaction = nftables-multiport`), separate
# from the castelet table. Web applications add jails with `castelet::fail2ban_web_login`.
#
# @param maxretry
#   Failures within `findtime` that trigger a ban.
# @param findtime
#   Window in which failures are counted (fail2ban time syntax, e.g. `10m`).
# @param bantime
#   How long a ban lasts.
# @param ignoreip
#   Addresses never banned (loopback by default: the node's own checks).
# @param admin_cidr
#   The admins' network (`terraform.admin_cidr`), never banned either: a mistyped key or a
#   misbehaving script there cannot lock the admins out of SSH for `bantime` (the firewall lets
#   SSH in from it whatever the rules). Not when it is the whole internet (`0.0.0.0/0`, `::/0`,
#   accepted with `admin_cidr_open_to_all`): ignoring it would turn every ban off.
class castelet::profile::fail2ban (
  Integer[1, 100] $maxretry = 5,
  Pattern[/\A[0-9]+[smhdw]?\z/] $findtime = '10m',
  Pattern[/\A[0-9]+[smhdw]?\z/] $bantime = '15m',
  Array[Variant[Stdlib::IP::Address, Castelet::Cidr]] $ignoreip = ['127.0.0.1/8', '::1'],
  Optional[Castelet::Cidr] $admin_cidr = undef,
) {
  $admin_ignored = $admin_cidr ? {
    undef     => [],
    /\/0\z/ => [],
    default   => [$admin_cidr],
  }

  package { ['fail2ban', 'python3-systemd']:
    ensure => installed,
  }

  file { '/etc/fail2ban/jail.d/00-castelet.local':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/fail2ban-jail.local.epp', {
        'maxretry' => $maxretry,
        'findtime' => $findtime,
        'bantime'  => $bantime,
        'ignoreip' => ($ignoreip + $admin_ignored).unique,
    }),
    require => Package['fail2ban'],
    notify  => Service['fail2ban'],
  }

  service { 'fail2ban':
    ensure  => running,
    enable  => true,
    require => Package['fail2ban', 'python3-systemd'],
  }
}
