# Volumes: one Cinder volume per design volume, attached to its instance, except those named in
# `existing_volumes`: they are looked up by name and attached, never created nor deleted here.
# castelet-volumes (Puppet) finds each disk from data/terraform.yaml, formats it only when blank
# and mounts it.

locals {
  created_volumes  = { for key, volume in module.design.volumes : key => volume if volume.existing == null }
  existing_volumes = { for key, volume in module.design.volumes : key => volume if volume.existing != null }

  volume_ids = merge(
    { for key, volume in openstack_blockstorage_volume_v3.volume : key => volume.id },
    { for key, volume in data.openstack_blockstorage_volume_v3.existing : key => volume.id },
  )

  # How the guest names a volume's disk (udev by-id), as a glob: virtio-blk carries a 20-byte
  # serial, so Linux names the disk virtio-<first 20 characters of the volume id>; virtio-scsi
  # (images with hw_disk_bus=scsi) names it scsi-0QEMU_QEMU_HARDDISK_<whole id>. Both contain
  # the 20-character prefix: castelet-volumes resolves the glob on the instance, whatever the bus.
  volume_devices = {
    for key, id in local.volume_ids : key => "/dev/disk/by-id/*${substr(id, 0, 20)}*"
  }
}

resource "openstack_blockstorage_volume_v3" "volume" {
  for_each = local.created_volumes

  name        = each.key
  size        = each.value.size_gb
  description = "Castelet ${var.name}: ${each.value.name} of ${each.value.instance}, mounted at ${each.value.mount}"
}

data "openstack_blockstorage_volume_v3" "existing" {
  for_each = local.existing_volumes

  name = each.value.existing
}

resource "openstack_compute_volume_attach_v2" "volume" {
  for_each = module.design.volumes

  instance_id = openstack_compute_instance_v2.instance[each.value.instance].id
  volume_id   = local.volume_ids[each.key]
}
