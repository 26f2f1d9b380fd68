# Network: the project's existing network by default (its IPv4 DHCP subnet, found as Magic Castle
# finds it), or, with network.create, a network, subnet and router created here. The external
# network (floating IPs, router gateway) is detected unless named.

locals {
  create_network = var.network.create
  subnet_id      = local.create_network ? openstack_networking_subnet_v2.main[0].id : data.openstack_networking_subnet_v2.existing[0].id
  network_id     = local.create_network ? openstack_networking_network_v2.main[0].id : data.openstack_networking_subnet_v2.existing[0].network_id
}

data "openstack_networking_network_v2" "external" {
  name     = var.network.external_network
  external = true
}

data "openstack_networking_network_v2" "existing" {
  count = !local.create_network && var.network.name != null ? 1 : 0

  name = var.network.name
}

data "openstack_networking_subnet_v2" "existing" {
  count = local.create_network ? 0 : 1

  network_id   = one(data.openstack_networking_network_v2.existing[*].id)
  ip_version   = 4
  dhcp_enabled = true
}

resource "openstack_networking_network_v2" "main" {
  count = local.create_network ? 1 : 0

  name           = "${var.name}-network"
  admin_state_up = true
}

resource "openstack_networking_subnet_v2" "main" {
  count = local.create_network ? 1 : 0

  name            = "${var.name}-subnet"
  network_id      = openstack_networking_network_v2.main[0].id
  cidr            = var.network.subnet_cidr
  ip_version      = 4
  dns_nameservers = var.network.dns_nameservers
}

resource "openstack_networking_router_v2" "main" {
  count = local.create_network ? 1 : 0

  name                = "${var.name}-router"
  admin_state_up      = true
  external_network_id = data.openstack_networking_network_v2.external.id
}

resource "openstack_networking_router_interface_v2" "main" {
  count = local.create_network ? 1 : 0

  router_id = openstack_networking_router_v2.main[0].id
  subnet_id = openstack_networking_subnet_v2.main[0].id
}
