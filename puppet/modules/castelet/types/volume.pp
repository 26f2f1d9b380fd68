# @summary One data volume of this node, as written by Terraform in `data/terraform.yaml`.
#
# * `mount`: absolute path where the volume is mounted (letters, digits, `_ . - /`).
# * `device`: block device under `/dev` to format (ext4, only when it holds no filesystem) and mount.
#   Absent or undef when the cloud already mounted the volume: only the directory is ensured.
type Castelet::Volume = Struct[{
    mount            => Castelet::Path,
    Optional[device] => Optional[Pattern[/\A\/dev\/[A-Za-z0-9_.:+=@\/-]+\z/]],
}]
