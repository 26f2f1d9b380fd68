"""Omeka S specifics (the checks every blueprint shares are in test_base.py)."""

ROLES = ["web"]


def test_database_config_is_private(host):
    config = host.file("/var/www/omeka-s/config/database.ini")
    assert config.exists
    assert config.user == "root"
    assert config.group == "www-data"
    assert config.mode == 0o640


def test_uploaded_files_live_on_the_data_volume(host):
    files = host.file("/srv/data/omeka-files")
    assert files.is_directory
    assert files.user == "www-data"
    assert host.mount_point("/srv/data").exists


def test_image_processing_is_available(host):
    assert host.exists("convert")
    assert "imagick" in host.run("php -m").stdout
