output "instances" {
  description = "Map hostname => {role, index, flavor, image, public, min_vcpus, min_ram_mb, min_disk_gb, puppet_class}."
  value       = local.instances
}

output "volumes" {
  description = "Map \"<hostname>-<volume>\" => {instance (hostname), role, name, size_gb, mount, existing (name of an existing volume to attach instead of creating one, or null)}."
  value       = local.volumes

  precondition {
    condition     = length(local.unknown_volume_roles) == 0
    error_message = "volumes reference unknown role(s): ${join(", ", local.unknown_volume_roles)} (declared roles: ${join(", ", local.role_names)})."
  }
  precondition {
    condition     = length(local.unknown_existing_volumes) == 0
    error_message = "existing_volumes names no volume of this deployment: ${join(", ", local.unknown_existing_volumes)} (its volumes: ${length(local.volumes) == 0 ? "none" : join(", ", sort(keys(local.volumes)))})."
  }
}

output "firewall_rules" {
  description = "Map role => list of ingress rules {name, port, protocol, cidr, exposure}: SSH (22/tcp) from admin_cidr, public services from 0.0.0.0/0, admin services from admin_cidr, clients services once from each network of client_cidrs."
  value       = local.firewall_rules

  precondition {
    condition     = length(local.unknown_service_roles) == 0
    error_message = "services reference unknown role(s): ${join(", ", local.unknown_service_roles)} (declared roles: ${join(", ", local.role_names)})."
  }
}
