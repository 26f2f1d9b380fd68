variable "name" {
  description = "Deployment name: a lowercase DNS label used as the prefix of every hostname (<name>-<role><index>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,28}[a-z0-9]$", var.name))
    error_message = "name must be 2-30 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (the manifest's slug rule)."
  }
}

variable "roles" {
  description = <<-EOT
    Instance roles, keyed by role name (e.g. web, db). Each role gets `count` instances named
    <name>-<role><index> (index from 1). `image` overrides the deployment image for this role;
    `public` roles get a public address; `min_*` are the blueprint's minimum resources for the role.
  EOT
  type = map(object({
    count        = number
    flavor       = string
    image        = optional(string)
    public       = bool
    min_vcpus    = number
    min_ram_mb   = number
    min_disk_gb  = number
    puppet_class = optional(string, "castelet::role::base")
  }))

  validation {
    condition     = length(var.roles) > 0
    error_message = "roles must declare at least one role."
  }
  validation {
    condition     = alltrue([for role in keys(var.roles) : can(regex("^[a-z]([a-z0-9-]{0,14}[a-z])?$", role))])
    error_message = "Each role name must be lowercase letters, digits and hyphens (at most 16), start and end with a letter (the instance index is appended to it)."
  }
  validation {
    condition     = alltrue([for r in values(var.roles) : r.count >= 0 && floor(r.count) == r.count])
    error_message = "Each role count must be a whole number >= 0."
  }
  validation {
    condition     = alltrue([for r in values(var.roles) : length(trimspace(r.flavor)) > 0])
    error_message = "Each role needs a non-empty flavor."
  }
  validation {
    condition     = alltrue([for r in values(var.roles) : can(regex("^[a-z][a-z0-9_]*(::[a-z][a-z0-9_]*)*$", r.puppet_class))])
    error_message = "Each role's puppet_class must be a Puppet class name such as castelet::role::lamp."
  }
  validation {
    condition     = alltrue([for r in values(var.roles) : r.min_vcpus >= 0 && r.min_ram_mb >= 0 && r.min_disk_gb >= 0])
    error_message = "min_vcpus, min_ram_mb and min_disk_gb must not be negative."
  }
}

variable "image" {
  description = "Default image name for every role that does not set its own `image`."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0
    error_message = "image must not be empty."
  }
}

variable "services" {
  description = <<-EOT
    Network services the roles expose. `exposure = "public"` opens the port to 0.0.0.0/0,
    `exposure = "admin"` only to admin_cidr, `exposure = "clients"` to each network of
    client_cidrs (none when it is empty). `role` must name a key of `roles`.
  EOT
  type = list(object({
    name     = string
    port     = number
    protocol = string
    exposure = string
    role     = string
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.services : contains(["tcp", "udp"], s.protocol)])
    error_message = "Each service protocol must be \"tcp\" or \"udp\"."
  }
  validation {
    condition     = alltrue([for s in var.services : contains(["public", "admin", "clients"], s.exposure)])
    error_message = "Each service exposure must be \"public\", \"admin\" or \"clients\"."
  }
  validation {
    condition     = alltrue([for s in var.services : s.port >= 1 && s.port <= 65535 && floor(s.port) == s.port])
    error_message = "Each service port must be a whole number between 1 and 65535."
  }
  validation {
    condition     = alltrue([for s in var.services : can(regex("^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$", s.name)) && s.name != "ssh" && !endswith(s.name, "-ipv6")])
    error_message = "Each service name must be 1-24 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen; \"ssh\" is reserved (SSH is always opened to admin_cidr) and so is the suffix \"-ipv6\" (the IPv6 twin of a public rule)."
  }
  validation {
    condition     = length(distinct([for s in var.services : "${s.role}/${s.name}"])) == length(var.services)
    error_message = "Service names must be unique within a role."
  }
}

variable "volumes" {
  description = <<-EOT
    Block volumes, keyed by volume name: every instance of `role` gets its own volume of
    `size_gb` GB, mounted by Puppet at `mount`.
  EOT
  type = map(object({
    role    = string
    size_gb = number
    mount   = string
  }))
  default = {}

  validation {
    condition     = alltrue([for n in keys(var.volumes) : can(regex("^[a-z][a-z0-9-]*$", n))])
    error_message = "Each volume name must be lowercase letters, digits and hyphens, starting with a letter."
  }
  validation {
    condition     = alltrue([for v in values(var.volumes) : v.size_gb >= 1 && floor(v.size_gb) == v.size_gb])
    error_message = "Each volume size_gb must be a whole number >= 1."
  }
  validation {
    condition     = alltrue([for v in values(var.volumes) : startswith(v.mount, "/") && v.mount != "/"])
    error_message = "Each volume mount must be an absolute path other than /."
  }
}

variable "existing_volumes" {
  description = "Design volumes (\"<hostname>-<volume>\") to attach instead of create => name of the existing cloud volume; a key that is no design volume fails the plan (precondition of the `volumes` output)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for n in values(var.existing_volumes) : trimspace(n) != ""])
    error_message = "existing_volumes values must name an existing volume (not empty)."
  }
}

variable "admin_cidr" {
  description = "CIDR allowed to reach SSH and the `admin` services (e.g. your workstation's 203.0.113.7/32)."
  type        = string

  validation {
    condition     = can(cidrhost(var.admin_cidr, 0))
    error_message = "admin_cidr must be a CIDR block such as 203.0.113.7/32."
  }
}

variable "client_cidrs" {
  description = "Networks (IPv4 or IPv6 CIDR) allowed to reach the `clients` services; empty: those ports are open to nobody."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for cidr in var.client_cidrs : can(cidrhost(cidr, 0))])
    error_message = "Each client_cidrs item must be a network in CIDR notation such as 132.203.0.0/16 or 2001:db8::/32."
  }
  validation {
    condition     = alltrue([for cidr in var.client_cidrs : try(tonumber(split("/", cidr)[1]), 1) > 0])
    error_message = "client_cidrs must not hold 0.0.0.0/0 or ::/0 (a service for everyone is a public service)."
  }
}
