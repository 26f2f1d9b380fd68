"""The deployment's `nox -s rebuild -- HOST -auto-approve`: the instance is replaced, and the
apply runs again only while the cloud failed to remove the old instance (LXD 5.0 may report a
finished shutdown as failed), never after a new instance failed to configure.

The session runs for real (nox in a rendered deployment) against a stand-in `terraform`
(CASTELET_TERRAFORM) whose state maps instance addresses to their values; the e2e data tests
rebuild real LXD instances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

INSTANCE = 'module.cloud.lxd_container.instance["rb-web1"]'
PROVISION = 'module.cloud.terraform_data.provision["rb-web1"]'

FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + r'''if args[:2] == ["show", "-json"]:
    resources = [{"address": a, "mode": "managed", "values": v} for a, v in state.items()]
    print(json.dumps({"values": {"root_module": {"child_modules": [{"resources": resources}]}}}))
    sys.exit(0)
if args[0] != "apply":
    sys.exit(f"fake terraform: unexpected {args}")
failures = json.loads(os.environ["FAKE_TF_FAILURES"])
applies = sum(1 for line in open(log_file) if json.loads(line)[0] == "apply")
failure = failures[applies - 1] if applies <= len(failures) else None
if failure == "stop-race":
    sys.exit('Error: Error waiting for container (rb-web1) to stop: Failed shutting down instance, '
             'status is "Running": shutting down the container failed')
for arg in args:
    if arg.startswith("-replace="):
        address = arg.split("=", 1)[1]
        state[address] = {"name": "rb-web1", "mac_address": "00:16:3e:00:00:%02x" % applies}
json.dump(state, open(state_file, "w"))
if failure == "puppet":
    sys.exit("Error: local-exec provisioner error: Puppet failed on rb-web1")
print("Apply complete!")
'''


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", "project_slug": "rb"},
               tmp_path_factory.mktemp("rebuild"))


def nox_rebuild(deployment: Path, tmp_path: Path, failures: list[str | None], *args: str
                ) -> tuple[subprocess.CompletedProcess[str], list[list[str]], dict[str, dict[str, str]]]:
    state_file, log_file, fake = tmp_path / "state.json", tmp_path / "calls.log", tmp_path / "fake_terraform.py"
    old = {"name": "rb-web1", "mac_address": "00:16:3e:aa:aa:aa"}
    state_file.write_text(json.dumps({INSTANCE: old, PROVISION: {"id": "p1"}}))
    log_file.write_text("")
    fake.write_text(FAKE_TERRAFORM)
    env = {**os.environ, "CASTELET_TERRAFORM": f"{sys.executable} {fake}", "FAKE_TF_STATE": str(state_file),
           "FAKE_TF_LOG": str(log_file), "FAKE_TF_FAILURES": json.dumps(failures),
           "CASTELET_RETRY_PAUSE_SECONDS": "0"}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "rebuild", "--", "rb-web1", *args], cwd=deployment,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    calls = [json.loads(line) for line in log_file.read_text().splitlines()]
    return proc, [c for c in calls if c[0] == "apply"], json.loads(state_file.read_text())


def test_a_stop_the_cloud_reports_as_failed_is_run_again(deployment: Path, tmp_path: Path) -> None:
    proc, applies, state = nox_rebuild(deployment, tmp_path, ["stop-race"], "-auto-approve")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(applies) == 2 and all(f"-replace={INSTANCE}" in a for a in applies), applies
    assert state[INSTANCE]["mac_address"] == "00:16:3e:00:00:02", state
    assert "the old instance is still there (attempt 1/3)" in proc.stderr


def test_a_new_instance_that_fails_to_configure_is_not_rebuilt_again(deployment: Path, tmp_path: Path) -> None:
    proc, applies, state = nox_rebuild(deployment, tmp_path, ["puppet"], "-auto-approve")
    assert proc.returncode != 0 and len(applies) == 1, applies
    assert state[INSTANCE]["mac_address"] == "00:16:3e:00:00:01", state


def test_the_retries_end_and_a_prompted_rebuild_is_not_retried(deployment: Path, tmp_path: Path) -> None:
    proc, applies, _ = nox_rebuild(deployment, tmp_path, ["stop-race"] * 5, "-auto-approve")
    assert proc.returncode != 0 and len(applies) == 3, applies
    proc, applies, _ = nox_rebuild(deployment, tmp_path, ["stop-race"])
    assert proc.returncode != 0 and len(applies) == 1, applies
