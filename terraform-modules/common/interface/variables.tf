# The interface shared by every cloud module of Castelet (openstack/, lxd/), as Magic Castle
# shares its common variables: each cloud folder links this file as `interface_variables.tf`,
# so the variables, types, defaults and validations are declared once. Cloud-specific
# variables live in each cloud's own variables.tf.

variable "name" {
  description = "Deployment name: a lowercase DNS label, prefix of every hostname (<name>-<role><index>) and cloud resource."
  type        = string
}

variable "image" {
  description = <<-EOT
    Default image for every role that does not set its own `image` (Debian 13 or 12 with cloud-init).
    OpenStack: the image name (on Arbutus, images are named by distribution, version and date;
    `openstack image list --public | grep -i debian`). LXD: the image alias built by
    `castelet local setup` ("castelet/debian-13", or "castelet/debian-12").
  EOT
  type        = string
}

variable "roles" {
  description = "Roles, keyed by role name: {count, flavor, image (optional), public, min_vcpus, min_ram_mb, min_disk_gb, puppet_class}. See common/design."
  type = map(object({
    count        = number
    flavor       = string
    image        = optional(string)
    public       = bool
    min_vcpus    = number
    min_ram_mb   = number
    min_disk_gb  = number
    puppet_class = string
  }))
}

variable "services" {
  description = "Services [{name, port, protocol (tcp|udp), exposure (public|admin|clients), role}] opened in the role's security group and host firewall: public to everyone, admin to admin_cidr, clients to each network of client_cidrs."
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

variable "existing_volumes" {
  description = <<-EOT
    Volumes to attach instead of creating them, by design volume key ("<name>-<role><index>-<volume>",
    e.g. "omeka-web1-data") => name of an existing volume (OpenStack: a Cinder volume of the
    project; LXD: a custom volume of the storage pool). Terraform neither creates nor deletes
    them: the way to move data between deployments. A key that is no design volume fails the plan.
  EOT
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "backups" {
  description = "The blueprint's backups (manifest `backups:`): {role (optional), paths, databases [{engine, name}]}, handed to Puppet as terraform.backups on the nodes of that role (default: the first volume's role); null: none."
  type = object({
    role  = optional(string)
    paths = optional(list(string), [])
    databases = optional(list(object({
      engine = string
      name   = string
    })), [])
  })
  default = null
}

variable "public_keys" {
  description = "SSH public keys of the administrators (OpenStack needs at least one; LXD may have none: `lxc exec`)."
  type        = list(string)
  default     = []
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

variable "client_cidrs" {
  description = "Networks (IPv4 or IPv6 CIDR) allowed to reach the `clients` services, one rule each in the security group and the host firewall; handed to Puppet as terraform.client_cidrs. Empty: those ports are open to nobody."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "domain" {
  description = "Fully qualified domain name of the service (Puppet: terraform.domain)."
  type        = string
}

variable "admin_email" {
  description = "E-mail address of the people responsible for the service (Puppet: terraform.admin_email)."
  type        = string
}

variable "timezone" {
  description = "Time zone of the instances, a tz database name (Puppet: terraform.timezone)."
  type        = string
  default     = "UTC"
}

variable "settings" {
  description = "Blueprint settings handed to Puppet as terraform.settings.<name> (strings)."
  type        = map(string)
  default     = {}
}

variable "expires" {
  description = "Sandbox expiry (UTC, YYYY-MM-DDTHH:MM:SSZ) recorded on every instance (OpenStack metadata castelet_expires, LXD config user.castelet.expires); empty: not a sandbox. Changing it updates instances in place."
  type        = string
  default     = ""
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
  description = "Private key used by Terraform to push day-2 configuration over SSH; null uses the SSH agent (unused on LXD, which uses `lxc exec`)."
  type        = string
  default     = null
}
