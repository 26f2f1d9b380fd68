# @summary
#   Role: an Omeka S server (Apache + PHP 8.2, MariaDB, Omeka S from its verified release).
#
# @example `data/roles/web.yaml`
#   castelet::role_class: castelet::role::omeka_s
class castelet::role::omeka_s {
  include castelet::profile::base
  include castelet::profile::apache_php
  include castelet::profile::mariadb
  include castelet::profile::omeka_s
}
