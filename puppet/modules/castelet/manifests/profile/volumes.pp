# @summary
#   Formats, mounts and creates the data volumes listed in `castelet::volumes`.
#
# For each volume (from `data/terraform.yaml`):
#
# * the mount directory is created (with its parents) when missing;
# * with a `device`: the device is formatted ext4, labelled with the volume name (first 16
#   characters), **only** when `blkid -p` reports that it holds nothing (exit code 2: no
#   filesystem, no partition table); any other answer leaves it untouched. The device is
#   then listed in `/etc/fstab` (`defaults,nofail`, so a missing volume does not stop the
#   boot) and mounted when not mounted yet;
# * without a `device`, the cloud already mounted the volume: only the directory is ensured.
#
# Profiles that keep data on a volume order their resources after this class.
#
# @example `data/terraform.yaml`
#   castelet::volumes:
#     data:
#       mount: /srv/data
#       device: /dev/disk/by-id/virtio-0b1f9c2e-1d3a-4c5b-9
class castelet::profile::volumes {
  include castelet

  $path = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

  $castelet::volumes.each |String $name, Hash $volume| {
    $mount = $volume['mount']
    $device = $volume['device']

    exec { "castelet-volume-dir-${name}":
      command => "mkdir -p '${mount}'",
      creates => $mount,
      path    => $path,
    }

    if $device =~ NotUndef {
      $label = regsubst($name, '[^A-Za-z0-9_.-]', '', 'G')[0, 16]
      $mount_re = regsubst($mount, '\.', '\\.', 'G')

      # blkid -p: 0 = something found, 2 = nothing found, other = error. Format on 2 only.
      exec { "castelet-volume-mkfs-${name}":
        command => "mkfs.ext4 -q -F -L '${label}' '${device}'",
        unless  => "sh -c 'blkid -p \"\$1\" >/dev/null 2>&1; test \$? -ne 2' sh '${device}'",
        path    => $path,
        timeout => 1800,
      }

      file_line { "castelet-volume-fstab-${name}":
        path    => '/etc/fstab',
        line    => "${device} ${mount} ext4 defaults,nofail 0 2",
        match   => "^[^#[:space:]]+[[:space:]]+${mount_re}[[:space:]]",
        require => Exec["castelet-volume-mkfs-${name}"],
      }

      # systemd generates mount units from /etc/fstab: refresh them after an edit.
      exec { "castelet-volume-daemon-reload-${name}":
        command     => 'systemctl daemon-reload',
        refreshonly => true,
        path        => $path,
        subscribe   => File_line["castelet-volume-fstab-${name}"],
      }

      exec { "castelet-volume-mount-${name}":
        command => "mount '${mount}'",
        unless  => "findmnt --mountpoint '${mount}'",
        path    => $path,
        require => [
          Exec["castelet-volume-dir-${name}"],
          Exec["castelet-volume-daemon-reload-${name}"],
        ],
      }
    }
  }
}
