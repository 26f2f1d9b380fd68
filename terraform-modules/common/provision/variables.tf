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

variable "host_keys" {
  description = <<-EOT
    SSH host keys learned on first contact (trust on first use), hostname => {id (the instance id
    the key was learned from), key ("ssh-ed25519 AAAA...": public key only)}. A host whose record
    matches its current instance id is pinned (any other key is refused); a host with no record, or
    a replaced instance (new id, new keys), is trusted on this connection and learned again
    afterwards by the deployment's `nox -s apply`.
  EOT
  type = map(object({
    id  = string
    key = string
  }))
  default = {}

  validation {
    condition     = alltrue([for record in values(var.host_keys) : can(regex("^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+$", record.key))])
    error_message = "host_keys: every key must be one public key line \"<type> <base64>\" of type ssh-ed25519, ecdsa-sha2-nistp256 or ssh-rsa (no hostname, no comment)."
  }
}
