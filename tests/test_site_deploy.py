"""castelet-site-deploy (puppet/modules/castelet/files/castelet-site-deploy.py): releases switched
atomically, the deploy account's forced command, the build's state. Run for real on temporary
directories; rrsync, ssh and jekyll are exercised end to end in tests/e2e/checks_static_site.py."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = REPO_ROOT / "puppet" / "modules" / "castelet" / "files" / "castelet-site-deploy.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("castelet_site_deploy", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["castelet_site_deploy"] = module
    spec.loader.exec_module(module)
    return module


deploy = _load()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = {"site_dir": str(tmp_path / "site"), "state_dir": str(tmp_path / "state"), "keep_releases": 2,
              "deployment": "atlas", "domain": "atlas.example.org", "git_url": "", "git_ref": "main"}
    (tmp_path / "site" / "releases").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    path = tmp_path / "site.json"
    path.write_text(json.dumps(config))
    monkeypatch.setattr(deploy, "CONFIG", path)
    return tmp_path / "site"


def run(*args: str) -> int:
    return int(deploy.main(["castelet-site-deploy", *args]))


def test_init_publishes_an_escaped_placeholder_once(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.loads(deploy.CONFIG.read_text())
    config["deployment"] = "a<b>&c"
    deploy.CONFIG.write_text(json.dumps(config))
    assert run("init") == 0
    current = site / "current"
    assert current.is_symlink() and os.readlink(current).startswith("releases/")
    page = (current / "index.html").read_text()
    assert "a&lt;b&gt;&amp;c" in page and "<b>" not in page
    first = os.readlink(current)
    assert run("init") == 0 and os.readlink(current) == first


def test_publish_switches_atomically_normalises_modes_and_keeps_the_newest(site: Path) -> None:
    program = deploy.Site(deploy.load_config())
    published = []
    for index in range(4):
        release = program.new_release(f"r{index}", seed=True)
        (release / "index.html").write_text(f"site {index}")
        (release / "index.html").chmod(0o600)
        (release / "sub").mkdir(mode=0o700, exist_ok=True)
        program.publish(release)
        published.append(release.name)
        assert (site / "current" / "index.html").read_text() == f"site {index}"
        assert (site / "current" / "index.html").stat().st_mode & 0o777 == 0o644
        assert (site / "current" / "sub").stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in (site / "releases").iterdir()) == published[-2:]
    assert not (site / ".current.new").exists()


def test_a_seeded_release_is_a_copy_not_links(site: Path) -> None:
    program = deploy.Site(deploy.load_config())
    first = program.new_release("a", seed=True)
    (first / "index.html").write_text("one")
    program.publish(first)
    second = program.new_release("b", seed=True)
    (second / "index.html").write_text("two")  # what rsync --inplace would do
    assert (first / "index.html").read_text() == "one"
    assert (second / "index.html").stat().st_ino != (first / "index.html").stat().st_ino


@pytest.mark.parametrize("command", [
    "", "id", "sh -c id", "scp -t /tmp/x", "/usr/lib/openssh/sftp-server", "internal-sftp",
    "rsync --server --sender -logDtpre.iLsfxCIvu . /etc/passwd", "rsync -av /etc /tmp", "rsync --server 'unclosed",
])
def test_the_forced_command_refuses_anything_but_an_upload(command: str, site: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", command)
    monkeypatch.setattr(deploy, "RRSYNC", "/bin/false-never-run")
    assert run("rsync") == 1
    err = capsys.readouterr()
    assert "refused" in err.err and err.out == ""
    assert list((site / "releases").iterdir()) == []


def test_an_upload_goes_through_rrsync_into_a_new_release(site: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in rrsync (records its arguments, writes a file where it was confined) proves the
    wrapper's part: a fresh release, -wo -munge, publication after success, nothing after failure."""
    log = tmp_path / "rrsync.args"
    fake = tmp_path / "rrsync"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" \"$SSH_ORIGINAL_COMMAND\" > " + str(log) +
                    "\nfor last; do :; done\necho uploaded > \"$last/index.html\"\n"
                    f"test -e {tmp_path}/fail && exit 23\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setattr(deploy, "RRSYNC", str(fake))
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", "rsync --server -logDtpre.iLsfxCIvu --delete . .")
    assert run("rsync") == 0
    args = log.read_text().splitlines()
    assert args[:3] == ["-wo", "-munge", "-no-lock"] and args[3].startswith(str(site / "releases"))
    assert args[4] == "rsync --server -logDtpre.iLsfxCIvu --delete . ."
    assert (site / "current" / "index.html").read_text() == "uploaded\n"
    served = os.readlink(site / "current")

    (tmp_path / "fail").touch()
    assert run("rsync") == 23
    assert os.readlink(site / "current") == served and len(list((site / "releases").iterdir())) == 1

    (tmp_path / "fail").unlink()
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", "rsync --server -nlogDtpre.iLsfxCIvu --delete . .")
    assert run("rsync") == 0
    assert os.readlink(site / "current") == served, "a dry run published"


def test_dry_run_detection_ignores_capability_letters() -> None:
    assert deploy.dry_run(["rsync", "--server", "-nlogDtpre.iLsfxCIvu", ".", "."])
    assert deploy.dry_run(["rsync", "--server", "--dry-run", ".", "."])
    assert not deploy.dry_run(["rsync", "--server", "-logDtpre.iLsnfxCIvu", ".", "."])


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_built_follows_the_configured_url_and_ref(site: Path, tmp_path: Path) -> None:
    """`built` (Puppet's unless) is true only for the URL and ref of the last build, and the fetch
    resolves a branch of a real repository."""
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "index.md").write_text("hello\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "x"], check=True, env=env)
    config = json.loads(deploy.CONFIG.read_text())
    config["git_url"] = f"file://{work}"
    deploy.CONFIG.write_text(json.dumps(config))
    program = deploy.Site(deploy.load_config())
    _, commit = deploy.fetch(program)
    head = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert commit == head.strip()
    assert run("init") == 0
    assert run("built") == 1
    deploy.write_state(program, {"url": config["git_url"], "ref": "main", "commit": commit})
    assert run("built") == 0
    config["git_ref"] = "v2"
    deploy.CONFIG.write_text(json.dumps(config))
    assert run("built") == 1
    with pytest.raises(deploy.DeployError, match="no branch, tag or commit 'v2'"):
        deploy.fetch(deploy.Site(deploy.load_config()))
