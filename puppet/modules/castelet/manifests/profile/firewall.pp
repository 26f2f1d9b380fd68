# @summary
#   Host firewall (nftables): only the declared ports are open.
#
# Writes `/etc/nftables.conf` with one table, `inet castelet`, replaced atomically on each
# load. Its input chain drops everything except loopback traffic, packets of established or
# related connections, ICMP/ICMPv6 (path MTU discovery and IPv6 neighbour discovery need it),
# SSH from `admin_cidr` and the `rules`. Forwarded traffic is not filtered; of outgoing traffic,
# only connections to the cloud's metadata service (169.254.169.254, fe80::a9fe:a9fe) are
# refused, to every user but root (cloud-init runs as root and needs it at every boot; a web
# application or service account tricked into a request would get the instance's user-data).
# Tables of other software are left alone. The file is checked with `nft -c -f` before it
# is put in place; the `nftables` service is enabled and reloaded when the file changes.
#
# Public rules (source `0.0.0.0/0` or `::/0`) are not in that file: they are written to
# `/etc/nftables.castelet.d/public.nft` (included by it) only after `castelet::installed`,
# i.e. once every application of the node has completed its own installation. Until then
# the public ports answer on loopback only, so nobody can claim a half-installed site; a
# failed installation keeps them closed. The closed firewall is loaded before any package
# that listens (`Service['nftables']` comes before the web server).
#
# @example Rules as the generator writes them in `data/roles/<role>.yaml`
#   castelet::profile::firewall::rules:
#     - { name: ssh, port: 22, protocol: tcp, source: 203.0.113.0/24 }
#     - { name: http, port: 80, protocol: tcp, source: 0.0.0.0/0 }
#
# @param rules
#   Inbound rules: `{ name, port, protocol (tcp|udp), source (CIDR) }`. An IPv4 source only
#   matches IPv4 packets and an IPv6 source IPv6 packets: open a port to everyone with two
#   rules, `0.0.0.0/0` and `::/0`.
# @param admin_cidr
#   When set, SSH (tcp/22) is always allowed from this network, whatever `rules` say, so a
#   wrong rule list cannot lock the admins out. Defaults (in `data/common.yaml`) to
#   `castelet::profile::base::admin_cidr`.
# @param ssh_port
#   Port of the SSH rule added for `admin_cidr`.
# @param include_dir
#   Directory of the rule files included at the end of `/etc/nftables.conf` (managed: files
#   Puppet did not write there are removed).
class castelet::profile::firewall (
  Array[Castelet::Firewallrule] $rules = [],
  Optional[Castelet::Cidr] $admin_cidr = undef,
  Stdlib::Port $ssh_port = 22,
  Castelet::Path $include_dir = '/etc/nftables.castelet.d',
) {
  $admin_rules = $admin_cidr ? {
    undef   => [],
    default => [{ 'name' => 'ssh-admin', 'port' => $ssh_port, 'protocol' => 'tcp', 'source' => $admin_cidr }],
  }

  $public_sources = ['0.0.0.0/0', '::/0']
  $public_rules = $rules.filter |Hash $rule| { $rule['source'] in $public_sources }
  $other_rules = $rules.filter |Hash $rule| { !($rule['source'] in $public_sources) }

  # Render each rule as one nft statement; drop exact duplicates, keep the order.
  $statements = castelet::nft_statements($admin_rules + $other_rules)
  $public_statements = castelet::nft_statements($public_rules)

  include castelet::installed

  package { 'nftables':
    ensure => installed,
  }

  file { $include_dir:
    ensure  => directory,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    purge   => true,
    recurse => true,
    force   => true,
  }

  file { '/etc/nftables.conf':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0755',
    content      => epp('castelet/nftables.conf.epp', { 'statements' => $statements, 'include_dir' => $include_dir }),
    validate_cmd => '/usr/sbin/nft -c -f %',
    require      => [Package['nftables'], File[$include_dir]],
  }

  service { 'nftables':
    ensure    => running,
    enable    => true,
    restart   => '/bin/systemctl reload nftables',
    subscribe => File['/etc/nftables.conf'],
  }

  # Opened last: after every application installed itself, and after the closed ruleset runs.
  file { "${include_dir}/public.nft":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/nftables-public.nft.epp', { 'statements' => $public_statements }),
    require => [Class['castelet::installed'], Service['nftables']],
  }

  exec { 'castelet-nftables-open-public':
    command     => '/usr/sbin/nft -f /etc/nftables.conf',
    refreshonly => true,
    subscribe   => File["${include_dir}/public.nft"],
  }
}
