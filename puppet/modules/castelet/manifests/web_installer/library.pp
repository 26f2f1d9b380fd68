# @summary
#   The Python module the web applications' installer scripts share (`castelet::web_installer`).
#
# `/usr/local/lib/castelet/python/castelet_web_installer.py` (root-owned, 0644): the HTTP
# session (fixed Host header, cookie jar, redirects not followed), waiting for the web server,
# the settings and password file, errors and the command line. Each installer script puts that
# folder first on its `sys.path`. Also the system's `python3`, which runs the scripts.
#
# @example
#   include castelet::web_installer::library
class castelet::web_installer::library {
  # The folder is fixed: the scripts look for the module there (castelet::web_installer uses $path).
  $path = '/usr/local/lib/castelet/python/castelet_web_installer.py'

  ensure_packages(['python3'])

  file { ['/usr/local/lib/castelet', '/usr/local/lib/castelet/python']:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  file { $path:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => file('castelet/castelet_web_installer.py'),
    require => Package['python3'],
  }
}
