# Castelet on OpenStack (Arbutus): the provider-free common modules decide what to build and
# how to configure it; this module only maps that onto OpenStack resources, one file per
# concern: main.tf (the common modules, user-data and its size, day 2), network.tf,
# secgroups.tf, instances.tf (images, flavors, key pair, ports, instances and their guards),
# volumes.tf and floating_ips.tf. The provider is configured by the root module (OS_* variables or
# clouds.yaml), never here.

module "design" {
  source = "../common/design"

  name             = var.name
  image            = var.image
  roles            = var.roles
  services         = var.services
  volumes          = var.volumes
  existing_volumes = var.existing_volumes
  admin_cidr       = var.admin_cidr
  client_cidrs     = var.client_cidrs
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
  backups                 = var.backups
  client_cidrs            = var.client_cidrs
}

locals {
  instances        = module.design.instances
  public_instances = { for hostname, instance in local.instances : hostname => instance if instance.public }

  # The user-data carries no volume device (known only after attachment, handed to Puppet on
  # day 2), so its size is known at plan and the guard (below) holds at plan time.
  # length() counts characters, not bytes: measure the base64 form.
  user_data_base64 = { for hostname, user_data in module.configuration.user_data : hostname => base64encode(user_data) }
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
    for hostname, user_data in module.configuration.user_data : hostname => (
      local.user_data_gzip[hostname] ? length(base64gzip(user_data)) : length(local.user_data_base64[hostname])
    )
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

# --- day 2 --------------------------------------------------------------------------------

module "provision" {
  source = "../common/provision"

  instances               = local.ssh_targets
  environment_hash        = module.configuration.environment_hash
  hieradata               = module.configuration.hieradata
  puppet_environment_path = var.puppet_environment_path
  admin_user              = var.admin_user
  ssh_private_key_file    = var.ssh_private_key_file
  host_keys               = var.host_keys

  depends_on = [
    openstack_networking_floatingip_associate_v2.public,
    openstack_compute_volume_attach_v2.volume,
  ]
}
