# Provider-free expansion of roles, services and volumes (Magic Castle's "design" step).

locals {
  role_names = sort(keys(var.roles))

  # <name>-<role><index> => everything a cloud module needs to create the instance.
  instances = merge([
    for role in local.role_names : {
      for index in range(1, var.roles[role].count + 1) :
      "${var.name}-${role}${index}" => {
        role         = role
        index        = index
        flavor       = var.roles[role].flavor
        image        = coalesce(var.roles[role].image, var.image)
        public       = var.roles[role].public
        min_vcpus    = var.roles[role].min_vcpus
        min_ram_mb   = var.roles[role].min_ram_mb
        min_disk_gb  = var.roles[role].min_disk_gb
        puppet_class = var.roles[role].puppet_class
      }
    }
  ]...)

  # One volume per (instance, volume of that instance's role).
  volumes = merge([
    for hostname, instance in local.instances : {
      for volname, volume in var.volumes :
      "${hostname}-${volname}" => {
        instance = hostname
        role     = instance.role
        name     = volname
        size_gb  = volume.size_gb
        mount    = volume.mount
        existing = lookup(var.existing_volumes, "${hostname}-${volname}", null)
      } if volume.role == instance.role
    }
  ]...)

  unknown_service_roles    = sort(distinct([for s in var.services : s.role if !contains(local.role_names, s.role)]))
  unknown_volume_roles     = sort(distinct([for v in values(var.volumes) : v.role if !contains(local.role_names, v.role)]))
  unknown_existing_volumes = sort([for key in keys(var.existing_volumes) : key if !contains(keys(local.volumes), key)])

  ssh_rule = {
    name     = "ssh"
    port     = 22
    protocol = "tcp"
    cidr     = var.admin_cidr
    exposure = "admin"
  }

  # The client networks in canonical form (host bits cleared, IPv6 in lower case), each once:
  # a hand-edited terraform.tfvars cannot give two rules of one network.
  client_cidrs = distinct([for cidr in var.client_cidrs : cidrsubnet(cidr, 0, 0)])

  # The sources of a service: public from 0.0.0.0/0 (the cloud adds the ::/0 twin), admin from
  # admin_cidr, clients from each client network (none: the port is open to nobody).
  service_sources = {
    public  = ["0.0.0.0/0"]
    admin   = [var.admin_cidr]
    clients = local.client_cidrs
  }

  # role => ingress rules; SSH always first, then the role's services in declaration order
  # (a clients service: one rule per client network, in client_cidrs order).
  firewall_rules = {
    for role in local.role_names : role => concat([local.ssh_rule], flatten([
      for s in var.services : [
        for cidr in local.service_sources[s.exposure] : {
          name     = s.name
          port     = s.port
          protocol = s.protocol
          cidr     = cidr
          exposure = s.exposure
        }
      ] if s.role == role
    ]))
  }
}
