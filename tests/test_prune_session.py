"""The deployment's `nox -s prune` (issue 21 point 3): the retention policy applied from the
operator's machine, for a repository whose instances may not delete (append-only).

The session runs for real (nox in a rendered LXD deployment) with a stand-in `terraform`
(CASTELET_TERRAFORM) and a stand-in `lxc` that answers as an instance would (castelet-backup's
status with its retention policy, castelet-secrets with the repository password); restic is the
host's own, against a local repository given as the full-access one (CASTELET_PRUNE_REPOSITORY).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

HOST = "pr-web1"
INVENTORY = {HOST: {"role": "web", "address": "10.0.3.5", "ssh_user": "debian", "testinfra_url": f"lxc://{HOST}",
                    "bastion": None}}
PASSWORD = "Pr0" * 13 + "x"
KEEP = {"daily": 2, "weekly": 1, "monthly": 1}
FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + f'''
if args == ["output", "-json", "inventory"]:
    print(json.dumps({INVENTORY!r}))
else:
    print("{{}}")
'''
# lxc: records its arguments and answers as the instance (an append-only one) would.
FAKE_LXC = f'''import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
command = args[args.index("--") + 1:]
if command[:1] == ["test"]:
    sys.exit(0)
if command == ["/usr/local/sbin/castelet-backup", "status"]:
    print(json.dumps({{"repository": "rest:http://10.0.3.1:8000/pr", "host": "{HOST}", "append_only": True,
                      "keep": {KEEP!r}}}))
elif command == ["/usr/local/sbin/castelet-secrets"]:
    print("mariadb-root: not-this-one-0123456789abcdefghijklmno")
    print("restic-repository: {PASSWORD}")
else:
    sys.exit(3)
'''


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", "project_slug": "pr", "backup_append_only": True},
               tmp_path_factory.mktemp("prune"))


def restic(restic_bin: str, repository: Path, *args: str) -> str:
    env = {**os.environ, "RESTIC_REPOSITORY": str(repository), "RESTIC_PASSWORD": PASSWORD,
           "RESTIC_CACHE_DIR": str(repository.parent / "cache")}
    return subprocess.run([restic_bin, *args], env=env, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repository(tmp_path: Path, restic_bin: str) -> Path:
    """A repository with this host's snapshots a month apart (the policy keeps the two newest
    days, one week, one month: the three oldest go), and another host's, never touched."""
    repo = tmp_path / "repository"
    restic(restic_bin, repo, "init")
    data = tmp_path / "data"
    data.mkdir()
    for month in range(1, 6):
        (data / "file").write_text(f"month {month}\n")
        restic(restic_bin, repo, "backup", "--host", HOST, "--tag", "castelet", "--time",
               f"2026-0{month}-15 03:15:00", str(data))
    restic(restic_bin, repo, "backup", "--host", "other-web1", "--tag", "castelet", "--time",
           "2020-01-01 00:00:00", str(data))
    return repo


def snapshot_times(restic_bin: str, repository: Path) -> list[tuple[str, str]]:
    listed = json.loads(restic(restic_bin, repository, "snapshots", "--json"))
    return sorted((s["hostname"], s["time"][:10]) for s in listed)


def nox_prune(deployment: Path, tmp_path: Path, repository: Path, *args: str, path: str | None = None,
              stdin: str = "") -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    log.write_text("")
    (tmp_path / "fake_terraform.py").write_text(FAKE_TERRAFORM)
    (tmp_path / "terraform.log").write_text("")
    (tmp_path / "state.json").write_text("[]")
    (bin_dir / "lxc").write_text(f"#!{sys.executable}\n{FAKE_LXC}")
    (bin_dir / "lxc").chmod(0o755)
    env = {**os.environ, "CASTELET_TERRAFORM": f"{sys.executable} {tmp_path / 'fake_terraform.py'}",
           "FAKE_TF_LOG": str(tmp_path / "terraform.log"), "FAKE_TF_STATE": str(tmp_path / "state.json"),
           "FAKE_LOG": str(log), "PATH": f"{bin_dir}{os.pathsep}{path or os.environ['PATH']}",
           "CASTELET_PRUNE_REPOSITORY": str(repository), "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
           "RESTIC_PASSWORD": "an operator's unrelated password that must not be used"}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "prune", "--", *args], cwd=deployment, env=env,
                          input=stdin, capture_output=True, text=True, timeout=180, check=False)
    return proc, [json.loads(line) for line in log.read_text().splitlines()]


def deployment_name(deployment: Path) -> str:
    found = re.search(r'^name *= *"([^"]+)"', (deployment / "terraform.tfvars").read_text(), re.MULTILINE)
    assert found
    return found.group(1)


def test_prune_lists_what_it_removes_and_removes_it_once_the_name_is_typed(
        deployment: Path, tmp_path: Path, repository: Path, restic_bin: str) -> None:
    before = snapshot_times(restic_bin, repository)
    refused, _ = nox_prune(deployment, tmp_path, repository, stdin="not the name\n")
    assert refused.returncode != 0 and "nothing was removed" in refused.stderr, refused.stderr
    listed = [line for line in refused.stdout.splitlines() if line.strip().startswith("remove ")]
    assert [line.split()[2] for line in listed] == ["2026-01-15T03:15:00", "2026-02-15T03:15:00",
                                                    "2026-03-15T03:15:00"], refused.stdout
    assert "--keep-daily 2 --keep-weekly 1 --keep-monthly 1 --keep-within 2d" in refused.stdout
    assert snapshot_times(restic_bin, repository) == before, "nothing is removed without the name"

    proc, calls = nox_prune(deployment, tmp_path, repository, "--confirm", deployment_name(deployment))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{HOST}: removed 3 snapshot(s)" in proc.stdout
    assert snapshot_times(restic_bin, repository) == [("other-web1", "2020-01-01"), (HOST, "2026-04-15"),
                                                      (HOST, "2026-05-15")]
    assert [call[call.index("--") + 1:] for call in calls] == [
        ["test", "-f", "/etc/castelet/backup.json"], ["/usr/local/sbin/castelet-backup", "status"],
        ["/usr/local/sbin/castelet-secrets"]]
    assert PASSWORD not in proc.stdout + proc.stderr and not any(PASSWORD in arg for c in calls for arg in c)
    again, _ = nox_prune(deployment, tmp_path, repository, "--confirm", deployment_name(deployment))
    assert again.returncode == 0 and "nothing to remove" in again.stdout, again.stdout + again.stderr


def test_a_snapshot_dated_in_the_future_stops_the_prune(deployment: Path, tmp_path: Path, repository: Path,
                                                        restic_bin: str) -> None:
    """A compromised instance may add snapshots dated in the future, which the policy counts from:
    the prune refuses and removes nothing."""
    restic(restic_bin, repository, "backup", "--host", HOST, "--tag", "castelet", "--time", "2099-01-01 00:00:00",
           str(tmp_path / "data"))
    before = snapshot_times(restic_bin, repository)
    proc, _ = nox_prune(deployment, tmp_path, repository, "--confirm", deployment_name(deployment))
    assert proc.returncode != 0 and "dated in the future" in proc.stderr and "nothing was removed" in proc.stderr
    assert snapshot_times(restic_bin, repository) == before


def test_without_restic_here_nothing_is_contacted(deployment: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-restic"
    empty.mkdir()
    python_dir = str(Path(sys.executable).parent)
    proc, calls = nox_prune(deployment, tmp_path, tmp_path / "repository", path=f"{python_dir}{os.pathsep}{empty}")
    assert proc.returncode != 0 and "restic is not installed on this machine" in proc.stderr, proc.stderr
    assert calls == []


def test_prune_is_documented_in_the_noxfile(deployment: Path) -> None:
    text = (deployment / "noxfile.py").read_text()
    assert "nox -s prune" in text.split('"""')[1], "the noxfile's list of sessions names prune"

