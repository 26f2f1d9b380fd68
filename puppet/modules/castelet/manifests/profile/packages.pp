# @summary
#   Extra Debian packages, installed after the firewall loads and before `castelet::installed`;
#   packages another class declares are left to it.
#
# @example data/blueprint.yaml of the sandbox blueprint
#   castelet::profile::packages::packages: "%{alias('terraform.settings.packages')}"
#
# @param packages
#   Debian package names separated by single spaces, e.g. `jq htop`; empty: none.
class castelet::profile::packages (
  Pattern[/\A([a-z0-9][a-z0-9+.-]{1,99}( [a-z0-9][a-z0-9+.-]{1,99})*)?\z/] $packages = '',
) {
  include castelet::profile::firewall

  split($packages, ' ').filter |$n| { $n != '' and !defined(Package[$n]) }.each |String $name| {
    package { $name:
      ensure  => installed,
      require => Service['nftables'],
      before  => Class['castelet::installed'],
    }
  }
}
