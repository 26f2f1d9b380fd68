# ---------------------------------------------------------------------------------------------
# Shared interface: every cloud module of Castelet (openstack/, later lxd/) declares exactly
# these variables with the same types and defaults.
# ---------------------------------------------------------------------------------------------

variable "name" {
  description = "Deployment name: a lowercase DNS label, prefix of every hostname (<name>-<role><index>) and cloud resource."
  type        = string
}

variable "image" {
  description = <<-EOT
    Default image name for every role that does not set its own `image` (Debian 12 with
    cloud-init). On Arbutus, images are named by distribution, version and date; list them with
    `openstack image list --public | grep -i debian` and set the exact name.
  EOT
  type        = string
  default     = "Debian-12"
}

variable "roles" {
  description = "Roles, keyed by role name: {count, flavor, image (optional), public, min_vcpus, min_ram_mb, min_disk_gb}. See common/design."
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
  description = "Services [{name, port, protocol (tcp|udp), exposure (public|admin), role}] opened in the role's security group."
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
  description = "Volumes, keyed by volume name: {role, size_gb, mount}; every instance of `role` gets its own."
  type = map(object({
    role    = string
    size_gb = number
    mount   = string
  }))
  default = {}
}

variable "public_keys" {
  description = "SSH public keys of the administrators (the first one also becomes the cloud key pair)."
  type        = list(string)

  validation {
    condition     = length(var.public_keys) > 0
    error_message = "public_keys must contain at least one SSH public key."
  }
}

variable "admin_user" {
  description = "Administrator account created on every instance (passwordless sudo, SSH keys only)."
  type        = string
  default     = "castelet"
}

variable "admin_cidr" {
  description = "CIDR allowed to reach SSH and the `admin` services."
  type        = string
}

variable "puppet_environment_path" {
  description = "Directory of the Puppet environment (the deployment repo's puppet/)."
  type        = string
}

variable "puppet_packages" {
  description = "Debian packages installed before the first `puppet apply` (null: common/configuration's default list)."
  type        = list(string)
  default     = null
}

variable "ssh_private_key_file" {
  description = "Private key used by Terraform to push day-2 configuration over SSH; null uses the SSH agent."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# OpenStack-specific variables (all have defaults).
# ---------------------------------------------------------------------------------------------

variable "network" {
  description = <<-EOT
    Networking. With `existing_network_name` null (default) the module creates a network, a
    subnet (`subnet_cidr`, `dns_nameservers`) and a router to `external_network`; otherwise it
    attaches the instances to that existing network (on Arbutus, the project's
    `def-<project>-network`, which already has a router). Floating IPs always come from
    `external_network`.
  EOT
  type = object({
    existing_network_name = optional(string)
    subnet_cidr           = optional(string, "10.20.0.0/24")
    external_network      = optional(string, "Public-Network")
    dns_nameservers       = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = can(cidrhost(var.network.subnet_cidr, 0))
    error_message = "network.subnet_cidr must be a CIDR block such as 10.20.0.0/24."
  }
}

variable "user_data_compression" {
  description = <<-EOT
    How user-data is handed to Nova, whose limit is 65535 bytes once base64-encoded.
    "auto" (default): plain text when it fits, else gzip (cloud-init decompresses it);
    "gzip": always gzip; "none": never (the plan fails when it does not fit). Plain text is
    preferred because some Neutron metadata agents (2025.1) fail to serve gzipped user-data.
  EOT
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["auto", "gzip", "none"], var.user_data_compression)
    error_message = "user_data_compression must be \"auto\", \"gzip\" or \"none\"."
  }
}
