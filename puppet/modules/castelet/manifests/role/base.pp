# @summary
#   Role: a hardened Debian host with nothing else (admin accounts, SSH, firewall, updates,
#   volumes). The role of any instance whose manifest role names no other class.
#
# @example The Terraform data of such a node
#   terraform:
#     role_class: castelet::role::base
class castelet::role::base {
  include castelet::profile::base
}
