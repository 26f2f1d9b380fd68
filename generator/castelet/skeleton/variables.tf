variable "name" {
  description = "Name of the deployment; prefixes every cloud resource and hostname."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,28}[a-z0-9]$", var.name))
    error_message = "The name must be 2-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "image" {
  description = "Name of the Debian 12 image in the OpenStack project (openstack image list)."
  type        = string
}

variable "flavors" {
  description = "OpenStack flavor per role (openstack flavor list)."
  type        = map(string)
}

variable "volume_sizes_gb" {
  description = "Size in GB of each data volume, by volume name."
  type        = map(number)
  default     = {}
}

variable "public_keys" {
  description = "SSH public keys of the administrators (at least one is needed to apply)."
  type        = list(string)
}

variable "admin_user" {
  description = "Administrator account created on every instance (sudo, key-only SSH)."
  type        = string
  default     = "castelet"
}

variable "admin_cidr" {
  description = "Network allowed to reach SSH and admin-only services."
  type        = string
  validation {
    condition     = can(cidrhost(var.admin_cidr, 0))
    error_message = "admin_cidr must be a network in CIDR notation, e.g. 132.203.0.0/16."
  }
}

variable "existing_network" {
  description = "Name of an existing private network; null creates a network, subnet and router."
  type        = string
  default     = null
}

variable "external_network" {
  description = "External network that provides floating IPs."
  type        = string
  default     = "Public-Network"
}

variable "ssh_private_key_file" {
  description = "Private key used to push Puppet changes (nox -s configure); null uses the SSH agent."
  type        = string
  default     = null
}

variable "os_cloud" {
  description = "Entry of clouds.yaml to use; null uses the OS_* environment variables."
  type        = string
  default     = null
}
