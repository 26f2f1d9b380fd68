# @summary Role: a Debian sandbox: the base host, listed packages and open ports.
class castelet::role::sandbox {
  include castelet::profile::base
  include castelet::profile::packages
  include castelet::profile::open_ports
}
