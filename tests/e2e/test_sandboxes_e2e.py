"""A sandbox on the real LXD cloud: created with a short time to live, listed, extended in place,
garbage-collected after expiry (even when the destroy is killed half-way), while a deployment
that is not a sandbox, next to it, is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import costs
from castelet import sandbox
from castelet.lifecycle import leftovers, run_verify, terraform_environment
from castelet.local.cloud import lxc
from castelet.terraform import Terraform

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
BLUEPRINT = "sandbox"


def _castelet(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "250", "CASTELET_LIBRARY": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "castelet.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _run(*args: str) -> tuple[int, str]:
    proc = _castelet(*args)
    output, _ = proc.communicate(timeout=900)
    return proc.returncode, output


def _container(name: str) -> dict[str, object] | None:
    found = json.loads(lxc("list", name, "--format=json").stdout)
    return next((c for c in found if c["name"] == name), None)


def box_sandbox_owner(deployment: Path) -> str:
    found = sandbox.read(deployment)
    assert found is not None
    return found.owner


def _children(pid: int) -> list[int]:
    proc = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in proc.stdout.split()]


def _cmdline(pid: int) -> str:
    """The command line of a process, or "" when it has already exited (a race with pgrep)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


@pytest.mark.blueprint("sandbox")
def test_sandbox_expires_is_collected_and_an_interrupted_gc_finishes_on_the_next_run(local_cloud, tmp_path):
    box, keep = "e2e-sbx-box", "e2e-sbx-keep"
    answers = tmp_path / "answers.yaml"
    env = terraform_environment("lxd")
    try:
        for slug, flags in ((box, ["--sandbox", "--ttl", "1m"]), (keep, [])):
            answers.write_text(f"project_slug: {slug}\ncloud: lxd\npackages: jq\nopen_ports: 8080/tcp 5353/udp\n")
            code, output = _run("new", BLUEPRINT, "--no-input", "--answers", str(answers), "-o", str(tmp_path),
                                *flags)
            assert code == 0, output
            tf = Terraform(tmp_path / slug, env=env)
            tf.init()
            costs.timed_deployment("sandbox", tf.apply)
        box_dir, keep_dir = tmp_path / box, tmp_path / keep
        # the blueprint's own checks: packages installed, ports open to the admin network only
        run_verify(box_dir, Terraform(box_dir, env=env).outputs()["inventory"])
        container, kept = f"{box}-main1", f"{keep}-main1"
        created = _container(container)
        assert created is not None and _container(kept) is not None

        # Extend by one minute (the apply may have outlived the first minute): applied in place.
        code, output = _run("sandbox", "extend", str(box_dir), "1m")
        assert code == 0 and "applied in place" in output, output
        expiry = sandbox.expiry_in_tfvars(box_dir)
        assert lxc("config", "get", container, "user.castelet.expires").stdout.strip() == expiry
        assert _container(container)["created_at"] == created["created_at"], "extend replaced the instance"
        assert lxc("config", "get", kept, "user.castelet.expires").stdout.strip() == ""

        code, output = _run("sandbox", "list", str(tmp_path))
        assert code == 0, output
        row = [cell.strip() for cell in next(line for line in output.splitlines() if box in line).split("│")]
        assert row[2:5] == [BLUEPRINT, "lxd", box_sandbox_owner(box_dir)], output
        assert row[6].endswith(" left") and row[7] != "0", output
        assert keep not in output, "a deployment that is not a sandbox is not listed"

        code, output = _run("sandbox", "gc", str(tmp_path))
        assert code == 0 and f"{box_dir}: kept" in output, output
        assert _container(container) is not None

        box_sandbox = sandbox.read(box_dir)
        assert box_sandbox is not None
        wait = (box_sandbox.expires - sandbox.datetime.now(sandbox.UTC)).total_seconds() + 1
        time.sleep(max(wait, 0))

        # The first gc is killed half-way: its Terraform process is killed soon after it started.
        gc = _castelet("sandbox", "gc", str(tmp_path))
        deadline = time.monotonic() + 120
        terraform_pids: list[int] = []
        while not terraform_pids and time.monotonic() < deadline and gc.poll() is None:
            terraform_pids = [p for p in _children(gc.pid) if "destroy" in _cmdline(p)]
            time.sleep(0.2)
        assert terraform_pids, "gc never started terraform destroy"
        time.sleep(2)
        for pid in terraform_pids:
            os.kill(pid, signal.SIGKILL)
        output, _ = gc.communicate(timeout=300)
        assert gc.returncode == 1 and f"{box_dir}: FAILED" in output, output

        code, output = _run("sandbox", "gc", str(tmp_path))
        assert code == 0 and f"{box_dir}: destroyed" in output, output
        assert leftovers("lxd", box) == []
        assert sandbox.resources(box_sandbox) == []

        code, output = _run("sandbox", "gc", str(tmp_path))
        assert code == 0 and f"{box_dir}: already destroyed" in output, output
        code, output = _run("sandbox", "list", str(tmp_path))
        assert code == 0 and "expired" in output, output

        assert _container(kept) is not None, "gc touched a deployment that is not a sandbox"
        assert Terraform(keep_dir, env=env).outputs().get("inventory"), "the other deployment's state changed"
    finally:
        for slug in (box, keep):
            if (tmp_path / slug / ".terraform").is_dir():
                Terraform(tmp_path / slug, env=env).destroy()
        assert leftovers("lxd", box) == [] and leftovers("lxd", keep) == []
