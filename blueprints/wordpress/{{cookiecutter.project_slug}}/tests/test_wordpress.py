"""WordPress specifics (the checks every blueprint shares are in test_base.py)."""

import castelet_checks as checks

ROLES = ["web"]


def test_wordpress_comes_from_debian(host):
    assert host.package("wordpress").is_installed
    assert host.file("/usr/share/wordpress/wp-login.php").user == "root"


def test_configuration_is_private(host):
    config = host.file("/etc/wordpress/config-default.php")
    assert config.exists
    assert config.user == "root"
    assert config.group == "www-data"
    assert config.mode == 0o640


def test_content_lives_on_the_data_volume(host):
    assert host.mount_point("/srv/data").exists
    with host.sudo():
        assert host.run("findmnt -n -o SOURCE /var/lib/wordpress/wp-content").rc == 0
        uploads = host.file("/srv/data/wordpress/uploads")
        assert uploads.is_directory
        assert uploads.user == "www-data"


def test_the_installer_is_closed(host):
    page = checks.site_get(host, "/wp-admin/install.php")
    assert "Already Installed" in page
    assert 'name="admin_password"' not in page



def test_castelet_must_use_plugin_is_roots(host):
    # Plugin and theme updates, failed logins to fail2ban, XML-RPC: www-data cannot change it.
    plugin = host.file("/var/lib/wordpress/wp-content/mu-plugins/castelet.php")
    assert plugin.exists
    assert plugin.user == "root"
    assert plugin.mode == 0o644
