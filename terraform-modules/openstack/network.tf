# Network: a private network, subnet and router to the external network, created unless
# network.existing_network_name names one to join (on Arbutus, the project's
# def-<project>-network, which already has a router).

locals {
  create_network = var.network.existing_network_name == null
  network_id     = local.create_network ? openstack_networking_network_v2.main[0].id : data.openstack_networking_network_v2.existing[0].id
}

data "openstack_networking_network_v2" "existing" {
  count = local.create_network ? 0 : 1

  name = var.network.existing_network_name
}

data "openstack_networking_network_v2" "external" {
  count = local.create_network ? 1 : 0

  name     = var.network.external_network
  external = true
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
  external_network_id = data.openstack_networking_network_v2.external[0].id
}

resource "openstack_networking_router_interface_v2" "main" {
  count = local.create_network ? 1 : 0

  router_id = openstack_networking_router_v2.main[0].id
  subnet_id = openstack_networking_subnet_v2.main[0].id
}
