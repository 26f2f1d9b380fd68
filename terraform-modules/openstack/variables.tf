# OpenStack-specific variables; the shared cloud interface is interface_variables.tf
# (a link to ../common/interface/variables.tf).

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
