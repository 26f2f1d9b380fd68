variable "name" {
  description = "Deployment name (Puppet: terraform.deployment)."
  type        = string
}

variable "instances" {
  description = "The design module's `instances` output: hostname => {role, puppet_class, ...}."
  type = map(object({
    role         = string
    puppet_class = optional(string, "castelet::role::base")
  }))
}

variable "firewall_rules" {
  description = "The design module's `firewall_rules` output: role => [{name, port, protocol, cidr, exposure}]. Public rules reach Puppet as two rules (0.0.0.0/0 and ::/0), the others (admin, clients) as one rule from their CIDR; the ssh rule is left to Puppet's own guard."
  type = map(list(object({
    name     = string
    port     = number
    protocol = string
    cidr     = string
    exposure = string
  })))
  default = {}
}

variable "admin_cidr" {
  description = "CIDR the admins connect from (Puppet always lets SSH in from it)."
  type        = string
}

variable "client_cidrs" {
  description = "Networks (CIDR) of the clients of the `clients` services, handed to Puppet on every node as terraform.client_cidrs (e.g. for a database's own access rules); the firewall rules already carry them."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for cidr in var.client_cidrs : can(cidrhost(cidr, 0))])
    error_message = "Each client_cidrs item must be a network in CIDR notation such as 132.203.0.0/16 or 2001:db8::/32."
  }
}

variable "domain" {
  description = "Fully qualified domain name of the service."
  type        = string
}

variable "admin_email" {
  description = "E-mail address of the people responsible for the service."
  type        = string
}

variable "timezone" {
  description = "Time zone of the instances (tz database name)."
  type        = string
  default     = "UTC"
}

variable "settings" {
  description = "Blueprint settings, handed to Puppet as terraform.settings.<name>."
  type        = map(string)
  default     = {}

  # Puppet's castelet::profile::backup takes it as a boolean: only the two words a boolean
  # answer becomes (the deployment's variables.tf holds every answer's rule).
  validation {
    condition     = contains(["true", "false"], lookup(var.settings, "backup_append_only", "false"))
    error_message = "settings.backup_append_only must be \"true\" or \"false\" (the repository refuses deletions: no forget or prune on the instance)."
  }
}

variable "volumes" {
  description = "The design module's `volumes` output: \"<hostname>-<volume>\" => {instance, name, mount, ...}."
  type = map(object({
    instance = string
    name     = string
    mount    = string
  }))
  default = {}
}

variable "volume_devices" {
  description = <<-EOT
    Device path of each volume as the guest sees it, keyed like `volumes`
    (e.g. /dev/disk/by-id/virtio-<first 20 characters of the volume id>). Only in `hieradata`
    (day 2: volumes are attached after the instance exists), never in the user-data. A missing
    key or a null value leaves the device out (Puppet then only ensures the mount directory).
  EOT
  type        = map(string)
  default     = {}
}

variable "backups" {
  description = <<-EOT
    The blueprint's backups (its manifest's `backups:`): {role (optional), paths, databases
    [{engine, name}]}. Handed to Puppet as terraform.backups = {paths, databases} on the nodes
    of `role` (default: the role of the first volume, else the first role), null on the
    others; null: no backups.
  EOT
  type = object({
    role  = optional(string)
    paths = optional(list(string), [])
    databases = optional(list(object({
      engine = string
      name   = string
    })), [])
  })
  default = null

  validation {
    condition     = var.backups == null || alltrue([for path in try(var.backups.paths, []) : startswith(path, "/")])
    error_message = "backups.paths must be absolute paths."
  }
}

variable "admin_user" {
  description = "Administrator account created by cloud-init (passwordless sudo, SSH keys only)."
  type        = string
  default     = "castelet"
  nullable    = false

  # The same names as castelet.answers.RESERVED_ACCOUNT_NAMES and RESERVED_ACCOUNT_PREFIXES
  # (tests/test_tfvars_rules.py compares them).
  validation {
    condition = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user)) && !contains([
      "backup", "bin", "daemon", "deploy", "dnsmasq", "games", "gnats", "irc", "list", "lp", "mail", "man",
      "messagebus", "mysql", "news", "nginx", "nobody", "polkitd", "postgres", "proxy", "puppet", "root", "sshd",
      "statd", "sync", "sys", "tcpdump", "tss", "uucp", "uuidd", "www-data",
    ], var.admin_user) && !(startswith(var.admin_user, "systemd-") || startswith(var.admin_user, "_") || startswith(var.admin_user, "castelet-"))
    error_message = "admin_user must be a Linux user name (lowercase letters, digits, _ and -, at most 32 characters) that is not a system account or one Puppet creates (root, www-data, postgres, mysql, deploy, ... or a name starting with systemd-, _ or castelet-)."
  }
}

variable "public_keys" {
  description = "SSH public keys authorised for admin_user (may be empty where the cloud has another way in, e.g. `lxc exec`)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.public_keys : can(regex("^(ssh-|ecdsa-|sk-)", trimspace(k)))])
    error_message = "Each public key must be an OpenSSH public key starting with ssh-, ecdsa- or sk-."
  }
}

variable "puppet_environment_path" {
  description = "Directory of the Puppet environment (the deployment repo's puppet/); it must contain manifests/site.pp."
  type        = string

  validation {
    condition     = fileexists("${var.puppet_environment_path}/manifests/site.pp")
    error_message = "puppet_environment_path must be a Puppet environment directory containing manifests/site.pp."
  }
}

variable "puppet_packages" {
  description = "Debian packages castelet-bootstrap installs before the first `puppet apply` (null: this default)."
  type        = list(string)
  nullable    = false
  default = [
    "puppet-agent",
    "puppet-module-puppetlabs-apache",
    "puppet-module-puppetlabs-mysql",
    "puppet-module-puppetlabs-stdlib",
    "puppet-module-puppetlabs-concat",
    "puppet-module-puppetlabs-inifile",
    "puppet-module-puppet-archive",
  ]

  validation {
    condition     = length(var.puppet_packages) > 0 && alltrue([for p in var.puppet_packages : can(regex("^[a-z0-9][a-z0-9+.-]+$", p))])
    error_message = "puppet_packages must be a non-empty list of Debian package names."
  }
}
