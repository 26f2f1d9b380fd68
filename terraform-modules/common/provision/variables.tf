variable "enabled" {
  description = "Whether to push the Puppet environment over SSH and re-run Puppet (day 2). false creates nothing."
  type        = bool
  default     = true
}

variable "instances" {
  description = <<-EOT
    Instances to configure: hostname => {address (reachable over SSH), id (optional: a replaced
    instance is provisioned again), bastion_host (optional: overrides var.bastion_host)}.
  EOT
  type = map(object({
    address      = string
    id           = optional(string)
    bastion_host = optional(string)
  }))
}

variable "environment_hash" {
  description = "The configuration module's environment_hash: a change re-provisions every instance."
  type        = string
}

variable "hieradata" {
  description = "The configuration module's hieradata (hostname => data/terraform.yaml content)."
  type        = map(string)
}

variable "puppet_environment_path" {
  description = "Local directory of the Puppet environment to push (the deployment repo's puppet/)."
  type        = string
}

variable "admin_user" {
  description = "SSH user (the admin account created by cloud-init; it has passwordless sudo)."
  type        = string
  default     = "castelet"
}

variable "ssh_private_key_file" {
  description = "Private key file for SSH; null uses the SSH agent (SSH_AUTH_SOCK)."
  type        = string
  default     = null
}

variable "bastion_host" {
  description = "Default jump host for instances that have no bastion_host of their own; null connects directly."
  type        = string
  default     = null
}

variable "connection_timeout" {
  description = "How long to keep trying to open the SSH connection to a new instance."
  type        = string
  default     = "15m"
}
