# Offline tests of the configuration module: the rendered user-data is decoded with
# yamldecode and checked field by field. Fixture environments live in tests/fixtures/.

variables {
  name = "atlas"
  instances = {
    "atlas-web1" = { role = "web" }
    "atlas-web2" = { role = "web" }
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
    condition = alltrue([for f in output.environment_files : length([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf
      if wf.path == "/etc/puppet/code/environments/production/${f}" && try(wf.encoding, "") == "gz+b64" && wf.content == base64gzip(file("tests/fixtures/env-a/${f}"))
    ]) == 1])
    error_message = "each environment file must be written once under the production environment, gz+b64 encoded, with its content"
  }
  assert {
    condition = jsonencode([
      for wf in yamldecode(output.user_data["atlas-db1"]).write_files : trimprefix(wf.path, "/etc/puppet/code/environments/production/")
      if try(wf.encoding, "") == "gz+b64"
    ]) == jsonencode(output.environment_files)
    error_message = "environment files must appear in user-data in deterministic (sorted) order"
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
    condition     = yamldecode(output.hieradata["atlas-web1"])["castelet::deployment"] == "atlas"
    error_message = "castelet::deployment must be the deployment name"
  }
  assert {
    condition = yamldecode(output.hieradata["atlas-web2"])["castelet::nodes"] == {
      "atlas-web1" = { role = "web" }
      "atlas-web2" = { role = "web" }
      "atlas-db1"  = { role = "db" }
    }
    error_message = "castelet::nodes must list every instance with its role"
  }
  assert {
    condition = yamldecode(output.hieradata["atlas-db1"])["castelet::volumes"] == {
      data   = { mount = "/srv/data", device = "/dev/disk/by-id/virtio-0123456789abcdef0123" }
      backup = { mount = "/srv/backup" }
    }
    error_message = "db1 must see only its own volumes, with the device only when it is known"
  }
  assert {
    condition     = yamldecode(output.hieradata["atlas-web1"])["castelet::volumes"] == { files = { mount = "/var/www/files" } }
    error_message = "web1 must see only its own volume (no device given => no device key)"
  }
  assert {
    condition     = length(yamldecode(output.hieradata["atlas-web2"])["castelet::volumes"]) == 0
    error_message = "an instance without volumes gets an empty castelet::volumes"
  }
  assert {
    condition = one([
      for wf in yamldecode(output.user_data["atlas-db1"]).write_files : wf.content
      if wf.path == "/etc/puppet/code/environments/production/data/terraform.yaml"
    ]) == output.hieradata["atlas-db1"]
    error_message = "user-data must carry this node's hieradata as data/terraform.yaml"
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
    ]) == file("files/castelet-puppet-apply.sh")
    error_message = "castelet-puppet-apply must be the module's script"
  }
  assert {
    condition = length([
      for wf in yamldecode(output.user_data["atlas-web1"]).write_files : wf
      if contains(["/usr/local/lib/castelet/castelet-status.sh", "/usr/local/sbin/castelet-install-environment"], wf.path)
    ]) == 2
    error_message = "the status helpers and castelet-install-environment must be written"
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

run "rejects_empty_public_keys" {
  command = plan

  variables {
    public_keys = []
  }

  expect_failures = [var.public_keys]
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
