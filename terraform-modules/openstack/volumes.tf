# Volumes: one Cinder volume per design volume, attached to its instance. Puppet mounts it
# (data/terraform.yaml names each volume's device and mount point).

locals {
  # How the guest names a volume's disk (udev by-id), from the Cinder volume id: virtio-blk (the
  # default bus) carries a 20-byte serial, so Linux names the disk virtio-<first 20 characters of
  # the id>; on virtio-scsi (images with hw_disk_bus=scsi) it is scsi-0QEMU_QEMU_HARDDISK_<id>.
  volume_devices = {
    for key, volume in openstack_blockstorage_volume_v3.volume : key => (
      var.disk_bus == "scsi" ? "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_${volume.id}" : "/dev/disk/by-id/virtio-${substr(volume.id, 0, 20)}"
    )
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
