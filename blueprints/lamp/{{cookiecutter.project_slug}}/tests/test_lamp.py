"""LAMP specifics (the checks every blueprint shares are in test_base.py)."""

import castelet_checks as checks

ROLES = ["web"]


# Debian's PHP of each supported release (the Puppet data in puppet/data/os/ says the same)
PHP = {"13": "8.4", "12": "8.2"}


def test_debians_php_serves_pages(host):
    assert "castelet-lamp: ok" in checks.site_get(host, "/health.php")
    php = PHP[host.system_info.release.split(".")[0]]
    assert host.package(f"libapache2-mod-php{php}").is_installed


def test_database_credentials_are_root_only(host):
    with host.sudo():
        credentials = host.file("/var/lib/castelet/secrets")
        assert credentials.is_directory
        assert credentials.mode == 0o700


def test_mariadb_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:3306").is_listening
    assert not host.socket("tcp://0.0.0.0:3306").is_listening
