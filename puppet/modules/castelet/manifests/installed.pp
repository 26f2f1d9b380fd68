# @summary
#   The point after which every application of the node has finished installing itself.
#
# An empty class used for ordering only. A profile whose application must complete its own
# installation (first administrator created, installer closed) before it may be reached from
# outside orders that step before this class, e.g.
# `Exec['castelet-omeka-install'] -> Class['castelet::installed']` (`castelet::web_installer`
# orders each application's installer so).
# `castelet::profile::firewall` opens the public ports (rules with source `0.0.0.0/0` or `::/0`)
# only after it: until then, and whenever an installation fails, the public ports stay closed.
#
# @example In an application profile
#   include castelet::installed
#   Exec['my-app-install'] -> Class['castelet::installed']
class castelet::installed {
}
