"""The wordpress role: Debian's WordPress, installed by the deployment before the public ports open.

The role's catalog is compiled (real Puppet 7, scratch environment, hiera data as Terraform
writes it and the blueprint's own data, see test_puppet.py) and checked: the installer exec's
settings, no password or key in the catalog, the content directory bound to the data volume
before the package fills it, and Puppet's own relationship graph (no cycle; the installation
after Apache, MariaDB, the database and the configuration, before `castelet::installed` and
the public firewall rules). Issue 21, point 5: the first administrator's login name is generated
(never `admin`), /xmlrpc.php is refused unless the `xmlrpc` setting asks for it, WordPress's updater
stays on for plugins and themes (a must-use plugin that PHP runs here), and one fail2ban jail reads
the failed logins WordPress reports from every login path.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_omeka_standin import php_binary
from test_puppet import TLS_SETTINGS, Compiled, Environment, errors_of, make_environment
from test_puppet_omeka_install import LIBRARY, install_graph

pytestmark = pytest.mark.puppet

EXEC = ("Exec", "castelet-wordpress-install")
HOST = "notes.atlas.example.org"
TITLE = "Carnet d'Atlas & <co>"
CONFIG = "/etc/wordpress/config-default.php"
INSTALLER = Path(__file__).resolve().parents[1] / "puppet/modules/castelet/files/wordpress-install.py"
CONTENT_CONF = ("Apache::Custom_config", "castelet-wordpress-content")
MU_PLUGIN = "/var/lib/wordpress/wp-content/mu-plugins/castelet.php"
JAIL = "/etc/fail2ban/jail.d/castelet-wordpress.local"
FILTER = "/etc/fail2ban/filter.d/castelet-wordpress.conf"


def wordpress_blueprint(repo_root: Path) -> dict[str, Any]:
    path = repo_root / "blueprints/wordpress/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return {**data, "castelet::profile::wordpress::servername": HOST}


@pytest.fixture(scope="module")
def compiled(repo_root: Path, puppet_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[str, tuple[Environment, Compiled]]]:
    base = tmp_path_factory.mktemp("wordpress")
    settings = {**TLS_SETTINGS, "project_name": TITLE, "search_engines": "false", "xmlrpc": "false"}
    blueprint = wordpress_blueprint(repo_root)
    envs = {
        "wordpress": make_environment(base / "wordpress", puppet_bin, repo_root, "castelet::role::wordpress",
                                      blueprint=blueprint, settings=settings, data_dir="/srv/data"),
        "xmlrpc": make_environment(base / "xmlrpc", puppet_bin, repo_root, "castelet::role::wordpress",
                                   blueprint=blueprint, settings={**settings, "xmlrpc": "true"}, data_dir="/srv/data"),
        "admin": make_environment(base / "admin", puppet_bin, repo_root, "castelet::role::wordpress",
                                  blueprint={**blueprint, "castelet::profile::wordpress::admin_user": "admin"},
                                  settings=settings, data_dir="/srv/data"),
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
        "WORDPRESS_ADMIN_USER": (env.secrets_dir / "wordpress-admin-user").read_text().strip(),
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


def test_first_admin_login_is_generated_never_admin(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    env, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    login = dict(item.split("=", 1) for item in cat.resource(*EXEC)["environment"])["WORDPRESS_ADMIN_USER"]
    assert login == (env.secrets_dir / "wordpress-admin-user").read_text().strip()
    assert login != "admin" and len(login) >= 32
    # Nor can the hiera data ask for `admin`.
    _, refused = compiled["admin"]
    assert refused.returncode != 0 and "admin_user" in errors_of(refused), errors_of(refused)


def test_xmlrpc_is_refused_unless_the_setting_asks(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    refusal = '<Files "xmlrpc.php">\n        Require all denied\n    </Files>'
    _, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    conf = cat.resource(*CONTENT_CONF)["content"]
    assert f"<Directory /usr/share/wordpress>\n    {refusal}\n</Directory>" in conf
    plugin = cat.resource("File", MU_PLUGIN)["content"]
    assert "add_filter('xmlrpc_enabled', '__return_false');" in plugin
    assert "remove_action('wp_head', 'rsd_link');" in plugin
    # xmlrpc = "true" in terraform.tfvars serves it again.
    _, served = compiled["xmlrpc"]
    assert served.returncode == 0, errors_of(served)
    assert "xmlrpc.php" not in served.resource(*CONTENT_CONF)["content"]
    assert "xmlrpc_enabled" not in served.resource("File", MU_PLUGIN)["content"]


def test_plugin_and_theme_updates_stay_on(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    """WordPress's core updater off (Debian's package), its background updater on: nothing in the
    configuration turns automatic updates or file changes off, and the must-use plugin (root's,
    on the data volume with wp-content) is there before the installation."""
    _, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    config = cat.resource("File", CONFIG)["content"]
    assert "define('WP_AUTO_UPDATE_CORE', false);" in config
    for off in ("AUTOMATIC_UPDATER_DISABLED", "DISALLOW_FILE_MODS", "DISABLE_WP_CRON"):
        assert off not in config, off
    plugin = cat.resource("File", MU_PLUGIN)
    assert (plugin["owner"], plugin["group"], plugin["mode"]) == ("root", "root", "0644")
    folder = cat.resource("File", "/var/lib/wordpress/wp-content/mu-plugins")
    assert (folder["ensure"], folder["owner"], folder["mode"]) == ("directory", "root", "0755")
    assert f"File[{MU_PLUGIN}]" in cat.resource(*EXEC)["require"]


def _run_mu_plugin(php: str, source: str, tmp_path: Path) -> dict[str, Any]:
    """The must-use plugin run by PHP with WordPress's hook functions stubbed: which hooks it sets
    and what its update filters answer for a plugin and a theme installed in wp-content."""
    (tmp_path / "plugins" / "forms").mkdir(parents=True)
    (tmp_path / "themes" / "lab").mkdir(parents=True)
    (tmp_path / "castelet.php").write_text(source)
    (tmp_path / "run.php").write_text("""<?php
define('ABSPATH', '/usr/share/wordpress/');
define('WP_PLUGIN_DIR', $argv[1] . '/plugins');
$hooks = array();
function add_filter($hook, $callback, $priority = 10, $n = 1) { $GLOBALS['hooks'][$hook][] = $callback; return true; }
function add_action($hook, $callback, $priority = 10, $n = 1) { return add_filter($hook, $callback); }
function remove_action($hook, $callback) { $GLOBALS['hooks']['-' . $hook][] = $callback; return true; }
function get_theme_root($theme = '') { return $GLOBALS['argv'][1] . '/themes'; }
require $argv[1] . '/castelet.php';
echo json_encode(array(
    'hooks' => array_keys($hooks),
    'plugin' => $hooks['auto_update_plugin'][0](false, (object) array('plugin' => 'forms/forms.php')),
    'theme' => $hooks['auto_update_theme'][0](false, (object) array('theme' => 'lab')),
));
""")
    proc = subprocess.run([php, "-d", "display_errors=stderr", "-d", "error_reporting=-1", str(tmp_path / "run.php"),
                           str(tmp_path)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0 and not proc.stderr, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def test_the_must_use_plugin_runs_in_php(compiled: dict[str, tuple[Environment, Compiled]], tmp_path: Path) -> None:
    """Updates forced on for what is installed in wp-content; every login path's failures reported
    (wp_login_failed: wp-login.php and xmlrpc.php; application passwords); XML-RPC hidden by default."""
    php = php_binary()
    _, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    ran = _run_mu_plugin(php, cat.resource("File", MU_PLUGIN)["content"], tmp_path / "default")
    assert (ran["plugin"], ran["theme"]) == (True, True)
    assert set(ran["hooks"]) == {"auto_update_plugin", "auto_update_theme", "wp_login_failed",
                                 "application_password_failed_authentication", "xmlrpc_enabled", "wp_headers",
                                 "-wp_head"}
    _, served = compiled["xmlrpc"]
    ran = _run_mu_plugin(php, served.resource("File", MU_PLUGIN)["content"], tmp_path / "xmlrpc")
    assert set(ran["hooks"]) == {"auto_update_plugin", "auto_update_theme", "wp_login_failed",
                                 "application_password_failed_authentication"}


def test_one_jail_reads_failed_logins_from_every_path(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    """The must-use plugin writes `castelet-wordpress[PID]: authentication failure from ADDRESS` to
    the journal; the jail reads the journal (not the access log, where an XML-RPC failure is a 200)."""
    _, cat = compiled["wordpress"]
    assert cat.returncode == 0, errors_of(cat)
    jail = cat.resource("File", JAIL)["content"]
    assert "[castelet-wordpress]" in jail and "filter  = castelet-wordpress" in jail
    assert "backend = systemd" in jail and "enabled = true" in jail
    rules = cat.resource("File", FILTER)["content"]
    assert "failregex = ^%(__prefix_line)sauthentication failure from <HOST>$" in rules
    assert "journalmatch = SYSLOG_IDENTIFIER=castelet-wordpress" in rules
    assert "openlog('castelet-wordpress', LOG_PID, LOG_AUTH);" in cat.resource("File", MU_PLUGIN)["content"]
    assert {FILTER, JAIL} <= cat.titles("File")
    # The access-log jail that only saw wp-login.php is gone: this one covers it.
    assert f"/etc/fail2ban/jail.d/castelet-{HOST}.local" not in cat.titles("File")
