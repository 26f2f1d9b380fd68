# @summary
#   Role: a WordPress site (Apache + PHP, MariaDB, Debian's WordPress installed by the
#   deployment, its content on the data volume).
#
# @example `data/roles/web.yaml`
#   castelet::role_class: castelet::role::wordpress
class castelet::role::wordpress {
  include castelet::profile::base
  include castelet::profile::apache_php
  include castelet::profile::mariadb
  include castelet::profile::wordpress
}
