# Offline tests of what the openstack module builds, planned against castelet's stand-in of
# terraform-provider-openstack 3.0.0 (tests/test_openstack_module.py installs it; it plans
# and refuses apply, hence `command = plan` everywhere). Ids the cloud would assign are
# unknown at plan: where an assertion needs one, an `override_resource` with
# `override_during = plan` gives that resource instance a fixed id.

provider "openstack" {}

variables {
  name  = "atlas"
  image = "^Debian-12"
  roles = {
    # p2-3gb: 2 vCPU, 3 GB RAM, no root disk (boots from a volume); c4-15gb-83: 20 GB root disk
    # (+ 83 GB ephemeral), less than db's 40 GB: boots from a volume too.
    web = { count = 2, flavor = "p2-3gb", public = true, min_vcpus = 2, min_ram_mb = 3000, min_disk_gb = 20, puppet_class = "castelet::role::lamp" }
    db  = { count = 2, flavor = "c4-15gb-83", public = false, min_vcpus = 4, min_ram_mb = 15000, min_disk_gb = 40, puppet_class = "castelet::role::base" }
  }
  services = [
    { name = "http", port = 80, protocol = "tcp", exposure = "public", role = "web" },
    { name = "https", port = 443, protocol = "tcp", exposure = "public", role = "web" },
    { name = "http3", port = 443, protocol = "udp", exposure = "public", role = "web" },
    { name = "node-exporter", port = 9100, protocol = "tcp", exposure = "admin", role = "web" },
    { name = "mysql", port = 3306, protocol = "tcp", exposure = "admin", role = "db" },
  ]
  volumes = {
    data    = { role = "db", size_gb = 50, mount = "/srv/data" }
    backup  = { role = "db", size_gb = 20, mount = "/srv/backup" }
    uploads = { role = "web", size_gb = 5, mount = "/var/www/uploads" }
  }
  public_keys = [
    "  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin@example.org\n",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyTwo ops@example.org",
  ]
  admin_cidr              = "203.0.113.7/32"
  domain                  = "atlas.example.org"
  admin_email             = "ops@example.org"
  puppet_environment_path = "tests/fixtures/env-small"
}

# --- security groups ------------------------------------------------------------------------

run "security_groups" {
  command = plan

  override_resource {
    target          = openstack_networking_secgroup_v2.role["web"]
    override_during = plan
    values          = { id = "sg-web" }
  }
  override_resource {
    target          = openstack_networking_secgroup_v2.role["db"]
    override_during = plan
    values          = { id = "sg-db" }
  }
  override_resource {
    target          = openstack_networking_secgroup_v2.internal
    override_during = plan
    values          = { id = "sg-internal" }
  }

  assert {
    condition     = toset(keys(openstack_networking_secgroup_v2.role)) == toset(["web", "db"])
    error_message = "one security group per role"
  }
  assert {
    condition     = openstack_networking_secgroup_v2.role["web"].name == "atlas-web" && openstack_networking_secgroup_v2.role["db"].name == "atlas-db"
    error_message = "role security groups are named <name>-<role>"
  }
  assert {
    condition     = openstack_networking_secgroup_v2.internal.name == "atlas-internal"
    error_message = "the internal security group is named <name>-internal"
  }
  assert {
    condition = toset(keys(openstack_networking_secgroup_rule_v2.role)) == toset([
      "web/ssh", "web/http", "web/http/any-ipv6", "web/https", "web/https/any-ipv6",
      "web/http3", "web/http3/any-ipv6", "web/node-exporter", "db/ssh", "db/mysql",
    ])
    error_message = "rules: SSH per role, every service once, an IPv6 twin for public services only"
  }
  assert {
    condition = alltrue([
      for key, rule in openstack_networking_secgroup_rule_v2.role :
      rule.direction == "ingress" && rule.security_group_id == "sg-${split("/", key)[0]}"
    ])
    error_message = "every rule is an ingress rule in its own role's security group"
  }

  # SSH: 22/tcp, only from the admin CIDR, in every role, with no IPv6 twin.
  assert {
    condition = alltrue([
      for role in ["web", "db"] : (
        openstack_networking_secgroup_rule_v2.role["${role}/ssh"].protocol == "tcp" &&
        openstack_networking_secgroup_rule_v2.role["${role}/ssh"].port_range_min == 22 &&
        openstack_networking_secgroup_rule_v2.role["${role}/ssh"].port_range_max == 22 &&
        openstack_networking_secgroup_rule_v2.role["${role}/ssh"].ethertype == "IPv4" &&
        openstack_networking_secgroup_rule_v2.role["${role}/ssh"].remote_ip_prefix == "203.0.113.7/32"
      )
    ])
    error_message = "SSH must be 22/tcp from the admin CIDR only, in every role"
  }
  assert {
    condition = alltrue([
      for rule in values(openstack_networking_secgroup_rule_v2.role) :
      rule.remote_ip_prefix == "203.0.113.7/32" if rule.port_range_min <= 22 && rule.port_range_max >= 22
    ])
    error_message = "no rule may open port 22 to anything but the admin CIDR"
  }

  # Public services: 0.0.0.0/0 plus an IPv6 ::/0 twin with the same port and protocol.
  assert {
    condition = alltrue([
      for svc in [["http", 80, "tcp"], ["https", 443, "tcp"], ["http3", 443, "udp"]] : (
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}"].remote_ip_prefix == "0.0.0.0/0" &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}"].ethertype == "IPv4" &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}"].port_range_min == svc[1] &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}"].port_range_max == svc[1] &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}"].protocol == svc[2] &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}/any-ipv6"].remote_ip_prefix == "::/0" &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}/any-ipv6"].ethertype == "IPv6" &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}/any-ipv6"].port_range_min == svc[1] &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}/any-ipv6"].port_range_max == svc[1] &&
        openstack_networking_secgroup_rule_v2.role["web/${svc[0]}/any-ipv6"].protocol == svc[2]
      )
    ])
    error_message = "public services are open to 0.0.0.0/0 and ::/0 on their own port and protocol"
  }

  # Admin services: only from the admin CIDR.
  assert {
    condition = (
      openstack_networking_secgroup_rule_v2.role["web/node-exporter"].remote_ip_prefix == "203.0.113.7/32" &&
      openstack_networking_secgroup_rule_v2.role["web/node-exporter"].port_range_min == 9100 &&
      openstack_networking_secgroup_rule_v2.role["db/mysql"].remote_ip_prefix == "203.0.113.7/32" &&
      openstack_networking_secgroup_rule_v2.role["db/mysql"].port_range_min == 3306 &&
      openstack_networking_secgroup_rule_v2.role["db/mysql"].port_range_max == 3306 &&
      openstack_networking_secgroup_rule_v2.role["db/mysql"].ethertype == "IPv4"
    )
    error_message = "admin services are open to the admin CIDR only"
  }
  assert {
    condition     = length([for rule in values(openstack_networking_secgroup_rule_v2.role) : rule if contains(["0.0.0.0/0", "::/0"], rule.remote_ip_prefix)]) == 6
    error_message = "only the three public services (and their IPv6 twins) are open to the world"
  }

  # The internal group lets the deployment's instances reach each other, IPv4 and IPv6.
  assert {
    condition = toset(keys(openstack_networking_secgroup_rule_v2.internal)) == toset(["IPv4", "IPv6"]) && alltrue([
      for ethertype, rule in openstack_networking_secgroup_rule_v2.internal :
      rule.ethertype == ethertype && rule.direction == "ingress" && rule.security_group_id == "sg-internal" &&
      rule.remote_group_id == "sg-internal"
    ])
    error_message = "the internal group admits any protocol from its own members only"
  }

  # Each instance's port carries its role's group and the internal one.
  assert {
    condition = (
      openstack_networking_port_v2.instance["atlas-web1"].security_group_ids == toset(["sg-web", "sg-internal"]) &&
      openstack_networking_port_v2.instance["atlas-web2"].security_group_ids == toset(["sg-web", "sg-internal"]) &&
      openstack_networking_port_v2.instance["atlas-db1"].security_group_ids == toset(["sg-db", "sg-internal"]) &&
      openstack_networking_port_v2.instance["atlas-db2"].security_group_ids == toset(["sg-db", "sg-internal"])
    )
    error_message = "each port carries its role's security group and the internal one"
  }
}

run "ipv6_admin_cidr" {
  command = plan

  variables {
    admin_cidr = "2001:db8:42::/48"
  }

  assert {
    condition = alltrue([
      for key in ["web/ssh", "web/node-exporter", "db/ssh", "db/mysql"] :
      openstack_networking_secgroup_rule_v2.role[key].ethertype == "IPv6" &&
      openstack_networking_secgroup_rule_v2.role[key].remote_ip_prefix == "2001:db8:42::/48"
    ])
    error_message = "SSH and admin services follow an IPv6 admin CIDR, as IPv6 rules"
  }
  assert {
    condition = (
      openstack_networking_secgroup_rule_v2.role["web/http"].ethertype == "IPv4" &&
      openstack_networking_secgroup_rule_v2.role["web/http"].remote_ip_prefix == "0.0.0.0/0" &&
      !contains(keys(openstack_networking_secgroup_rule_v2.role), "web/ssh/any-ipv6")
    )
    error_message = "public services keep their 0.0.0.0/0 rule; SSH gets no ::/0 twin"
  }
}

run "clients_service" {
  command = plan

  variables {
    services = [
      { name = "http", port = 80, protocol = "tcp", exposure = "public", role = "web" },
      { name = "postgresql", port = 5432, protocol = "tcp", exposure = "clients", role = "db" },
    ]
    client_cidrs = ["10.20.0.0/16", "2001:db8:42::/48"]
    volumes      = {} # the hieradata is then known at plan (no volume device)
  }

  assert {
    condition = toset(keys(openstack_networking_secgroup_rule_v2.role)) == toset([
      "web/ssh", "web/http", "web/http/any-ipv6", "db/ssh",
      "db/postgresql/10.20.0.0/16", "db/postgresql/2001:db8:42::/48",
    ])
    error_message = "a clients service gets one rule per client network, keyed by the network"
  }
  assert {
    condition = (
      openstack_networking_secgroup_rule_v2.role["db/postgresql/10.20.0.0/16"].ethertype == "IPv4" &&
      openstack_networking_secgroup_rule_v2.role["db/postgresql/10.20.0.0/16"].remote_ip_prefix == "10.20.0.0/16" &&
      openstack_networking_secgroup_rule_v2.role["db/postgresql/2001:db8:42::/48"].ethertype == "IPv6" &&
      openstack_networking_secgroup_rule_v2.role["db/postgresql/2001:db8:42::/48"].remote_ip_prefix == "2001:db8:42::/48" &&
      alltrue([
        for key in ["db/postgresql/10.20.0.0/16", "db/postgresql/2001:db8:42::/48"] :
        openstack_networking_secgroup_rule_v2.role[key].port_range_min == 5432 &&
        openstack_networking_secgroup_rule_v2.role[key].port_range_max == 5432 &&
        openstack_networking_secgroup_rule_v2.role[key].protocol == "tcp" &&
        openstack_networking_secgroup_rule_v2.role[key].direction == "ingress" &&
        openstack_networking_secgroup_rule_v2.role[key].description == "postgresql (clients)"
      ])
    )
    error_message = "each client network is admitted to the service's port with its own ethertype, and nothing more"
  }
  assert {
    condition = alltrue([
      for hostname, data in module.configuration.hieradata :
      yamldecode(data).terraform.client_cidrs == ["10.20.0.0/16", "2001:db8:42::/48"]
    ])
    error_message = "every node's hieradata carries terraform.client_cidrs"
  }
  assert {
    condition = jsonencode(yamldecode(module.configuration.hieradata["atlas-db2"]).terraform.firewall_rules) == jsonencode([
      { name = "postgresql", port = 5432, protocol = "tcp", source = "10.20.0.0/16" },
      { name = "postgresql", port = 5432, protocol = "tcp", source = "2001:db8:42::/48" },
    ])
    error_message = "the host firewall admits the same client networks as the security group"
  }
}

run "clients_service_without_client_networks" {
  command = plan

  variables {
    services = [{ name = "postgresql", port = 5432, protocol = "tcp", exposure = "clients", role = "db" }]
    volumes  = {}
  }

  assert {
    condition     = toset(keys(openstack_networking_secgroup_rule_v2.role)) == toset(["web/ssh", "db/ssh"])
    error_message = "with no client network a clients service opens nothing"
  }
  assert {
    condition     = alltrue([for hostname, data in module.configuration.hieradata : yamldecode(data).terraform.client_cidrs == []])
    error_message = "terraform.client_cidrs is an empty list without client networks"
  }
}

# --- instances --------------------------------------------------------------------------------

run "instances" {
  command = plan

  variables {
    roles = {
      web = { count = 2, flavor = "p2-3gb", public = true, min_vcpus = 2, min_ram_mb = 3000, min_disk_gb = 20, puppet_class = "castelet::role::lamp" }
      db  = { count = 2, flavor = "c4-15gb-83", image = "^Debian-13", public = false, min_vcpus = 4, min_ram_mb = 15000, min_disk_gb = 20, puppet_class = "castelet::role::base" }
    }
    key_pair = "ada-laptop"
  }

  assert {
    condition     = toset(keys(openstack_compute_instance_v2.instance)) == toset(["atlas-web1", "atlas-web2", "atlas-db1", "atlas-db2"])
    error_message = "instances are <name>-<role><index>, count per role"
  }
  assert {
    condition = alltrue([
      for hostname, vm in openstack_compute_instance_v2.instance :
      vm.name == hostname && vm.key_pair == "ada-laptop" &&
      vm.metadata == tomap({ castelet_deployment = "atlas", castelet_role = startswith(hostname, "atlas-web") ? "web" : "db" })
    ])
    error_message = "instances carry their hostname, the key pair named by var.key_pair and castelet_role metadata"
  }
  assert {
    condition = (
      openstack_compute_instance_v2.instance["atlas-web2"].flavor_name == "p2-3gb" &&
      openstack_compute_instance_v2.instance["atlas-db2"].flavor_name == "c4-15gb-83"
    )
    error_message = "each instance gets its role's flavor"
  }
  assert {
    condition     = toset(keys(openstack_networking_port_v2.instance)) == toset(keys(openstack_compute_instance_v2.instance)) && alltrue([for hostname, port in openstack_networking_port_v2.instance : port.name == hostname])
    error_message = "one port per instance, named after it"
  }
  assert {
    condition     = toset(keys(data.openstack_images_image_v2.image)) == toset(["^Debian-12", "^Debian-13"]) && alltrue([for regex, image in data.openstack_images_image_v2.image : image.name_regex == regex && image.most_recent])
    error_message = "one most-recent image lookup per image name regex (a role's own image included)"
  }
  assert {
    condition     = toset(keys(data.openstack_compute_flavor_v2.flavor)) == toset(["p2-3gb", "c4-15gb-83"])
    error_message = "one flavor lookup per flavor name"
  }

  # p2-3gb has no root disk: boot from a volume of max(min_disk_gb, 10) GB made from the image
  # (image_id is then left to the provider: unknown at plan).
  assert {
    condition = alltrue([
      for hostname in ["atlas-web1", "atlas-web2"] : (
        length(openstack_compute_instance_v2.instance[hostname].block_device) == 1 &&
        openstack_compute_instance_v2.instance[hostname].block_device[0].volume_size == 20 &&
        openstack_compute_instance_v2.instance[hostname].block_device[0].source_type == "image" &&
        openstack_compute_instance_v2.instance[hostname].block_device[0].destination_type == "volume" &&
        openstack_compute_instance_v2.instance[hostname].block_device[0].boot_index == 0 &&
        openstack_compute_instance_v2.instance[hostname].block_device[0].delete_on_termination &&
        openstack_compute_instance_v2.instance[hostname].block_device[0].uuid == data.openstack_images_image_v2.image["^Debian-12"].id
      )
    ])
    error_message = "instances of a flavor without root disk boot from a volume made from the image"
  }
  assert {
    condition = alltrue([
      for hostname in ["atlas-db1", "atlas-db2"] : (
        openstack_compute_instance_v2.instance[hostname].image_id == data.openstack_images_image_v2.image["^Debian-13"].id &&
        length(openstack_compute_instance_v2.instance[hostname].block_device) == 0
      )
    ])
    error_message = "instances of a flavor with a root disk boot from their role's image directly"
  }
}

# --- Puppet's deployment data -------------------------------------------------------------

# The module hands every deployment input to common/configuration: one `terraform` hash per node.
run "puppet_data" {
  command = plan

  variables {
    volumes  = {}
    timezone = "America/Montreal"
    settings = { site_title = "Atlas" }
  }

  assert {
    condition = alltrue([
      for hostname, data in module.configuration.hieradata : (
        yamldecode(data).terraform.deployment == "atlas" &&
        yamldecode(data).terraform.domain == "atlas.example.org" &&
        yamldecode(data).terraform.admin_email == "ops@example.org" &&
        yamldecode(data).terraform.admin_cidr == "203.0.113.7/32" &&
        yamldecode(data).terraform.timezone == "America/Montreal" &&
        yamldecode(data).terraform.settings == { site_title = "Atlas" } &&
        yamldecode(data).terraform.role == (startswith(hostname, "atlas-web") ? "web" : "db")
      )
    ])
    error_message = "domain, admin_email, admin_cidr, timezone, settings and the role reach every node's hieradata"
  }
  assert {
    condition = (
      yamldecode(module.configuration.hieradata["atlas-web2"]).terraform.role_class == "castelet::role::lamp" &&
      yamldecode(module.configuration.hieradata["atlas-db2"]).terraform.role_class == "castelet::role::base"
    )
    error_message = "each node's role_class is its role's puppet_class"
  }
  assert {
    condition = jsonencode(yamldecode(module.configuration.hieradata["atlas-web1"]).terraform.admin_users) == jsonencode({
      castelet = { ssh_keys = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin@example.org",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyTwo ops@example.org",
      ] }
    })
    error_message = "every public key (trimmed) reaches Puppet for the admin user"
  }
  # Puppet's host firewall mirrors the security groups, SSH aside (Puppet adds it itself).
  assert {
    condition = jsonencode(yamldecode(module.configuration.hieradata["atlas-web1"]).terraform.firewall_rules) == jsonencode([
      { name = "http", port = 80, protocol = "tcp", source = "0.0.0.0/0" },
      { name = "http-ipv6", port = 80, protocol = "tcp", source = "::/0" },
      { name = "https", port = 443, protocol = "tcp", source = "0.0.0.0/0" },
      { name = "https-ipv6", port = 443, protocol = "tcp", source = "::/0" },
      { name = "http3", port = 443, protocol = "udp", source = "0.0.0.0/0" },
      { name = "http3-ipv6", port = 443, protocol = "udp", source = "::/0" },
      { name = "node-exporter", port = 9100, protocol = "tcp", source = "203.0.113.7/32" },
    ])
    error_message = "web's Puppet firewall rules: public services twice (IPv4 and IPv6), admin ones from the admin CIDR, no ssh"
  }
  assert {
    condition = jsonencode(yamldecode(module.configuration.hieradata["atlas-db1"]).terraform.firewall_rules) == jsonencode([
      { name = "mysql", port = 3306, protocol = "tcp", source = "203.0.113.7/32" },
    ])
    error_message = "db's Puppet firewall rules: mysql from the admin CIDR only"
  }
  assert {
    condition = alltrue([
      for hostname, vm in openstack_compute_instance_v2.instance :
      strcontains(vm.user_data, "/usr/local/sbin/castelet-secrets")
    ])
    error_message = "every instance's user-data installs castelet-secrets"
  }
}

# --- volumes --------------------------------------------------------------------------------

run "volumes" {
  command = plan

  override_resource {
    target          = openstack_compute_instance_v2.instance["atlas-web1"]
    override_during = plan
    values          = { id = "vm-atlas-web1" }
  }
  override_resource {
    target          = openstack_compute_instance_v2.instance["atlas-web2"]
    override_during = plan
    values          = { id = "vm-atlas-web2" }
  }
  override_resource {
    target          = openstack_compute_instance_v2.instance["atlas-db1"]
    override_during = plan
    values          = { id = "vm-atlas-db1" }
  }
  override_resource {
    target          = openstack_compute_instance_v2.instance["atlas-db2"]
    override_during = plan
    values          = { id = "vm-atlas-db2" }
  }
  override_resource {
    target          = openstack_blockstorage_volume_v3.volume["atlas-db1-data"]
    override_during = plan
    values          = { id = "0123456789abcdef0123456789abcdef" }
  }
  override_resource {
    target          = openstack_blockstorage_volume_v3.volume["atlas-db1-backup"]
    override_during = plan
    values          = { id = "fedcba9876543210fedcba9876543210" }
  }

  assert {
    condition = toset(keys(openstack_blockstorage_volume_v3.volume)) == toset([
      "atlas-db1-data", "atlas-db1-backup", "atlas-db2-data", "atlas-db2-backup", "atlas-web1-uploads", "atlas-web2-uploads",
    ])
    error_message = "one volume per (instance, volume of its role)"
  }
  assert {
    condition = alltrue([
      for key, volume in openstack_blockstorage_volume_v3.volume :
      volume.name == key && volume.size == (endswith(key, "-data") ? 50 : endswith(key, "-backup") ? 20 : 5)
    ])
    error_message = "each volume is named after its key and has the declared size"
  }
  assert {
    condition     = openstack_blockstorage_volume_v3.volume["atlas-db2-data"].description == "Castelet atlas: data of atlas-db2, mounted at /srv/data"
    error_message = "the volume description names the volume, its instance and mount point"
  }
  assert {
    condition     = toset(keys(openstack_compute_volume_attach_v2.volume)) == toset(keys(openstack_blockstorage_volume_v3.volume))
    error_message = "one attachment per volume"
  }
  assert {
    condition = alltrue([
      for key, attachment in openstack_compute_volume_attach_v2.volume :
      attachment.instance_id == "vm-${regex("^(atlas-[a-z]+[0-9]+)-", key)[0]}"
    ])
    error_message = "each volume attaches to its own instance"
  }
  assert {
    condition = (
      openstack_compute_volume_attach_v2.volume["atlas-db1-data"].instance_id == "vm-atlas-db1" &&
      openstack_compute_volume_attach_v2.volume["atlas-db2-data"].instance_id == "vm-atlas-db2" &&
      length([for a in values(openstack_compute_volume_attach_v2.volume) : a if startswith(a.instance_id, "vm-atlas-web")]) == 2
    )
    error_message = "the db volumes attach to db instances only; web instances get only their uploads volume"
  }
  assert {
    condition     = openstack_compute_volume_attach_v2.volume["atlas-db1-data"].volume_id == "0123456789abcdef0123456789abcdef"
    error_message = "an attachment carries its own volume"
  }
  # Puppet finds the disk by a by-id glob on the first 20 characters of the volume id (virtio-blk:
  # virtio-<20 chars>, virtio-scsi: scsi-0QEMU_QEMU_HARDDISK_<id>): in the day-2 hieradata
  # (volumes are attached after the instance boots); the user-data names no device, so its
  # size does not depend on volume ids and is known at plan.
  assert {
    condition = yamldecode(module.configuration.hieradata["atlas-db1"]).terraform.volumes == {
      data   = { mount = "/srv/data", device = "/dev/disk/by-id/*0123456789abcdef0123*" }
      backup = { mount = "/srv/backup", device = "/dev/disk/by-id/*fedcba9876543210fedc*" }
    }
    error_message = "hieradata names each volume's by-id glob (first 20 characters of its id) and mount point"
  }
  assert {
    condition     = yamldecode(module.configuration.hieradata["atlas-db1"]).terraform.data_dir == "/srv/backup"
    error_message = "data_dir is the mount point of the node's first volume by name"
  }
  assert {
    condition     = !strcontains(openstack_compute_instance_v2.instance["atlas-db1"].user_data, "/dev/disk/by-id/")
    error_message = "the user-data names no volume device (unknown until attachment)"
  }
}

# An existing volume (existing_volumes) is looked up by name and attached; none is created for it.
run "existing_volume" {
  command = plan

  variables {
    existing_volumes = { "atlas-db1-data" = "atlas-old-data" }
  }

  override_data {
    target          = data.openstack_blockstorage_volume_v3.existing["atlas-db1-data"]
    override_during = plan
    values          = { id = "aaaabbbbccccddddeeeeffff00001111" }
  }
  override_resource {
    target          = openstack_blockstorage_volume_v3.volume["atlas-db1-backup"]
    override_during = plan
    values          = { id = "fedcba9876543210fedcba9876543210" }
  }

  assert {
    condition     = !contains(keys(openstack_blockstorage_volume_v3.volume), "atlas-db1-data") && length(openstack_blockstorage_volume_v3.volume) == 5
    error_message = "no volume is created for an existing one; the others still are"
  }
  assert {
    condition     = keys(data.openstack_blockstorage_volume_v3.existing) == ["atlas-db1-data"] && data.openstack_blockstorage_volume_v3.existing["atlas-db1-data"].name == "atlas-old-data"
    error_message = "the existing volume is looked up by its name"
  }
  assert {
    condition     = openstack_compute_volume_attach_v2.volume["atlas-db1-data"].volume_id == "aaaabbbbccccddddeeeeffff00001111" && length(openstack_compute_volume_attach_v2.volume) == 6
    error_message = "the existing volume is attached by its id, with the created ones"
  }
  assert {
    condition     = yamldecode(module.configuration.hieradata["atlas-db1"]).terraform.volumes.data.device == "/dev/disk/by-id/*aaaabbbbccccddddeeee*"
    error_message = "Puppet finds the existing volume by its own id"
  }
}

run "no_volumes" {
  command = plan

  variables {
    volumes = {}
  }

  assert {
    condition     = length(openstack_blockstorage_volume_v3.volume) == 0 && length(openstack_compute_volume_attach_v2.volume) == 0
    error_message = "no volumes declared, no volumes created"
  }
}

# --- public addresses -----------------------------------------------------------------------

run "floating_ips" {
  command = plan

  variables {
    network = { external_network = "Public-Network" }
  }

  override_resource {
    target          = openstack_networking_floatingip_v2.public["atlas-web1"]
    override_during = plan
    values          = { address = "198.51.100.11" }
  }

  assert {
    condition     = toset(keys(openstack_networking_floatingip_v2.public)) == toset(["atlas-web1", "atlas-web2"])
    error_message = "one floating IP per instance of a public role, none for db"
  }
  assert {
    condition     = toset(keys(openstack_networking_floatingip_associate_v2.public)) == toset(["atlas-web1", "atlas-web2"])
    error_message = "one floating IP association per public instance"
  }
  assert {
    condition     = alltrue([for hostname, fip in openstack_networking_floatingip_v2.public : fip.pool == "Public-Network" && fip.description == "Castelet atlas: ${hostname}"])
    error_message = "floating IPs come from network.external_network"
  }
  assert {
    condition     = openstack_networking_floatingip_associate_v2.public["atlas-web1"].floating_ip == "198.51.100.11"
    error_message = "an instance's association carries its own floating IP"
  }
  assert {
    condition     = output.inventory["atlas-web1"].address == "198.51.100.11" && output.inventory["atlas-web1"].testinfra_url == "ssh://castelet@198.51.100.11" && output.inventory["atlas-web1"].bastion == null
    error_message = "a public instance is reached directly on its floating IP"
  }
  assert {
    condition     = output.inventory["atlas-db2"].bastion == "198.51.100.11" && output.instances["atlas-db2"].public_address == null
    error_message = "a private instance has no public address and is reached through the first public instance"
  }
}

run "preallocated_floating_ip" {
  command = plan

  variables {
    floating_ips = { "atlas-web2" = "206.12.90.17" }
  }

  assert {
    condition     = toset(keys(openstack_networking_floatingip_v2.public)) == toset(["atlas-web1"])
    error_message = "a pre-allocated floating IP is used, not allocated again"
  }
  assert {
    condition = (
      openstack_networking_floatingip_associate_v2.public["atlas-web2"].floating_ip == "206.12.90.17" &&
      output.public_addresses["atlas-web2"] == "206.12.90.17" &&
      output.inventory["atlas-web2"].testinfra_url == "ssh://castelet@206.12.90.17"
    )
    error_message = "the pre-allocated address is associated with its instance and reaches the outputs"
  }
}

run "floating_ip_for_a_private_instance" {
  command = plan

  variables {
    floating_ips = { "atlas-db1" = "206.12.90.17" }
  }

  expect_failures = [openstack_networking_floatingip_associate_v2.public]
}

run "no_public_role" {
  command = plan

  variables {
    roles = {
      db = { count = 2, flavor = "c4-15gb-83", public = false, min_vcpus = 4, min_ram_mb = 15000, min_disk_gb = 40, puppet_class = "castelet::role::base" }
    }
    services = [{ name = "mysql", port = 3306, protocol = "tcp", exposure = "admin", role = "db" }]
    volumes  = {}
  }

  # nothing could push the Puppet environment to the instances: refused at plan
  expect_failures = [openstack_compute_instance_v2.instance]
}

# --- network --------------------------------------------------------------------------------

run "discovered_network" {
  command = plan

  override_data {
    target          = data.openstack_networking_subnet_v2.existing[0]
    override_during = plan
    values          = { id = "subnet-def-atlas", network_id = "net-def-atlas" }
  }

  assert {
    condition = (
      length(openstack_networking_network_v2.main) == 0 && length(openstack_networking_subnet_v2.main) == 0 &&
      length(openstack_networking_router_v2.main) == 0 && length(openstack_networking_router_interface_v2.main) == 0 &&
      length(data.openstack_networking_network_v2.existing) == 0
    )
    error_message = "by default the project's network is used: no network, subnet, router or interface is created"
  }
  assert {
    condition = (
      data.openstack_networking_subnet_v2.existing[0].ip_version == 4 &&
      data.openstack_networking_subnet_v2.existing[0].dhcp_enabled &&
      data.openstack_networking_subnet_v2.existing[0].network_id == "net-def-atlas"
    )
    error_message = "the project's IPv4 DHCP subnet is looked up, in any network"
  }
  assert {
    condition = alltrue([
      for port in values(openstack_networking_port_v2.instance) :
      port.network_id == "net-def-atlas" && one(port.fixed_ip).subnet_id == "subnet-def-atlas"
    ])
    error_message = "ports join the discovered subnet and its network"
  }
  assert {
    condition     = data.openstack_networking_network_v2.external.name == "Public-Network" && data.openstack_networking_network_v2.external.external
    error_message = "the external network is detected (external = true, no name; the stand-in answers Public-Network) unless named"
  }
}

run "named_network" {
  command = plan

  variables {
    network = { name = "def-atlas-network" }
  }

  assert {
    condition = (
      data.openstack_networking_network_v2.existing[0].name == "def-atlas-network" &&
      data.openstack_networking_subnet_v2.existing[0].network_id == data.openstack_networking_network_v2.existing[0].id &&
      length(openstack_networking_network_v2.main) == 0
    )
    error_message = "a named network is looked up and its subnet found in it"
  }
}

run "created_network" {
  command = plan

  variables {
    network = { create = true, dns_nameservers = ["206.12.0.10"] }
  }

  override_resource {
    target          = openstack_networking_subnet_v2.main[0]
    override_during = plan
    values          = { id = "subnet-atlas" }
  }

  assert {
    condition = (
      length(openstack_networking_network_v2.main) == 1 && length(openstack_networking_subnet_v2.main) == 1 &&
      length(openstack_networking_router_v2.main) == 1 && length(openstack_networking_router_interface_v2.main) == 1 &&
      length(data.openstack_networking_subnet_v2.existing) == 0
    )
    error_message = "network.create creates a network, subnet, router and interface"
  }
  assert {
    condition = (
      openstack_networking_network_v2.main[0].name == "atlas-network" &&
      openstack_networking_subnet_v2.main[0].name == "atlas-subnet" &&
      openstack_networking_subnet_v2.main[0].cidr == "10.20.0.0/24" &&
      openstack_networking_subnet_v2.main[0].ip_version == 4 &&
      openstack_networking_subnet_v2.main[0].dns_nameservers == tolist(["206.12.0.10"]) &&
      openstack_networking_router_v2.main[0].name == "atlas-router"
    )
    error_message = "network, subnet (default 10.20.0.0/24, IPv4, the given DNS servers) and router are named after the deployment"
  }
  assert {
    condition     = openstack_networking_router_v2.main[0].external_network_id == data.openstack_networking_network_v2.external.id
    error_message = "the router's gateway is the external network"
  }
  assert {
    condition     = alltrue([for port in values(openstack_networking_port_v2.instance) : one(port.fixed_ip).subnet_id == "subnet-atlas"])
    error_message = "ports get a fixed IP on the created subnet"
  }
}

run "created_network_without_dns" {
  command = plan

  variables {
    network = { create = true }
  }

  expect_failures = [var.network]
}
