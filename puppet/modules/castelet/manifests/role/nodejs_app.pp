# @summary
#   Role: a Node.js application built from git, behind nginx over HTTPS, with an optional
#   PostgreSQL database (castelet::profile::nodejs_app).
#
# @example `data/roles/web.yaml`
#   castelet::role_class: castelet::role::nodejs_app
class castelet::role::nodejs_app {
  include castelet::profile::base
  include castelet::profile::nodejs_app
}
