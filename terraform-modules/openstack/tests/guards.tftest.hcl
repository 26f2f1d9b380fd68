# Offline tests of the openstack module's guards (preconditions of
# openstack_compute_instance_v2.instance): Nova's 65535-byte user-data limit and the roles'
# minimum flavor sizes. Planned against castelet's stand-in of terraform-provider-openstack,
# which answers flavors from its catalogue of Alliance flavor names (p2-3gb: 2 vCPU, 3072 MB, no
# root disk; c4-15gb-83: 4 vCPU, 15360 MB, a 20 GB root disk and an 83 GB ephemeral disk).
#
# Volumes only where a run says so: a volume's device path (its id) is unknown at plan, so the
# real user-data of its instance is too; the guard measures the rendering with stand-in paths.
#
# The Puppet environment is not in user-data (the provision step pushes it): what can still make
# user-data large is the deployment's own data. The runs below give it a 52,000-character
# setting: about 61 KB of user-data, over the limit once base64-encoded, a few KB gzipped.

provider "openstack" {}

variables {
  name  = "atlas"
  image = "^Debian-12"
  roles = {
    web = { count = 1, flavor = "c4-15gb-83", public = true, min_vcpus = 2, min_ram_mb = 3000, min_disk_gb = 20, puppet_class = "castelet::role::lamp" }
  }
  services                = [{ name = "http", port = 80, protocol = "tcp", exposure = "public", role = "web" }]
  public_keys             = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin@example.org"]
  admin_cidr              = "203.0.113.7/32"
  domain                  = "atlas.example.org"
  admin_email             = "ops@example.org"
  puppet_environment_path = "tests/fixtures/env-small"
}

# --- user-data size ---------------------------------------------------------------------------

run "user_data_fits_uncompressed" {
  command = plan

  variables {
    user_data_compression = "none"
  }

  assert {
    condition     = output.user_data_bytes["atlas-web1"] > 1000 && output.user_data_bytes["atlas-web1"] < 49152
    error_message = "the small fixture's user-data fits Nova's limit once base64-encoded (< 49152 bytes)"
  }
  assert {
    condition     = startswith(openstack_compute_instance_v2.instance["atlas-web1"].user_data, "#cloud-config\n")
    error_message = "with user_data_compression = none, Nova gets the plain #cloud-config document"
  }
}

run "user_data_too_large_without_gzip" {
  command = plan

  variables {
    settings              = { notes = join("", [for i in range(1000) : "castelet user-data guard, castelet user-data guard "]) }
    user_data_compression = "none"
  }

  expect_failures = [openstack_compute_instance_v2.instance]
}

# Volume ids are unknown at plan, but the user-data names no device (they reach Puppet on day 2),
# so its size is known at plan and the guard still fails there.
run "user_data_too_large_with_a_volume_fails_at_plan" {
  command = plan

  variables {
    settings              = { notes = join("", [for i in range(1000) : "castelet user-data guard, castelet user-data guard "]) }
    user_data_compression = "none"
    volumes               = { data = { role = "web", size_gb = 10, mount = "/srv/data" } }
  }

  expect_failures = [openstack_compute_instance_v2.instance]
}

run "user_data_too_large_is_gzipped_in_auto_mode" {
  command = plan

  variables {
    settings = { notes = join("", [for i in range(1000) : "castelet user-data guard, castelet user-data guard "]) }
  }

  assert {
    condition     = output.user_data_bytes["atlas-web1"] > 49152
    error_message = "the large setting's plain user-data must exceed Nova's limit once base64-encoded"
  }
  assert {
    condition     = startswith(openstack_compute_instance_v2.instance["atlas-web1"].user_data, "H4sI")
    error_message = "auto mode hands too large user-data to Nova gzipped (base64 of a gzip stream starts H4sI)"
  }
  assert {
    condition     = length(openstack_compute_instance_v2.instance["atlas-web1"].user_data) <= 65535
    error_message = "the gzipped user-data fits Nova's limit"
  }
}

run "small_user_data_stays_plain_in_auto_mode" {
  command = plan

  assert {
    condition     = startswith(openstack_compute_instance_v2.instance["atlas-web1"].user_data, "#cloud-config\n")
    error_message = "auto mode keeps user-data that fits as plain text"
  }
}

run "gzip_mode_always_gzips" {
  command = plan

  variables {
    user_data_compression = "gzip"
  }

  assert {
    condition     = startswith(openstack_compute_instance_v2.instance["atlas-web1"].user_data, "H4sI")
    error_message = "user_data_compression = gzip gzips even small user-data"
  }
}

# --- administrator keys ---------------------------------------------------------------------

# OpenStack instances are administered over SSH: no key, no plan.
run "no_public_keys" {
  command = plan

  variables {
    public_keys = []
  }

  expect_failures = [openstack_compute_instance_v2.instance]
}

# --- flavor minimums ------------------------------------------------------------------------

run "flavor_exactly_the_minimum" {
  command = plan

  variables {
    roles = {
      web = { count = 1, flavor = "p2-3gb", public = true, min_vcpus = 2, min_ram_mb = 3072, min_disk_gb = 500, puppet_class = "castelet::role::lamp" }
      db  = { count = 1, flavor = "c4-15gb-83", public = false, min_vcpus = 4, min_ram_mb = 15360, min_disk_gb = 20, puppet_class = "castelet::role::base" }
    }
  }

  assert {
    condition = (
      data.openstack_compute_flavor_v2.flavor["p2-3gb"].vcpus == 2 &&
      data.openstack_compute_flavor_v2.flavor["p2-3gb"].ram == 3072 &&
      data.openstack_compute_flavor_v2.flavor["p2-3gb"].disk == 0 &&
      data.openstack_compute_flavor_v2.flavor["c4-15gb-83"].vcpus == 4 &&
      data.openstack_compute_flavor_v2.flavor["c4-15gb-83"].ram == 15360 &&
      data.openstack_compute_flavor_v2.flavor["c4-15gb-83"].disk == 20
    )
    error_message = "the stand-in must read the flavor sizes from their names"
  }
  assert {
    condition     = openstack_compute_instance_v2.instance["atlas-web1"].block_device[0].volume_size == 500
    error_message = "a flavor without root disk meets any min_disk_gb: the boot volume gets that size"
  }
  assert {
    condition     = length(openstack_compute_instance_v2.instance["atlas-db1"].block_device) == 0
    error_message = "a root disk of exactly min_disk_gb boots from the image"
  }
}

run "flavor_too_few_vcpus" {
  command = plan

  variables {
    roles = {
      web = { count = 1, flavor = "p2-3gb", public = true, min_vcpus = 3, min_ram_mb = 3000, min_disk_gb = 20, puppet_class = "castelet::role::lamp" }
    }
  }

  expect_failures = [openstack_compute_instance_v2.instance]
}

run "flavor_too_little_ram" {
  command = plan

  variables {
    roles = {
      web = { count = 1, flavor = "p2-3gb", public = true, min_vcpus = 2, min_ram_mb = 3073, min_disk_gb = 20, puppet_class = "castelet::role::lamp" }
    }
  }

  expect_failures = [openstack_compute_instance_v2.instance]
}

# The ephemeral disk of a "c" flavor is no root disk: a role that needs more than its 20 GB boots
# from a volume of the size it needs.
run "flavor_root_disk_too_small_boots_from_a_volume" {
  command = plan

  variables {
    roles = {
      web = { count = 1, flavor = "c4-15gb-83", public = true, min_vcpus = 2, min_ram_mb = 3000, min_disk_gb = 21, puppet_class = "castelet::role::lamp" }
    }
  }

  assert {
    condition     = openstack_compute_instance_v2.instance["atlas-web1"].block_device[0].volume_size == 21 && openstack_compute_instance_v2.instance["atlas-web1"].block_device[0].source_type == "image"
    error_message = "a root disk smaller than min_disk_gb means booting from a volume of min_disk_gb"
  }
}
