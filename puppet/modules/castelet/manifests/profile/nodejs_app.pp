# @summary
#   A Node.js application from git, built on the node, run by systemd as an unprivileged user
#   behind nginx over HTTPS, redeployed without downtime (blue/green).
#
# * Debian's `nodejs` (node 18 on Debian 12, 20 on Debian 13) and `git`; npm `npm_version`,
#   npm's own release archive checked against `npm_sha256` before it is unpacked into
#   `/opt/castelet/npm-<version>` (`/usr/local/bin/npm` and `npx` run it with Debian's node).
#   Debian's `npm` package is not used: it is npm's dependencies unbundled into 370 packages (560
#   with its recommendations), about 50 s of every install, for the same tool. A build that
#   compiles native addons names the compilers it needs in `build_packages`.
# * `castelet-node-deploy` (files/castelet-node-deploy.py), run by Puppet whenever the active
#   release is not the commit `git_ref` names in `git_url` (or its settings changed): it fetches
#   the repository and builds the commit aside as `build_user` (`npm ci`, skipped when the lock
#   file did not change, then `npm run build`; npm's cache under `cache_dir`; npm, node and git
#   use the system's trust store, so an institutional TLS proxy's CA works), starts it in the idle
#   slot (`castelet-nodejs-app@blue` on port `ports['blue']` or `@green`), checks `health_path`,
#   then switches nginx to it (reload: running requests finish) and only then stops the previous
#   slot. A failed build or health check fails the Puppet run and leaves the running release
#   serving. The first release is up before `castelet::installed`: the public ports open on a
#   working site.
# * Builds cannot reach root (docs/decisions.md): everything `build_user` runs (git, npm, the
#   application's build scripts) runs in a transient systemd service (`systemd-run`: `User=`,
#   `ProtectSystem=strict` with only `<base_dir>/builds` and `cache_dir` writable, `PrivateTmp`,
#   `NoNewPrivileges`, no capabilities, `RuntimeMaxSec`), so nothing it starts outlives the step.
#   The build user creates its work tree in `<base_dir>/builds` (its own); root moves a finished
#   build into `<base_dir>/releases` (root's) by renaming between directory descriptors, and
#   never writes or changes the owner of anything under a directory the build user controls.
# * The slots run as `app_user` with `ProtectSystem=strict`, `NoNewPrivileges`, `PrivateTmp`,
#   `ProtectHome`, no capabilities, `ProtectProc=invisible` (no other user's process in /proc),
#   `RestrictNamespaces`, `SystemCallFilter=@system-service` (refused calls fail with `EPERM`),
#   and no route to the cloud's metadata service (the host firewall refuses it to every user but
#   root); the only writable place is `data_dir` (on the data volume,
#   required mounted), handed to the application as `DATA_DIR`. Also in the environment:
#   `NODE_ENV=production`, `HOST=127.0.0.1`, `PORT`, `ORIGIN=https://<servername>` and
#   `environment`.
# * With `postgresql`, a database `db_name` owned by a role of the same name
#   (`castelet::postgresql::database`); its URL (`DATABASE_URL`, password
#   `castelet::secret('postgresql-<db_name>')`) is in `env_file`, root-only (0600), which systemd
#   reads before dropping privileges.
# * nginx (`castelet::nginx_site`, HTTPS with the node's certificate) proxies to a loopback-only
#   server on `front_port` that forwards to the active slot (the upstream file the deploy
#   rewrites), so a switch is one graceful reload.
# * With `redeploy_ssh_key` (the GitLab CI job's key), the system user `redeploy_user` may log in
#   over SSH (it is in `castelet::profile::base::ssh_group`, the one group sshd lets in) for one
#   thing only: `sudo -n /usr/local/sbin/castelet-node-deploy deploy`, the redeploy of the
#   configured `git_ref`, whatever command the client sends. The key's line in a keys file of
#   root's (`/etc/ssh/castelet-authorized-keys-<redeploy_user>`, outside any home it could write)
#   carries `restrict,command="..."`; an sshd `Match User` drop-in forces the same command, with
#   no terminal and no forwarding. `/etc/sudoers.d/castelet-redeploy` grants that one command line
#   (arguments included) and nothing else; the account has no password. Without a key, the
#   account, its keys file, its sshd drop-in and its sudoers file are removed.
#
# @example The deployment's answers (blueprint nodejs-app's data/blueprint.yaml)
#   castelet::profile::nodejs_app::git_url: "%{alias('terraform.settings.app_git_url')}"
#   castelet::profile::nodejs_app::git_ref: "%{alias('terraform.settings.app_git_ref')}"
#
# @param git_url
#   The application's repository (`https://...`, or `http://` to a private address). Required:
#   empty fails the compilation, naming this key.
# @param git_ref
#   Branch, tag or commit deployed.
# @param postgresql
#   Whether the application gets a PostgreSQL database (`DATABASE_URL`).
# @param servername
#   nginx server name; defaults to `castelet::domain`.
# @param data_dir
#   The application's writable directory (`DATA_DIR`), normally on the data volume.
# @param base_dir
#   Releases (`releases/`, root's), the build user's work trees (`builds/`, on the same file
#   system: a finished build is renamed into `releases/`), slots and the deploy's state.
# @param cache_dir
#   The build user's git mirror, npm's cache and home (kept between builds; its own).
# @param app_user
#   System user running the application (owns `data_dir`).
# @param build_user
#   System user running git and npm, confined in a transient systemd service per step (owns the
#   files of the releases: the application cannot modify itself).
# @param ports
#   Loopback port of each slot.
# @param front_port
#   Loopback port of nginx's internal server that forwards to the active slot.
# @param health_path
#   Path requested on a new release before nginx is switched to it (2xx or 3xx expected).
# @param entry
#   Server entry point in a built release, relative to its root; empty: the first found of
#   `build/index.js` (SvelteKit's adapter-node), `dist/server/entry.mjs` (Astro's Node adapter),
#   `server.js`, `index.js`.
# @param environment
#   Extra environment variables of the application (no secrets: this is hiera data).
# @param db_name
#   Name of the PostgreSQL database and of its owner.
# @param env_file
#   Root-only environment file (secrets) of the application.
# @param build_timeout
#   Seconds `npm ci` and `npm run build` may each take.
# @param npm_version
#   npm's version (npm 10 runs on node 18 and 20).
# @param npm_sha256
#   SHA-256 of npm's release archive for `npm_version`: the archive is refused otherwise.
# @param npm_url
#   Where npm's release archive is downloaded from; empty: npm's public registry. An institution's
#   npm mirror serves the same archive.
# @param build_packages
#   Debian packages a build needs besides node, npm, git and python3, e.g. `['build-essential']`
#   for an application with native addons.
# @param redeploy_ssh_key
#   One OpenSSH public key line (`TYPE BASE64 [comment]`, no options) allowed to redeploy as
#   `redeploy_user`; empty: no redeploy account.
# @param redeploy_user
#   The system user of the CI's redeploy (SSH, forced command).
class castelet::profile::nodejs_app (
  String $git_url = '',
  Pattern[/\A[A-Za-z0-9][A-Za-z0-9._\/-]{0,99}\z/] $git_ref = 'main',
  Variant[Boolean, Enum['true', 'false']] $postgresql = false,
  Optional[Stdlib::Fqdn] $servername = undef,
  Castelet::Path $data_dir = '/srv/data/app',
  Castelet::Path $base_dir = '/var/lib/castelet-node',
  Castelet::Path $cache_dir = '/var/cache/castelet-node',
  Pattern[/\A[a-z][a-z0-9-]{0,30}\z/] $app_user = 'castelet-app',
  Pattern[/\A[a-z][a-z0-9-]{0,30}\z/] $build_user = 'castelet-build',
  Struct[{ blue => Stdlib::Port, green => Stdlib::Port }] $ports = { 'blue' => 3001, 'green' => 3002 },
  Stdlib::Port $front_port = 3000,
  Pattern[/\A\/[A-Za-z0-9._~\/?=&%-]*\z/] $health_path = '/',
  Pattern[/\A([A-Za-z0-9_.-]+\/)*[A-Za-z0-9_.-]+\z|\A\z/] $entry = '',
  Hash[Pattern[/\A[A-Z][A-Z0-9_]*\z/], Pattern[/\A[^\n"\\$%]*\z/]] $environment = {},
  Castelet::Dbname $db_name = 'app',
  Castelet::Path $env_file = '/etc/castelet/nodejs-app.env',
  Integer[60] $build_timeout = 1800,
  Pattern[/\A[0-9]+\.[0-9]+\.[0-9]+\z/] $npm_version = '10.9.9',
  Pattern[/\A[0-9a-f]{64}\z/] $npm_sha256 = 'c80bd097147cce32e31010b791bab8c71a26a5e10668210ec9d2e7f4c7cea2a1',
  Variant[Enum[''], Pattern[/\Ahttps:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/[A-Za-z0-9._~\/@%+-]*\z/]] $npm_url = '',
  Array[Pattern[/\A[a-z0-9][a-z0-9+.-]+\z/]] $build_packages = [],
  Variant[Enum[''], Pattern[/\A(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+\/]+={0,2}( [^\x00-\x1f\x7f,]*)?\z/]] $redeploy_ssh_key = '', # lint:ignore:140chars
  Pattern[/\A[a-z][a-z0-9-]{0,30}\z/] $redeploy_user = 'castelet-redeploy',
) {
  include castelet
  include castelet::profile::base
  include castelet::profile::volumes
  $_postgresql = $postgresql ? {
    true    => true,
    'true'  => true,
    default => false,
  }
  # Before nginx (whose TLS profile only ensures the packages the server declares too).
  if $_postgresql {
    include castelet::profile::postgresql
  }
  include castelet::profile::nginx
  include castelet::installed

  $https_url = /\Ahttps:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/[^\s'"\\`$;&|<>]*\z/
  $private_http_url = /\Ahttp:\/\/(10|127|172|192)\.[0-9.]+(:[0-9]{1,5})?\/[^\s'"\\`$;&|<>]*\z/
  if $git_url !~ Pattern[$https_url, $private_http_url] {
    fail(@("MSG"/L))
      castelet::profile::nodejs_app: no application repository. Set the deployment's setting \
      app_git_url (hiera 'castelet::profile::nodejs_app::git_url') to the https:// URL of the \
      application's git repository.
      | MSG
  }

  $_servername = pick($servername, $castelet::domain)
  $unit = 'castelet-nodejs-app@'
  $unit_file = "/etc/systemd/system/${unit}.service"
  $upstream_file = "${base_dir}/upstream.conf"
  $config_file = '/etc/castelet/nodejs-app.json'
  $path = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

  ensure_packages(['nodejs', 'git', 'ca-certificates', 'python3'] + $build_packages)

  # --- npm ---------------------------------------------------------------------------------
  $npm_dir = "/opt/castelet/npm-${npm_version}"
  $npm_archive = "/var/cache/castelet/npm-${npm_version}.tgz"
  $_npm_url = $npm_url ? {
    ''      => "https://registry.npmjs.org/npm/-/npm-${npm_version}.tgz",
    default => $npm_url,
  }
  ensure_resource('file', ['/opt/castelet', '/var/cache/castelet'], {
      ensure => directory, owner => 'root', group => 'root', mode => '0755',
  })
  file { $npm_dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }
  # puppet-archive compares the checksum before it moves the download into place and unpacks it.
  archive { $npm_archive:
    ensure          => present,
    source          => $_npm_url,
    checksum        => $npm_sha256,
    checksum_type   => 'sha256',
    checksum_verify => true,
    extract         => true,
    extract_path    => $npm_dir,
    creates         => "${npm_dir}/package/bin/npm-cli.js",
    cleanup         => true,
    user            => 'root',
    group           => 'root',
    require         => File[$npm_dir, '/var/cache/castelet'],
  }
  ['npm', 'npx'].each |String $tool| {
    $launcher = @("SH"/L$)
      #!/bin/sh
      # managed by Puppet (castelet::profile::nodejs_app): npm ${npm_version} with Debian's node
      exec /usr/bin/node ${npm_dir}/package/bin/${tool}-cli.js "\$@"
      | SH
    file { "/usr/local/bin/${tool}":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0755',
      content => $launcher,
      require => [Archive[$npm_archive], Package['nodejs']],
    }
  }

  # --- users -----------------------------------------------------------------------------
  group { [$app_user, $build_user]:
    ensure => present,
    system => true,
  }
  user { $app_user:
    ensure     => present,
    system     => true,
    gid        => $app_user,
    home       => '/nonexistent',
    shell      => '/usr/sbin/nologin',
    managehome => false,
    require    => Group[$app_user],
  }
  user { $build_user:
    ensure     => present,
    system     => true,
    gid        => $build_user,
    home       => "${cache_dir}/home",
    shell      => '/usr/sbin/nologin',
    managehome => false,
    require    => Group[$build_user],
  }

  # --- releases, slots, caches -------------------------------------------------------------
  file { [$base_dir, "${base_dir}/slots"]:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }
  # Root's: only the deploy (root) moves a finished build in, so the build user can neither plant
  # a symbolic link root would follow nor replace a release that runs.
  file { "${base_dir}/releases":
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }
  # The build user's own directories. Puppet manages these two only (their parents are root's):
  # what is inside, the build user creates itself (work trees, git mirror, npm's cache, home).
  file { ["${base_dir}/builds", $cache_dir]:
    ensure  => directory,
    owner   => $build_user,
    group   => $build_user,
    mode    => '0750',
    require => User[$build_user],
  }

  # --- the application's data, on the volume ---------------------------------------------
  exec { 'castelet-nodejs-app-data-dir':
    command => "mkdir -p '${data_dir}'",
    creates => $data_dir,
    path    => $path,
    require => Class['castelet::profile::volumes'],
  }
  file { $data_dir:
    ensure  => directory,
    owner   => $app_user,
    group   => $app_user,
    mode    => '0750',
    require => [Exec['castelet-nodejs-app-data-dir'], User[$app_user]],
  }
  # A restored or rebuilt volume may hold files of another uid: they stay the application's.
  exec { 'castelet-nodejs-app-data-owner':
    command => "chown -R '${app_user}:${app_user}' '${data_dir}'",
    onlyif  => "find '${data_dir}' \\( ! -user '${app_user}' -o ! -group '${app_user}' \\) -print -quit | grep -q .",
    path    => $path,
    require => File[$data_dir],
  }

  # --- database ----------------------------------------------------------------------------
  if $_postgresql {
    castelet::postgresql::database { $db_name:
      owner => $db_name,
    }
    $password = castelet::secret("postgresql-${db_name}").unwrap
    $port = $castelet::profile::postgresql::port
    $secrets = { 'DATABASE_URL' => "postgresql://${db_name}:${password}@127.0.0.1:${port}/${db_name}" }
    $after = ['network-online.target', $castelet::profile::postgresql::unit]
    Castelet::Postgresql::Database[$db_name] -> Exec['castelet-nodejs-app-deploy']
  } else {
    $secrets = {}
    $after = ['network-online.target']
  }

  file { $env_file:
    ensure    => file,
    owner     => 'root',
    group     => 'root',
    mode      => '0600',
    show_diff => false,
    content   => Sensitive(epp('castelet/nodejs-app.env.epp', { 'variables' => $secrets })),
    require   => File['/etc/castelet'],
  }

  # --- systemd: one templated unit, two slots ------------------------------------------------
  file { $unit_file:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/nodejs-app.service.epp', {
        'user'        => $app_user,
        'base_dir'    => $base_dir,
        'data_dir'    => $data_dir,
        'env_file'    => $env_file,
        'after'       => $after,
        'environment' => {
          'NODE_ENV' => 'production',
          'HOST'     => '127.0.0.1',
          'DATA_DIR' => $data_dir,
          'ORIGIN'   => "https://${_servername}",
        } + $environment,
    }),
  }
  exec { 'castelet-nodejs-app-daemon-reload':
    command     => 'systemctl daemon-reload',
    refreshonly => true,
    path        => $path,
    subscribe   => File[$unit_file],
  }

  # --- nginx: HTTPS site -> loopback front -> active slot --------------------------------------
  # The deploy rewrites the upstream file; Puppet only creates it (pointing at the blue slot).
  file { $upstream_file:
    ensure  => file,
    replace => false,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "# Written by castelet-node-deploy: the active release's port.\nserver 127.0.0.1:${ports['blue']};\n",
    require => File[$base_dir],
  }
  file { '/etc/nginx/conf.d/castelet-nodejs-app.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('castelet/nodejs-app-nginx.conf.epp', {
        'upstream_file' => $upstream_file,
        'front_port'    => $front_port,
    }),
    require => [Package['nginx'], File[$upstream_file]],
    notify  => Exec['castelet-nginx-check'],
  }
  castelet::nginx_site { $_servername:
    proxy_to => "http://127.0.0.1:${front_port}",
  }

  # --- deploy --------------------------------------------------------------------------------
  file { '/usr/local/sbin/castelet-node-deploy':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    content => file('castelet/castelet-node-deploy.py'),
  }
  $config = {
    'git_url'       => $git_url,
    'git_ref'       => $git_ref,
    'base_dir'      => $base_dir,
    'cache_dir'     => $cache_dir,
    'build_user'    => $build_user,
    'slots'         => $ports,
    'health_path'   => $health_path,
    'health_host'   => $_servername,
    'upstream_file' => $upstream_file,
    'unit'          => $unit,
    'entry'         => $entry,
    'keep_releases' => 3,
    'build_timeout' => $build_timeout,
    'ca_file'       => '/etc/ssl/certs/ca-certificates.crt',
    'watch_files'   => [$env_file, $unit_file, $config_file],
  }
  file { $config_file:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "${to_json_pretty($config)}\n",
  }

  exec { 'castelet-nodejs-app-deploy':
    command   => 'castelet-node-deploy deploy',
    unless    => 'castelet-node-deploy is-current',
    path      => $path,
    timeout   => $build_timeout * 2 + 600,
    logoutput => true,
    require   => [
      Package['nodejs', 'git', 'ca-certificates', 'python3'],
      File['/usr/local/bin/npm', '/usr/local/bin/npx'],
      File['/usr/local/sbin/castelet-node-deploy', $config_file, $env_file, $data_dir, "${base_dir}/releases",
      "${base_dir}/builds", "${base_dir}/slots", $cache_dir, '/etc/nginx/conf.d/castelet-nodejs-app.conf'],
      Exec['castelet-nodejs-app-daemon-reload', 'castelet-nodejs-app-data-owner'],
      Castelet::Nginx_site[$_servername],
      Service['nginx'],
    ],
    before    => Class['castelet::installed'],
  }

  # --- the CI's redeploy: one forced command over SSH ------------------------------------------
  $redeploy_command = 'sudo -n /usr/local/sbin/castelet-node-deploy deploy'
  $redeploy_keys_file = "/etc/ssh/castelet-authorized-keys-${redeploy_user}"
  $redeploy_files = [$redeploy_keys_file, '/etc/ssh/sshd_config.d/50-castelet-redeploy.conf',
  '/etc/sudoers.d/castelet-redeploy']
  if $redeploy_ssh_key != '' {
    group { $redeploy_user:
      ensure => present,
      system => true,
    }
    # A shell is needed for sshd to run the forced command; sshd never runs anything else. Its
    # home is root's: nothing the account could write is read by sshd or sudo.
    user { $redeploy_user:
      ensure     => present,
      system     => true,
      gid        => $redeploy_user,
      home       => $base_dir,
      managehome => false,
      shell      => '/bin/sh',
      password   => '!',
      # sshd lets in the members of this group only (AllowGroups).
      groups     => [$castelet::profile::base::ssh_group],
      membership => inclusive,
      require    => Group[$redeploy_user, $castelet::profile::base::ssh_group],
    }
    file { $redeploy_keys_file:
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => "# Managed by Puppet (castelet::profile::nodejs_app): the CI's redeploy, nothing else.\nrestrict,command=\"${redeploy_command}\" ${redeploy_ssh_key}\n", # lint:ignore:140chars
    }
    # The one sudo grant besides castelet-admins (decision 53): this command line, these arguments.
    file { '/etc/sudoers.d/castelet-redeploy':
      ensure       => file,
      owner        => 'root',
      group        => 'root',
      mode         => '0440',
      content      => "# Managed by Puppet (castelet::profile::nodejs_app): the CI's redeploy, nothing else.\n${redeploy_user} ALL=(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy\n", # lint:ignore:140chars
      validate_cmd => '/usr/sbin/visudo -c -f %',
      require      => [Package['sudo'], User[$redeploy_user]],
    }
    file { '/etc/ssh/sshd_config.d/50-castelet-redeploy.conf':
      ensure       => file,
      owner        => 'root',
      group        => 'root',
      mode         => '0644',
      content      => epp('castelet/nodejs-app-redeploy-sshd.conf.epp', {
          'user'      => $redeploy_user,
          'keys_file' => $redeploy_keys_file,
          'command'   => $redeploy_command,
      }),
      validate_cmd => '/usr/sbin/sshd -t -f %',
      require      => [Package['openssh-server'], File['/run/sshd', $redeploy_keys_file,
      '/etc/sudoers.d/castelet-redeploy', '/usr/local/sbin/castelet-node-deploy', $config_file], User[$redeploy_user]],
      notify       => Exec['castelet-sshd-config-test'],
    }
  } else {
    file { $redeploy_files:
      ensure => absent,
      notify => Exec['castelet-sshd-config-test'],
    }
    user { $redeploy_user:
      ensure  => absent,
      require => File[$redeploy_files],
    }
    group { $redeploy_user:
      ensure  => absent,
      require => User[$redeploy_user],
    }
  }
}
