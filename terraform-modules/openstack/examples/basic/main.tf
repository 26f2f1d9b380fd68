# Example: a two-tier deployment (public web server + private database) on Arbutus.
#
#   source your-project-openrc.sh    # or export OS_CLOUD=... with a clouds.yaml
#   terraform init && terraform apply
#
# The provider reads its credentials from the OS_* environment variables (or clouds.yaml):
# nothing secret belongs in this file.

terraform {
  required_version = ">= 1.5"

  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.0"
    }
  }
}

provider "openstack" {}

variable "admin_cidr" {
  description = "Your workstation's public address as a CIDR, e.g. 203.0.113.7/32."
  type        = string
}

variable "domain" {
  description = "Fully qualified domain name of the service, e.g. atlas.example.org."
  type        = string
}

variable "admin_email" {
  description = "E-mail address of the people responsible for the service."
  type        = string
}

variable "public_key" {
  description = "Your SSH public key (its private half must be in your SSH agent)."
  type        = string
}

module "cloud" {
  source = "../.."

  name  = "atlas"
  image = "^Debian-13"

  roles = {
    web = { count = 1, flavor = "p2-3gb", public = true, min_vcpus = 2, min_ram_mb = 3000, min_disk_gb = 20, puppet_class = "castelet::role::base" }
    db  = { count = 1, flavor = "p2-3gb", public = false, min_vcpus = 2, min_ram_mb = 3000, min_disk_gb = 20, puppet_class = "castelet::role::base" }
  }

  services = [
    { name = "http", port = 80, protocol = "tcp", exposure = "public", role = "web" },
    { name = "https", port = 443, protocol = "tcp", exposure = "public", role = "web" },
  ]

  volumes = {
    data = { role = "db", size_gb = 20, mount = "/srv/data" }
  }

  public_keys             = [var.public_key]
  admin_cidr              = var.admin_cidr
  domain                  = var.domain
  admin_email             = var.admin_email
  puppet_environment_path = "${path.module}/puppet"

  # The project's network is found by its IPv4 DHCP subnet; name it when the project has several:
  # network = { name = "def-myproject-network" }
  # or create one (needs the router quota and DNS servers):
  # network = { create = true, dns_nameservers = ["192.0.2.53"] }  # your cloud's resolvers
}

output "public_addresses" {
  value = module.cloud.public_addresses
}

output "inventory" {
  value = module.cloud.inventory
}
