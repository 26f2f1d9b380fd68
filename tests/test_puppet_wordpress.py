"""The wordpress role: Debian's WordPress, installed by the deployment before the public ports open.

The role's catalog is compiled (real Puppet 7, scratch environment, hiera data as Terraform
writes it and the blueprint's own data, see test_puppet.py) and checked: the installer exec's
settings, no password or key in the catalog, the content directory bound to the data volume
before the package fills it, and Puppet's own relationship graph (no cycle; the installation
after Apache, MariaDB, the database and the configuration, before `castelet::installed` and
the public firewall rules).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_puppet import TLS_SETTINGS, Compiled, Environment, errors_of, make_environment
from test_puppet_omeka_install import LIBRARY, install_graph

pytestmark = pytest.mark.puppet

EXEC = ("Exec", "castelet-wordpress-install")
HOST = "notes.atlas.example.org"
TITLE = "Carnet d'Atlas & <co>"
CONFIG = "/etc/wordpress/config-default.php"
INSTALLER = Path(__file__).resolve().parents[1] / "puppet/modules/castelet/files/wordpress-install.py"


def wordpress_blueprint(repo_root: Path) -> dict[str, Any]:
    path = repo_root / "blueprints/wordpress/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return {**data, "castelet::profile::wordpress::servername": HOST}


@pytest.fixture(scope="module")
def compiled(repo_root: Path, puppet_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[str, tuple[Environment, Compiled]]]:
    base = tmp_path_factory.mktemp("wordpress")
    settings = {**TLS_SETTINGS, "project_name": TITLE, "search_engines": "false"}
    envs = {
        "wordpress": make_environment(base / "wordpress", puppet_bin, repo_root, "castelet::role::wordpress",
                                      blueprint=wordpress_blueprint(repo_root), settings=settings,
                                      data_dir="/srv/data"),
    }  # fmt: skip
    yield {name: (env, env.compile()) for name, env in envs.items()}


def test_install_exec_settings(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    env, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    params = cat.resource(*EXEC)
    assert params["command"] == "/usr/local/sbin/castelet-wordpress-install"
    assert dict(item.split("=", 1) for item in params["environment"]) == {
        "WORDPRESS_BASE_URL": "https://127.0.0.1",  # port 80 only redirects
        "WORDPRESS_HOST": HOST,
        "WORDPRESS_ADMIN_USER": "admin",
        "WORDPRESS_ADMIN_EMAIL": "ada@example.org",  # castelet::admin_email
        "WORDPRESS_ADMIN_PASSWORD_FILE": f"{env.secrets_dir}/wordpress-admin",
        "WORDPRESS_SITE_TITLE": TITLE,  # terraform.settings.project_name, through the blueprint's data
        "WORDPRESS_PUBLIC": "0",  # terraform.settings.search_engines, a string
    }
    # Installed = an administrator in WordPress's database, asked with the database's client file.
    assert "meta_key = 'wp_capabilities'" in params["unless"]
    assert f"--defaults-extra-file='{env.secrets_dir}/mariadb-wordpress.cnf'" in params["unless"]
    assert params["logoutput"] in ("on_failure", False)
    script = cat.resource("File", "/usr/local/sbin/castelet-wordpress-install")
    assert (script["mode"], script["owner"]) == ("0700", "root")
    assert script["content"] == INSTALLER.read_text()
    # The module the installers share (castelet::web_installer::library), in place before the exec runs.
    assert cat.resource("File", LIBRARY)["content"] == (INSTALLER.parent / "castelet_web_installer.py").read_text()
    assert {f"File[{LIBRARY}]", "File[/usr/local/sbin/castelet-wordpress-install]"} <= set(params["require"])


def test_secrets_are_generated_on_the_node_and_never_in_the_catalog(
        compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    env, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    admin = (env.secrets_dir / "wordpress-admin").read_text().strip()
    assert len(admin) >= 32
    assert admin not in cat.stdout, "the administrator's password is in the catalog"  # the installer reads its file
    config = cat.resource("File", CONFIG)
    assert (config["owner"], config["group"], config["mode"]) == ("root", "www-data", "0640")
    assert "content" in cat.sensitive("File", CONFIG)  # redacted in logs and reports
    assert config["show_diff"] is False
    # The keys and the database password only as the content of root-owned files (Sensitive).
    config_file, client_file = ("File", CONFIG), ("File", f"{env.secrets_dir}/mariadb-wordpress.cnf")
    for name, files in (("wordpress-salts", [config_file]), ("mariadb-wordpress", [config_file, client_file])):
        value = (env.secrets_dir / name).read_text().strip()
        assert len(value) >= 32
        holders = [key for key, resource in cat.resources.items() if value in json.dumps(resource)]
        assert sorted(holders) == sorted(files), f"{name} is in {holders}"


def test_content_is_bound_to_the_volume_before_the_package(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    _, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    bind = cat.resource("Exec", "castelet-persistent-dir-/var/lib/wordpress/wp-content")
    assert "'/var/lib/wordpress/wp-content' '/srv/data/wordpress'" in bind["command"]
    assert "Package[wordpress]" in cat.resource("Castelet::Persistent_dir", "/var/lib/wordpress/wp-content")["before"]
    assert bind["command"].startswith("castelet-volumes bind")
    # Apache never serves the root disk's empty directory in place of the volume's.
    cat.resource("File", "/etc/systemd/system/apache2.service.d/castelet-volume-var-lib-wordpress-wp-content.conf")


def test_install_runs_between_the_stack_and_the_public_ports(
        compiled: dict[str, tuple[Environment, Compiled]], puppet_bin: str, tmp_path: Path) -> None:
    env, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    before, _ = install_graph(env, cat, puppet_bin, tmp_path, EXEC[1], HOST, "wordpress")
    assert {
        "Package[wordpress]",
        f"File[{CONFIG}]",
        "Exec[castelet-persistent-dir-/var/lib/wordpress/wp-content]",
    } <= before
