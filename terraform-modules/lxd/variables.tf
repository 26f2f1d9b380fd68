# LXD-specific variables; the shared cloud interface is interface_variables.tf
# (a link to ../common/interface/variables.tf).

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
