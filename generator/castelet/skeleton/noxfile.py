"""Lifecycle of this deployment.

    nox -s check       offline fmt/validate/plan against the provider schema (needs castelet; OpenStack)
    nox -s preflight   OpenStack: does it fit the project? (image, flavors, networks, quotas, admin_cidr)
    nox -s plan        (preflight first) terraform init + plan, saved to ./tfplan ("Before you apply" enforced)
    nox -s apply       apply the reviewed plan (returns when Puppet has converged)
    nox -s verify      testinfra checks against every instance (inventory from terraform output)
    nox -s dns         the DNS records to create, and whether they resolve already
    nox -s secrets     print the credentials generated on the instances (for the administrators)
    nox -s configure   push the Puppet environment and hieradata again and re-run Puppet
    nox -s destroy     destroy every resource (asks for confirmation; `-- -auto-approve` does not)
    nox -s status      the instances and, for a sandbox, its expiry and time left
    nox -s extend      a sandbox only: `nox -s extend -- 2h` moves its expiry (needs castelet)

Settings live in terraform.tfvars. Cloud credentials (OpenStack) come from clouds.yaml
(`os_cloud`) or the OS_* variables; an LXD deployment uses the local cloud of `castelet local setup`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nox

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / ".castelet"))
from runtime import TerraformNotFound, find_terraform, terraform_env  # noqa: E402

nox.options.sessions = ["plan"]
nox.options.error_on_missing_interpreters = False
PLAN_FILE = HERE / "tfplan"
INVENTORY_FILE = HERE / ".castelet" / "inventory.json"
RENDERED = json.loads((HERE / ".castelet" / "blueprint.json").read_text(encoding="utf-8"))
CLOUD = str(RENDERED.get("cloud", "openstack"))


def terraform(session: nox.Session, *args: str, silent: bool = False) -> str:
    try:
        command, env = find_terraform(), terraform_env(cloud=CLOUD)
    except TerraformNotFound as exc:
        session.error(str(exc))
    output = session.run(*command, *args, env=env, external=True, silent=silent)
    return output if isinstance(output, str) else ""


def inventory(session: nox.Session) -> dict[str, dict[str, Any]]:
    raw = terraform(session, "output", "-json", "inventory", silent=True)
    found: dict[str, dict[str, Any]] = json.loads(raw or "{}")
    if not found:
        session.error("no inventory: apply the deployment first (`nox -s plan apply`)")
    return found


@nox.session(python=False)
def check(session: nox.Session) -> None:
    """Validate and plan offline with real Terraform core (castelet's plan-only stand-in provider)."""
    if shutil.which("castelet") is None:
        session.error("castelet is not installed: pip install 'castelet[offline]' from the blueprint library")
    session.run("castelet", "check", str(HERE), *session.posargs, external=True)


@nox.session(python=False)
def preflight(session: nox.Session) -> None:
    """OpenStack: credentials, image, flavors, networks, quotas (needed/used/limit), admin_cidr."""
    if CLOUD != "openstack":
        session.skip("the preflight checks OpenStack projects; the local cloud needs none")
    if shutil.which("castelet") is None:
        session.error("castelet is not installed: pip install 'castelet[preflight]' from the blueprint library "
                      "(or CASTELET_PREFLIGHT=skip nox -s plan to plan without it)")
    session.run("castelet", "preflight", str(HERE), *session.posargs, external=True)


@nox.session(python=False)
def plan(session: nox.Session) -> None:
    """Initialise Terraform and save a plan to review (refused while "Before you apply" items remain)."""
    if CLOUD == "openstack" and os.environ.get("CASTELET_PREFLIGHT") != "skip":
        preflight(session)
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
    INVENTORY_FILE.write_text(json.dumps(inventory(session), indent=2) + "\n")
    session.run("pytest", "tests", *session.posargs, env={"CASTELET_INVENTORY": str(INVENTORY_FILE)})


def _resolves_to(name: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
    except socket.gaierror:
        return set()


@nox.session(python=False)
def dns(session: nox.Session) -> None:
    """The DNS records to create for the site, and whether they already resolve (exit 1 if not).
    HTTPS certificates are issued once they do; until then the site serves a self-signed one."""
    raw = terraform(session, "output", "-json", "dns_records", silent=True)
    records: list[dict[str, str]] = json.loads(raw or "[]")
    if not records:
        session.log("no public address: nothing to create (a local LXD deployment, or not applied yet)")
        return
    missing = 0
    print(f"{'name':<40} {'type':<5} {'value':<40} status")
    for record in records:
        found = _resolves_to(record["name"])
        if record["value"] in found:
            state = "ok"
        else:
            missing += 1
            state = f"resolves to {', '.join(sorted(found))}" if found else "missing"
        print(f"{record['name']:<40} {record['type']:<5} {record['value']:<40} {state}")
    if missing:
        session.error(f"{missing} record(s) not in DNS yet: create them at your DNS provider "
                      "(the instance retries its certificate every 10 minutes)")


def _on_instance(entry: dict[str, Any], command: list[str]) -> list[str]:
    """argv running ``command`` as root on an instance: `lxc exec` locally, SSH + sudo on OpenStack."""
    url = str(entry["testinfra_url"])
    if url.startswith("lxc://"):
        return ["lxc", "exec", url.removeprefix("lxc://"), "--", *command]
    target = url.removeprefix("ssh://")
    return ["ssh", "-o", "BatchMode=yes", target, "sudo", "-n", *command]


@nox.session(python=False)
def secrets(session: nox.Session) -> None:
    """Print the secrets generated on each instance (root-only files there; never stored here)."""
    described = {s["name"]: s.get("description", "") for s in RENDERED.get("secrets", [])}
    for hostname, entry in sorted(inventory(session).items()):
        argv = _on_instance(entry, ["/usr/local/sbin/castelet-secrets"])
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            session.error(f"{hostname}: {' '.join(argv[:3])} failed: {proc.stderr.strip()}")
        print(f"# {hostname}")
        for line in proc.stdout.splitlines():
            name = line.split(":", 1)[0]
            note = f"   # {described[name]}" if described.get(name) else ""
            print(f"{line}{note}")


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
    """Destroy every resource of this deployment (interactive confirmation)."""
    if "-auto-approve" not in session.posargs:
        session.log("Terraform asks for confirmation; to run without a terminal: nox -s destroy -- -auto-approve")
    terraform(session, "destroy", "-input=false" if "-auto-approve" in session.posargs else "-input=true",
              *session.posargs)


def _sandbox_expiry() -> datetime | None:
    """The sandbox expiry of terraform.tfvars (`sandbox_expires`), or None when not a sandbox."""
    found = re.search(r'^sandbox_expires *= *"([0-9TZ:-]+)" *$', (HERE / "terraform.tfvars").read_text(), re.MULTILINE)
    if not found:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@nox.session(python=False)
def status(session: nox.Session) -> None:
    """The instances in Terraform's state and, for a sandbox, when it expires."""
    expires = _sandbox_expiry()
    if expires is None:
        print("not a sandbox: no expiry")
    else:
        left = int((expires - datetime.now(UTC)).total_seconds() // 60)
        when = f"{left // 60}h {left % 60}m left" if left > 0 else f"expired {-left // 60}h {-left % 60}m ago"
        print(f"sandbox: expires {expires:%Y-%m-%dT%H:%M:%SZ} ({when}); `castelet sandbox gc` then destroys it")
    if not (HERE / ".terraform").is_dir():
        print("instances: none (never initialised: `nox -s plan`)")
        return
    instances = json.loads(terraform(session, "output", "-json", silent=True) or "{}").get("instances", {})
    found = instances.get("value") or {}
    print(f"instances: {len(found)}")
    for hostname, entry in sorted(found.items()):
        address = entry.get("public_address") or entry.get("private_address") or "-"
        print(f"  {hostname}  {entry.get('role', '?')}  {address}")


@nox.session(python=False)
def extend(session: nox.Session) -> None:
    """Sandbox only: `nox -s extend -- 2h` moves the expiry (at most 14 days after creation) and
    applies it to the instances in place."""
    if len(session.posargs) != 1:
        session.error("usage: nox -s extend -- DURATION (e.g. 2h, 30m, 1d)")
    if shutil.which("castelet") is None:
        session.error("castelet is not installed: `castelet sandbox extend . DURATION` does the work")
    session.run("castelet", "sandbox", "extend", str(HERE), session.posargs[0], external=True)
