output "provisioned" {
  description = "Map hostname => id of the terraform_data that last configured it (empty when disabled)."
  value       = { for hostname, r in terraform_data.puppet : hostname => r.id }
}
