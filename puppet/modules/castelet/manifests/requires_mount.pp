# @summary
#   A systemd drop-in making `unit` require the mount of `path` (`RequiresMountsFor`): the unit
#   never starts while the data volume holding `path` is missing.
#
# @example Apache serves files from the data volume
#   castelet::requires_mount { 'apache2.service /srv/data/omeka-files':
#     unit => 'apache2.service',
#     path => '/srv/data/omeka-files',
#   }
#
# @param unit
#   The systemd unit, e.g. `mariadb.service`.
# @param path
#   The path on the volume.
define castelet::requires_mount (
  Pattern[/\A[A-Za-z0-9@_.-]+\.(service|socket|timer)\z/] $unit,
  Castelet::Path $path,
) {
  $dir = "/etc/systemd/system/${unit}.d"
  $name_part = regsubst($path, '[^A-Za-z0-9]+', '-', 'G')

  ensure_resource('file', $dir, {
      ensure => directory,
      owner  => 'root',
      group  => 'root',
      mode   => '0755',
  })

  file { "${dir}/castelet-volume${name_part}.conf":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "# Castelet: ${path} lives on the data volume.\n[Unit]\nRequiresMountsFor=${path}\n",
    notify  => Exec["castelet-requires-mount-daemon-reload ${title}"],
  }

  exec { "castelet-requires-mount-daemon-reload ${title}":
    command     => 'systemctl daemon-reload',
    refreshonly => true,
    path        => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'],
  }
}
