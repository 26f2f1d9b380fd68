# @summary
#   Deployment-wide settings shared by every Castelet profile.
#
# Profiles include this class and read its parameters (for example
# `$castelet::deployment`). Its values come from hiera: `castelet::deployment` and
# `castelet::nodes`/`castelet::volumes` from `data/terraform.yaml` (written on the instance
# by Terraform), `castelet::domain` and `castelet::admin_email` from `data/deployment.yaml`.
# It also creates the root-only directory of the secrets that `castelet::secret` generates.
#
# @example Usually included by profiles, not declared directly
#   include castelet
#
# @param deployment
#   Name of the deployment (`Castelet::Deployment`: the manifest's slug rule), e.g. `atlas`.
# @param domain
#   Fully qualified domain name of the service, the default Apache ServerName.
# @param admin_email
#   Address of the people running the deployment (Apache ServerAdmin).
# @param nodes
#   Every instance of the deployment: host name => `{ role => manifest role name }`.
# @param volumes
#   This node's data volumes: volume name => `{ mount => path, device => optional device }`,
#   see `castelet::profile::volumes`.
# @param data_dir
#   Mount point of this node's first data volume (`terraform.data_dir`), where the node's state
#   lives: the secrets (`<data_dir>/castelet/secrets`, bound at `/var/lib/castelet/secrets` by
#   `castelet-volumes` before Puppet runs) and every `castelet::persistent_dir`. Undef on a
#   node without a volume: its state stays on the root disk.
# @param backups
#   What `castelet::profile::backup` saves on this node (`terraform.backups`, from the
#   manifest's `backups:`): `{ paths => [...], databases => [{ engine, name }] }`, or undef. A
#   database named `*` is every database of that engine's server on the node (castelet-backup
#   lists them at each run; none when the engine is not installed).
# @param role_class
#   The role class `manifests/site.pp` includes; read there with `lookup()` so that a missing
#   value gets a clear message. Declared here so that every `castelet::*` hiera key is typed.
class castelet (
  Castelet::Deployment $deployment,
  Stdlib::Fqdn $domain,
  Stdlib::Email $admin_email,
  Hash[String[1], Castelet::Node] $nodes = {},
  Hash[Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]*\z/], Castelet::Volume] $volumes = {},
  Optional[Pattern[/\A[a-z][a-z0-9_]*(::[a-z][a-z0-9_]*)*\z/]] $role_class = undef,
  Optional[Castelet::Path] $data_dir = undef,
  Optional[Struct[{
        paths     => Array[Castelet::Path],
        databases => Array[Struct[{ engine => Enum['mariadb', 'postgresql'], name => Variant[Castelet::Dbname, Enum['*']] }]],
  }]] $backups = undef,
) {
  $secrets_dir = castelet::secrets_dir()

  # Castelet's own configuration files (TLS, backups).
  file { '/etc/castelet':
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  file { $secrets_dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0700',
  }
}
