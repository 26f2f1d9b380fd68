# @summary
#   Ports opened to one network in the host firewall (`<include_dir>/open-ports.nft`, reloaded
#   on change), beside `castelet::profile::firewall`'s rules.
#
# @example data/blueprint.yaml of the sandbox blueprint
#   castelet::profile::open_ports::ports: "%{alias('terraform.settings.open_ports')}"
#
# @param ports
#   `PORT/tcp` or `PORT/udp` separated by single spaces, e.g. `8080/tcp 53/udp`; empty: none.
# @param source
#   The network allowed to reach them.
# @param include_dir
#   The firewall's include directory.
class castelet::profile::open_ports (
  Castelet::Cidr $source,
  Pattern[/\A([0-9]{1,5}\/(tcp|udp)( [0-9]{1,5}\/(tcp|udp))*)?\z/] $ports = '',
  Castelet::Path $include_dir = '/etc/nftables.castelet.d',
) {
  include castelet::profile::firewall

  $rules = split($ports, ' ').filter |$e| { $e != '' }.map |String $entry| {
    $p = split($entry, '/')
    $rule = { 'name' => "open-${p[0]}-${p[1]}", 'port' => Integer($p[0], 10), 'protocol' => $p[1], 'source' => $source }
    $rule
  }
  $lines = castelet::nft_statements($rules).map |String $s| { "add rule inet castelet input ${s}\n" }

  file { "${include_dir}/open-ports.nft":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "# Managed by Puppet (castelet::profile::open_ports).\n${join($lines, '')}",
    require => Service['nftables'],
    notify  => Exec['castelet-nftables-open-public'],
  }
}
