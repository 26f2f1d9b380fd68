"""`castelet lifecycle DIR`: init → plan → apply → verify → idempotence → re-plan → destroy.

Molecule's sequence on a real cloud: apply returns only when Puppet has converged; verify runs
the deployment's own testinfra tests; idempotence re-runs Puppet and fails listing any resource
it changed; the second plan must be empty; destroy must leave no instance or volume behind.
Destroy runs even when an earlier phase failed (unless --keep).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from castelet.render import ANSWERS_FILE
from castelet.runtime import TerraformNotFound, terraform_env
from castelet.terraform import Terraform, TerraformError

Progress = Callable[[str], None]
SITE_PP = "/etc/puppet/code/environments/production/manifests/site.pp"
_CHANGED = re.compile(r"Notice: (/Stage\[main\]/\S+?)/\w+: ")


class LifecycleError(RuntimeError):
    """A phase failed; the message holds the evidence (Terraform's or Puppet's own output)."""


@dataclass
class Report:
    deployment: Path
    timings: dict[str, float] = field(default_factory=dict)
    failed_phase: str | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.failed_phase is None


def deployment_cloud(deployment: Path) -> tuple[str, str]:
    """(cloud, deployment name) from the answers recorded at render time."""
    try:
        recorded = yaml.safe_load((deployment / ANSWERS_FILE).read_text())
    except OSError as exc:
        raise LifecycleError(f"{deployment} is not a rendered deployment ({ANSWERS_FILE} missing)") from exc
    answers = recorded.get("answers", {})
    return str(answers.get("cloud", "openstack")), str(answers["project_slug"])


def terraform_environment(cloud: str) -> dict[str, str]:
    """Terraform's environment for a cloud (LXD needs the local provider mirror)."""
    try:
        return terraform_env(cloud=cloud)
    except TerraformNotFound as exc:
        raise LifecycleError(str(exc)) from exc


def _host(entry: dict[str, Any]) -> Any:
    import testinfra

    options: dict[str, Any] = {}
    if entry["testinfra_url"].startswith("ssh://"):
        options["ssh_extra_args"] = "-o StrictHostKeyChecking=accept-new -o BatchMode=yes"
    return testinfra.get_host(entry["testinfra_url"], **options)


def changed_resources(puppet_output: str) -> list[str]:
    """Resources a Puppet run reported as changed (from its Notice lines)."""
    return sorted(set(_CHANGED.findall(puppet_output)))


def check_idempotent(inventory: dict[str, dict[str, Any]]) -> None:
    for hostname, entry in sorted(inventory.items()):
        host = _host(entry)
        sudo = [] if entry["testinfra_url"].startswith("lxc://") else ["sudo", "-n", "--"]
        run = host.run(shlex.join([*sudo, "puppet", "apply", "--detailed-exitcodes", "--color=false", SITE_PP]))
        if run.rc == 2:
            listed = "\n  ".join(changed_resources(run.stdout + run.stderr)) or "(see output)"
            raise LifecycleError(f"{hostname}: the second Puppet run changed resources:\n  {listed}")
        if run.rc != 0:
            raise LifecycleError(f"{hostname}: the second Puppet run failed (exit {run.rc}):\n{run.stdout}{run.stderr}")


def run_verify(deployment: Path, inventory: dict[str, dict[str, Any]]) -> None:
    inventory_file = deployment / ".castelet" / "inventory.json"
    inventory_file.write_text(json.dumps(inventory, indent=2) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "--color=no"],
        cwd=deployment, env={**os.environ, "CASTELET_INVENTORY": str(inventory_file)},
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise LifecycleError(f"verify failed:\n{proc.stdout[-6000:]}{proc.stderr[-2000:]}")


def leftovers(cloud: str, name: str) -> list[str]:
    """Instances or volumes of this deployment still present after destroy."""
    if cloud != "lxd":
        return []
    from castelet.local.cloud import POOL, lxc

    found = [f"container {c['name']}" for c in json.loads(lxc("list", "--format=json").stdout)
             if c["name"].startswith(f"{name}-")]
    volumes = json.loads(lxc("storage", "volume", "list", POOL, "--format=json").stdout)
    found += [f"volume {v['name']}" for v in volumes if v.get("type") == "custom" and v["name"].startswith(f"{name}-")]
    return found


def lifecycle(deployment: Path, progress: Progress, keep: bool = False) -> Report:
    deployment = deployment.resolve()
    report = Report(deployment)
    cloud, name = deployment_cloud(deployment)
    tf = Terraform(deployment, env=terraform_environment(cloud))
    applied = False

    def phase(label: str, action: Callable[[], object]) -> None:
        progress(f"{label}…")
        started = time.monotonic()
        try:
            action()
        finally:
            report.timings[label] = time.monotonic() - started

    def second_plan() -> None:
        changes, result = tf.plan()
        if changes:
            raise LifecycleError(f"the second plan is not empty:\n{result.stdout[-4000:]}")

    def apply() -> None:
        nonlocal applied
        applied = True
        tf.apply()

    try:
        phase("init", tf.init)
        phase("plan", tf.plan)
        phase("apply", apply)
        inventory: dict[str, dict[str, Any]] = tf.outputs().get("inventory") or {}
        phase("verify", lambda: run_verify(deployment, inventory))
        phase("idempotence", lambda: check_idempotent(inventory))
        phase("second plan", second_plan)
    except (LifecycleError, TerraformError) as exc:
        report.failed_phase = list(report.timings)[-1]
        report.error = str(exc)
    finally:
        if applied and not keep:
            try:
                phase("destroy", tf.destroy)
                remaining = leftovers(cloud, name)
                if remaining:
                    raise LifecycleError("destroy left: " + ", ".join(remaining))
            except (LifecycleError, TerraformError) as exc:
                report.failed_phase = report.failed_phase or "destroy"
                report.error = (report.error + "\n" + str(exc)).strip()
    return report
