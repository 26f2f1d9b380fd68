output "instances" {
  description = "Map hostname => {role, private_address, public_address}. LXD has no public addresses."
  value = {
    for hostname, container in lxd_container.instance : hostname => {
      role            = module.design.instances[hostname].role
      private_address = container.ipv4_address
      public_address  = null
    }
  }
}

output "public_addresses" {
  description = "Map hostname => public address (empty on LXD: instances are on the host's NAT bridge)."
  value       = {}
}

output "inventory" {
  description = "Map hostname => {role, address, ssh_user, testinfra_url, bastion} for `nox -s verify`."
  value = {
    for hostname, container in lxd_container.instance : hostname => {
      role          = module.design.instances[hostname].role
      address       = container.ipv4_address
      ssh_user      = var.admin_user
      testinfra_url = "lxc://${hostname}"
      bastion       = null
    }
  }
  depends_on = [terraform_data.provision]
}

output "user_data_bytes" {
  description = "Map hostname => size in bytes of the user-data."
  value       = { for hostname, user_data in module.configuration.user_data : hostname => length(user_data) }
}
