# @summary
#   restic backups of what the blueprint's manifest lists (`castelet::backups`), on a timer.
#
# Active when this node has backups (`castelet::backups`, from the manifest's `backups:`) and a
# `repository` is set (the deployment's `backup_repository` answer); otherwise the timer is
# stopped and removed, nothing else is touched. It installs `restic` and `rsync`,
# `/usr/local/sbin/castelet-backup`, its root-only configuration `/etc/castelet/backup.json`,
# and `castelet-backup.service` (oneshot: database dumps with `mariadb-dump --single-transaction`,
# `restic backup` of the paths, the dumps and the secrets, then `restic forget --prune` with the
# `keep` policy) started by `castelet-backup.timer`. A failed run leaves the service failed, which
# `nox -s verify` reports.
#
# The repository password is generated on the node (`castelet::secret('restic-repository')`,
# shown by `nox -s secrets`); the repository's own credentials (S3 keys, REST user) are pushed by
# `nox -s backup-credentials` into `<secrets dir>/backup-credentials.env`. Neither passes through
# hiera, Terraform or the deployment repository.
#
# @example The repository (the deployment's answer, through Terraform's settings)
#   castelet::profile::backup::repository: 's3:https://object-arbutus.cloud.computecanada.ca/lab-backups/atlas'
#
# @param repository
#   restic repository, without credentials (`s3:https://...`, `rest:https://...`, `sftp:...`, a
#   path). Empty: backups are off.
# @param on_calendar
#   systemd `OnCalendar` of the timer (a random delay of up to 30 minutes is added).
# @param keep
#   Retention: how many daily, weekly and monthly snapshots `restic forget` keeps.
# @param stop_units
#   Units stopped while a restore replaces the data (started again afterwards).
class castelet::profile::backup (
  String $repository = '',
  Pattern[/\A[A-Za-z0-9 *:,.\/~-]+\z/] $on_calendar = '*-*-* 03:15:00',
  Struct[{ daily => Integer[1], weekly => Integer[0], monthly => Integer[0] }] $keep = { 'daily' => 7, 'weekly' => 4, 'monthly' => 6 },
  Array[Pattern[/\A[A-Za-z0-9@_.-]+\z/]] $stop_units = [],
) {
  include castelet

  $backups = $castelet::backups
  $unit_dir = '/etc/systemd/system'
  $path = ['/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

  if $backups =~ NotUndef and $repository != '' {
    $secrets_dir = $castelet::secrets_dir
    # Generated now (compile time, on the node) so that `nox -s secrets` shows it at once.
    castelet::secret('restic-repository')

    package { ['restic', 'rsync']:
      ensure => installed,
    }

    file { '/usr/local/sbin/castelet-backup':
      ensure => file,
      owner  => 'root',
      group  => 'root',
      mode   => '0755',
      source => 'puppet:///modules/castelet/castelet-backup.py',
    }

    # On the data volume where there is one: a rebuilt instance still knows its last snapshot.
    $restore_dir = $castelet::data_dir ? {
      undef   => '/var/lib/castelet/restore',
      default => "${castelet::data_dir}/.castelet-restore",
    }
    $status_file = $castelet::data_dir ? {
      undef   => '/var/lib/castelet/backup-status.json',
      default => "${castelet::data_dir}/castelet/backup-status.json",
    }
    $config = {
      'repository'       => $repository,
      'password_file'    => "${secrets_dir}/restic-repository",
      'credentials_file' => "${secrets_dir}/backup-credentials.env",
      'paths'            => $backups['paths'],
      'databases'        => $backups['databases'],
      'secrets_dir'      => $secrets_dir,
      'staging_dir'      => '/var/lib/castelet/backup-staging',
      'restore_dir'      => $restore_dir,
      'status_file'      => $status_file,
      'keep'             => $keep,
      'stop_units'       => $stop_units,
      'after_restore'    => [['/usr/local/sbin/castelet-puppet-apply']],
      'host'             => $trusted['certname'],
    }

    file { '/etc/castelet/backup.json':
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0600',
      content => "${to_json_pretty($config)}\n",
    }

    $mounts = $castelet::data_dir ? {
      undef   => '',
      default => "RequiresMountsFor=${castelet::data_dir}\n",
    }
    file { "${unit_dir}/castelet-backup.service":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => @("UNIT"),
        # Castelet: one restic backup of this node (castelet::profile::backup).
        [Unit]
        Description=Castelet backup (restic) of this node's data
        Documentation=file:///etc/castelet/backup.json
        Wants=network-online.target
        After=network-online.target mariadb.service postgresql.service
        ${mounts}
        [Service]
        Type=oneshot
        ExecStart=/usr/local/sbin/castelet-backup run
        # 75: another castelet-backup run held the lock (nothing done, nothing failed)
        SuccessExitStatus=75
        Nice=10
        IOSchedulingClass=idle
        | UNIT
      notify  => Exec['castelet-backup-daemon-reload'],
    }

    file { "${unit_dir}/castelet-backup.timer":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => @("UNIT"),
        # Castelet: when castelet-backup.service runs (castelet::profile::backup).
        [Unit]
        Description=Castelet backup schedule

        [Timer]
        OnCalendar=${on_calendar}
        RandomizedDelaySec=30min
        Persistent=true

        [Install]
        WantedBy=timers.target
        | UNIT
      notify  => Exec['castelet-backup-daemon-reload'],
    }

    exec { 'castelet-backup-daemon-reload':
      command     => 'systemctl daemon-reload',
      refreshonly => true,
      path        => $path,
    }

    service { 'castelet-backup.timer':
      ensure  => running,
      enable  => true,
      require => [
        Exec['castelet-backup-daemon-reload'],
        File['/usr/local/sbin/castelet-backup', '/etc/castelet/backup.json'],
        Package['restic', 'rsync'],
      ],
    }
  } else {
    exec { 'castelet-backup-timer-off':
      command => 'systemctl disable --now castelet-backup.timer',
      onlyif  => "test -f ${unit_dir}/castelet-backup.timer",
      path    => $path,
    }
    -> file { ["${unit_dir}/castelet-backup.timer", '/etc/castelet/backup.json']:
      ensure => absent,
    }
  }
}
