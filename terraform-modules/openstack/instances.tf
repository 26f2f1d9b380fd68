# Instances: images, flavors, one port per instance on the
# network (role and internal security groups) and the instances themselves, with the guards
# that must hold at plan time (administrator keys, Nova's user-data limit, flavor minimums).

locals {
  # An instance whose flavor's root disk is smaller than its role needs boots from a volume made
  # from the image, sized by the role's min_disk_gb (as Magic Castle does): always for the
  # Alliance's persistent "p" flavors (no root disk), and for a "c" flavor (20 GB root disk, the
  # rest of its disk is ephemeral) when the role needs more.
  boot_from_volume = {
    for hostname, instance in local.instances : hostname => coalesce(data.openstack_compute_flavor_v2.flavor[instance.flavor].disk, 0) < instance.min_disk_gb
  }

  private_addresses = {
    for hostname, port in openstack_networking_port_v2.instance : hostname => try(port.all_fixed_ips[0], null)
  }
}

# --- images and flavors -------------------------------------------------------------------

# `image` is a name regex, as in Magic Castle: Alliance clouds name images by distribution,
# version, architecture and date (Debian-13-x64-2026-03), and the most recent match is used.
data "openstack_images_image_v2" "image" {
  for_each = toset([for instance in values(local.instances) : instance.image])

  name_regex  = each.key
  most_recent = true
}

data "openstack_compute_flavor_v2" "flavor" {
  for_each = toset([for instance in values(local.instances) : instance.flavor])

  name = each.key
}

# --- key pair -----------------------------------------------------------------------------

# None is created: the administrators' keys reach the instances through cloud-init (and Puppet),
# and a key pair named after the deployment would collide between projects' deployments of the
# same name. var.key_pair may name an existing one for the dashboard's sake.

# --- ports and instances ------------------------------------------------------------------

resource "openstack_networking_port_v2" "instance" {
  for_each = local.instances

  name           = each.key
  network_id     = local.network_id
  admin_state_up = true
  security_group_ids = [
    openstack_networking_secgroup_v2.role[each.value.role].id,
    openstack_networking_secgroup_v2.internal.id,
  ]

  fixed_ip {
    subnet_id = local.subnet_id
  }
}

resource "openstack_compute_instance_v2" "instance" {
  for_each = local.instances

  name        = each.key
  flavor_name = each.value.flavor
  image_id    = local.boot_from_volume[each.key] ? null : data.openstack_images_image_v2.image[each.value.image].id
  key_pair    = var.key_pair
  user_data   = local.user_data_nova[each.key]

  metadata = merge({
    castelet_deployment = var.name
    castelet_role       = each.value.role
  }, var.expires == "" ? {} : { castelet_expires = var.expires })

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

  # A created network reaches the outside (apt, Puppet packages) once the router has its interface.
  depends_on = [openstack_networking_router_interface_v2.main]

  lifecycle {
    # Configuration changes reach running instances through common/provision (day 2); a new
    # image release must not replace them either.
    ignore_changes = [user_data, image_name, image_id, block_device, key_pair]

    precondition {
      condition     = length(var.public_keys) > 0
      error_message = "public_keys is empty: OpenStack instances are administered over SSH, so at least one administrator key is needed (terraform.tfvars)."
    }
    precondition {
      condition     = length(local.public_instances) > 0
      error_message = "No role is public: the Puppet environment reaches the instances over SSH, directly for public ones and through the first public one for the others, so at least one role needs public = true."
    }
    precondition {
      condition     = local.user_data_nova_base64_length[each.key] <= 65535
      error_message = "The cloud-init user-data of ${each.key} is ${local.user_data_nova_base64_length[each.key]} bytes once base64-encoded${local.user_data_gzip[each.key] ? " (gzipped)" : ""}; Nova accepts at most 65535. Shorten the answers it carries (keys, settings)${var.user_data_compression == "none" ? ", or set user_data_compression = \"auto\"" : ""}."
    }
    precondition {
      condition = (
        coalesce(data.openstack_compute_flavor_v2.flavor[each.value.flavor].vcpus, 0) >= each.value.min_vcpus &&
        coalesce(data.openstack_compute_flavor_v2.flavor[each.value.flavor].ram, 0) >= each.value.min_ram_mb
      )
      error_message = "Flavor ${each.value.flavor} of ${each.key} is smaller than role ${each.value.role} needs (${each.value.min_vcpus} vCPU, ${each.value.min_ram_mb} MB RAM)."
    }
  }
}
