# Public addresses: each instance of a public role gets its pre-allocated floating IP
# (var.floating_ips, by hostname) or else a new one from the external network; the address is
# associated with the instance's port once the router reaches the external network.

locals {
  allocated_ips = { for hostname, instance in local.public_instances : hostname => instance if !contains(keys(var.floating_ips), hostname) }
  public_addresses = merge(
    { for hostname, address in var.floating_ips : hostname => address if contains(keys(local.public_instances), hostname) },
    { for hostname, fip in openstack_networking_floatingip_v2.public : hostname => fip.address },
  )
}

resource "openstack_networking_floatingip_v2" "public" {
  for_each = local.allocated_ips

  pool        = data.openstack_networking_network_v2.external.name
  description = "Castelet ${var.name}: ${each.key}"
}

resource "openstack_networking_floatingip_associate_v2" "public" {
  for_each = local.public_instances

  floating_ip = local.public_addresses[each.key]
  port_id     = openstack_networking_port_v2.instance[each.key].id

  depends_on = [openstack_networking_router_interface_v2.main]

  lifecycle {
    precondition {
      condition     = alltrue([for hostname in keys(var.floating_ips) : contains(keys(local.public_instances), hostname)])
      error_message = "floating_ips names ${join(", ", [for h in keys(var.floating_ips) : h if !contains(keys(local.public_instances), h)])}, not a public instance (public instances: ${join(", ", keys(local.public_instances))})."
    }
  }
}
