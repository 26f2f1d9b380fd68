"""LAMP specifics (the checks every blueprint shares are in test_base.py)."""

ROLES = ["web"]


def test_php_82_serves_pages(host):
    result = host.run("curl -s http://127.0.0.1/health.php")
    assert "castelet-lamp: ok" in result.stdout
    assert host.package("libapache2-mod-php8.2").is_installed


def test_database_credentials_are_root_only(host):
    with host.sudo():
        credentials = host.file("/var/lib/castelet/secrets")
        assert credentials.is_directory
        assert credentials.mode == 0o700


def test_mariadb_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:3306").is_listening
    assert not host.socket("tcp://0.0.0.0:3306").is_listening
