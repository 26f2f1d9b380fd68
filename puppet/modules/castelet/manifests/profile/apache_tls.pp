# @summary
#   Apache's TLS settings: mod_ssl with Mozilla's "intermediate" profile, mod_headers.
#
# TLS 1.2 and 1.3 only, the intermediate cipher list, the client's cipher preference (every
# listed cipher is strong), no session tickets, no compression. Virtual hosts come from
# `castelet::apache_site`, which includes this class.
#
# The versions and ciphers are `castelet::profile::tls`'s, shared with nginx.
class castelet::profile::apache_tls {
  include castelet::profile::apache_php
  include castelet::profile::tls

  class { 'apache::mod::ssl':
    ssl_protocol         => ['-all'] + $castelet::profile::tls::versions.map |$v| { "+${v}" },
    ssl_cipher           => $castelet::profile::tls::ciphers,
    ssl_honorcipherorder => false,
    ssl_sessiontickets   => false,
    ssl_compression      => false,
  }

  include apache::mod::headers
}
