# Castelet on OpenStack (Arbutus): the provider-free common modules decide what to build and
# how to configure it; this file only maps that onto OpenStack resources.
# The provider is configured by the root module (OS_* variables or clouds.yaml), never here.

module "design" {
  source = "../common/design"

  name       = var.name
  image      = var.image
  roles      = var.roles
  services   = var.services
  volumes    = var.volumes
  admin_cidr = var.admin_cidr
}

module "configuration" {
  source = "../common/configuration"

  name                    = var.name
  instances               = module.design.instances
  volumes                 = module.design.volumes
  volume_devices          = local.volume_devices
  admin_user              = var.admin_user
  public_keys             = var.public_keys
  admin_cidr              = var.admin_cidr
  firewall_rules          = module.design.firewall_rules
  domain                  = var.domain
  admin_email             = var.admin_email
  timezone                = var.timezone
  settings                = var.settings
  puppet_environment_path = var.puppet_environment_path
  puppet_packages         = var.puppet_packages
}

# The same user-data with placeholder device paths of the real length, known at plan time
# (only measured, never sent).
module "configuration_size_probe" {
  source = "../common/configuration"

  name                    = var.name
  instances               = module.design.instances
  volumes                 = module.design.volumes
  volume_devices          = { for key in keys(module.design.volumes) : key => "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8" }
  admin_user              = var.admin_user
  public_keys             = var.public_keys
  admin_cidr              = var.admin_cidr
  firewall_rules          = module.design.firewall_rules
  domain                  = var.domain
  admin_email             = var.admin_email
  timezone                = var.timezone
  settings                = var.settings
  puppet_environment_path = var.puppet_environment_path
  puppet_packages         = var.puppet_packages
}

locals {
  instances        = module.design.instances
  public_instances = { for hostname, instance in local.instances : hostname => instance if instance.public }
  create_network   = var.network.existing_network_name == null
  network_id       = local.create_network ? openstack_networking_network_v2.main[0].id : data.openstack_networking_network_v2.existing[0].id

  # Flavors with no root disk (Arbutus' persistent "p" flavors) boot from a volume made from
  # the image, sized by the role's min_disk_gb.
  boot_from_volume = {
    for hostname, instance in local.instances : hostname => coalesce(data.openstack_compute_flavor_v2.flavor[instance.flavor].disk, 0) == 0
  }

  # Ingress rules per role from the design, plus an IPv6 ::/0 twin of every public rule.
  secgroup_rules = merge([
    for role, rules in module.design.firewall_rules : merge(
      {
        for rule in rules : "${role}/${rule.name}" => merge(rule, {
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

  # Linux names a virtio disk after the first 20 characters of the Cinder volume id.
  volume_devices = {
    for key, volume in openstack_blockstorage_volume_v3.volume : key => "/dev/disk/by-id/virtio-${substr(volume.id, 0, 20)}"
  }

  # Sizes are measured on user-data rendered with placeholder device paths of the real length
  # (module.configuration_size_probe): volume ids are unknown at plan, and the size guard must
  # hold at plan time, not only at apply. Plain sizes are exact; gzipped ones within a few bytes.
  # length() counts characters, not bytes: measure the base64 form.
  user_data_base64 = { for hostname, user_data in module.configuration_size_probe.user_data : hostname => base64encode(user_data) }
  user_data_bytes = {
    for hostname, encoded in local.user_data_base64 : hostname => length(encoded) / 4 * 3 - length(regexall("=", substr(encoded, -2, 2)))
  }

  # What Nova receives. The provider passes a base64 string through unchanged, so gzipped
  # user-data is given as base64gzip(); plain text is base64-encoded by the provider itself.
  user_data_gzip = {
    for hostname, encoded in local.user_data_base64 : hostname => (
      var.user_data_compression == "gzip" || (var.user_data_compression == "auto" && length(encoded) > 65535)
    )
  }
  user_data_nova = {
    for hostname, user_data in module.configuration.user_data : hostname => (
      local.user_data_gzip[hostname] ? base64gzip(user_data) : user_data
    )
  }
  user_data_nova_base64_length = {
    for hostname, user_data in module.configuration_size_probe.user_data : hostname => (
      local.user_data_gzip[hostname] ? length(base64gzip(user_data)) : length(local.user_data_base64[hostname])
    )
  }

  private_addresses = {
    for hostname, port in openstack_networking_port_v2.instance : hostname => try(port.all_fixed_ips[0], null)
  }
  public_addresses = {
    for hostname, fip in openstack_networking_floatingip_v2.public : hostname => fip.address
  }

  # Day 2 goes over SSH: public instances directly, the others through the first public one.
  bastion = length(local.public_instances) > 0 ? local.public_addresses[sort(keys(local.public_instances))[0]] : null
  ssh_targets = {
    for hostname, instance in local.instances : hostname => {
      address      = instance.public ? local.public_addresses[hostname] : local.private_addresses[hostname]
      id           = openstack_compute_instance_v2.instance[hostname].id
      bastion_host = instance.public ? null : local.bastion
    } if instance.public || length(local.public_instances) > 0
  }
}

# --- images and flavors -------------------------------------------------------------------

data "openstack_images_image_v2" "image" {
  for_each = toset([for instance in values(local.instances) : instance.image])

  name        = each.key
  most_recent = true
}

data "openstack_compute_flavor_v2" "flavor" {
  for_each = toset([for instance in values(local.instances) : instance.flavor])

  name = each.key
}

# --- key pair -----------------------------------------------------------------------------

# Keys reach the instances through cloud-init (and Puppet); the key pair only lets the
# OpenStack dashboard show which key an instance was created with.
resource "openstack_compute_keypair_v2" "admin" {
  count = length(var.public_keys) > 0 ? 1 : 0

  name       = "${var.name}-admin"
  public_key = trimspace(var.public_keys[0])
}

# --- network (created unless network.existing_network_name is set) ------------------------

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

# --- security groups ----------------------------------------------------------------------

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

# --- instances ----------------------------------------------------------------------------

resource "openstack_networking_port_v2" "instance" {
  for_each = local.instances

  name           = each.key
  network_id     = local.network_id
  admin_state_up = true
  security_group_ids = [
    openstack_networking_secgroup_v2.role[each.value.role].id,
    openstack_networking_secgroup_v2.internal.id,
  ]

  dynamic "fixed_ip" {
    for_each = local.create_network ? [openstack_networking_subnet_v2.main[0].id] : []
    content {
      subnet_id = fixed_ip.value
    }
  }
}

resource "openstack_compute_instance_v2" "instance" {
  for_each = local.instances

  name        = each.key
  flavor_name = each.value.flavor
  image_id    = local.boot_from_volume[each.key] ? null : data.openstack_images_image_v2.image[each.value.image].id
  key_pair    = one(openstack_compute_keypair_v2.admin[*].name)
  user_data   = local.user_data_nova[each.key]

  metadata = {
    castelet_deployment = var.name
    castelet_role       = each.value.role
  }

  network {
    port = openstack_networking_port_v2.instance[each.key].id
  }

  dynamic "block_device" {
    for_each = local.boot_from_volume[each.key] ? [data.openstack_images_image_v2.image[each.value.image].id] : []
    content {
      uuid                  = block_device.value
      source_type           = "image"
      destination_type      = "volume"
      volume_size           = max(each.value.min_disk_gb, 10)
      boot_index            = 0
      delete_on_termination = true
    }
  }

  lifecycle {
    # Configuration changes reach running instances through common/provision (day 2); a new
    # image release must not replace them either.
    ignore_changes = [user_data, image_name, image_id, block_device, key_pair]

    precondition {
      condition     = length(var.public_keys) > 0
      error_message = "public_keys is empty: OpenStack instances are administered over SSH, so at least one administrator key is needed (terraform.tfvars)."
    }
    precondition {
      condition     = local.user_data_nova_base64_length[each.key] <= 65535
      error_message = "The cloud-init user-data of ${each.key} is ${local.user_data_nova_base64_length[each.key]} bytes once base64-encoded${local.user_data_gzip[each.key] ? " (gzipped)" : ""}; Nova accepts at most 65535. Shrink the Puppet environment (puppet/) or move large files out of it${var.user_data_compression == "none" ? ", or set user_data_compression = \"auto\"" : ""}."
    }
    precondition {
      condition = (
        coalesce(data.openstack_compute_flavor_v2.flavor[each.value.flavor].vcpus, 0) >= each.value.min_vcpus &&
        coalesce(data.openstack_compute_flavor_v2.flavor[each.value.flavor].ram, 0) >= each.value.min_ram_mb
      )
      error_message = "Flavor ${each.value.flavor} of ${each.key} is smaller than role ${each.value.role} needs (${each.value.min_vcpus} vCPU, ${each.value.min_ram_mb} MB RAM)."
    }
    precondition {
      condition     = local.boot_from_volume[each.key] || coalesce(data.openstack_compute_flavor_v2.flavor[each.value.flavor].disk, 0) >= each.value.min_disk_gb
      error_message = "Flavor ${each.value.flavor} of ${each.key} has a smaller root disk than role ${each.value.role} needs (${each.value.min_disk_gb} GB)."
    }
  }
}

# --- volumes ------------------------------------------------------------------------------

resource "openstack_blockstorage_volume_v3" "volume" {
  for_each = module.design.volumes

  name        = each.key
  size        = each.value.size_gb
  description = "Castelet ${var.name}: ${each.value.name} of ${each.value.instance}, mounted at ${each.value.mount}"
}

resource "openstack_compute_volume_attach_v2" "volume" {
  for_each = module.design.volumes

  instance_id = openstack_compute_instance_v2.instance[each.value.instance].id
  volume_id   = openstack_blockstorage_volume_v3.volume[each.key].id
}

# --- public addresses ---------------------------------------------------------------------

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

# --- day 2 --------------------------------------------------------------------------------

module "provision" {
  source = "../common/provision"

  instances               = local.ssh_targets
  environment_hash        = module.configuration.environment_hash
  hieradata               = module.configuration.hieradata
  puppet_environment_path = var.puppet_environment_path
  admin_user              = var.admin_user
  ssh_private_key_file    = var.ssh_private_key_file

  depends_on = [
    openstack_networking_floatingip_associate_v2.public,
    openstack_compute_volume_attach_v2.volume,
  ]
}
