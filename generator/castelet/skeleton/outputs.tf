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

output "dns_records" {
  description = "The DNS records to create for the site (at your DNS provider): the domain → each public instance. `nox -s dns` checks them; until they exist the site serves a self-signed certificate."
  value = [
    for hostname, address in module.cloud.public_addresses : {
      name  = var.domain
      type  = length(split(":", address)) > 1 ? "AAAA" : "A"
      value = address
      host  = hostname
    }
  ]
}
