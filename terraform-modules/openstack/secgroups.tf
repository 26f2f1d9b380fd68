# Security groups: one per role with the design's ingress rules (an IPv6 ::/0 twin for every
# public rule), and one shared by all the deployment's instances for traffic between them.

locals {
  # Ingress rules per role from the design, plus an IPv6 ::/0 twin of every public rule. A
  # clients service has one rule per client network, keyed "<role>/<service>/<network>" (adding
  # or removing a network leaves the others' rules in place); the others "<role>/<service>".
  secgroup_rules = merge([
    for role, rules in module.design.firewall_rules : merge(
      {
        for rule in rules : (rule.exposure == "clients" ? "${role}/${rule.name}/${rule.cidr}" : "${role}/${rule.name}") => merge(rule, {
          role      = role
          ethertype = length(split(":", rule.cidr)) > 1 ? "IPv6" : "IPv4"
        })
      },
      {
        for rule in rules : "${role}/${rule.name}/any-ipv6" => merge(rule, {
          role      = role
          cidr      = "::/0"
          ethertype = "IPv6"
        }) if rule.exposure == "public"
      },
    )
  ]...)
}

resource "openstack_networking_secgroup_v2" "role" {
  for_each = module.design.firewall_rules

  name        = "${var.name}-${each.key}"
  description = "Castelet ${var.name}: ingress of role ${each.key}"
}

# Instances of one deployment may talk to each other freely (e.g. web -> database).
resource "openstack_networking_secgroup_v2" "internal" {
  name        = "${var.name}-internal"
  description = "Castelet ${var.name}: traffic between the deployment's instances"
}

resource "openstack_networking_secgroup_rule_v2" "internal" {
  for_each = toset(["IPv4", "IPv6"])

  security_group_id = openstack_networking_secgroup_v2.internal.id
  direction         = "ingress"
  ethertype         = each.key
  remote_group_id   = openstack_networking_secgroup_v2.internal.id
  description       = "any protocol from the deployment's instances"
}

resource "openstack_networking_secgroup_rule_v2" "role" {
  for_each = local.secgroup_rules

  security_group_id = openstack_networking_secgroup_v2.role[each.value.role].id
  direction         = "ingress"
  ethertype         = each.value.ethertype
  protocol          = each.value.protocol
  port_range_min    = each.value.port
  port_range_max    = each.value.port
  remote_ip_prefix  = each.value.cidr
  description       = "${each.value.name} (${each.value.exposure})"
}
