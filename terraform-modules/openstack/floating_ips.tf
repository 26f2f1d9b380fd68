# Public addresses: a floating IP from network.external_network for each instance of a public
# role, associated with the instance's port once the router reaches the external network.

locals {
  public_addresses = {
    for hostname, fip in openstack_networking_floatingip_v2.public : hostname => fip.address
  }
}

resource "openstack_networking_floatingip_v2" "public" {
  for_each = local.public_instances

  pool        = var.network.external_network
  description = "Castelet ${var.name}: ${each.key}"
}

resource "openstack_networking_floatingip_associate_v2" "public" {
  for_each = local.public_instances

  floating_ip = openstack_networking_floatingip_v2.public[each.key].address
  port_id     = openstack_networking_port_v2.instance[each.key].id

  depends_on = [openstack_networking_router_interface_v2.main]
}
