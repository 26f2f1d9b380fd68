# @summary
#   nft rule statements (one per rule, duplicates dropped, order kept) for `castelet::profile::firewall`.
#
# A source of `0.0.0.0/0` or `::/0` matches every address of that family; any other source
# matches that network only.
#
# @param rules
#   The inbound rules.
# @return [Array[String]] One `... accept comment "<name>"` statement per distinct rule.
function castelet::nft_statements(Array[Castelet::Firewallrule] $rules) >> Array[String] {
  unique($rules.map |Hash $rule| {
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
}
