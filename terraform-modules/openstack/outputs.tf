# Shared interface: every cloud module of Castelet declares these outputs with the same shapes.

output "instances" {
  description = "Map hostname => {role, private_address, public_address (null unless the role is public)}."
  value = {
    for hostname, instance in module.design.instances : hostname => {
      role            = instance.role
      private_address = local.private_addresses[hostname]
      public_address  = lookup(local.public_addresses, hostname, null)
    }
  }
}

output "public_addresses" {
  description = "Map hostname => public (floating) IP, for the instances of public roles only."
  value       = local.public_addresses
}

output "inventory" {
  description = "Map hostname => {role, address, ssh_user, testinfra_url (ssh://<user>@<address>), bastion (jump host or null)} for the checks."
  value = {
    for hostname, instance in module.design.instances : hostname => {
      role          = instance.role
      address       = instance.public ? local.public_addresses[hostname] : local.private_addresses[hostname]
      ssh_user      = var.admin_user
      testinfra_url = "ssh://${var.admin_user}@${instance.public ? local.public_addresses[hostname] : local.private_addresses[hostname]}"
      bastion       = instance.public ? null : local.bastion
    }
  }
}

output "user_data_bytes" {
  description = "Map hostname => size in bytes of its cloud-init user-data (Nova's limit is 65535 bytes once base64-encoded)."
  value       = local.user_data_bytes
}
