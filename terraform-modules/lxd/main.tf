# Castelet on a local LXD cloud: the same common modules as OpenStack, mapped onto LXD
# containers and custom storage volumes. Apply returns only when every instance has converged.

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
  volume_devices          = {} # LXD mounts custom volumes itself: Puppet only ensures the directory
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

# Custom volumes, except those named in `existing_volumes`: the containers mount those by name,
# and Terraform neither creates nor deletes them.
resource "lxd_volume" "volume" {
  for_each = { for key, volume in module.design.volumes : key => volume if volume.existing == null }

  name = each.key
  pool = var.lxd_storage_pool
  config = {
    size = "${each.value.size_gb}GB"
  }
}

resource "lxd_container" "instance" {
  for_each = module.design.instances

  name     = each.key
  image    = each.value.image
  profiles = [var.lxd_profile]
  limits = {
    cpu    = tostring(each.value.min_vcpus)
    memory = "${each.value.min_ram_mb}MB"
  }
  config = {
    "cloud-init.user-data" = module.configuration.user_data[each.key]
    "user.castelet.role"   = each.value.role
  }

  dynamic "device" {
    for_each = { for key, volume in module.design.volumes : key => volume if volume.instance == each.key }
    content {
      name = device.value.name
      type = "disk"
      properties = {
        pool   = var.lxd_storage_pool
        source = device.value.existing != null ? device.value.existing : lxd_volume.volume[device.key].name
        path   = device.value.mount
      }
    }
  }

  lifecycle {
    # Configuration changes are pushed by terraform_data.provision, never by replacing containers.
    # The sandbox expiry key is set by terraform_data.expiry, not here.
    ignore_changes = [config["cloud-init.user-data"], config["user.castelet.expires"], image]
  }
}

# Waits for cloud-init (first boot) and, on day 2, pushes the Puppet environment with `lxc exec`
# and re-runs Puppet. A failure prints the failing step and the tail of its log.
resource "terraform_data" "provision" {
  for_each = lxd_container.instance

  triggers_replace = {
    environment_hash = module.configuration.environment_hash
    hieradata        = module.configuration.hieradata[each.key]
    instance         = each.value.id
  }

  provisioner "local-exec" {
    interpreter = ["bash", "-c"]
    command     = "bash '${path.module}/files/lxd-provision.sh'"
    environment = {
      CASTELET_HOST             = each.key
      CASTELET_ENVIRONMENT      = abspath(var.puppet_environment_path)
      CASTELET_HIERADATA        = module.configuration.hieradata[each.key]
      CASTELET_CONVERGE_TIMEOUT = tostring(var.converge_timeout_seconds)
    }
  }
}

# A sandbox's expiry as instance config `user.castelet.expires`. terraform-provider-lxd 1.5
# replaces a container whose `config` changes, so the key is set with `lxc config set`: moving
# the expiry replaces only this resource, never the instance.
resource "terraform_data" "expiry" {
  for_each = var.expires == "" ? {} : lxd_container.instance

  triggers_replace = [var.expires, each.value.id]

  provisioner "local-exec" {
    command = "lxc config set \"$CASTELET_HOST\" user.castelet.expires \"$CASTELET_EXPIRES\""
    environment = {
      CASTELET_HOST    = each.key
      CASTELET_EXPIRES = var.expires
    }
  }
}
