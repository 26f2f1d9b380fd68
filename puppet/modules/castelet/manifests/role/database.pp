# @summary
#   Role: a shared database server for a lab (PostgreSQL, or MariaDB), its databases and owners
#   with passwords generated on the instance, remote access over TLS from listed networks only.
#
# @example `data/roles/db.yaml`
#   castelet::role_class: castelet::role::database
class castelet::role::database {
  include castelet::profile::base
  include castelet::profile::database_server
}
