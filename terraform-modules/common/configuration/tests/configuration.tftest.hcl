# Offline tests of the configuration module: the rendered user-data is decoded with
# yamldecode and checked field by field. Fixture environments live in tests/fixtures/.

variables {
  name = "atlas"
  instances = {
    "atlas-web1" = { role = "web", puppet_class = "castelet::role::lamp" }
    "atlas-web2" = { role = "web", puppet_class = "castelet::role::lamp" }
    "atlas-db1"  = { role = "db" }
  }
  volumes = {
    "atlas-db1-data"   = { instance = "atlas-db1", role = "db", name = "data", size_gb = 50, mount = "/srv/data" }
    "atlas-db1-backup" = { instance = "atlas-db1", role = "db", name = "backup", size_gb = 20, mount = "/srv/backup" }
    "atlas-web1-files" = { instance = "atlas-web1", role = "web", name = "files", size_gb = 10, mount = "/var/www/files" }
  }
  volume_devices = {
    "atlas-db1-data"   = "/dev/disk/by-id/virtio-0123456789abcdef0123"
    "atlas-db1-backup" = null
  }
  # The design module's firewall_rules output for web (http public, node-exporter admin) and db.
  firewall_rules = {
    web = [
      { name = "ssh", port = 22, protocol = "tcp", cidr = "203.0.113.7/32", exposure = "admin" },
      { name = "http", port = 80, protocol = "tcp", cidr = "0.0.0.0/0", exposure = "public" },
      { name = "http3", port = 443, protocol = "udp", cidr = "0.0.0.0/0", exposure = "public" },
      { name = "node-exporter", port = 9100, protocol = "tcp", cidr = "203.0.113.7/32", exposure = "admin" },
    ]
    db = [
      { name = "ssh", port = 22, protocol = "tcp", cidr = "203.0.113.7/32", exposure = "admin" },
      { name = "mysql", port = 3306, protocol = "tcp", cidr = "203.0.113.7/32", exposure = "admin" },
    ]
  }
  admin_cidr  = "203.0.113.7/32"
  domain      = "atlas.example.org"
  admin_email = "ops@example.org"
  public_keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin@example.org",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYFixtureKeyTwo ops@example.org",
  ]
  puppet_environment_path = "tests/fixtures/env-a"
}

run "admin_user_and_keys" {
  command = plan

  assert {
    condition     = toset(keys(output.user_data)) == toset(["atlas-web1", "atlas-web2", "atlas-db1"])
    error_message = "one user-data document per instance"
  }
  assert {
    condition     = alltrue([for h, ud in output.user_data : startswith(ud, "#cloud-config\n")])
    error_message = "user-data must start with #cloud-config"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-web1"]).users[0].name == "castelet"
    error_message = "the default admin user is castelet"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-web1"]).users[0].sudo == "ALL=(ALL) NOPASSWD:ALL"
    error_message = "the admin user must have passwordless sudo"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-web1"]).users[0].shell == "/bin/bash" && yamldecode(output.user_data["atlas-web1"]).users[0].lock_passwd == true
    error_message = "the admin user must use bash and have a locked password"
  }
  assert {
    condition     = jsonencode(yamldecode(output.user_data["atlas-db1"]).users[0].ssh_authorized_keys) == jsonencode(var.public_keys)
    error_message = "every public key must be authorised for the admin user"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-db1"]).disable_root == true && yamldecode(output.user_data["atlas-db1"]).ssh_pwauth == false
    error_message = "root login and SSH passwords must be disabled"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-web2"]).hostname == "atlas-web2"
    error_message = "cloud-init must set the hostname"
  }
}

run "custom_admin_user" {
  command = plan

  variables {
    admin_user = "ops"
  }

  assert {
    condition     = yamldecode(output.user_data["atlas-web1"]).users[0].name == "ops"
    error_message = "admin_user must name the created account"
  }
}

run "puppet_environment_files" {
  command = plan

  assert {
    condition     = jsonencode(output.environment_files) == jsonencode(["data/common.yaml", "data/roles/web.yaml", "environment.conf", "hiera.yaml", "manifests/site.pp", "modules/castelet/manifests/init.pp"])
    error_message = "every environment file but data/terraform.yaml, in sorted order"
  }
  assert {
    condition = alltrue([for host, doc in output.user_data : length([
      for wf in yamldecode(doc).write_files : wf
      if startswith(wf.path, "/etc/puppet/code/environments/production/") && wf.path != "/etc/puppet/code/environments/production/data/terraform.yaml"
    ]) == 0])
    error_message = "user-data carries no Puppet environment file (the provision step pushes them), only data/terraform.yaml"
  }
  assert {
    condition     = alltrue([for host, doc in output.user_data : length(doc) < 16384])
    error_message = "user-data must stay under 16 KiB"
  }
  assert {
    condition = length([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf
      if wf.path == "/etc/puppet/code/environments/production/data/terraform.yaml"
    ]) == 1
    error_message = "data/terraform.yaml must be written exactly once (the stale fixture copy must be skipped)"
  }
  assert {
    condition     = can(regex("^[0-9a-f]{64}$", output.environment_hash))
    error_message = "environment_hash must be a sha256 hex digest"
  }
}

run "hieradata_terraform_yaml" {
  command = plan

  assert {
    condition     = alltrue([for h, data in output.hieradata : jsonencode(keys(yamldecode(data))) == jsonencode(["terraform"])])
    error_message = "the hieradata is one `terraform` hash per node, nothing else"
  }
  assert {
    condition = toset(keys(yamldecode(output.hieradata["atlas-web1"]).terraform)) == toset([
      "deployment", "domain", "admin_email", "admin_user", "admin_users", "admin_cidr", "client_cidrs", "timezone",
      "settings", "nodes", "role", "role_class", "firewall_rules", "volumes", "data_dir", "backups",
    ])
    error_message = "terraform carries exactly the documented keys"
  }
  assert {
    condition     = yamldecode(output.hieradata["atlas-web1"]).terraform.deployment == "atlas"
    error_message = "terraform.deployment must be the deployment name"
  }
  assert {
    condition = (
      yamldecode(output.hieradata["atlas-db1"]).terraform.domain == "atlas.example.org" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.admin_email == "ops@example.org" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.admin_cidr == "203.0.113.7/32" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.timezone == "UTC" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.client_cidrs == [] &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.settings == {}
    )
    error_message = "domain, admin_email and admin_cidr are passed through; timezone defaults to UTC, client_cidrs to [], settings to {}"
  }
  assert {
    condition = (
      yamldecode(output.hieradata["atlas-web2"]).terraform.admin_user == "castelet" &&
      jsonencode(yamldecode(output.hieradata["atlas-web2"]).terraform.admin_users) == jsonencode({
        castelet = { ssh_keys = [
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin@example.org",
          "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYFixtureKeyTwo ops@example.org",
        ] }
      })
    )
    error_message = "admin_users maps the admin user to every public key"
  }
  assert {
    condition = yamldecode(output.hieradata["atlas-web2"]).terraform.nodes == {
      "atlas-web1" = { role = "web" }
      "atlas-web2" = { role = "web" }
      "atlas-db1"  = { role = "db" }
    }
    error_message = "terraform.nodes must list every instance with its role"
  }
  assert {
    condition = (
      yamldecode(output.hieradata["atlas-web1"]).terraform.role == "web" &&
      yamldecode(output.hieradata["atlas-web1"]).terraform.role_class == "castelet::role::lamp" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.role == "db" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.role_class == "castelet::role::base"
    )
    error_message = "role and role_class are the instance's own; role_class defaults to castelet::role::base"
  }
  assert {
    condition = jsonencode(yamldecode(output.hieradata["atlas-web1"]).terraform.firewall_rules) == jsonencode([
      { name = "http", port = 80, protocol = "tcp", source = "0.0.0.0/0" },
      { name = "http-ipv6", port = 80, protocol = "tcp", source = "::/0" },
      { name = "http3", port = 443, protocol = "udp", source = "0.0.0.0/0" },
      { name = "http3-ipv6", port = 443, protocol = "udp", source = "::/0" },
      { name = "node-exporter", port = 9100, protocol = "tcp", source = "203.0.113.7/32" },
    ])
    error_message = "public rules come twice (0.0.0.0/0 and <name>-ipv6 ::/0), admin rules from their CIDR, the ssh rule not at all"
  }
  assert {
    condition = jsonencode(yamldecode(output.hieradata["atlas-db1"]).terraform.firewall_rules) == jsonencode([
      { name = "mysql", port = 3306, protocol = "tcp", source = "203.0.113.7/32" },
    ])
    error_message = "db gets only its own admin rule (no ssh, no ipv6 twin for an admin service)"
  }
  assert {
    condition = yamldecode(output.hieradata["atlas-db1"]).terraform.volumes == {
      data   = { mount = "/srv/data", device = "/dev/disk/by-id/virtio-0123456789abcdef0123" }
      backup = { mount = "/srv/backup" }
    }
    error_message = "db1 must see only its own volumes, with the device only when it is known"
  }
  assert {
    condition     = yamldecode(output.hieradata["atlas-web1"]).terraform.volumes == { files = { mount = "/var/www/files" } }
    error_message = "web1 must see only its own volume (no device given => no device key)"
  }
  assert {
    condition     = length(yamldecode(output.hieradata["atlas-web2"]).terraform.volumes) == 0
    error_message = "an instance without volumes gets an empty terraform.volumes"
  }
  assert {
    condition = yamldecode(one([
      for wf in yamldecode(output.user_data["atlas-db1"]).write_files : wf.content
      if wf.path == "/etc/puppet/code/environments/production/data/terraform.yaml"
      ])).terraform == merge(yamldecode(output.hieradata["atlas-db1"]).terraform, {
      volumes = { for name, v in yamldecode(output.hieradata["atlas-db1"]).terraform.volumes : name => { mount = v.mount } }
    })
    error_message = "user-data must carry this node's hieradata as data/terraform.yaml, without volume devices (known after attachment, day 2)"
  }
  # data_dir: the mount point of the node's first volume by name (db1: backup < data).
  assert {
    condition = (
      yamldecode(output.hieradata["atlas-db1"]).terraform.data_dir == "/srv/backup" &&
      yamldecode(output.hieradata["atlas-web1"]).terraform.data_dir == "/var/www/files" &&
      yamldecode(output.hieradata["atlas-web2"]).terraform.data_dir == null
    )
    error_message = "data_dir is the mount point of the node's first volume in name order, null without a volume"
  }
  assert {
    condition     = alltrue([for h, data in output.hieradata : yamldecode(data).terraform.backups == null])
    error_message = "no backups given: terraform.backups is null on every node"
  }
}

run "client_networks_reach_puppet" {
  command = plan

  variables {
    client_cidrs = ["10.20.0.0/16", "2001:DB8:42::/48", "10.20.0.0/16"]
    firewall_rules = {
      db = [
        { name = "ssh", port = 22, protocol = "tcp", cidr = "203.0.113.7/32", exposure = "admin" },
        { name = "postgresql", port = 5432, protocol = "tcp", cidr = "10.20.0.0/16", exposure = "clients" },
        { name = "postgresql", port = 5432, protocol = "tcp", cidr = "2001:db8:42::/48", exposure = "clients" },
      ]
    }
  }

  assert {
    condition     = alltrue([for h, data in output.hieradata : yamldecode(data).terraform.client_cidrs == ["10.20.0.0/16", "2001:db8:42::/48"]])
    error_message = "every node gets terraform.client_cidrs: the client networks in canonical form, each once"
  }
  assert {
    condition = jsonencode(yamldecode(output.hieradata["atlas-db1"]).terraform.firewall_rules) == jsonencode([
      { name = "postgresql", port = 5432, protocol = "tcp", source = "10.20.0.0/16" },
      { name = "postgresql", port = 5432, protocol = "tcp", source = "2001:db8:42::/48" },
    ])
    error_message = "a clients rule reaches the host firewall once per network, from that network only (no ::/0 twin)"
  }
  assert {
    condition     = length(yamldecode(output.hieradata["atlas-web1"]).terraform.firewall_rules) == 0
    error_message = "a role without clients service gets no client rule"
  }
}

run "rejects_client_cidr_that_is_no_network" {
  command = plan

  variables {
    client_cidrs = ["10.20.0.0/16", "fd00::1::/64"]
  }

  expect_failures = [var.client_cidrs]
}

run "backups_on_the_role_of_the_first_volume" {
  command = plan

  variables {
    backups = {
      paths     = ["/srv/backup/files", "/etc/%%{x}"]
      databases = [{ engine = "mariadb", name = "app" }]
    }
  }

  # The first volume by key is atlas-db1-backup: db holds the backups.
  assert {
    condition = jsonencode(yamldecode(output.hieradata["atlas-db1"]).terraform.backups) == jsonencode({
      databases = [{ engine = "mariadb", name = "app" }]
      paths     = ["/srv/backup/files", "/etc/%%{literal('%')}{x}"]
    })
    error_message = "the backups reach the node of the first volume's role, paths escaped for hiera"
  }
  assert {
    condition     = yamldecode(output.hieradata["atlas-web1"]).terraform.backups == null && yamldecode(output.hieradata["atlas-web2"]).terraform.backups == null
    error_message = "the other roles get terraform.backups = null"
  }
  assert {
    condition = yamldecode(one([
      for wf in yamldecode(output.user_data["atlas-db1"]).write_files : wf.content
      if wf.path == "/etc/puppet/code/environments/production/data/terraform.yaml"
    ])).terraform.backups.databases == [{ engine = "mariadb", name = "app" }]
    error_message = "first boot's hieradata carries the backups too"
  }
}

run "backups_on_the_named_role" {
  command = plan

  variables {
    backups = { role = "web", paths = ["/var/www/files"] }
  }

  assert {
    condition = alltrue([
      for h, data in output.hieradata : (yamldecode(data).terraform.backups != null) == startswith(h, "atlas-web")
    ])
    error_message = "backups.role decides which nodes back up"
  }
  assert {
    condition     = jsonencode(yamldecode(output.hieradata["atlas-web2"]).terraform.backups) == jsonencode({ databases = [], paths = ["/var/www/files"] })
    error_message = "databases default to an empty list"
  }
}

run "backups_without_volumes_go_to_the_first_role" {
  command = plan

  variables {
    volumes        = {}
    volume_devices = {}
    backups        = { paths = ["/etc/castelet"] }
  }

  assert {
    condition = (
      yamldecode(output.hieradata["atlas-db1"]).terraform.backups.paths == ["/etc/castelet"] &&
      yamldecode(output.hieradata["atlas-web1"]).terraform.backups == null
    )
    error_message = "without volumes, the first role by name (db) holds the backups"
  }
  assert {
    condition     = alltrue([for h, data in output.hieradata : yamldecode(data).terraform.data_dir == null])
    error_message = "without volumes, data_dir is null everywhere"
  }
}

run "hieradata_without_firewall_rules" {
  command = plan

  variables {
    firewall_rules = {}
  }

  assert {
    condition     = alltrue([for h, data in output.hieradata : length(yamldecode(data).terraform.firewall_rules) == 0])
    error_message = "a role without firewall rules gets an empty terraform.firewall_rules"
  }
}

# Hiera interpolates %{...} in every string it reads: text from terraform.tfvars must reach
# Puppet as written. (In HCL, "%%{" is a literal %{.)
run "hieradata_escapes_hiera_interpolation" {
  command = plan

  variables {
    public_keys = [
      "  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin-%%{lookup('x')}@example.org\n",
    ]
    domain      = "%%{hiera('domain')}.example.org"
    admin_email = "%%{lookup('mail')}@example.org"
    timezone    = "Europe/%%{x}"
    settings = {
      site_title = "Atlas %%{alias('terraform.domain')} 100%"
      plain      = "no interpolation here"
    }
  }

  assert {
    condition = jsonencode(yamldecode(output.hieradata["atlas-web1"]).terraform.admin_users.castelet.ssh_keys) == jsonencode([
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin-%%{literal('%')}{lookup('x')}@example.org",
    ])
    error_message = "a %%{ in a key comment reaches hiera as %%{literal('%')}{ (the key trimmed)"
  }
  assert {
    condition = (
      yamldecode(output.hieradata["atlas-db1"]).terraform.domain == "%%{literal('%')}{hiera('domain')}.example.org" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.admin_email == "%%{literal('%')}{lookup('mail')}@example.org" &&
      yamldecode(output.hieradata["atlas-db1"]).terraform.timezone == "Europe/%%{literal('%')}{x}"
    )
    error_message = "domain, admin_email and timezone are escaped for hiera"
  }
  assert {
    condition = yamldecode(output.hieradata["atlas-db1"]).terraform.settings == {
      site_title = "Atlas %%{literal('%')}{alias('terraform.domain')} 100%"
      plain      = "no interpolation here"
    }
    error_message = "settings are escaped for hiera; a lone % is left alone"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-web1"]).users[0].ssh_authorized_keys == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin-%%{lookup('x')}@example.org"]
    error_message = "cloud-init (no hiera) gets the key as written, trimmed"
  }
}

run "role_fact_scripts_and_runcmd" {
  command = plan

  assert {
    condition = yamldecode(one([
      for wf in yamldecode(output.user_data["atlas-db1"]).write_files : wf.content
      if wf.path == "/etc/facter/facts.d/castelet.yaml"
    ])) == { castelet_role = "db" }
    error_message = "the external fact castelet_role must be the instance's role"
  }
  assert {
    condition = yamldecode(one([
      for wf in yamldecode(output.user_data["atlas-web2"]).write_files : wf.content
      if wf.path == "/etc/facter/facts.d/castelet.yaml"
    ])).castelet_role == "web"
    error_message = "web2's fact must say web"
  }
  assert {
    condition = one([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf
      if wf.path == "/usr/local/sbin/castelet-bootstrap"
    ]).permissions == "0755"
    error_message = "castelet-bootstrap must be executable"
  }
  assert {
    condition = one([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf.content
      if wf.path == "/usr/local/sbin/castelet-puppet-apply"
    ]) == base64gzip(file("files/castelet-puppet-apply.sh"))
    error_message = "castelet-puppet-apply must be the module's script (gz+b64, decoded by cloud-init)"
  }
  assert {
    condition = length([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf
      if contains(["/usr/local/lib/castelet/castelet-status.sh", "/usr/local/sbin/castelet-install-environment"], wf.path)
    ]) == 2
    error_message = "the status helpers and castelet-install-environment must be written"
  }
  assert {
    condition = one([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf
      if wf.path == "/usr/local/sbin/castelet-volumes"
    ]) == { path = "/usr/local/sbin/castelet-volumes", content = base64gzip(file("files/castelet-volumes.py")), encoding = "gz+b64", owner = "root:root", permissions = "0755" }
    error_message = "castelet-volumes must be the module's script, executable"
  }
  assert {
    condition = one([
      for wf in yamldecode(output.user_data["atlas-db1"]).write_files : wf
      if wf.path == "/usr/local/sbin/castelet-secrets"
    ]) == { path = "/usr/local/sbin/castelet-secrets", content = base64gzip(file("files/castelet-secrets.sh")), encoding = "gz+b64", owner = "root:root", permissions = "0700" }
    error_message = "castelet-secrets must be the module's script, root-only (0700)"
  }
  assert {
    condition = strcontains(one([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf.content
      if wf.path == "/etc/castelet/bootstrap.conf"
    ]), "CASTELET_PACKAGES=\"puppet-agent puppet-module-puppetlabs-apache puppet-module-puppetlabs-mysql")
    error_message = "bootstrap.conf must list the puppet packages for castelet-bootstrap"
  }
  assert {
    condition     = yamldecode(output.user_data["atlas-web1"]).runcmd == [["/usr/local/sbin/castelet-bootstrap"]]
    error_message = "runcmd must run castelet-bootstrap"
  }
}

run "env_a" {
  command = plan
}

run "env_a_is_deterministic" {
  command = plan

  assert {
    condition     = output.environment_hash == run.env_a.environment_hash && output.user_data == run.env_a.user_data
    error_message = "the same inputs must render byte-identical user-data and the same hash"
  }
}

run "env_b_changes_hash" {
  command = plan

  variables {
    puppet_environment_path = "tests/fixtures/env-b"
  }

  assert {
    condition     = output.environment_hash != run.env_a.environment_hash
    error_message = "changing one environment file must change environment_hash"
  }
  assert {
    condition     = output.hieradata == run.env_a.hieradata
    error_message = "the hieradata does not depend on the environment files"
  }
}

run "accepts_empty_public_keys" {
  command = plan

  variables {
    public_keys = []
  }

  assert {
    condition     = !contains(keys(yamldecode(output.user_data["atlas-web1"]).users[0]), "ssh_authorized_keys")
    error_message = "no public keys, no ssh_authorized_keys at all (cloud-init's schema refuses an empty list; LXD gets in with lxc exec)"
  }
  assert {
    condition     = jsonencode(yamldecode(output.hieradata["atlas-web1"]).terraform.admin_users) == jsonencode({ castelet = { ssh_keys = [] } })
    error_message = "the admin user is still declared to Puppet, with no keys"
  }
}

run "backup_append_only_reaches_puppet_and_only_as_a_boolean_word" {
  command = plan

  variables {
    settings = { backup_append_only = "true" }
  }

  assert {
    condition     = yamldecode(output.hieradata["atlas-web1"]).terraform.settings.backup_append_only == "true"
    error_message = "settings.backup_append_only reaches the hieradata (castelet::profile::backup::append_only)"
  }
}

run "rejects_backup_append_only_that_is_no_boolean" {
  command = plan

  variables {
    settings = { backup_append_only = "yes; rm -rf /" }
  }

  expect_failures = [var.settings]
}

run "rejects_non_ssh_key" {
  command = plan

  variables {
    public_keys = ["-----BEGIN RSA PRIVATE KEY-----"]
  }

  expect_failures = [var.public_keys]
}

run "rejects_environment_without_site_pp" {
  command = plan

  variables {
    puppet_environment_path = "tests/fixtures"
  }

  expect_failures = [var.puppet_environment_path]
}

run "rejects_root_admin_user" {
  command = plan

  variables {
    admin_user = "root"
  }

  expect_failures = [var.admin_user]
}
