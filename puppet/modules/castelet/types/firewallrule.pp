# @summary One inbound rule of the host firewall.
#
# * `name`: a short label, written as the rule's comment (letters, digits, `_ . -` and spaces).
# * `port`: the destination port.
# * `protocol`: `tcp` or `udp`.
# * `source`: the allowed source network (IPv4 or IPv6 CIDR; `0.0.0.0/0` is any IPv4 address,
#   `::/0` any IPv6 address).
type Castelet::Firewallrule = Struct[{
    name     => Pattern[/\A[A-Za-z0-9][A-Za-z0-9_. -]{0,63}\z/],
    port     => Integer[1, 65535],
    protocol => Enum['tcp', 'udp'],
    source   => Castelet::Cidr,
}]
