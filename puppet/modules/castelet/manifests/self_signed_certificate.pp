# @summary
#   A self-signed server certificate for the node's domain, made on the instance and made again
#   30 days before it expires or when the domain changes (a database server, which answers no
#   ACME challenge; its clients pin the certificate).
#
#   The key is written with umask 0077 and owned by `owner`; the certificate is world-readable.
#   Both are written aside and moved into place, so a server never reads half a file. Relate the
#   server's service to this resource (`notify`, `before`) in the caller.
#
# @example
#   castelet::self_signed_certificate { 'castelet-postgresql-certificate':
#     directory => '/var/lib/postgresql/castelet-tls',
#     domain    => $castelet::domain,
#     owner     => 'postgres',
#     notify    => Exec['castelet-postgresql-reload'],
#   }
#
# @param directory
#   Where `server.crt` and `server.key` are written (created 0755 when missing).
# @param domain
#   The certificate's subject and only DNS name.
# @param owner
#   The system user (and group) the server runs as: the key's owner.
# @param days
#   Validity of the certificate.
define castelet::self_signed_certificate (
  Castelet::Path $directory,
  Stdlib::Fqdn $domain,
  Pattern[/\A[a-z_][a-z0-9_-]{0,31}\z/] $owner,
  Integer[60, 3650] $days = 825,
) {
  $cert = "${directory}/server.crt"
  $key = "${directory}/server.key"
  # The paths are typed (Castelet::Path), the domain a Stdlib::Fqdn and the owner a user name:
  # nothing here needs quoting.
  exec { $title:
    command => join([
        "mkdir -p ${directory} && chmod 0755 ${directory}",
        "&& openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days ${days}",
        "-subj /CN=${domain} -addext subjectAltName=DNS:${domain} -keyout ${key}.new -out ${cert}.new",
        "&& chown ${owner}:${owner} ${key}.new ${cert}.new && chmod 0600 ${key}.new && chmod 0644 ${cert}.new",
        "&& mv ${key}.new ${key} && mv ${cert}.new ${cert}",
    ], ' '),
    unless  => join([
        "openssl x509 -in ${cert} -noout -checkend 2592000",
        "&& openssl x509 -in ${cert} -noout -ext subjectAltName | grep -qxF '    DNS:${domain}' && test -s ${key}",
    ], ' '),
    path    => ['/usr/sbin', '/usr/bin', '/sbin', '/bin'],
    umask   => '0077',
  }
}
