"""castelet::profile::nodejs_app and its deploy program (files/castelet-node-deploy.py).

* The program's own logic, run for real where it needs no systemd: a git repository fetched
  from a path, a ref resolved as a branch, a tag or a commit; the settings digest; the entry
  point detection; the state file.
* The role's catalogue (real Puppet, hiera data as Terraform writes it), without and with
  PostgreSQL: the deploy exec comes before `castelet::installed`, the secrets file is root only,
  the unit is confined, the database URL is only in that file.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from test_puppet import TLS_SETTINGS, errors_of, make_environment

REPO = Path(__file__).resolve().parents[1]
PROGRAM = REPO / "puppet/modules/castelet/files/castelet-node-deploy.py"
BLUEPRINT_DATA = REPO / "blueprints/nodejs-app/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml"
ROOT = os.geteuid() == 0


def _program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("castelet_node_deploy", PROGRAM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["castelet_node_deploy"] = module
    spec.loader.exec_module(module)
    return module


deploy = _program()


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(cwd), "PATH": os.environ["PATH"]}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _config(tmp_path: Path, **overrides: Any) -> Any:
    data = {
        "git_url": str(tmp_path / "origin"), "git_ref": "main", "base_dir": str(tmp_path / "base"),
        "cache_dir": str(tmp_path / "cache"), "build_user": "root", "slots": {"blue": 3001, "green": 3002},
        "health_path": "/", "health_host": "app.example.org", "upstream_file": str(tmp_path / "base/upstream.conf"),
        "unit": "castelet-nodejs-app@", "entry": "", "keep_releases": 3, "build_timeout": 60,
        "ca_file": "/etc/ssl/certs/ca-certificates.crt", "watch_files": [str(tmp_path / "app.env")],
        **overrides,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    (tmp_path / "base").mkdir(exist_ok=True)
    (tmp_path / "cache").mkdir(exist_ok=True)
    return deploy.Config.load(str(path))


def test_config_and_build_environment_use_the_system_trust_store(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert cfg.unit_of("green") == "castelet-nodejs-app@green.service"
    env = deploy.build_env(cfg)
    assert env["npm_config_cafile"] == env["NODE_EXTRA_CA_CERTS"] == "/etc/ssl/certs/ca-certificates.crt"
    assert env["npm_config_cache"] == str(tmp_path / "cache/npm")
    assert env["HOME"] == str(tmp_path / "cache/home")


@pytest.mark.skipif(not ROOT, reason="fetches as the build user (root here): needs root")
def test_fetch_resolves_a_branch_a_tag_and_a_commit(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "--quiet", "--initial-branch=main")
    (work / "package.json").write_text("{}\n")
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "one")
    first = _git(work, "rev-parse", "HEAD")
    _git(work, "tag", "v1")
    (work / "package.json").write_text('{"name": "x"}\n')
    _git(work, "commit", "--quiet", "-am", "two")
    second = _git(work, "rev-parse", "HEAD")
    _git(tmp_path, "clone", "--quiet", "--bare", str(work), str(tmp_path / "origin"))

    assert deploy.fetch(_config(tmp_path)) == second
    assert deploy.fetch(_config(tmp_path, git_ref="v1")) == first
    assert deploy.fetch(_config(tmp_path, git_ref=first)) == first
    with pytest.raises(deploy.DeployError, match="no branch, tag or commit 'nope'"):
        deploy.fetch(_config(tmp_path, git_ref="nope"))


def test_settings_digest_follows_the_watched_files(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    missing = deploy.settings_digest(cfg)
    (tmp_path / "app.env").write_text("DATABASE_URL=postgresql://a\n")
    first = deploy.settings_digest(cfg)
    assert first != missing and first == deploy.settings_digest(cfg)
    (tmp_path / "app.env").write_text("DATABASE_URL=postgresql://b\n")
    assert deploy.settings_digest(cfg) != first


def test_active_slot_from_the_state_file(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert deploy.active(deploy.read_state(cfg)) == (None, None, None)
    deploy.write_state(cfg, {"active": "green", "slots": {"green": {"commit": "c" * 40, "digest": "d"}}})
    assert deploy.active(deploy.read_state(cfg)) == ("green", "c" * 40, "d")
    cfg.state_file.write_text("not json")
    assert deploy.active(deploy.read_state(cfg)) == (None, None, None)


def test_entry_point_detection(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    release = tmp_path / "release"
    (release / "dist/server").mkdir(parents=True)
    with pytest.raises(deploy.DeployError, match=r"build/index\.js"):
        deploy.entry_of(cfg, release)
    (release / "dist/server/entry.mjs").write_text("")
    assert deploy.entry_of(cfg, release) == "dist/server/entry.mjs"
    (release / "build").mkdir()
    (release / "build/index.js").write_text("")
    assert deploy.entry_of(cfg, release) == "build/index.js"
    with pytest.raises(deploy.DeployError, match=r"server/main\.js"):
        deploy.entry_of(_config(tmp_path, entry="server/main.js"), release)


# --- the role's catalogue ----------------------------------------------------------------------


def _compile(tmp_path: Path, puppet_bin: str, repo_root: Path, **settings: str) -> Any:
    blueprint = yaml.safe_load(BLUEPRINT_DATA.read_text())
    env = make_environment(tmp_path, puppet_bin, repo_root, "castelet::role::nodejs_app", blueprint=blueprint,
                           data_dir="/srv/data",
                           settings={**TLS_SETTINGS, "app_git_url": "https://git.example.org/lab/app.git",
                                     "app_git_ref": "main", "postgresql": "false", **settings})
    return env.compile()


@pytest.mark.puppet
def test_role_without_database(tmp_path: Path, puppet_bin: str, repo_root: Path) -> None:
    result = _compile(tmp_path, puppet_bin, repo_root)
    assert result.returncode == 0, errors_of(result)
    deploy_exec = result.resource("Exec", "castelet-nodejs-app-deploy")
    assert deploy_exec["command"] == "castelet-node-deploy deploy"
    assert deploy_exec["unless"] == "castelet-node-deploy is-current"
    assert "Class[Castelet::Installed]" in str(deploy_exec["before"])
    env_file = result.resource("File", "/etc/castelet/nodejs-app.env")
    assert (env_file["owner"], env_file["group"], env_file["mode"]) == ("root", "root", "0600")
    unit = result.resource("File", "/etc/systemd/system/castelet-nodejs-app@.service")["content"]
    for line in ("User=castelet-app", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "ReadWritePaths=/srv/data/app", 'Environment="ORIGIN=https://',
                 "EnvironmentFile=/etc/castelet/nodejs-app.env"):
        assert line in unit, line
    config = json.loads(result.resource("File", "/etc/castelet/nodejs-app.json")["content"])
    assert config["git_url"] == "https://git.example.org/lab/app.git" and config["git_ref"] == "main"
    assert ("Class", "Castelet::Profile::Postgresql") not in result.resources


@pytest.mark.puppet
def test_npm_is_its_checked_release_archive_not_debians_package(tmp_path: Path, puppet_bin: str,
                                                                repo_root: Path) -> None:
    """npm comes from its own release archive, checked before it is unpacked; Debian's `npm`
    (370 to 560 packages of its unbundled dependencies) is not installed; compilers only when
    asked for."""
    result = _compile(tmp_path, puppet_bin, repo_root)
    assert result.returncode == 0, errors_of(result)
    version, sha256 = npm_pin(repo_root)
    archive = result.resource("Archive", f"/var/cache/castelet/npm-{version}.tgz")
    assert archive["source"].endswith(f"/npm/-/npm-{version}.tgz") and archive["source"].startswith("https://")
    assert (archive["checksum"], archive["checksum_type"], archive["checksum_verify"]) == (sha256, "sha256", True)
    assert archive["extract_path"] == f"/opt/castelet/npm-{version}"
    for tool in ("npm", "npx"):
        launcher = result.resource("File", f"/usr/local/bin/{tool}")
        assert launcher["mode"] == "0755"
        assert f'exec /usr/bin/node /opt/castelet/npm-{version}/package/bin/{tool}-cli.js "$@"' in launcher["content"]
    assert ("Package", "npm") not in result.resources
    assert ("Package", "build-essential") not in result.resources
    deploy_requires = str(result.resource("Exec", "castelet-nodejs-app-deploy")["require"])
    assert "File[/usr/local/bin/npm]" in deploy_requires

    blueprint = yaml.safe_load(BLUEPRINT_DATA.read_text())
    env = make_environment(tmp_path / "native", puppet_bin, repo_root, "castelet::role::nodejs_app",
                           blueprint={**blueprint, "castelet::profile::nodejs_app::build_packages": ["build-essential"],
                                      "castelet::profile::nodejs_app::npm_url":
                                          "https://npm.example.org/npm/-/npm-10.9.9.tgz"},
                           data_dir="/srv/data",
                           settings={**TLS_SETTINGS, "app_git_url": "https://git.example.org/lab/app.git",
                                     "app_git_ref": "main", "postgresql": "false"})
    native = env.compile()
    assert native.returncode == 0, errors_of(native)
    assert ("Package", "build-essential") in native.resources
    assert native.resource("Archive", f"/var/cache/castelet/npm-{version}.tgz")["source"] == \
        "https://npm.example.org/npm/-/npm-10.9.9.tgz"


def npm_pin(repo_root: Path) -> tuple[str, str]:
    """The profile's default npm version and archive checksum."""
    profile = (repo_root / "puppet/modules/castelet/manifests/profile/nodejs_app.pp").read_text()
    version = re.search(r"\$npm_version = '([0-9.]+)'", profile)
    sha256 = re.search(r"\$npm_sha256 = '([0-9a-f]{64})'", profile)
    assert version and sha256
    return version.group(1), sha256.group(1)


def test_npm_pin_is_npms_published_archive(repo_root: Path, tmp_path: Path) -> None:
    """The pinned checksum is the one of the archive npm's registry publishes for that version
    (its sha512 integrity, from the npm client): a mistyped pin would fail every install."""
    version, sha256 = npm_pin(repo_root)
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("needs the npm client (apt-get install npm) to ask the registry")
    proc = subprocess.run([npm, "pack", f"npm@{version}", "--json", "--pack-destination", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0 and ("ENOTFOUND" in proc.stderr or "EAI_AGAIN" in proc.stderr):
        pytest.skip(f"needs npm's registry: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    packed = json.loads(proc.stdout)[0]
    data = (tmp_path / packed["filename"]).read_bytes()
    assert "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() == packed["integrity"]
    assert hashlib.sha256(data).hexdigest() == sha256


@pytest.mark.puppet
def test_role_with_database_keeps_its_url_in_the_root_only_file(tmp_path: Path, puppet_bin: str,
                                                                 repo_root: Path) -> None:
    result = _compile(tmp_path, puppet_bin, repo_root, postgresql="true")
    assert result.returncode == 0, errors_of(result)
    assert ("Castelet::Postgresql::Database", "app") in result.resources
    content = str(result.resource("File", "/etc/castelet/nodejs-app.env")["content"])
    assert "DATABASE_URL=postgresql://app:" in content and "@127.0.0.1:5432/app" in content
    # Sensitive: Puppet redacts it in logs, reports and diffs.
    assert "content" in result.sensitive("File", "/etc/castelet/nodejs-app.env")
    assert result.resource("File", "/etc/castelet/nodejs-app.env")["show_diff"] is False
    unit = result.resource("File", "/etc/systemd/system/castelet-nodejs-app@.service")["content"]
    assert "postgresql@" in unit


@pytest.mark.puppet
def test_role_refuses_an_empty_repository(tmp_path: Path, puppet_bin: str, repo_root: Path) -> None:
    result = _compile(tmp_path, puppet_bin, repo_root, app_git_url="")
    assert result.returncode != 0
    assert "app_git_url" in errors_of(result)
