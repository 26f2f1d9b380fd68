"""Lifecycle of this deployment.

    nox -s check       offline fmt/validate/plan against the provider schema (needs castelet)
    nox -s plan        terraform init + plan, saved to ./tfplan for review
    nox -s apply       apply the reviewed plan (returns when Puppet has converged)
    nox -s verify      testinfra checks against every instance (inventory from terraform output)
    nox -s configure   push the Puppet environment and hieradata again and re-run Puppet
    nox -s destroy     destroy every resource (asks for confirmation unless -- -auto-approve)

Cloud credentials come from the OS_* variables of an OpenStack RC file, or clouds.yaml.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nox

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / ".castelet"))
from runtime import find_terraform, terraform_env  # noqa: E402

nox.options.sessions = ["plan"]
nox.options.error_on_missing_interpreters = False
PLAN_FILE = HERE / "tfplan"
INVENTORY_FILE = HERE / ".castelet" / "inventory.json"


def terraform(session: nox.Session, *args: str, silent: bool = False) -> str:
    output = session.run(*find_terraform(), *args, env=terraform_env(), external=True, silent=silent)
    return output if isinstance(output, str) else ""


@nox.session(python=False)
def check(session: nox.Session) -> None:
    """Validate and plan offline with real Terraform core (castelet's plan-only stand-in provider)."""
    if shutil.which("castelet") is None:
        session.error("castelet is not installed: pip install 'castelet[offline]' from the blueprint library")
    session.run("castelet", "check", str(HERE), *session.posargs, external=True)


@nox.session(python=False)
def plan(session: nox.Session) -> None:
    """Initialise Terraform and save a plan to review."""
    terraform(session, "init", "-input=false")
    terraform(session, "plan", "-input=false", f"-out={PLAN_FILE.name}", *session.posargs)
    session.log(f"plan saved to {PLAN_FILE.name}: review it, then `nox -s apply`")


@nox.session(python=False)
def apply(session: nox.Session) -> None:
    """Apply the saved plan (never an unreviewed one)."""
    if not PLAN_FILE.exists():
        session.error("no saved plan: run `nox -s plan` and review it first")
    terraform(session, "apply", "-input=false", PLAN_FILE.name)
    PLAN_FILE.unlink()


@nox.session
def verify(session: nox.Session) -> None:
    """Run the testinfra checks in tests/ against every instance."""
    session.install("pytest>=8", "pytest-testinfra>=10.1")
    raw = terraform(session, "output", "-json", "inventory", silent=True)
    inventory = json.loads(raw or "{}")
    if not inventory:
        session.error("no inventory: apply the deployment first (`nox -s plan apply`)")
    INVENTORY_FILE.write_text(json.dumps(inventory, indent=2) + "\n")
    session.run("pytest", "tests", *session.posargs, env={"CASTELET_INVENTORY": str(INVENTORY_FILE)})


@nox.session(python=False)
def configure(session: nox.Session) -> None:
    """Push the Puppet environment again and re-run Puppet on every instance."""
    state = terraform(session, "state", "list", silent=True).split()
    targets = [address for address in state if ".module.provision." in address or "provision" in address]
    if not targets:
        session.error("nothing to configure: the deployment has not been applied")
    terraform(session, "apply", "-input=false", *[f"-replace={t}" for t in targets], *session.posargs)


@nox.session(python=False)
def destroy(session: nox.Session) -> None:
    """Destroy every resource of this deployment."""
    terraform(session, "destroy", "-input=false", *session.posargs)
