# @summary
#   Host firewall (nftables): only the declared ports are open.
#
# Writes `/etc/nftables.conf` with one table, `inet castelet`, replaced atomically on each
# load. Its input chain drops everything except loopback traffic, packets of established or
# related connections, ICMP/ICMPv6 (path MTU discovery and IPv6 neighbour discovery need it),
# SSH from `admin_cidr` and the `rules`. Forwarded and outgoing traffic is not filtered.
# Tables of other software are left alone. The file is checked with `nft -c -f` before it
# is put in place; the `nftables` service is enabled and reloaded when the file changes.
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
class castelet::profile::firewall (
  Array[Castelet::Firewallrule] $rules = [],
  Optional[Castelet::Cidr] $admin_cidr = undef,
  Stdlib::Port $ssh_port = 22,
) {
  $admin_rules = $admin_cidr ? {
    undef   => [],
    default => [{ 'name' => 'ssh-admin', 'port' => $ssh_port, 'protocol' => 'tcp', 'source' => $admin_cidr }],
  }

  # Render each rule as one nft statement; drop exact duplicates, keep the order.
  $statements = unique(($admin_rules + $rules).map |Hash $rule| {
    $family = $rule['source'] ? {
      Stdlib::IP::Address::V6::CIDR => 'ip6',
      default                       => 'ip',
    }
    $nfproto = $family ? {
      'ip6'   => 'ipv6',
      default => 'ipv4',
    }
    $match = $rule['source'] ? {
      Enum['0.0.0.0/0', '::/0'] => "meta nfproto ${nfproto}",
      default                   => "${family} saddr ${rule['source']}",
    }
    "${match} ${rule['protocol']} dport ${rule['port']} accept comment \"${rule['name']}\""
  })

  package { 'nftables':
    ensure => installed,
  }

  file { '/etc/nftables.conf':
    ensure       => file,
    owner        => 'root',
    group        => 'root',
    mode         => '0755',
    content      => epp('castelet/nftables.conf.epp', { 'statements' => $statements }),
    validate_cmd => '/usr/sbin/nft -c -f %',
    require      => Package['nftables'],
  }

  service { 'nftables':
    ensure    => running,
    enable    => true,
    restart   => '/bin/systemctl reload nftables',
    subscribe => File['/etc/nftables.conf'],
  }
}
