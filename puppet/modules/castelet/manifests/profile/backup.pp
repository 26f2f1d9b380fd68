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
# With `append_only` (the deployment's `backup_append_only` answer: the repository refuses
# deletions, e.g. a REST server run with `--append-only`), the instance never forgets nor prunes:
# whoever holds its credentials (root after a compromise) cannot erase the backups, and the
# operator applies `keep` from their own machine with full-access credentials (`nox -s prune`).
#
# Every week `castelet-backup-check.timer` starts `castelet-backup-check.service`: `restic check
# --read-data-subset=N/T`, N the week's part of `check_parts` (all the data is read in
# `check_parts` weeks); its result is recorded in castelet-backup's status, and `nox -s verify`
# fails when the last check failed or no check succeeded for more than 9 days.
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
# @param append_only
#   The repository refuses deletions (`true` or `'true'`, the setting's string): backups never run
#   `restic forget` or `prune` on the instance; retention is `nox -s prune` from the operator's
#   machine. `''` (a blueprint without the setting) is false.
# @param check_on_calendar
#   systemd `OnCalendar` of the weekly repository check (a random delay of up to an hour is added).
# @param check_parts
#   The weekly check reads one part in `check_parts` of the repository's data (`restic check
#   --read-data-subset=N/check_parts`, N following the weeks).
class castelet::profile::backup (
  String $repository = '',
  Pattern[/\A[A-Za-z0-9 *:,.\/~-]+\z/] $on_calendar = '*-*-* 03:15:00',
  Struct[{ daily => Integer[1], weekly => Integer[0], monthly => Integer[0] }] $keep = { 'daily' => 7, 'weekly' => 4, 'monthly' => 6 },
  Array[Pattern[/\A[A-Za-z0-9@_.-]+\z/]] $stop_units = [],
  Variant[Boolean, Enum['true', 'false', '']] $append_only = false,
  Pattern[/\A[A-Za-z0-9 *:,.\/~-]+\z/] $check_on_calendar = 'Sun *-*-* 05:15:00',
  Integer[1, 1000] $check_parts = 10,
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
      'append_only'      => $append_only ? { true => true, 'true' => true, default => false },
      'check_parts'      => $check_parts,
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

    # The weekly check of the repository (castelet-backup check): it waits for a running backup
    # (the lock) rather than giving up, and a failure leaves the unit failed.
    file { "${unit_dir}/castelet-backup-check.service":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => @("UNIT"),
        # Castelet: restic check of this node's backup repository (castelet::profile::backup).
        [Unit]
        Description=Castelet backup check (restic check --read-data-subset)
        Documentation=file:///etc/castelet/backup.json
        Wants=network-online.target
        After=network-online.target
        ${mounts}
        [Service]
        Type=oneshot
        ExecStart=/usr/local/sbin/castelet-backup --wait 21600 check
        SuccessExitStatus=75
        Nice=10
        IOSchedulingClass=idle
        | UNIT
      notify  => Exec['castelet-backup-daemon-reload'],
    }

    file { "${unit_dir}/castelet-backup-check.timer":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => @("UNIT"),
        # Castelet: when castelet-backup-check.service runs (castelet::profile::backup).
        [Unit]
        Description=Castelet weekly backup check

        [Timer]
        OnCalendar=${check_on_calendar}
        RandomizedDelaySec=1h
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

    service { ['castelet-backup.timer', 'castelet-backup-check.timer']:
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
    -> exec { 'castelet-backup-check-timer-off':
      command => 'systemctl disable --now castelet-backup-check.timer',
      onlyif  => "test -f ${unit_dir}/castelet-backup-check.timer",
      path    => $path,
    }
    -> file { ["${unit_dir}/castelet-backup.timer", "${unit_dir}/castelet-backup-check.timer", '/etc/castelet/backup.json']:
      ensure => absent,
    }
  }
}
