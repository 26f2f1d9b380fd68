# @summary
#   Role: a static web site served by nginx over HTTPS from the data volume, published by an
#   rsync-only `deploy` account or built on the instance with Jekyll from a git repository.
#
# @example The Terraform data of such a node
#   terraform:
#     role_class: castelet::role::static_site
class castelet::role::static_site {
  include castelet::profile::base
  include castelet::profile::static_site
}
