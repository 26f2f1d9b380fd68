"""The deployment's `nox -s restore -- --password-file F`: a password castelet::secret would refuse
is refused before anything is asked of Terraform or an instance; a good one reaches the instance
on stdin only (castelet-backup set-password, which tests it against the repository: see
test_castelet_backup.py).

The session runs for real (nox in a rendered LXD deployment) with a stand-in `terraform`
(CASTELET_TERRAFORM) and stand-in `lxc` and `ssh` on PATH, which record their calls."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

INVENTORY = {"rp-web1": {"role": "web", "address": "10.0.3.5", "ssh_user": "debian",
                         "testinfra_url": "lxc://rp-web1", "bastion": None}}
GOOD_PASSWORD = "Ab3" * 13 + "x"  # 40 letters and digits, as castelet::secret makes them

# The shared stand-in terraform (tests/helpers.py) answering the inventory output.
FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + f'''
if args == ["output", "-json", "inventory"]:
    print(json.dumps({INVENTORY!r}))
else:
    print("{{}}")
'''
# lxc and ssh: record the arguments and stdin, succeed.
FAKE_REMOTE = '''import json, os, sys
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"program": os.path.basename(sys.argv[0]), "args": sys.argv[1:], "stdin": stdin}) + "\\n")
'''


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", "project_slug": "rp"},
               tmp_path_factory.mktemp("restore"))


def deployment_name(deployment: Path) -> str:
    found = re.search(r'^name *= *"([^"]+)"', (deployment / "terraform.tfvars").read_text(), re.MULTILINE)
    assert found
    return found.group(1)


def nox_restore(deployment: Path, tmp_path: Path, password: bytes
                ) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    log, bin_dir = tmp_path / "calls.log", tmp_path / "bin"
    bin_dir.mkdir()
    log.write_text("")
    (tmp_path / "fake_terraform.py").write_text(FAKE_TERRAFORM)
    terraform_log, state = tmp_path / "terraform.log", tmp_path / "state.json"
    terraform_log.write_text("")
    state.write_text("[]")
    for program in ("lxc", "ssh"):
        (bin_dir / program).write_text(f"#!{sys.executable}\n{FAKE_REMOTE}")
        (bin_dir / program).chmod(0o755)
    password_file = tmp_path / "password"
    password_file.write_bytes(password)
    env = {**os.environ, "CASTELET_TERRAFORM": f"{sys.executable} {tmp_path / 'fake_terraform.py'}",
           "FAKE_TF_LOG": str(terraform_log), "FAKE_TF_STATE": str(state), "FAKE_LOG": str(log),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "restore", "--", "--password-file", str(password_file),
                           "--confirm", deployment_name(deployment)], cwd=deployment, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, check=False)
    terraform_calls = [{"program": "terraform", "args": json.loads(line)}
                       for line in terraform_log.read_text().splitlines()]
    return proc, terraform_calls + [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize(("password", "reason"), [
    (b"short\n", "the password has 5 characters: castelet::secret needs at least 32"),
    (b"x" * 31 + b"\n", "the password has 31 characters"),
    ("é".encode() * 40, "printable ASCII"),
    (b"\xff" * 40, "printable ASCII"),
    (b"x" * 40 + b"\n" + b"y" * 40 + b"\n", "one line"),
])
def test_a_password_castelet_secret_would_refuse_is_refused_before_any_remote_command(
        deployment: Path, tmp_path: Path, password: bytes, reason: str) -> None:
    proc, calls = nox_restore(deployment, tmp_path, password)
    assert proc.returncode != 0
    assert reason in proc.stderr and "nothing was done" in proc.stderr, proc.stderr
    assert calls == []


def test_a_good_password_reaches_the_instance_on_stdin_only(deployment: Path, tmp_path: Path) -> None:
    proc, calls = nox_restore(deployment, tmp_path, f"  {GOOD_PASSWORD}\n".encode())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    remote = [call for call in calls if call["program"] in ("lxc", "ssh")]
    assert [call["args"] for call in remote] == [
        ["exec", "rp-web1", "--", "test", "-f", "/etc/castelet/backup.json"],
        ["exec", "rp-web1", "--", "/usr/local/sbin/castelet-backup", "set-password"],
        ["exec", "rp-web1", "--", "/usr/local/sbin/castelet-backup", "restore"],
    ]
    assert remote[1]["stdin"] == GOOD_PASSWORD + "\n"
    assert not any(GOOD_PASSWORD in arg for call in calls for arg in call["args"])


def test_the_noxfile_and_the_instance_apply_the_same_rules(deployment: Path) -> None:
    """Both ends refuse the same passwords (the noxfile runs on the administrator's machine,
    castelet-backup on the instance: neither can import the other)."""
    loaded = []
    for name, path in (("restore_noxfile", deployment / "noxfile.py"),
                       ("restore_backup_program", REPO_ROOT / "puppet/modules/castelet/files/castelet-backup.py")):
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        loaded.append(module)
    noxfile, program = loaded
    assert noxfile.SECRET_MIN_LENGTH == program.SECRET_MIN_LENGTH
    samples = ["", "short", "x" * 31, "x" * 32, GOOD_PASSWORD, "é" * 40, "x" * 20 + "\t" + "x" * 20,
               "x" * 40 + "\n" + "y" * 40, "with spaces and punctuation !#$%&'()*+,-./:;<=>?@[]^_`{|}~"]
    assert [noxfile._password_problem(s) for s in samples] == [program.password_problem(s) for s in samples]
