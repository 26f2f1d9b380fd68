# Offline plan tests of the provision module: provisioners never run during plan, so no SSH
# host is needed. They check what triggers a re-provisioning and how hosts are reached.

variables {
  instances = {
    "atlas-web1" = { address = "198.51.100.10", id = "id-web1" }
    "atlas-db1"  = { address = "10.20.0.12", bastion_host = "198.51.100.10" }
  }
  environment_hash = "0000000000000000000000000000000000000000000000000000000000000001"
  hieradata = {
    "atlas-web1" = "terraform:\n  deployment: atlas\n"
    "atlas-db1"  = "terraform:\n  deployment: atlas\n  volumes: {}\n"
  }
  puppet_environment_path = "../configuration/tests/fixtures/env-a"
}

run "one_resource_per_instance" {
  command = plan

  assert {
    condition     = toset(keys(terraform_data.puppet)) == toset(["atlas-web1", "atlas-db1"])
    error_message = "one terraform_data per instance"
  }
  assert {
    condition     = terraform_data.puppet["atlas-web1"].triggers_replace.environment_hash == var.environment_hash
    error_message = "the environment hash must trigger re-provisioning"
  }
  assert {
    condition     = terraform_data.puppet["atlas-db1"].triggers_replace.hieradata == var.hieradata["atlas-db1"]
    error_message = "the node's own hieradata must trigger its re-provisioning"
  }
  assert {
    condition     = terraform_data.puppet["atlas-web1"].triggers_replace.instance == "id-web1" && terraform_data.puppet["atlas-db1"].triggers_replace.instance == "10.20.0.12"
    error_message = "a replaced instance (new id, else new address) must be provisioned again"
  }
}

run "no_instance_creates_nothing" {
  command = plan

  variables {
    instances = {}
  }

  assert {
    condition     = length(terraform_data.puppet) == 0 && length(output.provisioned) == 0
    error_message = "no SSH target must create no provisioning resource"
  }
}

run "host_key_pinned_only_for_the_instance_it_was_learned_from" {
  command = plan

  variables {
    instances = {
      "atlas-web1" = { address = "198.51.100.10", id = "id-web1" }
      "atlas-web2" = { address = "198.51.100.11", id = "id-web2-new" }
      "atlas-db1"  = { address = "10.20.0.12", id = "id-db1", bastion_host = "198.51.100.10" }
      "atlas-db2"  = { address = "10.20.0.13", id = "id-db2", bastion_host = "198.51.100.10" }
    }
    hieradata = {
      "atlas-web1" = "a"
      "atlas-web2" = "b"
      "atlas-db1"  = "c"
      "atlas-db2"  = "d"
    }
    host_keys = {
      "atlas-web1" = { id = "id-web1", key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWeb1" }
      "atlas-web2" = { id = "id-web2-old", key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWeb2" }
      "atlas-db1"  = { id = "id-db1", key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb1" }
    }
  }

  assert {
    condition     = local.pinned["atlas-web1"] == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWeb1"
    error_message = "a host whose record has its current instance id must be pinned to the recorded key"
  }
  assert {
    condition     = local.pinned["atlas-web2"] == null
    error_message = "a replaced instance (record of another id) must be learned again, not refused"
  }
  assert {
    condition     = local.pinned["atlas-db1"] == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb1" && local.pinned["atlas-db2"] == null
    error_message = "a host without a record must be trusted on first use (null host_key)"
  }
  assert {
    condition     = local.pinned_by_address == { "198.51.100.10" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWeb1" }
    error_message = "the jump host must be pinned by its address (directly reached, pinned hosts only)"
  }
}

run "host_key_without_instance_id_is_not_pinned" {
  command = plan

  variables {
    host_keys = {
      "atlas-db1" = { id = "10.20.0.12", key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb1" }
    }
  }

  assert {
    condition     = local.pinned["atlas-db1"] == null && local.pinned["atlas-web1"] == null
    error_message = "only an instance id identifies the host a key was learned from"
  }
}

run "malformed_host_key_is_refused" {
  command = plan

  variables {
    host_keys = {
      "atlas-web1" = { id = "id-web1", key = "198.51.100.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIWeb1" }
    }
  }

  expect_failures = [var.host_keys]
}

run "private_key_is_refused_as_host_key" {
  command = plan

  variables {
    host_keys = {
      "atlas-web1" = { id = "id-web1", key = "-----BEGIN OPENSSH PRIVATE KEY-----" }
    }
  }

  expect_failures = [var.host_keys]
}
