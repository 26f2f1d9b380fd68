# Shared interface: the same variables as ../openstack (one interface per cloud, as Magic Castle).

variable "name" {
  description = "Deployment name; prefixes every container and volume (<name>-<role><index>)."
  type        = string
}

variable "image" {
  description = "LXD image alias of the Debian 12 cloud image (built by `castelet local setup`)."
  type        = string
  default     = "castelet/debian-12"
}

variable "roles" {
  description = "Roles to instantiate. `flavor` is ignored on LXD: min_vcpus and min_ram_mb become limits."
  type = map(object({
    count       = number
    flavor      = string
    image       = optional(string)
    public      = bool
    min_vcpus   = number
    min_ram_mb  = number
    min_disk_gb = number
  }))
}

variable "services" {
  description = "Services per role (name, port, protocol tcp|udp, exposure public|admin, role)."
  type = list(object({
    name     = string
    port     = number
    protocol = string
    exposure = string
    role     = string
  }))
  default = []
}

variable "volumes" {
  description = "Data volumes by name: role, size_gb, mount point. Become LXD custom storage volumes."
  type = map(object({
    role    = string
    size_gb = number
    mount   = string
  }))
  default = {}
}

variable "public_keys" {
  description = "SSH public keys of the administrators."
  type        = list(string)
}

variable "admin_user" {
  description = "Administrator account created on every instance."
  type        = string
  default     = "castelet"
}

variable "admin_cidr" {
  description = "Network allowed to reach SSH and admin-only services."
  type        = string
}

variable "puppet_environment_path" {
  description = "Directory of the Puppet environment (the deployment's puppet/)."
  type        = string
}

variable "puppet_packages" {
  description = "Debian packages installed before Puppet runs; null keeps configuration's default list."
  type        = list(string)
  default     = null
}

variable "ssh_private_key_file" {
  description = "Unused on LXD (instances are reached with `lxc exec`); kept for the shared interface."
  type        = string
  default     = null
}

# LXD-specific.

variable "lxd_profile" {
  description = "LXD profile giving the root disk and the NAT bridge (created by `castelet local setup`)."
  type        = string
  default     = "castelet"
}

variable "lxd_storage_pool" {
  description = "LXD storage pool for the custom data volumes."
  type        = string
  default     = "castelet"
}

variable "converge_timeout_seconds" {
  description = "How long apply waits for cloud-init and Puppet to finish on each instance."
  type        = number
  default     = 1800
}
