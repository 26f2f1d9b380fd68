"""castelet::profile::nodejs_app and its deploy program (files/castelet-node-deploy.py).

* The program's own logic, run for real where it needs no systemd: a git repository fetched
  from a path, a ref resolved as a branch, a tag or a commit; the settings digest; the entry
  point detection; the state file.
* Builds cannot reach root (issue 21, point 1), where that needs no systemd: a real build whose
  script plants symbolic links to a root-owned file in its build directory leaves that file
  unchanged; root only adopts a build that is a directory of the build user's; pruning hands the
  old releases back to the build user; the steps refuse to run as anyone but the build user;
  the transient service's properties. Here the steps run directly (no systemd on the test
  host), as the user running the tests; tests/e2e/checks_nodejs_app.py runs them under systemd
  on a real instance (symbolic link attack, a lingering process).
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
import pwd
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


def _program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("castelet_node_deploy", PROGRAM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["castelet_node_deploy"] = module
    spec.loader.exec_module(module)
    return module


deploy = _program()
# The real `confined` (the systemd-run command line), before the fixture below replaces it.
CONFINED = getattr(deploy, "confined", None)
ME = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture(autouse=True)
def _unconfined(monkeypatch: pytest.MonkeyPatch) -> None:
    """No systemd here: the build user's steps run as plain subprocesses (as this user)."""
    monkeypatch.setattr(deploy, "confined", lambda cfg, argv, **_: argv, raising=False)


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(cwd), "PATH": os.environ["PATH"]}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _config(tmp_path: Path, **overrides: Any) -> Any:
    data = {
        "git_url": str(tmp_path / "origin"), "git_ref": "main", "base_dir": str(tmp_path / "base"),
        "cache_dir": str(tmp_path / "cache"), "build_user": ME, "slots": {"blue": 3001, "green": 3002},
        "health_path": "/", "health_host": "app.example.org", "upstream_file": str(tmp_path / "base/upstream.conf"),
        "unit": "castelet-nodejs-app@", "entry": "", "keep_releases": 3, "build_timeout": 60,
        "ca_file": "/etc/ssl/certs/ca-certificates.crt", "watch_files": [str(tmp_path / "app.env")],
        **overrides,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    for made_by_puppet in ("base/releases", "base/builds", "cache"):
        (tmp_path / made_by_puppet).mkdir(parents=True, exist_ok=True)
    return deploy.Config.load(str(path))


def test_config_and_build_environment_use_the_system_trust_store(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert cfg.unit_of("green") == "castelet-nodejs-app@green.service"
    env = deploy.build_env(cfg)
    assert env["npm_config_cafile"] == env["NODE_EXTRA_CA_CERTS"] == "/etc/ssl/certs/ca-certificates.crt"
    assert env["npm_config_cache"] == str(tmp_path / "cache/npm")
    assert env["HOME"] == str(tmp_path / "cache/home")


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


# --- builds cannot reach root --------------------------------------------------------------------


def _origin(tmp_path: Path, build_script: str) -> None:
    """A bare repository `origin` with one commit: an application without dependencies whose
    `npm run build` is `build_script`."""
    work = tmp_path / "work"
    work.mkdir()
    package = {"name": "app", "version": "1.0.0", "private": True, "scripts": {"build": build_script}}
    lock = {"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
            "packages": {"": {"name": "app", "version": "1.0.0"}}}
    (work / "package.json").write_text(json.dumps(package) + "\n")
    (work / "package-lock.json").write_text(json.dumps(lock) + "\n")
    _git(work, "init", "--quiet", "--initial-branch=main")
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "one")
    _git(tmp_path, "clone", "--quiet", "--bare", str(work), str(tmp_path / "origin"))


# Every name root ever wrote or read in a build directory (the reproduced attack: the marker
# `.castelet-built`, which root wrote after the build), and a few it might.
PLANTED = (".castelet-built", ".castelet-entry", ".castelet-commit", "package-lock.json.tmp")


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm (apt-get install npm) to run a real build")
def test_a_symlink_the_build_plants_does_not_make_root_write_through_it(tmp_path: Path) -> None:
    """Reproduced on the instance before the fix: the build's own script planted
    `.castelet-built -> /etc/...` and root, marking the build done, replaced that file."""
    target = tmp_path / "root-owned.conf"  # stands for /etc/shadow or any of root's files
    target.write_text("root's own\n")
    target.chmod(0o644)
    plant = " && ".join(f"ln -s {target} {name}" for name in PLANTED)
    _origin(tmp_path, f"{plant} && echo 'console.log(1)' > index.js")
    cfg = _config(tmp_path)
    commit = deploy.fetch(cfg)

    release = deploy.build(cfg, commit, None)

    assert target.read_text() == "root's own\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert release == cfg.base_dir / "releases" / commit and (release / "index.js").is_file()
    # The build directory was the build user's own, and is now a release in root's directory.
    assert not any((cfg.base_dir / "builds").iterdir())
    assert deploy.build(cfg, commit, None) == release  # already built: nothing is run again


def _fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Any) -> Any:
    """A configuration whose build step is replaced by `make(builds_dir, commit)`."""
    cfg = _config(tmp_path)

    def confined(cfg_: Any, argv: list[str], **_: Any) -> list[str]:
        assert "build-step" in argv
        make(cfg.base_dir / "builds", argv[argv.index("build-step") + 1])
        return ["true"]

    monkeypatch.setattr(deploy, "confined", confined, raising=False)
    return cfg


def test_root_adopts_only_a_directory_the_build_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that leaves a symbolic link (to a directory of root's) instead of its work tree
    is refused; nothing lands in `releases/`, the link is removed, its target untouched."""
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "index.js").write_text("root's\n")
    cfg = _fake_build(tmp_path, monkeypatch, lambda builds, commit: (builds / commit).symlink_to(elsewhere))
    with pytest.raises(deploy.DeployError, match="other than a directory"):
        deploy.build(cfg, "a" * 40, None)
    assert list((cfg.base_dir / "releases").iterdir()) == []
    assert (elsewhere / "index.js").read_text() == "root's\n"

    cfg = _fake_build(tmp_path, monkeypatch, lambda builds, commit: None)
    with pytest.raises(deploy.DeployError, match="left no"):
        deploy.build(cfg, "b" * 40, None)
    with pytest.raises(deploy.DeployError, match="not a commit"):
        deploy.build(cfg, "../../etc", None)


def test_root_never_uses_a_name_the_fetch_step_prints_that_is_not_a_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit the build user's fetch prints becomes a path under `releases/`: only a commit
    name is accepted."""
    monkeypatch.setattr(deploy, "confined", lambda cfg, argv, **_: ["echo", "../../etc/cron.d"], raising=False)
    with pytest.raises(deploy.DeployError, match="named no commit"):
        deploy.fetch(_config(tmp_path))


def test_pruned_releases_go_back_to_the_build_user_who_removes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path)
    releases, builds = cfg.base_dir / "releases", cfg.base_dir / "builds"
    names = [c * 40 for c in "abcde"]
    for age, name in enumerate(names):
        (releases / name / "node_modules/pkg").mkdir(parents=True)
        (releases / name / "node_modules/pkg/index.js").write_text("")
        (releases / name / "node_modules/pkg").chmod(0o555)  # npm leaves such directories
        os.utime(releases / name, (1000 + age, 1000 + age))
    (releases / ".build-olderlayout").mkdir()
    steps: list[list[str]] = []

    def confined(cfg_: Any, argv: list[str], **kwargs: Any) -> list[str]:
        steps.append(argv)
        assert kwargs["writable"] == [builds]
        return argv

    monkeypatch.setattr(deploy, "confined", confined, raising=False)
    deploy.prune(cfg, {names[0]})
    assert sorted(p.name for p in releases.iterdir()) == sorted([names[0], *names[2:]])
    assert [argv[-1] for argv in steps] == ["clean-step"]
    assert list(builds.iterdir()) == []


def test_the_steps_run_only_as_the_build_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, build_user="castelet-build-elsewhere")
    for step in (["fetch-step"], ["build-step", "a" * 40], ["clean-step"]):
        assert deploy.main(["--config", cfg.source, *step]) == 1
        assert "run only as castelet-build-elsewhere" in capsys.readouterr().err
    assert not (cfg.cache_dir / "home").exists()


def test_build_user_steps_run_in_a_confined_transient_service(tmp_path: Path) -> None:
    """`systemd-run --wait`: the step's service ends with it, and systemd kills whatever is left
    in its control group; the build user can write only where it builds and caches."""
    assert CONFINED is not None, "castelet-node-deploy has no confinement for the build user"
    cfg = _config(tmp_path, build_user="castelet-build")
    writable = [cfg.base_dir / "builds", cfg.cache_dir]
    argv = CONFINED(cfg, ["/usr/bin/python3", "step"], name="castelet-node-build-1", writable=writable, seconds=99)
    assert argv[0] == "systemd-run" and argv[-3:] == ["--", "/usr/bin/python3", "step"]
    for option in ("--wait", "--pipe", "--collect", "--unit=castelet-node-build-1"):
        assert option in argv, option
    properties = [a.removeprefix("--property=") for a in argv if a.startswith("--property=")]
    for prop in ("User=castelet-build", "Group=castelet-build", "ProtectSystem=strict", "PrivateTmp=yes",
                 "NoNewPrivileges=yes", "KillMode=control-group", "CapabilityBoundingSet=",
                 "RestrictSUIDSGID=yes", "RuntimeMaxSec=99"):
        assert prop in properties, prop
    assert [p for p in properties if p.startswith("ReadWritePaths=")] == \
        [f"ReadWritePaths={path}" for path in writable]
    assert f"--setenv=npm_config_cache={cfg.cache_dir / 'npm'}" in argv


@pytest.mark.parametrize("asked", ["status", "is-current", "fetch-step", "build-step HEAD --reuse /", "deploy; id",
                                   "deploy --config /tmp/evil.json", "sh"])
def test_the_ssh_clients_command_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asked: str) -> None:
    """The CI's redeploy account runs `castelet-node-deploy deploy` as its forced command: whatever
    the client asked (SSH_ORIGINAL_COMMAND, were it to reach the program through sudo) it deploys
    the ref of the configuration, and nothing else."""
    cfg = _config(tmp_path)
    ran: list[str] = []
    monkeypatch.setattr(deploy, "deploy", lambda c: ran.append(f"deploy {c.git_ref} {c.git_url}") or 0)
    for other in ("is_current", "fetch_step", "build_step", "clean_step"):
        monkeypatch.setattr(deploy, other, lambda *a, name=other, **k: ran.append(name) or 0)
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", asked)
    assert deploy.main(["--config", str(tmp_path / "config.json"), "deploy"]) == 0
    assert ran == [f"deploy main {cfg.git_url}"]


# --- the role's catalogue ----------------------------------------------------------------------


def _compile(tmp_path: Path, puppet_bin: str, repo_root: Path, **settings: str) -> Any:
    blueprint = yaml.safe_load(BLUEPRINT_DATA.read_text())
    env = make_environment(tmp_path, puppet_bin, repo_root, "castelet::role::nodejs_app", blueprint=blueprint,
                           data_dir="/srv/data",
                           settings={**TLS_SETTINGS, "app_git_url": "https://git.example.org/lab/app.git",
                                     "app_git_ref": "main", "postgresql": "false", "redeploy_ssh_key": "",
                                     **settings})
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
    # No redeploy key: no redeploy account, and what an earlier key made is removed.
    for path in ("/etc/ssh/castelet-authorized-keys-castelet-redeploy", "/etc/sudoers.d/castelet-redeploy",
                 "/etc/ssh/sshd_config.d/50-castelet-redeploy.conf"):
        assert result.resource("File", path)["ensure"] == "absent", path
    assert result.resource("User", "castelet-redeploy")["ensure"] == "absent"


@pytest.mark.puppet
def test_releases_are_roots_and_puppet_manages_nothing_inside_the_build_users_directories(
        tmp_path: Path, puppet_bin: str, repo_root: Path) -> None:
    """`releases/` is root's (the build user cannot plant anything there); the build user's own
    directories are managed by Puppet only at their top (their parents are root's): Puppet never
    chowns a path inside them, which the build user could have made a symbolic link."""
    result = _compile(tmp_path, puppet_bin, repo_root)
    assert result.returncode == 0, errors_of(result)
    releases = result.resource("File", "/var/lib/castelet-node/releases")
    assert (releases["owner"], releases["group"], releases["mode"]) == ("root", "root", "0755")
    for own in ("/var/lib/castelet-node/builds", "/var/cache/castelet-node"):
        made = result.resource("File", own)
        assert (made["owner"], made["group"], made["mode"]) == ("castelet-build", "castelet-build", "0750")
    inside = [title for (type_, title) in result.resources if type_ == "File"
              and title.startswith(("/var/lib/castelet-node/builds/", "/var/cache/castelet-node/"))]
    assert inside == []
    requires = str(result.resource("Exec", "castelet-nodejs-app-deploy")["require"])
    assert "File[/var/lib/castelet-node/builds]" in requires


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
