# @summary
#   Keeps a directory of the system (e.g. `/var/lib/mysql`) on the node's data volume.
#
# `target` becomes a bind mount of `<castelet::data_dir>/<source>` (an `/etc/fstab` entry that
# requires the volume's mount), made by `castelet-volumes bind`. What `target` already held is
# copied onto the volume first, with `stop` units stopped meanwhile; when the volume already
# holds data (a rebuilt instance), the volume wins. The `units` get a systemd drop-in
# `RequiresMountsFor=<target>`: they never start on the root disk's empty directory.
# Declare it before the package that creates `target`, so that the package initialises its
# data on the volume. Without a data volume (`castelet::data_dir` undef) it does nothing.
#
# @example MariaDB's data directory on the volume
#   castelet::persistent_dir { '/var/lib/mysql':
#     source => 'mariadb',
#     units  => ['mariadb.service'],
#     before => Package['mysql-server'],
#   }
#
# @param source
#   Directory name under `castelet::data_dir` (letters, digits, `_ . -`).
# @param units
#   systemd units that need the directory (drop-in `castelet-volume.conf`).
# @param stop
#   Units stopped while existing content is copied onto the volume.
define castelet::persistent_dir (
  Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]*\z/] $source,
  Array[Pattern[/\A[A-Za-z0-9@_.-]+\.(service|socket|timer)\z/]] $units = [],
  Array[Pattern[/\A[A-Za-z0-9@_.-]+\z/]] $stop = [],
) {
  include castelet
  include castelet::profile::volumes

  assert_type(Castelet::Path, $title)

  if $castelet::data_dir =~ NotUndef {
    $from = "${castelet::data_dir}/${source}"
    $stop_args = $stop.map |$unit| { "--stop '${unit}'" }.join(' ')

    exec { "castelet-persistent-dir-${title}":
      command => "castelet-volumes bind ${stop_args} '${title}' '${from}'",
      unless  => "castelet-volumes is-bound '${title}' '${from}'",
      path    => ['/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'],
      require => Class['castelet::profile::volumes'],
    }

    $units.each |String $unit| {
      castelet::requires_mount { "${unit} ${title}":
        unit => $unit,
        path => $title,
      }
    }
  }
}
