terraform {
  required_version = ">= 1.5"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.0"
    }
  }
}

# Credentials come only from the standard OS_* environment variables (an OpenStack RC file)
# or from clouds.yaml (set os_cloud); they are never written in this repository.
provider "openstack" {
  cloud = var.os_cloud
}
