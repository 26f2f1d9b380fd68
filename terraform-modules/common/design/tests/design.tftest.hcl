# Offline tests of the design module: no provider is needed.

variables {
  name  = "atlas"
  image = "Debian-12"
  roles = {
    web = { count = 2, flavor = "p2-3gb", public = true, min_vcpus = 2, min_ram_mb = 2048, min_disk_gb = 20 }
    db  = { count = 1, flavor = "p4-6gb", image = "Debian-12-custom", public = false, min_vcpus = 2, min_ram_mb = 4096, min_disk_gb = 40, puppet_class = "castelet::role::db_server" }
  }
  services = [
    { name = "http", port = 80, protocol = "tcp", exposure = "public", role = "web" },
    { name = "https", port = 443, protocol = "tcp", exposure = "public", role = "web" },
    { name = "mysql", port = 3306, protocol = "tcp", exposure = "admin", role = "db" },
  ]
  volumes = {
    data  = { role = "db", size_gb = 50, mount = "/srv/data" }
    files = { role = "web", size_gb = 10, mount = "/var/www/files" }
  }
  admin_cidr = "203.0.113.7/32"
}

run "hostnames_and_counts" {
  command = plan

  assert {
    condition     = length(output.instances) == 3
    error_message = "expected 2 web + 1 db instances"
  }
  assert {
    condition     = toset(keys(output.instances)) == toset(["atlas-web1", "atlas-web2", "atlas-db1"])
    error_message = "hostnames must be <name>-<role><index> with index from 1"
  }
  assert {
    condition     = output.instances["atlas-web2"].index == 2 && output.instances["atlas-web2"].role == "web"
    error_message = "atlas-web2 must be index 2 of role web"
  }
  assert {
    condition     = output.instances["atlas-web1"].image == "Debian-12" && output.instances["atlas-db1"].image == "Debian-12-custom"
    error_message = "a role image overrides the default image, other roles use the default"
  }
  assert {
    condition     = output.instances["atlas-db1"].flavor == "p4-6gb" && output.instances["atlas-db1"].public == false && output.instances["atlas-web1"].public == true
    error_message = "flavor and public must be copied from the role"
  }
  assert {
    condition     = output.instances["atlas-db1"].min_ram_mb == 4096 && output.instances["atlas-db1"].min_disk_gb == 40 && output.instances["atlas-web1"].min_vcpus == 2
    error_message = "minimum resources must be copied from the role"
  }
  assert {
    condition     = output.instances["atlas-db1"].puppet_class == "castelet::role::db_server" && output.instances["atlas-web2"].puppet_class == "castelet::role::base"
    error_message = "instances carry their role's puppet_class, castelet::role::base by default"
  }
}

run "zero_count_role_has_no_instance" {
  command = plan

  variables {
    roles = {
      web = { count = 1, flavor = "p2-3gb", public = true, min_vcpus = 1, min_ram_mb = 1024, min_disk_gb = 10 }
      db  = { count = 0, flavor = "p2-3gb", public = false, min_vcpus = 1, min_ram_mb = 1024, min_disk_gb = 10 }
    }
  }

  assert {
    condition     = keys(output.instances) == ["atlas-web1"]
    error_message = "a role with count 0 must not produce instances"
  }
  assert {
    condition     = keys(output.volumes) == ["atlas-web1-files"]
    error_message = "volumes of a role with no instance must not be produced"
  }
  assert {
    condition     = length(output.firewall_rules["db"]) == 2
    error_message = "firewall rules are still computed for a role with count 0"
  }
}

run "volumes_expanded_per_instance" {
  command = plan

  assert {
    condition     = toset(keys(output.volumes)) == toset(["atlas-web1-files", "atlas-web2-files", "atlas-db1-data"])
    error_message = "each instance must get one volume per volume of its role"
  }
  assert {
    condition     = output.volumes["atlas-web2-files"].instance == "atlas-web2" && output.volumes["atlas-web2-files"].name == "files" && output.volumes["atlas-web2-files"].role == "web"
    error_message = "volume must name its instance, role and volume name"
  }
  assert {
    condition     = output.volumes["atlas-db1-data"].size_gb == 50 && output.volumes["atlas-db1-data"].mount == "/srv/data"
    error_message = "volume size and mount must be copied"
  }
  assert {
    condition     = alltrue([for volume in values(output.volumes) : volume.existing == null])
    error_message = "without existing_volumes, every volume is to be created"
  }
}

run "existing_volume_is_marked" {
  command = plan

  variables {
    existing_volumes = { "atlas-db1-data" = "atlas-old-data" }
  }

  assert {
    condition     = output.volumes["atlas-db1-data"].existing == "atlas-old-data" && output.volumes["atlas-web1-files"].existing == null
    error_message = "an existing volume carries its name; the others none"
  }
}

run "rejects_existing_volume_that_is_no_design_volume" {
  command = plan

  variables {
    existing_volumes = { "atlas-web3-files" = "old-files" }
  }

  expect_failures = [output.volumes]
}

run "firewall_rules" {
  command = plan

  assert {
    condition     = toset(keys(output.firewall_rules)) == toset(["web", "db"])
    error_message = "one rule list per role"
  }
  assert {
    condition = alltrue([for role, rules in output.firewall_rules : length([
      for r in rules : r if r.port == 22 && r.protocol == "tcp" && r.cidr == "203.0.113.7/32"
    ]) == 1])
    error_message = "every role must open SSH 22/tcp from admin_cidr exactly once"
  }
  assert {
    condition = alltrue([for role, rules in output.firewall_rules : alltrue([
      for r in rules : r.cidr == "203.0.113.7/32" if r.port == 22
    ])])
    error_message = "SSH must only be opened to admin_cidr"
  }
  assert {
    condition     = [for r in output.firewall_rules["web"] : "${r.name}:${r.port}/${r.protocol}<${r.cidr}"] == ["ssh:22/tcp<203.0.113.7/32", "http:80/tcp<0.0.0.0/0", "https:443/tcp<0.0.0.0/0"]
    error_message = "web must open ssh from admin_cidr then http/https from anywhere"
  }
  assert {
    condition     = [for r in output.firewall_rules["db"] : "${r.name}:${r.port}/${r.protocol}<${r.cidr}"] == ["ssh:22/tcp<203.0.113.7/32", "mysql:3306/tcp<203.0.113.7/32"]
    error_message = "an admin service must only be opened to admin_cidr"
  }
  assert {
    condition     = [for r in output.firewall_rules["web"] : r.exposure] == ["admin", "public", "public"]
    error_message = "rules must carry their exposure"
  }
}

run "rejects_bad_admin_cidr" {
  command = plan

  variables {
    admin_cidr = "203.0.113.7"
  }

  expect_failures = [var.admin_cidr]
}

run "rejects_bad_puppet_class" {
  command = plan

  variables {
    roles = {
      web = { count = 1, flavor = "p2-3gb", public = true, min_vcpus = 1, min_ram_mb = 1024, min_disk_gb = 10, puppet_class = "Castelet::Role::Web; exec" }
    }
    services = []
    volumes  = {}
  }

  expect_failures = [var.roles]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "Atlas_1"
  }

  expect_failures = [var.name]
}

run "rejects_bad_protocol" {
  command = plan

  variables {
    services = [{ name = "http", port = 80, protocol = "icmp", exposure = "public", role = "web" }]
  }

  expect_failures = [var.services]
}

run "rejects_service_with_unknown_role" {
  command = plan

  variables {
    services = [{ name = "http", port = 80, protocol = "tcp", exposure = "public", role = "frontend" }]
  }

  expect_failures = [output.firewall_rules]
}

run "rejects_volume_with_unknown_role" {
  command = plan

  variables {
    volumes = { data = { role = "cache", size_gb = 5, mount = "/srv/cache" } }
  }

  expect_failures = [output.volumes]
}

run "clients_service_gets_one_rule_per_client_network" {
  command = plan

  variables {
    services = [
      { name = "http", port = 80, protocol = "tcp", exposure = "public", role = "web" },
      { name = "postgresql", port = 5432, protocol = "tcp", exposure = "clients", role = "db" },
      { name = "mysql", port = 3306, protocol = "tcp", exposure = "admin", role = "db" },
    ]
    client_cidrs = ["10.20.0.0/16", "2001:DB8:42::/48", "192.168.7.9/24", "10.20.0.0/16"]
  }

  assert {
    condition = [for r in output.firewall_rules["db"] : "${r.name}:${r.port}/${r.protocol}<${r.cidr}:${r.exposure}"] == [
      "ssh:22/tcp<203.0.113.7/32:admin",
      "postgresql:5432/tcp<10.20.0.0/16:clients",
      "postgresql:5432/tcp<2001:db8:42::/48:clients",
      "postgresql:5432/tcp<192.168.7.0/24:clients",
      "mysql:3306/tcp<203.0.113.7/32:admin",
    ]
    error_message = "a clients service opens its port once to each client network (canonical form, each once, in order), and to nothing else"
  }
  assert {
    condition     = [for r in output.firewall_rules["web"] : r.cidr] == ["203.0.113.7/32", "0.0.0.0/0"]
    error_message = "client networks must not reach the services of other roles"
  }
}

run "clients_service_without_client_networks_is_open_to_nobody" {
  command = plan

  variables {
    services = [{ name = "postgresql", port = 5432, protocol = "tcp", exposure = "clients", role = "db" }]
  }

  assert {
    condition     = [for r in output.firewall_rules["db"] : r.name] == ["ssh"]
    error_message = "with no client_cidrs a clients service has no rule at all"
  }
}

run "rejects_client_cidr_that_is_no_network" {
  command = plan

  variables {
    client_cidrs = ["10.0.0.1"]
  }

  expect_failures = [var.client_cidrs]
}

run "rejects_client_cidr_of_the_whole_internet" {
  command = plan

  variables {
    client_cidrs = ["10.0.0.0/8", "::/0"]
  }

  expect_failures = [var.client_cidrs]
}

run "rejects_unknown_exposure" {
  command = plan

  variables {
    services = [{ name = "postgresql", port = 5432, protocol = "tcp", exposure = "everyone", role = "db" }]
  }

  expect_failures = [var.services]
}
