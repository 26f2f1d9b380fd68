# @summary
#   Checks that the data volumes listed in `castelet::volumes` are mounted.
#
# The volumes are formatted (only when blank), listed in `/etc/fstab` and mounted by
# `/usr/local/sbin/castelet-volumes`, which `castelet-puppet-apply` runs before Puppet
# compiles: the compilation already creates the secrets, which must land on the volume. This
# class fails the run, naming the missing volume, when one is not mounted; profiles that keep
# data on a volume order their resources after it (or use `castelet::persistent_dir`).
#
# @example `data/terraform.yaml`
#   castelet::volumes:
#     data:
#       mount: /srv/data
#       device: /dev/disk/by-id/*0b1f9c2e-1d3a-4c5b-9*
class castelet::profile::volumes {
  include castelet

  unless $castelet::volumes.empty {
    exec { 'castelet-volumes-check':
      command => 'castelet-volumes check',
      unless  => 'castelet-volumes check',
      path    => ['/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
    }
  }
}
