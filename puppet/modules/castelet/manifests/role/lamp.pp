# @summary
#   Role: a generic LAMP server (Apache + PHP 8.2, MariaDB, one application slot with a
#   health check).
#
# @example `data/roles/web.yaml`
#   castelet::role_class: castelet::role::lamp
class castelet::role::lamp {
  include castelet::profile::base
  include castelet::profile::apache_php
  include castelet::profile::mariadb
  include castelet::profile::lamp_app
}
