# @summary
#   Checks that the data volumes listed in `castelet::volumes` are mounted.
#
# The volumes are formatted (only when blank), listed in `/etc/fstab` and mounted by
# `/usr/local/sbin/castelet-volumes`, which `castelet-puppet-apply` runs before Puppet
# compiles: the compilation already creates the secrets, which must land on the volume. This
# class fails the run, naming the missing volume, when one is not mounted; profiles that keep
# data on a volume order their resources after it (or use `castelet::persistent_dir`).
#
# Every mount of a volume is `nodev,nosuid` (no device file or setuid program on the data works
# as one): `castelet-volume-options` (files/castelet-volume-options.py) remounts the volume and
# each bind mount of a directory on it that lacks a flag (per-mount flags only, which an
# unprivileged container may change too), here before any `castelet::persistent_dir` binds
# from the volume (a bind mount inherits the flags), and at every boot
# (`castelet-volume-options.service`, once the local file systems are mounted): neither the fstab
# line castelet-volumes writes on OpenStack nor LXD's own mount of a custom volume carries them.
#
# @example `data/terraform.yaml`
#   castelet::volumes:
#     data:
#       mount: /srv/data
#       device: /dev/disk/by-id/*0b1f9c2e-1d3a-4c5b-9*
class castelet::profile::volumes {
  include castelet

  $path = ['/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
  $tool = '/usr/local/sbin/castelet-volume-options'
  $unit_file = '/etc/systemd/system/castelet-volume-options.service'

  unless $castelet::volumes.empty {
    exec { 'castelet-volumes-check':
      command => 'castelet-volumes check',
      unless  => 'castelet-volumes check',
      path    => $path,
    }

    # Castelet::Path: no quoting needed in a command line or a unit file.
    $mounts = $castelet::volumes.map |String $name, Hash $volume| { $volume['mount'] }.unique.sort
    $mount_args = $mounts.join(' ')

    file { $tool:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0755',
      content => file('castelet/castelet-volume-options.py'),
    }

    exec { 'castelet-volume-options':
      command => "castelet-volume-options apply ${mount_args}",
      unless  => "castelet-volume-options check ${mount_args}",
      path    => $path,
      require => [File[$tool], Exec['castelet-volumes-check']],
    }

    file { $unit_file:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => @("UNIT"),
        # Managed by Puppet (castelet::profile::volumes): the data volumes and the bind mounts
        # of their directories nodev,nosuid from boot on (castelet-volume-options).
        [Unit]
        Description=Castelet data volumes mounted nodev,nosuid
        DefaultDependencies=no
        After=local-fs.target
        RequiresMountsFor=${mount_args}
        Before=sysinit.target shutdown.target
        Conflicts=shutdown.target

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=${tool} apply ${mount_args}

        [Install]
        WantedBy=sysinit.target
        | UNIT
      require => File[$tool],
    }

    exec { 'castelet-volume-options-daemon-reload':
      command     => 'systemctl daemon-reload',
      refreshonly => true,
      path        => $path,
      subscribe   => File[$unit_file],
    }

    service { 'castelet-volume-options.service':
      enable  => true,
      require => Exec['castelet-volume-options-daemon-reload'],
    }
  } else {
    file { [$tool, $unit_file]:
      ensure => absent,
    }
  }
}
