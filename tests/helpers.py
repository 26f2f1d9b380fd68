"""Small helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = sorted(p.parent.name for p in (REPO_ROOT / "blueprints").glob("*/blueprint.yaml"))


def castelet(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (as a user would)."""
    env = {**os.environ, "COLUMNS": "200", "CASTELET_LIBRARY": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "castelet.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, input=stdin, check=False)


NULL_CLOUD = REPO_ROOT / "tests" / "fixtures" / "null-cloud"


def terraform_outputs(deployment: Path, terraform_cmd: list[str], workdir: Path, var_file: str = "") -> dict[str, Any]:
    """What Terraform itself hands each instance of a rendered deployment, offline: a copy of the
    deployment whose cloud module is replaced by tests/fixtures/null-cloud (the shared interface,
    the common design and configuration modules, no provider), applied with real Terraform core.
    ``var_file``: HCL appended as an extra variables file (e.g. what "Before you apply" asks for).
    Returns the root outputs (``hieradata``: hostname => data/terraform.yaml; ``user_data``)."""
    import json
    import re
    import shutil

    from castelet.runtime import terraform_env

    scratch = workdir / "terraform-data"
    shutil.copytree(deployment, scratch, ignore=shutil.ignore_patterns(".git", ".terraform", "*.tfstate*"))
    for name in ("versions.tf", "outputs.tf"):
        (scratch / name).unlink()
    null = scratch / "modules" / "null"
    null.mkdir()
    shutil.copy2(NULL_CLOUD / "main.tf", null / "main.tf")
    shutil.copy2(scratch / "modules" / "common" / "interface" / "variables.tf", null / "interface_variables.tf")
    main = scratch / "main.tf"
    main.write_text(re.sub(r'source = "\./modules/\w+"', 'source = "./modules/null"', main.read_text()))
    (scratch / "outputs.tf").write_text(
        'output "hieradata" {\n  value = module.cloud.hieradata\n}\n\n'
        'output "user_data" {\n  value = module.cloud.user_data\n}\n')
    extra = ["-var-file=extra.tfvars"] if var_file else []
    (scratch / "extra.tfvars").write_text(var_file)
    env = terraform_env()
    for args in (["init", "-input=false", "-backend=false"], ["apply", "-input=false", "-auto-approve", *extra]):
        proc = subprocess.run([*terraform_cmd, *args], cwd=scratch, env=env, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise AssertionError(f"terraform {args[0]} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    out = subprocess.run([*terraform_cmd, "output", "-json"], cwd=scratch, env=env, capture_output=True,
                         text=True, check=True)
    return {name: value["value"] for name, value in json.loads(out.stdout).items()}


# The start of a stand-in `terraform` (CASTELET_TERRAFORM) for the deployment sessions' tests: it
# logs every call (a JSON line in $FAKE_TF_LOG), loads the state (JSON in $FAKE_TF_STATE: a list
# of addresses, or addresses => values) and answers `state list`. Each test appends what it fakes.
FAKE_TERRAFORM_PREAMBLE = r'''
import json, os, re, sys

args = sys.argv[1:]
state_file, log_file = os.environ["FAKE_TF_STATE"], os.environ["FAKE_TF_LOG"]
with open(log_file, "a") as log:
    log.write(json.dumps(args) + "\n")
state = json.load(open(state_file))
if args[:2] == ["state", "list"]:
    print("\n".join(state))
    sys.exit(0)
'''
