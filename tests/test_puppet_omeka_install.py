"""The omeka_s role completes Omeka S's installation itself, before the public ports open.

* The role's catalog is compiled (real Puppet 7, scratch environment, hiera data as Terraform
  writes it, see test_puppet.py) and `Exec[castelet-omeka-install]` is checked: its settings,
  no password anywhere in the catalog, its `require`s and `before`.
* The catalog is turned into Puppet's own relationship graph (what `puppet apply` orders by):
  no dependency cycle, the exec comes after Apache, MariaDB, the database, `database.ini`,
  the release symlink and the virtual host, and before `castelet::installed` and the public
  firewall rules.
* With php-cli and a MariaDB server available, the exec's own `unless` command and the
  installer, with the environment the catalog gives them, run against a throwaway MariaDB and
  the stand-in release served by `php -S`: `unless` says "not installed", the installer
  installs, `unless` then says "installed".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.omeka_standin import install_form_offered, login
from test_omeka_standin import HOST, INSTALLER, StandinSite, ThrowawayMariaDB, php_binary
from test_puppet import FAKE_SHA256, TLS_SETTINGS, Compiled, Environment, errors_of, make_environment

pytestmark = pytest.mark.puppet

EXEC = ("Exec", "castelet-omeka-install")
LIBRARY = "/usr/local/lib/castelet/python/castelet_web_installer.py"  # castelet::web_installer::library
TITLE = "Atlas & co's charters"
SETTINGS = {
    **TLS_SETTINGS,
    "project_name": TITLE,
    "release_version": "4.1.1",
    "release_sha256": FAKE_SHA256,
    "release_url": "https://github.com/omeka/omeka-s/releases/download/v4.1.1/omeka-s-4.1.1.zip",
}

# Loads a compiled catalog the way `puppet apply` does (to_ral, finalize, relationship graph
# with containment expanded into whits) and reports cycles and what comes before/after an exec.
GRAPH_RB = r"""
require 'puppet'
require 'json'
catalog_file, exec_title, *settings = ARGV
Puppet.initialize_settings(settings)
env = Puppet.lookup(:environments).get!(Puppet[:environment])
Puppet.push_context({ current_environment: env, loaders: Puppet::Pops::Loaders.new(env) }, 'castelet graph check')
catalog = Puppet::Resource::Catalog.from_data_hash(JSON.parse(File.read(catalog_file)))
ral = catalog.to_ral
ral.finalize
graph = Puppet::Graph::RelationshipGraph.new(Puppet::Graph::SequentialPrioritizer.new)
graph.populate_from(ral)
def reach(graph, from, direction)
  seen = {}
  todo = [from]
  until todo.empty?
    graph.adjacent(todo.pop, direction: direction).each do |v|
      next if seen[v]
      seen[v] = true
      todo << v
    end
  end
  seen.keys.map(&:ref)
end
exec = ral.resource('Exec', exec_title)
puts JSON.generate({
  'cycles' => graph.find_cycles_in_graph.map { |c| c.map(&:ref) },
  'before' => reach(graph, exec, :in),
  'after' => reach(graph, exec, :out),
})
"""


def install_graph(
    env: Environment, cat: Compiled, puppet_bin: str, tmp_path: Path, title: str, host: str, database: str
) -> tuple[set[str], set[str]]:
    """What Puppet's relationship graph orders before and after the installer `Exec[title]`.

    Checked for every web application's installer (castelet::web_installer): no cycle; the
    exec after Apache, MariaDB, the application's database, PHP's MySQL driver, the HTTPS
    virtual host `host` and its certificate; before `castelet::installed` and the public
    firewall rules, with no service or package after it.
    """
    ruby = Path(puppet_bin).read_text().splitlines()[0].removeprefix("#!").split()[0]
    catalog = tmp_path / "catalog.json"
    catalog.write_text(cat.stdout[cat.stdout.find("{"):])
    script = tmp_path / "graph.rb"
    script.write_text(GRAPH_RB)
    proc = subprocess.run([ruby, str(script), str(catalog), title, *env.settings()], capture_output=True, text=True,
                          env=env.run_env(), timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    graph = json.loads(proc.stdout.strip().splitlines()[-1])
    assert graph["cycles"] == []
    before, after = set(graph["before"]), set(graph["after"])
    assert {
        "Service[httpd]",
        "Service[mysqld]",
        f"Mysql_database[{database}]",
        "Package[php8.2-mysql]",
        f"Whit[Completed_apache::Vhost[{host}-https]]",
        "Exec[castelet-tls-ensure]",  # the certificate exists before Apache starts
    } <= before
    assert {"Whit[Completed_class[Castelet::Installed]]", "File[/etc/nftables.castelet.d/public.nft]"} <= after
    assert not any(ref.startswith(("Service[httpd]", "Service[mysqld]", "Package[")) for ref in after)
    return before, after


def omeka_blueprint(repo_root: Path) -> dict[str, Any]:
    """The omeka-s blueprint's own hiera data (site_title from terraform.settings.project_name)."""
    path = repo_root / "blueprints" / "omeka-s" / "{{cookiecutter.project_slug}}" / "puppet" / "data" / "blueprint.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return {**data, "castelet::profile::omeka_s::servername": HOST}


@pytest.fixture(scope="module")
def compiled(
    repo_root: Path, puppet_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Environment, Compiled]]]:
    base = tmp_path_factory.mktemp("omeka_install")
    blueprint = omeka_blueprint(repo_root)
    untitled = {k: v for k, v in blueprint.items() if k != "castelet::profile::omeka_s::site_title"}
    envs = {
        "omeka_s": make_environment(base / "omeka_s", puppet_bin, repo_root, "castelet::role::omeka_s",
                                    blueprint=blueprint, settings=SETTINGS),
        "untitled": make_environment(base / "untitled", puppet_bin, repo_root, "castelet::role::omeka_s",
                                     blueprint=untitled, settings=SETTINGS),
    }  # fmt: skip
    yield {name: (env, env.compile()) for name, env in envs.items()}


def _environment(params: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in params["environment"])


def test_install_exec_is_in_the_catalog(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    env, cat = compiled["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    params = cat.resource(*EXEC)
    assert params["command"] == "/usr/local/sbin/castelet-omeka-install"
    assert _environment(params) == {
        "OMEKA_BASE_URL": "https://127.0.0.1",  # port 80 only redirects
        "OMEKA_HOST": HOST,
        "OMEKA_ADMIN_EMAIL": "ada@example.org",  # castelet::admin_email
        "OMEKA_ADMIN_NAME": "Administrator",
        "OMEKA_ADMIN_PASSWORD_FILE": f"{env.secrets_dir}/omeka-admin",
        "OMEKA_SITE_TITLE": TITLE,  # terraform.settings.project_name, through the blueprint's data
        "OMEKA_TIMEZONE": "America/Toronto",  # the deployment's time zone (castelet::profile::base)
        "OMEKA_LOCALE": "en_US",
    }
    # Installed = an active global administrator in Omeka S's database, asked with the client file.
    assert "FROM user WHERE role = 'global_admin'" in params["unless"]
    assert f"--defaults-extra-file='{env.secrets_dir}/mariadb-omeka.cnf'" in params["unless"]
    assert params["logoutput"] in ("on_failure", False)
    assert params["timeout"] >= 600
    script = cat.resource("File", "/usr/local/sbin/castelet-omeka-install")
    assert (script["mode"], script["owner"]) == ("0700", "root")
    assert script["content"] == INSTALLER.read_text()
    cat.resource("Package", "python3")
    # The module the installers share, where the script looks for it first, and before the exec runs.
    library = cat.resource("File", LIBRARY)
    assert (library["mode"], library["owner"]) == ("0644", "root")
    assert library["content"] == (INSTALLER.parent / "castelet_web_installer.py").read_text()
    assert {f"File[{LIBRARY}]", "File[/usr/local/sbin/castelet-omeka-install]", "Package[python3]"} <= set(
        params["require"]
    )


def test_uploaded_files_never_run_php(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    """Issue 21, point 4: Omeka S's files get the block WordPress's uploads have, at the path Apache
    serves (the release's files/ symlink) and at its target on the data volume: PHP's engine off,
    PHP file names refused, no .htaccess of their own (the release's AllowOverride All stops there);
    in place before the installation, and so before the public ports open."""
    _, cat = compiled["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    block = cat.resource("Apache::Custom_config", "castelet-omeka-files")
    sections = block["content"].split("<Directory ")[1:]
    assert [section.split(">", 1)[0] for section in sections] == ['"/var/www/omeka-s/files"', '"/srv/data/omeka-files"']
    for section in sections:
        assert "php_admin_flag engine off" in section
        assert "AllowOverride None" in section
        assert '<FilesMatch "(?i)\\.(php[0-9]*|phtml|phar|pht|phps)$">\n        Require all denied' in section
        assert "ExecCGI" not in section and "Indexes" not in section
    # apachectl -t, which checks it, reads the virtual host's certificate.
    assert "Exec[castelet-tls-ensure]" in block["require"]
    assert "Apache::Custom_config[castelet-omeka-files]" in cat.resource(*EXEC)["require"]


def test_admin_password_is_generated_on_the_node_and_never_in_the_catalog(
    compiled: dict[str, tuple[Environment, Compiled]],
) -> None:
    env, cat = compiled["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    secret = env.secrets_dir / "omeka-admin"
    password = secret.read_text().strip()
    assert len(password) >= 32 and oct(secret.stat().st_mode & 0o777) == "0o600"
    assert password not in json.dumps(cat.resource(*EXEC))
    # Not in any resource: the installer reads it from its root-only file.
    assert password not in cat.stdout


def test_install_exec_is_ordered_between_the_stack_and_the_public_ports(
    compiled: dict[str, tuple[Environment, Compiled]],
) -> None:
    _, cat = compiled["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    params = cat.resource(*EXEC)
    require = set(params["require"])
    assert {
        "File[/var/www/omeka-s]",
        "File[/var/www/omeka-s-4.1.1/omeka-s/config/database.ini]",
        "Castelet::Mariadb::Database[omeka]",
        f"Castelet::Apache_site[{HOST}]",
        "Class[Apache::Service]",
    } <= require
    assert "Class[Castelet::Installed]" in params["before"]
    assert "Castelet::Installed" in cat.classes


def test_relationship_graph_has_no_cycle_and_runs_the_install_in_between(
    compiled: dict[str, tuple[Environment, Compiled]], puppet_bin: str, tmp_path: Path
) -> None:
    env, cat = compiled["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    before, after = install_graph(env, cat, puppet_bin, tmp_path, EXEC[1], HOST, "omeka")
    assert {
        "Mysql_grant[omeka@localhost/omeka.*]",
        "File[/var/www/omeka-s]",
        "File[/var/www/omeka-s-4.1.1/omeka-s/config/database.ini]",
        "File[/var/www/omeka-s-4.1.1/omeka-s/files]",
    } <= before
    # the public ports open after the installation, and only then is the ACME CA asked
    assert "Exec[castelet-tls-issue]" in after


def test_site_title_is_required(compiled: dict[str, tuple[Environment, Compiled]]) -> None:
    _, cat = compiled["untitled"]
    assert cat.returncode != 0
    assert "site_title" in errors_of(cat)


# --------------------------------------------------------------------------------------
# the exec's commands, for real (throwaway MariaDB + the stand-in served by php -S)
# --------------------------------------------------------------------------------------


def test_unless_and_installer_against_a_real_database(
    compiled: dict[str, tuple[Environment, Compiled]], tmp_path: Path
) -> None:
    env, cat = compiled["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    php = php_binary()
    params = cat.resource(*EXEC)
    db_password = (env.secrets_dir / "mariadb-omeka").read_text().strip()
    admin_password = (env.secrets_dir / "omeka-admin").read_text().strip()

    mariadb = ThrowawayMariaDB()
    mariadb.start()
    site: StandinSite | None = None
    try:
        mariadb.create_database("omeka", "omeka", db_password)
        # The client file exactly as the catalog writes it, plus the throwaway server's socket.
        cnf = env.secrets_dir / "mariadb-omeka.cnf"
        cnf.write_text(cat.resource("File", str(cnf))["content"] + f"socket={mariadb.socket}\n")
        cnf.chmod(0o600)
        client_dir = Path(str(mariadb.client)).parent
        shell_env = {"PATH": f"{client_dir}:/usr/bin:/bin", "LC_ALL": "C"}

        def unless() -> int:
            return subprocess.run(["/bin/sh", "-c", params["unless"]], env=shell_env, capture_output=True,
                                  timeout=60).returncode  # fmt: skip

        assert unless() != 0  # empty database: not installed, the exec runs
        site = StandinSite(tmp_path / "site", mariadb, "omeka", db_password, php)
        run_env = {**_environment(params), "OMEKA_BASE_URL": site.base_url, "OMEKA_WAIT": "10",
                   "PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # fmt: skip
        python = shutil.which("python3", path="/usr/bin") or "python3"
        proc = subprocess.run([python, str(INSTALLER)], env=run_env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert admin_password not in proc.stdout + proc.stderr
        assert unless() == 0  # installed: Puppet skips the exec from now on
        dashboard = login(site.base_url, HOST, "ada@example.org", admin_password)
        assert "Atlas &amp; co&#039;s charters" in dashboard and not install_form_offered(dashboard)
    finally:
        if site is not None:
            site.stop()
        mariadb.stop()

