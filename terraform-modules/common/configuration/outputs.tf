output "user_data" {
  description = "Map hostname => cloud-init user-data (a #cloud-config document)."
  value       = local.user_data
}

output "hieradata" {
  # the day-2 data: the same as first boot's, plus the volumes' devices
  description = "Map hostname => content of data/terraform.yaml for that node: one `terraform` hash (deployment, domain, admin e-mail, admin users and keys, admin CIDR, time zone, settings, nodes, role, role class, firewall rules, volumes, data_dir, backups)."
  value       = local.hieradata
}

output "environment_hash" {
  description = "sha256 over the relative path and sha256 of every file of the Puppet environment (sorted)."
  value       = local.environment_hash
}

output "environment_files" {
  description = "Relative paths of the Puppet environment files the provision step pushes (sorted; they make environment_hash)."
  value       = local.environment_files
}
