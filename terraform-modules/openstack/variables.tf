# OpenStack-specific variables; the shared cloud interface is interface_variables.tf
# (a link to ../common/interface/variables.tf).

variable "network" {
  description = <<-EOT
    Networking, discovered as Magic Castle does. By default the instances join the project's
    existing network: its IPv4 DHCP subnet is looked up (in network `name` when given, else the
    one the project sees; Alliance projects come with def-<project>-network, its subnet and a
    router). `external_network` (floating IPs) is detected (`external = true`) unless named.
    `create = true` creates a network, a subnet (`subnet_cidr`, `dns_nameservers`, required
    then) and a router instead; the instances are then ordered after the router interface.
  EOT
  type = object({
    name             = optional(string)
    external_network = optional(string)
    create           = optional(bool, false)
    subnet_cidr      = optional(string, "10.20.0.0/24")
    dns_nameservers  = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = can(cidrhost(var.network.subnet_cidr, 0))
    error_message = "network.subnet_cidr must be a CIDR block such as 10.20.0.0/24."
  }
  validation {
    condition     = !var.network.create || length(var.network.dns_nameservers) > 0
    error_message = "network.create = true needs network.dns_nameservers: a subnet without DNS servers leaves the instances unable to resolve (apt, Puppet)."
  }
  validation {
    condition     = !(var.network.create && var.network.name != null)
    error_message = "network.name (join an existing network) and network.create (create one) exclude each other."
  }
}

variable "floating_ips" {
  description = "Pre-allocated floating IPs by hostname (public instances only); a public instance not listed gets a new one from the external network."
  type        = map(string)
  default     = {}
}

variable "key_pair" {
  description = "Name of an existing Nova key pair recorded on the instances (null: none; the administrators' keys reach the instances through cloud-init)."
  type        = string
  default     = null
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

variable "host_keys" {
  description = "SSH host keys learned on first contact, hostname => {id (instance id), key (\"ssh-ed25519 AAAA...\")}: day 2 refuses any other key for that instance (see common/provision). OpenStack only: LXD provisions with `lxc exec`, not SSH."
  type = map(object({
    id  = string
    key = string
  }))
  default = {}
}
