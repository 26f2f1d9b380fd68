# @summary
#   Apache's TLS settings: mod_ssl with Mozilla's "intermediate" profile, mod_headers.
#
# TLS 1.2 and 1.3 only, the intermediate cipher list, the client's cipher preference (every
# listed cipher is strong), no session tickets, no compression. Virtual hosts come from
# `castelet::apache_site`, which includes this class.
#
# @param protocols
#   `SSLProtocol` values.
# @param ciphers
#   `SSLCipherSuite` for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults, all strong).
class castelet::profile::apache_tls (
  Array[String[1]] $protocols = ['-all', '+TLSv1.2', '+TLSv1.3'],
  String[1] $ciphers = join([
      'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
      'DHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-CHACHA20-POLY1305',
  ], ':'),
) {
  include castelet::profile::apache_php

  class { 'apache::mod::ssl':
    ssl_protocol         => $protocols,
    ssl_cipher           => $ciphers,
    ssl_honorcipherorder => false,
    ssl_sessiontickets   => false,
    ssl_compression      => false,
  }

  include apache::mod::headers
}
