variable "instances" {
  description = <<-EOT
    Instances to configure: hostname => {address (reachable over SSH), id (optional: a replaced
    instance is provisioned again), bastion_host (optional: jump host; null connects directly)}.
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

variable "connection_timeout" {
  description = "How long to keep trying to open the SSH connection to a new instance."
  type        = string
  default     = "15m"
}
