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
