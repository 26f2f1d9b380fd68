"""Lifecycle of this deployment.

    nox -s check       offline fmt/validate/plan against the provider schema (needs castelet; OpenStack)
    nox -s preflight   OpenStack: does it fit the project? (image, flavors, networks, quotas, admin_cidr)
    nox -s plan        (preflight first) terraform init + plan, saved to ./tfplan ("Before you apply" enforced)
    nox -s apply       apply the reviewed plan (returns when Puppet has converged); a plan that deletes
                       or replaces a data volume needs `-- --with-data` and the deployment's name
    nox -s verify      testinfra checks against every instance (inventory from terraform output)
    nox -s dns         the DNS records to create, and whether they resolve already
    nox -s secrets     print the credentials generated on the instances (for the administrators)
    nox -s configure   push the Puppet environment and hieradata again and re-run Puppet (refuses a plan
                       that would delete or replace anything else)
    nox -s backup      back up now (restic; the instances also do it daily when backup_repository is set)
    nox -s snapshots   the snapshots in the backup repository
    nox -s restore     `-- [--snapshot ID] [--password-file F]`: replace the data with a snapshot (asks for the name)
    nox -s backup-credentials   push the repository's credentials from your environment (AWS_*, RESTIC_REST_*)
    nox -s prune       `-- [--host HOST] [--confirm NAME]`: apply the retention policy from this machine
                       (restic here; full-access credentials in your environment): what an append-only
                       repository's instances never do. Lists what it removes and asks for the name
    nox -s rebuild     `-- HOST`: replace an instance by a fresh one; its data volumes are kept (refuses a
                       plan that would delete or replace anything but that instance and what hangs on it)
    nox -s destroy     destroy instances and networking, KEEP the data volumes (Terraform asks; `-- -auto-approve`)
                       `-- --with-data` deletes the volumes too, once you type the deployment's name
                       (`--confirm NAME` gives it without any prompt)
    nox -s status      the instances and, for a sandbox, its expiry and time left
    nox -s extend      a sandbox only: `nox -s extend -- 2h` moves its expiry (needs castelet)

Settings live in terraform.tfvars. Cloud credentials (OpenStack) come from clouds.yaml
(`os_cloud`) or the OS_* variables; an LXD deployment uses the local cloud of `castelet local setup`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nox
import nox.command

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / ".castelet"))
import hostkeys  # noqa: E402
from runtime import (  # noqa: E402
    DESTROY_ATTEMPTS,
    DESTROY_RETRY_PAUSE_SECONDS,
    TerraformNotFound,
    find_terraform,
    terraform_env,
)

nox.options.sessions = ["plan"]
nox.options.error_on_missing_interpreters = False
PLAN_FILE = HERE / "tfplan"
INVENTORY_FILE = HERE / ".castelet" / "inventory.json"
RENDERED = json.loads((HERE / ".castelet" / "blueprint.json").read_text(encoding="utf-8"))
CLOUD = str(RENDERED.get("cloud", "openstack"))
# SSH host keys learned after the first contact (public keys only: committed, so that pinning
# survives a fresh clone). main.tf hands them to Terraform's day-2 SSH connections.
HOST_KEYS_FILE = HERE / ".castelet" / "host_keys.json"
# The backup repository's password is the castelet secret `restic-repository`: castelet::secret
# refuses one shorter than this (secret.rb, min_length), and castelet-backup set-password takes one
# line of printable ASCII (what Ruby, Python and restic read alike). Same rules there.
SECRET_MIN_LENGTH = 32
SECRET_CHARACTERS = re.compile(r"[\x20-\x7e]+")


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
    """Apply the saved plan (never an unreviewed one). A plan that deletes or replaces a data volume
    is refused unless `-- --with-data` and the deployment's name (typed, or `--confirm NAME`)."""
    with_data, confirm, rest = _split_destroy_args(list(session.posargs))
    rest = [arg for arg in rest if arg != "-auto-approve"]  # a saved plan is applied without a prompt
    if rest:
        session.error(f"nox -s apply takes only --with-data and --confirm NAME, not {' '.join(rest)}: "
                      "give Terraform's options to `nox -s plan`")
    if not PLAN_FILE.exists():
        session.error("no saved plan: run `nox -s plan` and review it first")
    plan = _read_plan(session, PLAN_FILE.name)
    volumes = [change for change in _destructive_changes(plan) if change.get("type") in VOLUME_TYPES]
    if volumes:
        listed = _listed(volumes)
        if not with_data:
            session.error(f"the saved plan deletes or replaces data volumes (their data would be lost):\n{listed}\n"
                          "nothing was applied. If that is what you want, back them up first, then "
                          "`nox -s apply -- --with-data` (asks for the deployment's name)")
        print(f"This plan deletes or replaces data volumes for good:\n{listed}")
        _confirm_name(session, confirm, "delete these data volumes", "applied",
                      "--with-data: the data on them will be lost.")
    terraform(session, "apply", "-input=false", PLAN_FILE.name)
    PLAN_FILE.unlink()
    if CLOUD == "openstack":
        # the instances of the plan's prior state existed before: the others were created now
        _learn_host_keys(session, inventory(session), hostkeys.instance_ids(plan.get("prior_state") or {}))


def _state_ids(session: nox.Session) -> dict[str, str]:
    """hostname => id of every instance in the state."""
    return hostkeys.instance_ids(json.loads(terraform(session, "show", "-json", silent=True) or "{}"))


def _instance_ids(session: nox.Session, hosts: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {hostname: host_id for hostname, host_id in _state_ids(session).items() if hostname in hosts}


def _remote(command: list[str]) -> str:
    """``command`` as one shell command line: ssh joins its arguments with spaces and hands them to
    the remote login shell, so every argument is quoted to come out there as one literal word."""
    return shlex.join(command)


def _keyscan_argv(entry: dict[str, Any], known_hosts_file: Path) -> list[str]:
    """argv of the scan: ssh-keyscan here, or on the jump host (its pinned key checked) through SSH."""
    scan = ["ssh-keyscan", "-T", "10", "-t", "ed25519", "--", str(entry["address"])]
    if not entry.get("bastion"):
        return scan
    return ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts_file}", "--", f"{entry['ssh_user']}@{entry['bastion']}",
            _remote(scan)]


def _keyscan(entry: dict[str, Any], known_hosts_file: Path) -> str | None:
    """The ed25519 host key an instance presents now: scanned directly, or from its jump host
    (reached over SSH with that host's pinned key) when the inventory names one."""
    scan = _keyscan_argv(entry, known_hosts_file)
    try:
        proc = subprocess.run(scan, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return hostkeys.parse_keyscan(proc.stdout)


def _os_cloud() -> str | None:
    """`os_cloud` of terraform.tfvars (the clouds.yaml entry Terraform uses), if set there."""
    path = HERE / "terraform.tfvars"
    tfvars = path.read_text(encoding="utf-8") if path.exists() else ""
    found = re.search(r'^ *os_cloud *= *"([^"\\]+)" *(?:#.*)?$', tfvars, re.MULTILINE)
    return found.group(1) if found else None


def _console_log(instance_id: str) -> tuple[str | None, str]:
    """The console log of an instance (`openstack console log show`), where cloud-init printed
    its SSH host keys; or None and why it could not be read."""
    if shutil.which("openstack") is None:
        return None, "the `openstack` command is not installed (pip install python-openstackclient)"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", instance_id):
        return None, f"unexpected instance id {instance_id!r}"
    cloud = _os_cloud()
    argv = ["openstack", *(["--os-cloud", cloud] if cloud else []), "console", "log", "show", instance_id]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`{' '.join(argv[:-1])} ...` failed: {exc}"
    if proc.returncode != 0:
        return None, f"`{' '.join(argv)}` failed: {(proc.stderr.strip().splitlines() or ['no message'])[-1]}"
    return proc.stdout, ""


def _admitted(records: dict[str, hostkeys.HostKey], ids: dict[str, str], created: set[str],
              scanned: dict[str, str | None], confirmed: dict[str, bool | None], unhelpful: dict[str, str],
              where: str) -> tuple[hostkeys.Admission, dict[str, hostkeys.HostKey]]:
    """What the scans so far allow to record, and the records that result. The console log of a
    host to learn is read once (``confirmed``: its verdict; ``unhelpful``: why it gave none)."""
    to_learn = hostkeys.to_learn(records, ids)
    for hostname in to_learn:
        key = scanned.get(hostname)
        if key is not None and hostname not in confirmed:
            log, why = _console_log(ids[hostname])
            confirmed[hostname] = hostkeys.console_verdict(log, key)
            if confirmed[hostname] is None:
                unhelpful[hostname] = why or "cloud-init printed no SSH host key in it"
    admission = hostkeys.admit(records, ids, created, scanned, confirmed)
    trusted = {h: key for h, key in scanned.items() if h not in to_learn or h in admission.keys}
    return admission, hostkeys.merge(records, ids, trusted, where)


def _learn_host_keys(session: nox.Session, hosts: dict[str, dict[str, Any]],
                     before: dict[str, str]) -> dict[str, hostkeys.HostKey]:
    """After an apply or a rebuild (``before``: hostname => instance id in the state before it):
    record the key of every instance not pinned yet when its console log confirms it or, with no
    key in the log, when this run created it (trust on first use at creation only, never later);
    check the pinned ones. Direct hosts first, so that hosts behind a jump host are scanned through
    a pinned one. A key the console log contradicts stops the session (the others are recorded)."""
    ids = _instance_ids(session, hosts)
    created = {hostname for hostname, host_id in ids.items() if host_id not in set(before.values())}
    addresses = {hostname: str(entry["address"]) for hostname, entry in hosts.items()}
    where = str(HOST_KEYS_FILE.relative_to(HERE))
    confirmed: dict[str, bool | None] = {}
    unhelpful: dict[str, str] = {}
    try:
        records = hostkeys.load(HOST_KEYS_FILE)
        scanned: dict[str, str | None] = {}
        with tempfile.TemporaryDirectory() as tmp:
            known = Path(tmp) / "known_hosts"
            for jumped in (False, True):
                _, current = _admitted(records, ids, created, scanned, confirmed, unhelpful, where)
                known.write_text(hostkeys.known_hosts(current, addresses))
                for hostname in sorted(ids):
                    if bool(hosts[hostname].get("bastion")) == jumped:
                        scanned[hostname] = _keyscan(hosts[hostname], known)
        admission, learned = _admitted(records, ids, created, scanned, confirmed, unhelpful, where)
    except hostkeys.HostKeyError as exc:
        session.error(str(exc))
    for hostname, why in sorted(admission.skipped.items()):
        session.warn(f"{hostname}: {why}: its key is not recorded, and the sessions that reach it over SSH "
                     f"(configure, verify, secrets, backup-credentials, restore...) refuse it until it is: "
                     f"`nox -s rebuild -- {hostname}` (or check the key in `openstack console log show "
                     f"{ids[hostname]}` and record it in {where} yourself)")
    for hostname in sorted(admission.keys):
        if not confirmed.get(hostname):
            session.warn(f"{hostname}: its console log could not confirm its host key ({unhelpful.get(hostname)}): "
                         "the key scanned right after its creation is trusted")
    new = sorted(h for h in learned if records.get(h) != learned[h])
    if learned != records:
        hostkeys.save(HOST_KEYS_FILE, learned)
    if new:
        how = "; ".join(f"{h}: {admission.how.get(h, 'learned')}" for h in new)
        session.log(f"host keys learned in {where} ({how}): commit it (public keys) so that a fresh clone "
                    "pins them too")
    if admission.refused:
        session.error("\n".join(
            f"{hostname}: {why} (instance {ids[hostname]}): its key was NOT recorded, and nothing is sent to it "
            f"until it is. Compare with `openstack console log show {ids[hostname]}`, and rebuild it "
            f"(`nox -s rebuild -- {hostname}`) from a network you trust"
            for hostname, why in sorted(admission.refused.items())))
    return learned


def _pinned(session: nox.Session, ids: dict[str, str], hostnames: list[str],
            action: str) -> dict[str, hostkeys.HostKey]:
    """The host key records, after refusing ``action`` when one of ``hostnames`` has no key pinned
    for its current instance: keys are learned only when an instance is created (`nox -s apply`,
    `rebuild`), never at a later first contact, so nothing is sent to an unknown key."""
    try:
        records = hostkeys.load(HOST_KEYS_FILE)
    except hostkeys.HostKeyError as exc:
        session.error(str(exc))
    missing = hostkeys.unpinned(records, ids, hostnames)
    if missing:
        where = str(HOST_KEYS_FILE.relative_to(HERE))
        session.error(
            f"{action} refused: no SSH host key is pinned for {', '.join(missing)} (in {where}, for its current "
            "instance), and castelet learns a host key only when `nox -s apply` or `nox -s rebuild` creates the "
            "instance, never by trusting the first key that answers. Run `nox -s plan apply` (it records a key "
            "the instance's console log confirms); if the key still cannot be learned, "
            f"`nox -s rebuild -- {missing[0] if len(missing) == 1 else 'HOST'}`. Nothing was sent.")
    return records


def _known_hosts(session: nox.Session, hosts: dict[str, dict[str, Any]], action: str) -> str:
    """known_hosts lines pinning every SSH host; ``action`` is refused if one has no pinned key."""
    records = _pinned(session, _instance_ids(session, hosts), sorted(hosts), action)
    return hostkeys.known_hosts(records, {hostname: str(entry["address"]) for hostname, entry in hosts.items()})


@nox.session(reuse_venv=True)
def verify(session: nox.Session) -> None:
    """Run the testinfra checks in tests/ against every instance (their virtualenv is made once
    and reused: `nox -s verify` is run after every change)."""
    session.install("pytest>=8", "pytest-testinfra>=10.1")
    hosts = inventory(session)
    INVENTORY_FILE.write_text(json.dumps(hosts, indent=2) + "\n")
    env = {"CASTELET_INVENTORY": str(INVENTORY_FILE)}
    with tempfile.TemporaryDirectory() as tmp:
        known: Path | None = None
        if CLOUD == "openstack":
            known = Path(tmp) / "known_hosts"
            known.write_text(_known_hosts(session, hosts, "verify"))
            env["CASTELET_KNOWN_HOSTS"] = str(known)
        # The age of each instance's last good snapshot, printed first (the checks fail when the
        # last run failed or the snapshot is more than a day old).
        for hostname, entry in sorted(hosts.items()):
            # (absent where backups are off: nothing printed)
            argv = _on_instance(entry, ["/usr/local/sbin/castelet-backup", "status"], known)
            found = subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
            if found.startswith("{"):
                print(f"{hostname}: {_backup_age(json.loads(found))}")
        session.run("pytest", "tests", *session.posargs, env=env)


def _backup_age(status: dict[str, Any]) -> str:
    age = status.get("last_success_age_seconds")
    if age is None:
        return f"backups: no good snapshot yet (last error: {status.get('last_error') or 'none'})"
    failed = f"; the last run FAILED: {status.get('last_error')}" if status.get("last_result") == "failure" else ""
    checked = f"; weekly check: {status.get('last_check_result')} ({str(status.get('last_check'))[:10]})" \
        if status.get("last_check_result") else "; weekly check: none yet"
    retention = "; append-only: retention is `nox -s prune`" if status.get("append_only") else ""
    return f"backups: last good snapshot {status.get('last_snapshot', '?')[:8]}, {int(age) // 3600} h " \
           f"{int(age) % 3600 // 60} min ago{failed}{checked}{retention}"


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


def _on_instance(entry: dict[str, Any], command: list[str], known_hosts_file: Path | None = None) -> list[str]:
    """argv running ``command`` as root on an instance: `lxc exec` locally (an argument list, no
    shell), SSH + sudo on OpenStack (one quoted command line for the remote shell; host key checked
    against ``known_hosts_file``, the pinned keys)."""
    url = str(entry["testinfra_url"])
    if url.startswith("lxc://"):
        return ["lxc", "exec", url.removeprefix("lxc://"), "--", *command]
    target = url.removeprefix("ssh://")
    pinning = [] if known_hosts_file is None else [
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts_file}"]
    return ["ssh", "-o", "BatchMode=yes", *pinning, "--", target, _remote(["sudo", "-n", "--", *command])]


@contextmanager
def _instances(session: nox.Session) -> Iterator[tuple[dict[str, dict[str, Any]], Path | None]]:
    """The inventory and, on OpenStack, a known_hosts file pinning every host (the session is
    refused, before any connection, when a host has no pinned key)."""
    hosts = inventory(session)
    with tempfile.TemporaryDirectory() as tmp:
        known: Path | None = None
        if CLOUD == "openstack":
            known = Path(tmp) / "known_hosts"
            known.write_text(_known_hosts(session, hosts, f"nox -s {session.name}"))
        yield hosts, known


def _instance_secrets(session: nox.Session, hostname: str, entry: dict[str, Any], known: Path | None) -> str:
    """`castelet-secrets` on the instance: one `name: value` line per generated secret."""
    argv = _on_instance(entry, ["/usr/local/sbin/castelet-secrets"], known)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        session.error(f"{hostname}: {' '.join(argv[:3])} failed: {proc.stderr.strip()}")
    return proc.stdout


@nox.session(python=False)
def secrets(session: nox.Session) -> None:
    """Print the secrets generated on each instance (root-only files there; never stored here)."""
    described = {s["name"]: s.get("description", "") for s in RENDERED.get("secrets", [])}
    with _instances(session) as (hosts, known):
        for hostname, entry in sorted(hosts.items()):
            listed = _instance_secrets(session, hostname, entry, known)
            print(f"# {hostname}")
            for line in listed.splitlines():
                name = line.split(":", 1)[0]
                note = f"   # {described[name]}" if described.get(name) else ""
                print(f"{line}{note}")


# Repository credentials `nox -s backup-credentials` may push (from your environment).
BACKUP_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
                      "RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD", "B2_ACCOUNT_ID", "B2_ACCOUNT_KEY")


def _backed_up(session: nox.Session, hosts: dict[str, dict[str, Any]], known: Path | None,
               only: str | None = None) -> list[str]:
    """The hosts whose backups are on (castelet::profile::backup wrote /etc/castelet/backup.json)."""
    if only is not None and only not in hosts:
        session.error(f"no instance {only!r}: {', '.join(sorted(hosts))}")
    found = [hostname for hostname in sorted(hosts) if only in (None, hostname) and subprocess.run(
        _on_instance(hosts[hostname], ["test", "-f", "/etc/castelet/backup.json"], known),
        capture_output=True, check=False).returncode == 0]
    if not found:
        session.error("backups are off: set `backup_repository` in the settings of terraform.tfvars, then "
                      "`nox -s plan apply` (or `nox -s configure`), and push its credentials with "
                      "`nox -s backup-credentials`")
    return found


def _backup_tool(entry: dict[str, Any], known: Path | None, *args: str, stdin: str | None = None,
                 capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_on_instance(entry, ["/usr/local/sbin/castelet-backup", *args], known), input=stdin,
                          capture_output=capture, text=True, check=False)


@nox.session(python=False)
def backup(session: nox.Session) -> None:
    """Back up now (castelet-backup.service on every instance with backups; the timer runs it daily)."""
    with _instances(session) as (hosts, known):
        for hostname in _backed_up(session, hosts, known):
            session.log(f"{hostname}: backing up (database dumps, files, secrets) ...")
            started = subprocess.run(_on_instance(hosts[hostname], ["systemctl", "start", "castelet-backup.service"],
                                                  known), capture_output=True, text=True, check=False)
            if started.returncode != 0:
                journal = subprocess.run(_on_instance(hosts[hostname], [
                    "journalctl", "-u", "castelet-backup.service", "-n", "15", "--no-pager", "-o", "cat"], known),
                    capture_output=True, text=True, check=False).stdout
                session.error(f"{hostname}: the backup failed (castelet-backup.service is failed; "
                              f"nothing was lost, the previous snapshots stay):\n{journal}")
            status = json.loads(_backup_tool(hosts[hostname], known, "status").stdout or "{}")
            print(f"{hostname}: snapshot {status.get('last_snapshot')} at {status.get('last_success')}")


@nox.session(python=False)
def snapshots(session: nox.Session) -> None:
    """The snapshots of each instance's repository (`-- --json` for machines)."""
    found: dict[str, list[dict[str, Any]]] = {}
    with _instances(session) as (hosts, known):
        for hostname in _backed_up(session, hosts, known):
            listed = _backup_tool(hosts[hostname], known, "snapshots")
            if listed.returncode != 0:
                session.error(f"{hostname}: {listed.stderr.strip()}")
            found[hostname] = json.loads(listed.stdout or "[]")
    if "--json" in session.posargs:
        print(json.dumps(found, indent=2))
        return
    for hostname, listed in found.items():
        print(f"# {hostname}: {len(listed)} snapshot(s)")
        for snap in listed:
            print(f"  {snap['short_id']}  {snap['time'][:19]}  {','.join(snap.get('tags') or [])}")


def _password_problem(password: str) -> str | None:
    """Why castelet::secret (or castelet-backup set-password) would refuse this repository password."""
    if "\n" in password or "\r" in password:
        return "the password must be one line"
    if len(password) < SECRET_MIN_LENGTH:
        return f"the password has {len(password)} characters: castelet::secret needs at least {SECRET_MIN_LENGTH}"
    if not SECRET_CHARACTERS.fullmatch(password):
        return "the password may only hold printable ASCII characters (letters, digits, punctuation, spaces)"
    return None


def _repository_password(session: nox.Session, path: Path) -> str:
    """The password in --password-file, refused here (before any instance is contacted) when the
    instance would refuse it."""
    try:
        password = path.read_bytes().decode("utf-8", errors="replace").strip()
    except OSError as exc:
        session.error(f"--password-file: {exc}")
    problem = _password_problem(password)
    if problem:
        session.error(f"--password-file {path}: {problem}; nothing was done")
    return password


@nox.session(python=False)
def restore(session: nox.Session) -> None:
    """Replace an instance's data with a snapshot: `-- [--snapshot ID] [--password-file FILE]
    [--host HOST] [--confirm NAME]`. A safety snapshot of the current data is taken first;
    --password-file gives the repository password of an earlier volume (`nox -s secrets` showed it)."""
    parser = argparse.ArgumentParser(prog="nox -s restore --")
    parser.add_argument("--snapshot", default=None)
    parser.add_argument("--password-file", type=Path, default=None)
    parser.add_argument("--host", default=None)
    parser.add_argument("--confirm", default=None)
    parser.add_argument("--no-safety-backup", action="store_true")
    args = parser.parse_args(session.posargs)
    password = None if args.password_file is None else _repository_password(session, args.password_file)
    with _instances(session) as (hosts, known):
        targets = _backed_up(session, hosts, known, args.host)
        if len(targets) > 1:
            session.error(f"several instances have backups ({', '.join(targets)}): choose one with --host")
        hostname = targets[0]
        _confirm_name(session, args.confirm, "restore", "restored",
                      f"Restoring replaces the current data of {hostname} with snapshot {args.snapshot or 'latest'}.")
        if password is not None:
            replaced = _backup_tool(hosts[hostname], known, "set-password", stdin=password + "\n")
            if replaced.returncode != 0:
                session.error(f"{hostname}: {replaced.stderr.strip()}")
        options = [*(["--snapshot", args.snapshot] if args.snapshot else []),
                   *(["--no-safety-backup"] if args.no_safety_backup else [])]
        session.log(f"{hostname}: restoring (services stopped meanwhile; Puppet re-applies the restored secrets)")
        if _backup_tool(hosts[hostname], known, "restore", *options, capture=False).returncode != 0:
            session.error(f"{hostname}: the restore failed (see above)")


# --- retention from the operator's machine (an append-only repository: issue 21 point 3) ----------
# The instance's credentials cannot delete; the operator's can. `nox -s prune` runs restic HERE with
# the repository password read from the instance (as `nox -s secrets` does) and the full-access
# location and credentials given in the environment; nothing of it is stored or sent anywhere.
PRUNE_REPOSITORY = "CASTELET_PRUNE_REPOSITORY"
# A snapshot dated later than this is refused: a compromised instance could add snapshots dated in
# the future so that the retention policy, counted from the newest, would forget the real ones.
PRUNE_FUTURE_SKEW_SECONDS = 3600
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def _prune_environment(repository: str, password_file: Path) -> tuple[dict[str, str], list[str]]:
    """restic's environment for `nox -s prune` (the full-access repository and credentials from
    ours, no other RESTIC_* variable), and the secret values to scrub from what it prints."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RESTIC_") or k in BACKUP_CREDENTIALS or k == "RESTIC_CACHE_DIR"}
    user, password = os.environ.get("RESTIC_REST_USERNAME"), os.environ.get("RESTIC_REST_PASSWORD")
    secrets_ = [os.environ[k] for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "RESTIC_REST_PASSWORD",
                                        "B2_ACCOUNT_KEY") if len(os.environ.get(k, "")) >= 4]
    if repository.startswith("rest:") and user and password:
        # restic < 0.16 ignores RESTIC_REST_*: the user-info goes into the URL (in the environment only)
        scheme, sep, rest = repository[len("rest:"):].partition("://")
        if sep:
            from urllib.parse import quote

            repository = f"rest:{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"
            secrets_.append(quote(password, safe=""))
    env["RESTIC_REPOSITORY"] = repository
    env["RESTIC_PASSWORD_FILE"] = str(password_file)
    return env, sorted(set(secrets_), key=len, reverse=True)


def _scrubbed(text: str, secrets_: list[str]) -> str:
    text = _USERINFO.sub(r"\1***@", text)
    for secret in secrets_:
        text = text.replace(secret, "***")
    return text


def _restic_here(session: nox.Session, restic: str, env: dict[str, str], secrets_: list[str],
                 *args: str) -> str:
    """restic on this machine; its output, or the session stops with restic's words (scrubbed)."""
    proc = subprocess.run([restic, *args], env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        session.error(f"restic {args[0]} failed (exit {proc.returncode}): "
                      f"{_scrubbed(' / '.join(lines[-4:]), secrets_)}; nothing more was done")
    return proc.stdout


def _instance_password(session: nox.Session, hostname: str, entry: dict[str, Any], known: Path | None) -> str:
    """The repository password the instance generated (the secret `restic-repository`)."""
    for line in _instance_secrets(session, hostname, entry, known).splitlines():
        name, _, value = line.partition(": ")
        if name == "restic-repository" and value.strip():
            return value.strip()
    session.error(f"{hostname}: no restic-repository secret on the instance")


def _future_snapshots(listed: list[dict[str, Any]]) -> list[str]:
    limit = datetime.now(UTC).timestamp() + PRUNE_FUTURE_SKEW_SECONDS
    found = []
    for snap in listed:
        try:
            when = datetime.fromisoformat(str(snap.get("time", "")).replace("Z", "+00:00"))
        except ValueError:
            found.append(f"{str(snap.get('id', '?'))[:8]} (time {snap.get('time')!r})")
            continue
        if when.timestamp() > limit:
            found.append(f"{str(snap.get('id', '?'))[:8]} ({snap.get('time')})")
    return found


@nox.session(python=False)
def prune(session: nox.Session) -> None:
    """Apply the retention policy from this machine: `-- [--host HOST] [--confirm NAME]`. restic
    runs here, with the full-access repository given by CASTELET_PRUNE_REPOSITORY (default: the
    instance's) and its credentials in restic's variables (AWS_*, RESTIC_REST_*, B2_*); the
    repository password is read from the instance. It lists what it would remove, then removes it
    (`restic forget --prune` of exactly those snapshots) once the deployment's name is typed."""
    parser = argparse.ArgumentParser(prog="nox -s prune --")
    parser.add_argument("--host", default=None)
    parser.add_argument("--confirm", default=None)
    args = parser.parse_args(session.posargs)
    restic = shutil.which("restic")
    if restic is None:
        session.error("restic is not installed on this machine: `nox -s prune` runs it here, with credentials "
                      "the instances never hold (Debian/Ubuntu: apt install restic; or https://restic.net). "
                      "Nothing was done")
    plans: list[tuple[str, dict[str, str], list[str], list[dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory(prefix="castelet-prune-") as tmp, _instances(session) as (hosts, known):
        for hostname in _backed_up(session, hosts, known, args.host):
            status = json.loads(_backup_tool(hosts[hostname], known, "status").stdout or "{}")
            keep: dict[str, int] = status.get("keep") or {}
            if not keep or not status.get("repository") or not status.get("host"):
                session.error(f"{hostname}: castelet-backup is too old to say its retention policy: "
                              "`nox -s configure` first")
            password_file = Path(tmp) / f"{hostname}.password"
            password_file.touch(mode=0o600)
            password_file.write_text(_instance_password(session, hostname, hosts[hostname], known) + "\n")
            repository = os.environ.get(PRUNE_REPOSITORY) or str(status["repository"])
            env, secrets_ = _prune_environment(repository, password_file)
            selection = ["--tag", "castelet", "--host", str(status["host"])]
            listed = json.loads(_restic_here(session, restic, env, secrets_, "snapshots", "--json", *selection) or "[]")
            future = _future_snapshots(listed)
            if future:
                session.error(f"{hostname}: snapshot(s) dated in the future: {', '.join(future)}. The retention "
                              "policy counts from the newest snapshot, so these would make it forget real ones: "
                              "a clock gone wrong, or the instance compromised. Look at them (`restic snapshots`) "
                              "and forget them by id first; nothing was removed")
            # --keep-within the daily count: every snapshot of those days stays, however many others
            # were added meanwhile (restic's advice for append-only repositories).
            policy = [arg for period, count in keep.items() for arg in (f"--keep-{period}", str(count))]
            policy += ["--keep-within", f"{int(keep.get('daily', 1))}d"]
            groups = json.loads(_restic_here(session, restic, env, secrets_, "forget", "--dry-run", "--json",
                                             *selection, "--group-by", "host,paths,tags", *policy) or "[]")
            doomed = [snap for group in groups or [] for snap in group.get("remove") or []]
            print(f"# {hostname}: {len(listed)} snapshot(s) in {_scrubbed(repository, secrets_)}; the policy "
                  f"({' '.join(policy)}) removes {len(doomed)}")
            for snap in sorted(doomed, key=lambda s: str(s.get("time"))):
                print(f"  remove {str(snap.get('id'))[:8]}  {str(snap.get('time'))[:19]}  "
                      f"{','.join(snap.get('tags') or [])}  {' '.join(snap.get('paths') or [])}")
            if doomed:
                plans.append((hostname, env, secrets_, doomed))
        if not plans:
            print("nothing to remove")
            return
        _confirm_name(session, args.confirm, "remove these snapshots", "removed",
                      "The snapshots listed above are removed for good, and the data only they hold is deleted.")
        for hostname, env, secrets_, doomed in plans:
            ids = [str(snap["id"]) for snap in doomed]
            _restic_here(session, restic, env, secrets_, "forget", "--prune", *ids)
            print(f"{hostname}: removed {len(ids)} snapshot(s) and pruned the data only they held")


@nox.session(name="backup-credentials", python=False)
def backup_credentials(session: nox.Session) -> None:
    """Push the backup repository's credentials from your environment (S3 keys, REST user) to every
    instance with backups, root-only on its data volume; never in this folder or on a command line."""
    given = {name: os.environ[name] for name in BACKUP_CREDENTIALS if os.environ.get(name)}
    if not given:
        session.error("no credentials in the environment: set some of " + ", ".join(BACKUP_CREDENTIALS) +
                      " (e.g. the EC2 credentials of `openstack ec2 credentials create`)")
    lines = "".join(f"{name}={value}\n" for name, value in sorted(given.items()))
    with _instances(session) as (hosts, known):
        for hostname in _backed_up(session, hosts, known):
            pushed = _backup_tool(hosts[hostname], known, "set-credentials", stdin=lines)
            if pushed.returncode != 0:
                session.error(f"{hostname}: {pushed.stderr.strip()}")
            print(f"{hostname}: {', '.join(sorted(given))} set")


def _instance_records(session: nox.Session, addresses: list[str]) -> dict[str, str]:
    """address => the instance's recorded values in the state (a new instance has new ones:
    id, MAC address), for the given instance addresses still in the state."""
    state = json.loads(terraform(session, "show", "-json", silent=True) or "{}")
    return {resource["address"]: json.dumps(resource.get("values"), sort_keys=True)
            for resource in hostkeys.state_resources(state) if resource.get("address") in addresses}


@nox.session(python=False)
def rebuild(session: nox.Session) -> None:
    """Replace one instance by a fresh one, keeping its data volumes: `-- HOST [-auto-approve]`.
    The new instance finds its database, files and secrets on the volume."""
    if not session.posargs or session.posargs[0].startswith("-"):
        session.error("usage: nox -s rebuild -- HOST [-auto-approve]")
    hostname, rest = session.posargs[0], list(session.posargs[1:])
    state = terraform(session, "state", "list", silent=True).split()
    instance_types = (".lxd_container.", ".openstack_compute_instance_v2.")
    found = [a for a in state if any(t in a for t in instance_types) and a.endswith(f'["{hostname}"]')]
    if not found:
        session.error(f"no instance {hostname!r} in the state")
    before = _instance_records(session, found)
    before_ids = _state_ids(session) if CLOUD == "openstack" else {}
    approve = "-auto-approve" in rest
    plan_args = [arg for arg in rest if arg != "-auto-approve"]
    for attempt in range(1, DESTROY_ATTEMPTS + 1):
        try:
            _guarded_apply(session, "rebuild", [*[f"-replace={a}" for a in found], *plan_args], approve,
                           functools.partial(_rebuild_allows, targets=tuple(found)))
            break
        except nox.command.CommandFailed:
            # Run again only while the cloud failed to remove the old instance (LXD on a loaded
            # host), unattended: a new instance that failed to configure is not rebuilt twice.
            now = _instance_records(session, found)
            found = [address for address in found if address in now and now[address] == before[address]]
            if not approve or not found or attempt == DESTROY_ATTEMPTS:
                raise
            session.warn(f"the old instance is still there (attempt {attempt}/{DESTROY_ATTEMPTS}): "
                         f"again in {DESTROY_RETRY_PAUSE_SECONDS:g} s")
            time.sleep(DESTROY_RETRY_PAUSE_SECONDS)
    if CLOUD == "openstack":
        _learn_host_keys(session, inventory(session), before_ids)


@nox.session(python=False)
def configure(session: nox.Session) -> None:
    """Push the Puppet environment again and re-run Puppet on every instance (`-- -auto-approve`:
    without asking). The plan is inspected first: configure replaces its provisioning steps and
    updates in place, and refuses a plan that would delete or replace anything else."""
    state = terraform(session, "state", "list", silent=True).split()
    targets = [address for address in state if ".module.provision." in address or "provision" in address]
    if not targets:
        session.error("nothing to configure: the deployment has not been applied")
    if CLOUD == "openstack":  # it pushes the Puppet environment and hieradata over SSH
        ids = _state_ids(session)
        _pinned(session, ids, sorted(ids), "nox -s configure")
    approve = "-auto-approve" in session.posargs
    plan_args = [arg for arg in session.posargs if arg != "-auto-approve"]
    _guarded_apply(session, "configure", [*[f"-replace={t}" for t in targets], *plan_args], approve,
                   lambda plan: set(targets))


# --- what an apply that nobody reviewed may delete -------------------------------------------------
# configure and rebuild (by hand or from CI, often with -auto-approve) save a plan, read it with
# `terraform show -json` and apply exactly that plan, or nothing: they may replace their own targets
# (and, for rebuild, what records the replaced instance), never delete or replace anything else, and
# never a data volume. This is the data volumes' guard (Terraform's prevent_destroy cannot be lifted
# by a setting): `nox -s apply` of a reviewed plan refuses a volume's deletion too unless
# `--with-data` and the name, and `nox -s destroy -- --with-data` remains the way to delete them.


def _read_plan(session: nox.Session, plan_file: str) -> dict[str, Any]:
    """`terraform show -json` of a saved plan; a plan that cannot be read is never applied."""
    text = terraform(session, "show", "-json", plan_file, silent=True)
    try:
        plan = json.loads(next(line for line in text.splitlines() if line.startswith("{")))
    except (StopIteration, ValueError):
        plan = None
    if not isinstance(plan, dict) or "format_version" not in plan:
        session.error(f"could not read the plan {plan_file} (`terraform show -json`): nothing was applied")
    return plan


def _destructive_changes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The managed resources a plan (`terraform show -json PLAN`) deletes or replaces."""
    return [change for change in plan.get("resource_changes") or []
            if change.get("mode") == "managed" and "delete" in (change.get("change") or {}).get("actions", [])]


def _leaves(value: Any) -> Iterator[str]:
    """Every string inside a resource's values (nested objects and lists included)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value


def _rebuild_allows(plan: dict[str, Any], targets: tuple[str, ...]) -> set[str]:
    """What a rebuild may replace: the instances asked for and the resources that record one of
    their ids (volume attachments, the provisioning step, a sandbox's expiry): they go with it."""
    changes = plan.get("resource_changes") or []
    ids = {str(((change.get("change") or {}).get("before") or {}).get("id") or "")
           for change in changes if change.get("address") in targets} - {""}
    return set(targets) | {str(change.get("address")) for change in changes
                           if ids & set(_leaves((change.get("change") or {}).get("before")))}


def _refused_changes(plan: dict[str, Any], allowed: set[str]) -> list[dict[str, Any]]:
    """The deletions and replacements of a plan outside ``allowed``: a data volume is never
    allowed, and an allowed resource may be replaced, not deleted outright."""
    return [change for change in _destructive_changes(plan)
            if change.get("type") in VOLUME_TYPES or change.get("address") not in allowed
            or "create" not in change["change"]["actions"]]


def _listed(changes: list[dict[str, Any]]) -> str:
    lines = []
    for change in changes:
        verb = "replace" if "create" in change["change"]["actions"] else "delete"
        note = "   <- a DATA VOLUME: its data would be lost" if change.get("type") in VOLUME_TYPES else ""
        lines.append(f"  {verb:<8} {change.get('address')}{note}")
    return "\n".join(lines)


def _guarded_apply(session: nox.Session, action: str, plan_args: list[str], approve: bool,
                   allows: Callable[[dict[str, Any]], set[str]]) -> None:
    """Plan (``plan_args``), refuse the plan if it deletes or replaces anything ``allows`` does not
    name (or any data volume), ask unless ``approve``, then apply exactly that plan."""
    with tempfile.TemporaryDirectory(prefix="castelet-plan-") as tmp:
        plan_file = str(Path(tmp) / f"{action}.tfplan")
        terraform(session, "plan", "-input=false", f"-out={plan_file}", *plan_args)
        plan = _read_plan(session, plan_file)
        refused = _refused_changes(plan, allows(plan))
        if refused:
            session.error(f"{action} refuses this plan: it would delete or replace what {action} was not asked "
                          f"to:\n{_listed(refused)}\nnothing was applied. A change like this one (a renamed "
                          "`name`, a changed image or size...) needs a reviewed plan: `nox -s plan`, read it, then "
                          "`nox -s apply`; data volumes are deleted only with `--with-data` and the deployment's name")
        if not approve:
            try:
                answer = input(f"Apply this plan ({action})? Only 'yes' will be accepted: ")
            except EOFError:
                answer = ""
            if answer.strip() != "yes":
                session.error(f"{action} cancelled: nothing was applied")
        terraform(session, "apply", "-input=false", plan_file)


# Resource types that hold data: `nox -s destroy` keeps them unless `--with-data` (and the name).
VOLUME_TYPES = frozenset({"openstack_blockstorage_volume_v3", "lxd_volume"})
_ADDRESS = re.compile(r'^(?P<resource>(?:module\.[\w-]+(?:\[[^\]]*\])?\.)*(?P<data>data\.)?(?P<type>[\w-]+)\.[\w-]+)'
                      r'(?:\[.*\])?$')


def _deployment_name() -> str:
    """The deployment's `name` in terraform.tfvars (what --with-data asks the user to type)."""
    found = re.search(r'^name *= *"([^"]+)" *$', (HERE / "terraform.tfvars").read_text(encoding="utf-8"), re.MULTILINE)
    if not found:
        raise ValueError("terraform.tfvars has no `name = \"...\"` line")
    return found.group(1)


def _destroy_retrying(session: nox.Session, *args: str) -> None:
    """An unattended `terraform destroy`, run again when it fails (a cloud still busy stopping an
    instance, as LXD on a loaded host): a second run only destroys what is left."""
    for attempt in range(1, DESTROY_ATTEMPTS + 1):
        try:
            terraform(session, "destroy", *args)
            return
        except nox.command.CommandFailed:
            if attempt == DESTROY_ATTEMPTS:
                raise
            session.warn(f"terraform destroy failed (attempt {attempt}/{DESTROY_ATTEMPTS}): "
                         f"again in {DESTROY_RETRY_PAUSE_SECONDS:g} s, for what is left")
            time.sleep(DESTROY_RETRY_PAUSE_SECONDS)


def _confirm_name(session: nox.Session, given: str | None, action: str, outcome: str, warning: str) -> None:
    """Go on only once the deployment's name was typed (or given with --confirm NAME)."""
    name = _deployment_name()
    typed = given
    if typed is None:
        print(warning)
        try:
            typed = input(f"Type the deployment's name ({name}) to {action}: ")
        except EOFError:
            typed = ""
    if typed.strip() != name:
        session.error(f"the name typed is not this deployment's ({name}): nothing was {outcome}")


def _split_destroy_args(posargs: list[str]) -> tuple[bool, str | None, list[str]]:
    """(--with-data given, the --confirm NAME, the arguments left for Terraform)."""
    with_data, confirm, rest = False, None, []
    args = iter(posargs)
    for arg in args:
        if arg == "--with-data":
            with_data = True
        elif arg == "--confirm":
            confirm = next(args, "")
        elif arg.startswith("--confirm="):
            confirm = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return with_data, confirm, rest


def _destroy_targets(state: list[str]) -> tuple[list[str], list[str]]:
    """Managed resources of `terraform state list` split into (what a default destroy targets:
    every resource whose type holds no data, by resource address; the volumes it keeps).
    Data sources are never targeted: they own nothing in the cloud."""
    targets: list[str] = []
    volumes: list[str] = []
    for line in state:
        address = line.strip()
        parsed = _ADDRESS.match(address)
        if parsed is None or parsed["data"]:
            continue
        if parsed["type"] in VOLUME_TYPES:
            volumes.append(address)
        elif parsed["resource"] not in targets:
            targets.append(parsed["resource"])
    return targets, volumes


def _volume_name(address: str) -> str:
    """`module.cloud.lxd_volume.volume["lamp-web1-data"]` -> lamp-web1-data (the cloud's volume name)."""
    key = re.search(r'\["([^"]+)"\]$', address)
    return key.group(1) if key else address


@nox.session(python=False)
def destroy(session: nox.Session) -> None:
    """Destroy the instances and networking but keep the data volumes; `-- --with-data` deletes
    everything once the deployment's name is typed (or given with `--confirm NAME`)."""
    with_data, confirm, terraform_args = _split_destroy_args(list(session.posargs))
    approve = "-auto-approve" in terraform_args
    prompt = ["-input=false" if approve else "-input=true"]
    state = terraform(session, "state", "list", silent=True).splitlines() if (HERE / ".terraform").is_dir() else []
    targets, volumes = _destroy_targets(state)
    if not targets and not volumes:
        print("nothing to destroy: this deployment has not been applied (its Terraform state is empty)")
        return
    if with_data:
        doomed = ", ".join(map(_volume_name, volumes)) or "none"
        _confirm_name(session, confirm, "delete everything", "destroyed",
                      f"--with-data deletes the data volumes for good: {doomed}.")
        # The name is the confirmation (a stronger one than Terraform's yes): no second prompt.
        _destroy_retrying(session, "-input=false", *([] if approve else ["-auto-approve"]), *terraform_args)
        print("destroyed everything this deployment created, its data volumes included "
              "(volumes attached through existing_volumes are not its own: they stay)")
        return
    if not approve:
        session.log("Terraform asks for confirmation; to run without a terminal: nox -s destroy -- -auto-approve")
    if targets:
        # Targeting every resource but the volumes also destroys what depends on them (the volume
        # attachments go with their instances); the volumes depend on none of them.
        targeted = [*prompt, *terraform_args, *[f"-target={t}" for t in targets]]
        if approve:
            _destroy_retrying(session, *targeted)
        else:
            terraform(session, "destroy", *targeted)
    if volumes:
        print("kept the data volumes (an apply attaches them again):")
        for address in volumes:
            print(f"  {_volume_name(address)}   ({address})")
        print("to delete them too: nox -s destroy -- --with-data (asks for the deployment's name)")


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
