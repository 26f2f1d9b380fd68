output "instances" {
  description = "Every instance with its role and addresses."
  value       = module.cloud.instances
}

output "public_addresses" {
  description = "Public (floating) address of each public instance."
  value       = module.cloud.public_addresses
}

output "inventory" {
  description = "Hosts for `nox -s verify` (testinfra URLs by hostname)."
  value       = module.cloud.inventory
}
