"""The static-site role and the shared nginx site (`castelet::nginx_site`), compiled with the real
Puppet against Terraform-shaped hiera data (the harness of test_puppet.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_puppet import (
    ADMIN_KEY,
    TLS_SETTINGS,
    Compiled,
    debian_facts,
    errors_of,
    make_environment,
)

pytestmark = pytest.mark.puppet

BLUEPRINT_DATA = "blueprints/static-site/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml"
DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA9x3mXzKq1fA1c8m6m2tQ0vJH3pXbq0z0y5aRk0c0ZP ci@builder"
SITE_FILE = "/etc/nginx/sites-enabled/castelet-atlas.example.org.conf"
# A proxied site, as another profile declares it (castelet::nginx_site's second form).
PROXY_CLASS = """class castelet_test::proxy {
  include castelet::profile::base
  castelet::nginx_site { 'app.example.org':
    proxy_to => 'http://127.0.0.1:3000',
    login    => { 'path' => '/login', 'failure_status' => 401 },
  }
}
"""


def _settings(**extra: str) -> dict[str, str]:
    return {"project_name": "Atlas of things", **TLS_SETTINGS, "backup_repository": "",
            "deploy_ssh_keys": "", "site_git_url": "", "site_git_ref": "main", **extra}


@pytest.fixture(scope="module")
def catalogs(repo_root: Path, puppet_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("static_site")
    blueprint = yaml.safe_load((repo_root / BLUEPRINT_DATA).read_text())
    on_volume = {"data_dir": "/srv/data", "backups": {"paths": ["/srv/data/site"], "databases": []}}
    envs = {
        "default": make_environment(base / "default", puppet_bin, repo_root, "castelet::role::static_site",
                                    blueprint=blueprint, settings=_settings(), **on_volume),
        "built": make_environment(
            base / "built", puppet_bin, repo_root, "castelet::role::static_site", blueprint=blueprint,
            settings=_settings(deploy_ssh_keys=f"{DEPLOY_KEY},{ADMIN_KEY}",
                               site_git_url="http://10.166.0.1:8123/site.git", site_git_ref="v1.2"),
            **on_volume),
        "apache_reload": make_environment(base / "apache_reload", puppet_bin, repo_root,
                                          "castelet::role::static_site", settings=_settings(), **on_volume),
        "proxy": make_environment(base / "proxy", puppet_bin, repo_root, "castelet_test::proxy",
                                  blueprint={"castelet::profile::tls::reload_unit": "nginx"}, settings=_settings()),
        "both": make_environment(base / "both", puppet_bin, repo_root, "castelet_test::proxy",
                                 blueprint={"castelet::profile::tls::reload_unit": "nginx"}, settings=_settings()),
    }
    test_module = envs["proxy"].env_dir / "modules" / "castelet_test" / "manifests"
    test_module.mkdir(parents=True)
    (test_module / "proxy.pp").write_text(PROXY_CLASS)
    both = envs["both"].env_dir / "modules" / "castelet_test" / "manifests"
    both.mkdir(parents=True)
    (both / "proxy.pp").write_text(PROXY_CLASS.replace("proxy_to =>", "root     => '/srv/x',\n    proxy_to =>"))
    jobs = {name: (env, debian_facts("12")) for name, env in envs.items()}
    jobs["default13"] = (envs["default"], debian_facts("13"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(env.compile, facts) for name, (env, facts) in jobs.items()}
        results: dict[str, Any] = {name: future.result() for name, future in futures.items()}
    yield results


def test_static_site_serves_the_current_release_over_https(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["default"]
    assert cat.returncode == 0, errors_of(cat)
    assert {"Castelet::Role::Static_site", "Castelet::Profile::Static_site", "Castelet::Profile::Nginx",
            "Castelet::Profile::Base"} <= cat.classes
    site = cat.resource("File", SITE_FILE)["content"]
    assert "root /srv/data/site/current;" in site
    assert "return 301 https://atlas.example.org$request_uri;" in site
    assert "root /var/lib/castelet/acme;" in site
    assert "ssl_certificate /etc/castelet/tls/current/fullchain.pem;" in site
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in site
    assert "includeSubDomains" not in site
    assert "disable_symlinks if_not_owner from=$document_root;" in site
    assert "listen 443 ssl http2;" in site  # Debian 12's nginx 1.22
    assert "proxy_pass" not in site
    conf = cat.resource("File", "/etc/nginx/nginx.conf")["content"]
    assert "server_tokens off;" in conf and "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_session_tickets off;" in conf
    assert cat.resource("File", "/etc/nginx/sites-enabled/default")["ensure"] == "absent"
    service = cat.resource("Service", "nginx")
    assert service["restart"] == "/bin/systemctl reload nginx"
    tls = json.loads(cat.resource("File", "/etc/castelet/tls.json")["content"])
    assert tls["reload_unit"] == "nginx"
    # the placeholder is published before the public ports open; nginx needs the volume
    placeholder = cat.resource("Exec", "castelet-site-placeholder")
    assert placeholder["user"] == "deploy" and "Class[Castelet::Installed]" in json.dumps(placeholder["before"])
    cat.resource("Castelet::Requires_mount", "nginx.service /srv/data/site")
    # no key, no build: nobody may upload, nothing is fetched
    keys = cat.resource("File", "/etc/ssh/castelet-authorized-keys-deploy")["content"]
    assert "ssh-" not in keys
    assert ("Package", "jekyll") not in cat.resources
    assert cat.resource("Service", "castelet-site-build.timer")["ensure"] == "stopped"


def test_debian_13_uses_http2_on(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["default13"]
    assert cat.returncode == 0, errors_of(cat)
    site = cat.resource("File", SITE_FILE)["content"]
    assert "http2 on;" in site and "listen 443 ssl;" in site and "ssl http2" not in site


def test_deploy_account_is_restricted_to_rsync(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["built"]
    assert cat.returncode == 0, errors_of(cat)
    user = cat.resource("User", "deploy")
    assert user["uid"] == 990 and user["password"] == "!" and user["home"] == "/var/lib/castelet-site"
    keys = cat.resource("File", "/etc/ssh/castelet-authorized-keys-deploy")
    assert keys["owner"] == "root" and keys["mode"] == "0644"
    lines = [line for line in keys["content"].splitlines() if not line.startswith("#")]
    command = 'restrict,command="/usr/local/sbin/castelet-site-deploy rsync"'
    assert lines == [f"{command} {DEPLOY_KEY}", f"{command} {ADMIN_KEY}"]
    sshd = cat.resource("File", "/etc/ssh/sshd_config.d/50-castelet-deploy.conf")
    assert sshd["validate_cmd"] == "/usr/sbin/sshd -t -f %"
    for line in ("Match User deploy", "ForceCommand /usr/local/sbin/castelet-site-deploy rsync",
                 "DisableForwarding yes", "PermitTTY no",
                 "AuthorizedKeysFile /etc/ssh/castelet-authorized-keys-deploy"):
        assert line in sshd["content"], line


def test_git_build_runs_jekyll_in_a_sandbox(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["built"]
    assert cat.returncode == 0, errors_of(cat)
    config = json.loads(cat.resource("File", "/etc/castelet/site.json")["content"])
    assert config["git_url"] == "http://10.166.0.1:8123/site.git" and config["git_ref"] == "v1.2"
    assert config["site_dir"] == "/srv/data/site" and config["keep_releases"] == 5
    unit = cat.resource("File", "/etc/systemd/system/castelet-site-build.service")["content"]
    for line in ("User=deploy", "ProtectSystem=strict", "ReadWritePaths=/srv/data/site /var/lib/castelet-site",
                 "NoNewPrivileges=yes", "ExecStart=/usr/local/sbin/castelet-site-deploy build"):
        assert line in unit, line
    build = cat.resource("Exec", "castelet-site-build")
    assert build["unless"] == "/usr/local/sbin/castelet-site-deploy built"
    cat.resource("Package", "jekyll")
    assert cat.resource("Service", "castelet-site-build.timer")["ensure"] == "running"


def test_nginx_refuses_apaches_reload_unit(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["apache_reload"]
    assert cat.returncode != 0
    assert "castelet::profile::tls::reload_unit: nginx" in errors_of(cat)


def test_proxied_site(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["proxy"]
    assert cat.returncode == 0, errors_of(cat)
    site = cat.resource("File", "/etc/nginx/sites-enabled/castelet-app.example.org.conf")["content"]
    assert "proxy_pass http://127.0.0.1:3000;" in site and "proxy_hide_header X-Powered-By;" in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    assert "return 301 https://app.example.org$request_uri;" in site
    assert "root /srv" not in site
    jail = cat.resource("File", "/etc/fail2ban/jail.d/castelet-app.example.org.local")["content"]
    assert "logpath  = /var/log/nginx/castelet-app.example.org-https.log" in jail


def test_a_site_is_static_or_proxied_not_both(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["both"]
    assert cat.returncode != 0
    assert "give exactly one of root and proxy_to" in errors_of(cat)
