# Volumes: one Cinder volume per design volume, attached to its instance. Puppet mounts it
# (data/terraform.yaml names each volume's device and mount point).

locals {
  # Linux names a virtio disk after the first 20 characters of the Cinder volume id.
  volume_devices = {
    for key, volume in openstack_blockstorage_volume_v3.volume : key => "/dev/disk/by-id/virtio-${substr(volume.id, 0, 20)}"
  }
}

resource "openstack_blockstorage_volume_v3" "volume" {
  for_each = module.design.volumes

  name        = each.key
  size        = each.value.size_gb
  description = "Castelet ${var.name}: ${each.value.name} of ${each.value.instance}, mounted at ${each.value.mount}"
}

resource "openstack_compute_volume_attach_v2" "volume" {
  for_each = module.design.volumes

  instance_id = openstack_compute_instance_v2.instance[each.value.instance].id
  volume_id   = openstack_blockstorage_volume_v3.volume[each.key].id
}
