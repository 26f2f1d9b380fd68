# @summary One data volume of this node, as written by Terraform in `data/terraform.yaml`.
#
# * `mount`: absolute path where the volume is mounted (letters, digits, `_ . - /`).
# * `device`: a glob under `/dev/disk/by-id` naming the volume's disk (OpenStack: the first 20
#   characters of the volume id, which virtio-blk and virtio-scsi both put in the disk's name).
#   `castelet-volumes` waits for it, formats it (ext4) only when it holds nothing, and mounts it.
#   Absent or undef when the cloud already mounted the volume (LXD).
type Castelet::Volume = Struct[{
    mount            => Castelet::Path,
    Optional[device] => Optional[Pattern[/\A\/dev\/[A-Za-z0-9_.:+=@*?\/-]+\z/]],
}]
