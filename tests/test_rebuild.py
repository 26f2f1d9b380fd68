"""The deployment's `nox -s rebuild -- HOST -auto-approve`: the instance is replaced, and the
apply runs again only while the cloud failed to remove the old instance (LXD 5.0 may report a
finished shutdown as failed), never after a new instance failed to configure. The rebuild applies
a saved plan it has read first, and refuses one that deletes or replaces anything but the instance
and what records it (issue 21, point 2).

The session runs for real (nox in a rendered deployment) against a stand-in `terraform`
(CASTELET_TERRAFORM) whose state maps instance addresses to their values; the e2e data tests
rebuild real LXD instances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

INSTANCE = 'module.cloud.lxd_container.instance["rb-web1"]'
PROVISION = 'module.cloud.terraform_data.provision["rb-web1"]'

FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + r'''if args[:2] == ["show", "-json"] and len(args) == 2:
    resources = [{"address": a, "mode": "managed", "values": v} for a, v in state.items()]
    print(json.dumps({"values": {"root_module": {"child_modules": [{"resources": resources}]}}}))
    sys.exit(0)
if args[:2] == ["show", "-json"]:
    print(open(args[2]).read())
    sys.exit(0)
if args[0] == "plan":
    # the -replace'd instances, and what the test adds (FAKE_TF_EXTRA_CHANGES: other changes pending)
    out = next(a.split("=", 1)[1] for a in args if a.startswith("-out="))
    changes = [{"address": a.split("=", 1)[1], "mode": "managed", "type": "lxd_container",
                "change": {"actions": ["delete", "create"], "before": state.get(a.split("=", 1)[1])}}
               for a in args if a.startswith("-replace=")]
    changes += json.loads(os.environ.get("FAKE_TF_EXTRA_CHANGES") or "[]")
    json.dump({"format_version": "1.2", "resource_changes": changes}, open(out, "w"))
    sys.exit(0)
if args[0] != "apply":
    sys.exit(f"fake terraform: unexpected {args}")
failures = json.loads(os.environ["FAKE_TF_FAILURES"])
applies = sum(1 for line in open(log_file) if json.loads(line)[0] == "apply")
failure = failures[applies - 1] if applies <= len(failures) else None
if failure == "stop-race":
    sys.exit('Error: Error waiting for container (rb-web1) to stop: Failed shutting down instance, '
             'status is "Running": shutting down the container failed')
for change in json.load(open(args[-1]))["resource_changes"]:
    if change["change"]["actions"] == ["delete", "create"] and change["type"] == "lxd_container":
        state[change["address"]] = {"name": "rb-web1", "mac_address": "00:16:3e:00:00:%02x" % applies}
json.dump(state, open(state_file, "w"))
if failure == "puppet":
    sys.exit("Error: local-exec provisioner error: Puppet failed on rb-web1")
print("Apply complete!")
'''


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", "project_slug": "rb"},
               tmp_path_factory.mktemp("rebuild"))


def nox_rebuild(deployment: Path, tmp_path: Path, failures: list[str | None], *args: str,
                extra_changes: list[dict[str, Any]] | None = None, stdin: str = "",
                ) -> tuple[subprocess.CompletedProcess[str], list[list[str]], dict[str, dict[str, str]]]:
    state_file, log_file, fake = tmp_path / "state.json", tmp_path / "calls.log", tmp_path / "fake_terraform.py"
    old = {"name": "rb-web1", "mac_address": "00:16:3e:aa:aa:aa", "id": "rb-web1-id"}
    state_file.write_text(json.dumps({INSTANCE: old, PROVISION: {"id": "p1"}}))
    log_file.write_text("")
    fake.write_text(FAKE_TERRAFORM)
    env = {**os.environ, "CASTELET_TERRAFORM": f"{sys.executable} {fake}", "FAKE_TF_STATE": str(state_file),
           "FAKE_TF_LOG": str(log_file), "FAKE_TF_FAILURES": json.dumps(failures),
           "CASTELET_RETRY_PAUSE_SECONDS": "0", "FAKE_TF_EXTRA_CHANGES": json.dumps(extra_changes or [])}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "rebuild", "--", "rb-web1", *args], cwd=deployment,
                          env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    calls = [json.loads(line) for line in log_file.read_text().splitlines()]
    return proc, [c for c in calls if c[0] == "apply"], json.loads(state_file.read_text())


def test_a_stop_the_cloud_reports_as_failed_is_run_again(deployment: Path, tmp_path: Path) -> None:
    proc, applies, state = nox_rebuild(deployment, tmp_path, ["stop-race"], "-auto-approve")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(applies) == 2 and all(a[-1].endswith("rebuild.tfplan") for a in applies), applies
    plans = [c for c in map(json.loads, (tmp_path / "calls.log").read_text().splitlines()) if c[0] == "plan"]
    assert len(plans) == 2 and all(f"-replace={INSTANCE}" in p for p in plans), plans
    assert state[INSTANCE]["mac_address"] == "00:16:3e:00:00:02", state
    assert "the old instance is still there (attempt 1/3)" in proc.stderr


def test_a_new_instance_that_fails_to_configure_is_not_rebuilt_again(deployment: Path, tmp_path: Path) -> None:
    proc, applies, state = nox_rebuild(deployment, tmp_path, ["puppet"], "-auto-approve")
    assert proc.returncode != 0 and len(applies) == 1, applies
    assert state[INSTANCE]["mac_address"] == "00:16:3e:00:00:01", state


def test_the_retries_end_and_a_prompted_rebuild_is_not_retried(deployment: Path, tmp_path: Path) -> None:
    proc, applies, _ = nox_rebuild(deployment, tmp_path, ["stop-race"] * 5, "-auto-approve")
    assert proc.returncode != 0 and len(applies) == 3, applies
    proc, applies, _ = nox_rebuild(deployment, tmp_path, ["stop-race"], stdin="yes\n")
    assert proc.returncode != 0 and len(applies) == 1, applies


VOLUME = 'module.cloud.lxd_volume.volume["rb-web1-data"]'


def _change(address: str, kind: str, actions: list[str], before: dict[str, Any]) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": kind, "change": {"actions": actions, "before": before}}


def test_a_rebuild_replaces_what_records_the_instance_and_nothing_else(deployment: Path, tmp_path: Path) -> None:
    """The provisioning step that records the instance's id goes with it; a pending change that
    would replace the data volume (a renamed deployment, a new size) refuses the whole rebuild."""
    provision = _change(PROVISION, "terraform_data", ["delete", "create"],
                        {"id": "p1", "triggers_replace": {"instance": "rb-web1-id"}})
    proc, applies, state = nox_rebuild(deployment, tmp_path, [], "-auto-approve", extra_changes=[provision])
    assert proc.returncode == 0 and len(applies) == 1, proc.stdout + proc.stderr
    volume = _change(VOLUME, "lxd_volume", ["delete", "create"], {"id": "rb-web1-data", "name": "rb-web1-data"})
    other = _change('module.cloud.lxd_container.instance["rb-web2"]', "lxd_container", ["delete"],
                    {"id": "rb-web2-id"})
    for extra in ([volume], [other], [volume, other]):
        proc, applies, state = nox_rebuild(deployment, tmp_path, [], "-auto-approve",
                                           extra_changes=[provision, *extra])
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and applies == [], text
        assert "rebuild refuses this plan" in text and "nothing was applied" in text, text
        assert all(change["address"] in text for change in extra), text
        assert PROVISION not in text.split("rebuild refuses this plan", 1)[1], text
        assert state[INSTANCE]["mac_address"] == "00:16:3e:aa:aa:aa", state


def test_a_prompted_rebuild_applies_only_after_yes(deployment: Path, tmp_path: Path) -> None:
    proc, applies, state = nox_rebuild(deployment, tmp_path, [], stdin="no\n")
    assert proc.returncode != 0 and applies == [] and "nothing was applied" in proc.stderr, proc.stderr
    proc, applies, state = nox_rebuild(deployment, tmp_path, [], stdin="yes\n")
    assert proc.returncode == 0 and len(applies) == 1, proc.stdout + proc.stderr
    assert state[INSTANCE]["mac_address"] == "00:16:3e:00:00:01", state
