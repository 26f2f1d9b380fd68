"""Sandboxes: deployments with a time to live, listed and garbage-collected.

A sandbox is an ordinary deployment with two marks written by ``castelet new --sandbox``:

- ``.castelet-answers.yaml`` records ``sandbox: true``, when it was created, by whom and its
  first time to live (never edited afterwards: it is the proof that gc may destroy it);
- ``terraform.tfvars`` holds ``sandbox_expires`` (UTC, ``YYYY-MM-DDTHH:MM:SSZ``), the one
  editable expiry: Terraform hands it to the instances (OpenStack metadata, LXD config
  ``user.castelet.expires``) and ``castelet sandbox extend`` / ``nox -s extend`` move it.

``gc`` destroys expired sandboxes with ``terraform destroy`` (state-aware: volumes included),
one deployment at a time under an exclusive ``flock`` of its answers file, and never touches a
deployment without the marker. The marker alone is not enough (an answers file can be edited or
copied): gc destroys only what is provably a sandbox, where the marker, a local backend and the
Terraform state agree (every instance in the state carries the expiry of terraform.tfvars);
anything else is logged and skipped.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml

from castelet.answers import bounded_repr, text_problem
from castelet.runtime import (
    DESTROY_ATTEMPTS,
    DESTROY_RETRY_PAUSE_SECONDS,
    TerraformNotFound,
    find_terraform,
    lxd_transient,
    terraform_env,
)

ANSWERS_FILE = ".castelet-answers.yaml"
TFVARS = "terraform.tfvars"
EXPIRES_VARIABLE = "sandbox_expires"
DEFAULT_TTL = "8h"
#: Longest time to live, and the latest expiry ``extend`` accepts (counted from creation).
MAX_TTL = timedelta(days=14)
_TTL = re.compile(r"(?:([1-9][0-9]{0,3})d)?(?:([1-9][0-9]{0,4})h)?(?:([1-9][0-9]{0,6})m)?", re.ASCII)
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_EXPIRES_LINE = re.compile(rf'^{EXPIRES_VARIABLE}[ ]*=[ ]*"([^"\n]*)"[ ]*$', re.MULTILINE)
_SKIPPED_DIRS = {"node_modules", "__pycache__"}  # and hidden folders (.git, .terraform, .nox...)
_MAX_ANSWERS_BYTES = 64 * 1024
#: How deep ``find`` looks for deployments under each directory given.
MAX_DEPTH = 4
Log = Callable[[str], None]


class SandboxError(ValueError):
    """A refused duration, a broken sandbox record or a failed step; the message says which."""


# --- durations and times ------------------------------------------------------------------------


def parse_ttl(text: str) -> timedelta:
    """A time to live such as ``90m``, ``4h``, ``2d`` or ``1d12h`` (days, hours, minutes in that
    order, each a positive whole number): at least one minute, at most 14 days."""
    if not isinstance(text, str) or not text or not _TTL.fullmatch(text):
        raise SandboxError(f"{bounded_repr(text, 40)} is not a duration: expected e.g. 30m, 4h, 2d or 1d12h "
                           "(whole days, hours, minutes, in that order)")
    days, hours, minutes = (int(part or 0) for part in _TTL.fullmatch(text).groups())  # type: ignore[union-attr]
    ttl = timedelta(days=days, hours=hours, minutes=minutes)
    if ttl > MAX_TTL:
        raise SandboxError(f"{text} is longer than the maximum time to live of a sandbox, 14 days (14d)")
    return ttl


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any, what: str) -> datetime:
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise SandboxError(f"{what} is {bounded_repr(text, 40)}, not a UTC time YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SandboxError(f"{what} is {text}, not a valid date and time") from None


def describe_left(left: timedelta) -> str:
    """``3h 12m left`` or ``expired 5m ago``."""
    minutes = int(abs(left.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    span = " ".join([f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"])
    return f"{span} left" if left.total_seconds() > 0 else f"expired {span} ago"


def current_owner() -> str:
    """Who creates the sandbox: the git identity (e-mail, else name), else the login name."""
    for key in ("user.email", "user.name"):
        try:
            proc = subprocess.run(["git", "config", key], capture_output=True, text=True, check=False, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            break
        value = proc.stdout.strip()
        if value and len(value) <= 120 and text_problem(value) is None:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- one sandbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    path: Path
    blueprint: str
    cloud: str
    name: str
    owner: str
    created: datetime
    expires: datetime

    def left(self, now: datetime) -> timedelta:
        return self.expires - now

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    @property
    def latest(self) -> datetime:
        """The latest expiry ``extend`` accepts."""
        return self.created + MAX_TTL


def _recorded(deployment: Path) -> dict[str, Any] | None:
    """The answers record of a deployment, or None when there is none."""
    path = deployment / ANSWERS_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_ANSWERS_BYTES + 1)
    except OSError:
        return None
    if len(raw) > _MAX_ANSWERS_BYTES:
        raise SandboxError(f"{path} is larger than {_MAX_ANSWERS_BYTES} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SandboxError(f"{path} cannot be read: {type(exc).__name__}") from None
    return data if isinstance(data, dict) else None


def expiry_in_tfvars(deployment: Path) -> str:
    """The ``sandbox_expires`` value written in terraform.tfvars (exactly one such line)."""
    path = deployment / TFVARS
    try:
        found = _EXPIRES_LINE.findall(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxError(f"{path} cannot be read: {type(exc).__name__}") from None
    if len(found) != 1:
        raise SandboxError(f"{path} must hold exactly one line {EXPIRES_VARIABLE} = \"YYYY-MM-DDTHH:MM:SSZ\" "
                           f"(found {len(found)})")
    return str(found[0])


def read(deployment: Path) -> Sandbox | None:
    """The sandbox at ``deployment``; None when it is not a sandbox (no marker). Raises
    SandboxError when the marker is there but the record or terraform.tfvars is broken."""
    recorded = _recorded(deployment)
    if recorded is None or recorded.get("sandbox") is not True:
        return None
    answers: dict[str, Any] = recorded["answers"] if isinstance(recorded.get("answers"), dict) else {}
    created = parse_time(recorded.get("sandbox_created"), f"sandbox_created in {deployment / ANSWERS_FILE}")
    expires = parse_time(expiry_in_tfvars(deployment), f"{EXPIRES_VARIABLE} in {deployment / TFVARS}")
    return Sandbox(path=deployment, blueprint=str(recorded.get("blueprint", "?")),
                   cloud=str(answers.get("cloud", "openstack")), name=str(answers.get("project_slug", "?")),
                   owner=str(recorded.get("sandbox_owner", "?")), created=created, expires=expires)


def mark(deployment: Path, ttl: timedelta, now: datetime | None = None, owner: str | None = None) -> Sandbox:
    """Make a freshly rendered deployment a sandbox expiring ``ttl`` from ``now`` and commit it."""
    from castelet import gitrepo

    now = (now or datetime.now(UTC)).replace(microsecond=0)
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise SandboxError("a sandbox lives between one minute and 14 days")
    answers_path, tfvars_path = deployment / ANSWERS_FILE, deployment / TFVARS
    tfvars = tfvars_path.read_text(encoding="utf-8")
    if _EXPIRES_LINE.search(tfvars):
        raise SandboxError(f"{tfvars_path} already holds {EXPIRES_VARIABLE}")
    expires = now + ttl
    record = (f"sandbox: true\nsandbox_created: \"{format_time(now)}\"\n"
              f"sandbox_owner: {json.dumps(owner if owner is not None else current_owner())}\n"
              f"sandbox_ttl: {json.dumps(str(int(ttl.total_seconds() // 60)) + 'm')}\n")
    block = ("\n# Sandbox: `castelet sandbox gc` destroys this deployment after this time (UTC);\n"
             f"# `nox -s extend -- 2h` moves it, up to {format_time(now + MAX_TTL)} (14 days after creation).\n"
             f'{EXPIRES_VARIABLE} = "{format_time(expires)}"\n')
    answers_path.write_text(answers_path.read_text(encoding="utf-8") + record, encoding="utf-8")
    tfvars_path.write_text(tfvars + block, encoding="utf-8")
    gitrepo.commit_paths(deployment, [ANSWERS_FILE, TFVARS], f"castelet new --sandbox: expires {format_time(expires)}")
    sandbox = read(deployment)
    assert sandbox is not None
    return sandbox


def set_expiry(sandbox: Sandbox, ttl: timedelta, now: datetime | None = None) -> Sandbox:
    """Move the expiry ``ttl`` later (from now when already expired), refusing to go past 14 days
    after creation. Edits only the ``sandbox_expires`` line of terraform.tfvars."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = max(sandbox.expires, now) + ttl
    if expires > sandbox.latest:
        raise SandboxError(f"{format_time(expires)} is past the latest expiry of this sandbox, "
                           f"{format_time(sandbox.latest)} (14 days after its creation); "
                           f"{describe_left(sandbox.left(now))}")
    path = sandbox.path / TFVARS
    text = path.read_text(encoding="utf-8")
    updated = _EXPIRES_LINE.sub(f'{EXPIRES_VARIABLE} = "{format_time(expires)}"', text, count=1)
    _write_atomically(path, updated)
    refreshed = read(sandbox.path)
    assert refreshed is not None
    return refreshed


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- Terraform ------------------------------------------------------------------------------------


def _env(cloud: str) -> dict[str, str]:
    try:
        return terraform_env(cloud=cloud)
    except TerraformNotFound as exc:
        raise SandboxError(str(exc)) from None


def _terraform(deployment: Path, cloud: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        command = find_terraform()
    except TerraformNotFound as exc:
        raise SandboxError(str(exc)) from None
    return subprocess.run([*command, *args], cwd=deployment, env=_env(cloud), capture_output=True, text=True,
                          check=False)


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr).strip()[-3000:]


def _ensure_init(sandbox: Sandbox) -> None:
    if (sandbox.path / ".terraform").is_dir():
        return
    proc = _terraform(sandbox.path, sandbox.cloud, "init", "-input=false", "-no-color")
    if proc.returncode != 0:
        raise SandboxError(f"terraform init failed in {sandbox.path}:\n{_tail(proc)}")


def resources(sandbox: Sandbox) -> list[str]:
    """Addresses of the resources in the deployment's Terraform state (empty: nothing exists)."""
    if not (sandbox.path / ".terraform").is_dir() and not (sandbox.path / "terraform.tfstate").is_file():
        return []  # never initialised: nothing was ever applied
    proc = _terraform(sandbox.path, sandbox.cloud, "state", "list", "-no-color")
    if proc.returncode != 0:
        if "No state file was found" in proc.stdout + proc.stderr:
            return []
        raise SandboxError(f"terraform state list failed in {sandbox.path}:\n{_tail(proc)}")
    return [line for line in proc.stdout.splitlines() if line.strip() and not line.startswith("data.")]


_HARMLESS = ({"no-op"}, {"update"}, {"read"})


def _sets_expiry(change: dict[str, Any]) -> bool:
    """The LXD module's ``terraform_data.expiry`` (it only runs `lxc config set`): replacing it
    replaces no instance."""
    return change.get("type") == "terraform_data" and change.get("name") == "expiry"


def apply_expiry(sandbox: Sandbox, log: Log) -> bool:
    """Apply a moved expiry to the instances (metadata/config, in place). Applies only when the
    plan replaces, creates and deletes nothing but the LXD module's ``terraform_data.expiry``;
    otherwise leaves it for `nox -s plan` and says so. Returns whether it applied."""
    if not resources(sandbox):
        log("not applied yet: the instances get the expiry with the first apply")
        return False
    _ensure_init(sandbox)
    with tempfile.TemporaryDirectory(prefix="castelet-extend-") as tmp:
        plan_file = str(Path(tmp) / "tfplan")
        proc = _terraform(sandbox.path, sandbox.cloud, "plan", "-input=false", "-no-color", f"-out={plan_file}")
        if proc.returncode != 0:
            raise SandboxError(f"terraform plan failed in {sandbox.path}:\n{_tail(proc)}")
        shown = _terraform(sandbox.path, sandbox.cloud, "show", "-json", plan_file)
        if shown.returncode != 0:
            raise SandboxError(f"terraform show failed in {sandbox.path}:\n{_tail(shown)}")
        changes = json.loads(shown.stdout).get("resource_changes", [])
        other = [c["address"] for c in changes
                 if set(c["change"]["actions"]) not in _HARMLESS and not _sets_expiry(c)]
        if other:
            log("terraform.tfvars has other pending changes (" + ", ".join(other[:5]) + "): not applied; "
                "until it is, gc skips this sandbox (the expiry in its state differs): review and apply it "
                "with `nox -s plan` then `nox -s apply`")
            return False
        proc = _terraform(sandbox.path, sandbox.cloud, "apply", "-input=false", "-no-color", plan_file)
        if proc.returncode != 0:
            raise SandboxError(f"terraform apply failed in {sandbox.path}:\n{_tail(proc)}")
    log("applied in place: no instance was replaced")
    return True


# --- finding, listing, collecting -----------------------------------------------------------------


def find(roots: Sequence[Path]) -> list[Path]:
    """Deployments (folders with a .castelet-answers.yaml) at or under ``roots``, MAX_DEPTH deep."""
    found: list[Path] = []
    for root in roots:
        root = Path(root).resolve()
        base = len(root.parts)
        for current, dirs, files in os.walk(root):
            here = Path(current)
            if ANSWERS_FILE in files:
                found.append(here)
                dirs[:] = []  # a deployment holds no other deployment
                continue
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith(".")
                             and len(here.parts) - base < MAX_DEPTH)
    return sorted(set(found))


@dataclass
class Listed:
    """One deployment found by ``list``: its sandbox record (or why it cannot be read)."""

    path: Path
    sandbox: Sandbox | None = None
    resources: list[str] = field(default_factory=list)
    problem: str = ""


def listing(roots: Sequence[Path], with_resources: bool = True) -> list[Listed]:
    """Every sandbox under ``roots`` (non-sandbox deployments are left out)."""
    rows: list[Listed] = []
    for path in find(roots):
        try:
            sandbox = read(path)
            if sandbox is None:
                continue
            row = Listed(path, sandbox)
            if with_resources:
                row.resources = resources(sandbox)
        except SandboxError as exc:
            row = Listed(path, problem=str(exc))
        rows.append(row)
    return rows


@contextmanager
def _locked(deployment: Path) -> Iterator[bool]:
    """An exclusive, non-blocking flock of the deployment's answers file: yields False when another
    gc (or extend) holds it. The kernel releases it when the process dies, however it dies."""
    with (deployment / ANSWERS_FILE).open("rb") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class GcReport:
    """What gc did: ``skipped`` holds the expired, marked deployments it left alone because they
    are not provably sandboxes (not a failure: such a deployment may well be a real one)."""

    destroyed: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


#: LXD refuses to delete an instance while an earlier operation on it (e.g. the stop of an
#: interrupted destroy) still runs, or reports a finished stop as failed: such answers are
#: retried, a few times, after a pause.
BUSY_RETRIES = DESTROY_ATTEMPTS - 1
BUSY_PAUSE_SECONDS = DESTROY_RETRY_PAUSE_SECONDS


def _destroy(sandbox: Sandbox, stream: TextIO | None) -> None:
    """``terraform destroy``, retried while the cloud says an earlier operation is still running."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            _destroy_once(sandbox, stream)
            return
        except SandboxError as error:
            if not lxd_transient(str(error)) or attempt == BUSY_RETRIES:
                raise
            time.sleep(BUSY_PAUSE_SECONDS)


def _destroy_once(sandbox: Sandbox, stream: TextIO | None) -> None:
    """``terraform destroy -auto-approve``; on an interrupt, Terraform gets SIGINT and time to
    stop cleanly (it saves the state of what it already destroyed) before the interrupt goes on."""
    _ensure_init(sandbox)
    command = [*find_terraform(), "destroy", "-auto-approve", "-input=false", "-no-color"]
    with subprocess.Popen(command, cwd=sandbox.path, env=_env(sandbox.cloud), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True) as proc:
        try:
            output, _ = proc.communicate()
        except BaseException:  # KeyboardInterrupt, SystemExit from a signal handler
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if stream is not None:
        stream.write(output)
    if proc.returncode != 0:
        raise SandboxError(f"terraform destroy failed (exit {proc.returncode}):\n{output.strip()[-3000:]}")


# --- what proves a sandbox ------------------------------------------------------------------------

#: Instance resource types and where each carries the sandbox expiry (terraform-modules/: OpenStack
#: metadata ``castelet_expires``, LXD config ``user.castelet.expires``).
INSTANCE_EXPIRY = {
    "openstack_compute_instance_v2": ("metadata", "castelet_expires"),
    "lxd_container": ("config", "user.castelet.expires"),
    "lxd_instance": ("config", "user.castelet.expires"),
}
_LXD_TYPES = {"lxd_container", "lxd_instance"}
_BACKEND = re.compile(r'^\s*(?:backend\s+"([^"]*)"|(cloud)\s*\{)', re.MULTILINE)
_JSON_BACKEND = re.compile(r'"(?:backend|cloud)"\s*:')
#: Written by gc next to the local state (git ignores ``*.tfstate.*``) before it destroys a proven
#: sandbox, removed once its state is empty: lets the next gc finish a destroy interrupted after
#: the proof went.
DESTROYING_FILE = "terraform.tfstate.castelet-gc.json"


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise SandboxError(f"{path} cannot be read: {type(exc).__name__}") from None


def remote_backend(deployment: Path) -> str:
    """The backends other than ``local`` the deployment's Terraform files declare (or its
    ``.terraform/`` was initialised with), e.g. ``s3``; "" when its state is local."""
    found: set[str] = set()
    for path in sorted(deployment.glob("*.tf")):
        found.update(name or cloud for name, cloud in _BACKEND.findall(_text(path)))
    if any(_JSON_BACKEND.search(_text(path)) for path in deployment.glob("*.tf.json")):
        found.add("declared in a .tf.json file")
    try:
        initialised = json.loads((deployment / ".terraform" / "terraform.tfstate").read_text())
        found.add(str(initialised["backend"]["type"]))
    except (OSError, ValueError, TypeError, KeyError):
        pass
    found.discard("local")
    return ", ".join(sorted(found))


def _plain(value: Any) -> Any:
    """An attribute of the raw state: a dynamic one (``terraform_data``) is ``{value, type}``."""
    return value["value"] if isinstance(value, dict) and set(value) == {"value", "type"} else value


def _shown(value: Any) -> str:
    return value if isinstance(value, str) and _TIME.fullmatch(value) else bounded_repr(value, 40)


def _instances(state: dict[str, Any]) -> Iterator[tuple[str, str, str, Any, dict[str, Any]]]:
    """(module, type, name, index key, attributes) of each managed resource instance in a raw state."""
    for resource in state.get("resources") or []:
        if not isinstance(resource, dict) or resource.get("mode") != "managed":
            continue
        module, kind, name = (str(resource.get(k, "")) for k in ("module", "type", "name"))
        for instance in resource.get("instances") or []:
            if isinstance(instance, dict):
                attributes = instance.get("attributes")
                yield module, kind, name, instance.get("index_key"), attributes if isinstance(attributes, dict) else {}


def unproven(state: dict[str, Any], expires: str) -> str | None:
    """Why a raw Terraform state (``terraform state pull``) does not prove a sandbox expiring at
    ``expires`` (None when it does): every instance must carry that expiry, and at least one
    expiry must be there. On LXD the ``terraform_data.expiry`` that ran ``lxc config set`` for a
    container counts first: the container's own config in the state dates from its last refresh."""
    recorded: dict[tuple[str, Any], tuple[str, Any]] = {}  # (module, key) -> (address, expiry)
    instances: list[tuple[str, str, tuple[str, Any], Any]] = []  # address, type, (module, key), own expiry
    for module, kind, name, key, attributes in _instances(state):
        address = f"{module + '.' if module else ''}{kind}.{name}" + ("" if key is None else f"[{json.dumps(key)}]")
        if kind == "terraform_data" and name == "expiry":
            triggers = _plain(attributes.get("triggers_replace"))
            recorded[(module, key)] = (address, triggers[0] if isinstance(triggers, list) and triggers else None)
        elif kind in INSTANCE_EXPIRY:
            where, item = INSTANCE_EXPIRY[kind]
            values = attributes.get(where)
            instances.append((address, kind, (module, key), values.get(item) if isinstance(values, dict) else None))
    for address, kind, slot, own in instances:
        source, found = recorded[slot] if kind in _LXD_TYPES and slot in recorded else (address, own)
        if found is None:
            return f"instance {address} has no sandbox expiry in its {INSTANCE_EXPIRY[kind][0]}"
        if found != expires:
            return f"the expiry of {source} in the state, {_shown(found)}, differs from {TFVARS}'s {expires}"
    for source, found in recorded.values():
        if found != expires:
            return f"the expiry of {source} in the state, {_shown(found)}, differs from {TFVARS}'s {expires}"
    if not instances and not recorded:
        return "no instance in the state carries a sandbox expiry"
    return None


def _pulled(sandbox: Sandbox) -> dict[str, Any]:
    """The deployment's raw Terraform state (``terraform state pull``: no provider needed)."""
    proc = _terraform(sandbox.path, sandbox.cloud, "state", "pull")
    try:
        state = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise SandboxError(f"terraform state pull failed in {sandbox.path}:\n{_tail(proc)}")
    return state


def _destroying(sandbox: Sandbox, state: dict[str, Any]) -> dict[str, Any]:
    return {"lineage": state.get("lineage"), "expires": format_time(sandbox.expires)}


def _why_not_a_sandbox(sandbox: Sandbox, state: dict[str, Any]) -> str | None:
    """Why gc must not destroy this marked, expired deployment (None: it is provably a sandbox).
    A destroy that gc started on a proven sandbox and that was interrupted (the expiry records go
    first) is finished: the same state lineage and expiry recorded in DESTROYING_FILE count."""
    why = unproven(state, format_time(sandbox.expires))
    if why is not None:
        try:
            started = json.loads((sandbox.path / DESTROYING_FILE).read_text())
        except (OSError, ValueError):
            started = None
        if started == _destroying(sandbox, state):
            return None
    return why


def gc(roots: Sequence[Path], log: Log, dry_run: bool = False, now: datetime | None = None,
       terraform_output: TextIO | None = None) -> GcReport:
    """Destroy every expired sandbox under ``roots``; one log line per sandbox. Sandboxes already
    destroyed, not expired, or being handled by another gc are no-ops; an expired one that is not
    provably a sandbox (remote backend, or a state whose instances do not carry the expiry of
    terraform.tfvars) is skipped and listed in ``skipped``; unreadable records, unreadable states
    and failed destroys are failures (reported, the others still handled)."""
    report = GcReport()
    for path in find(roots):
        moment = now or datetime.now(UTC)
        try:
            sandbox = read(path)
        except SandboxError as exc:
            log(f"{path}: FAILED, the sandbox record cannot be read: {exc}")
            report.failed.append(path)
            continue
        if sandbox is None:
            continue  # not a sandbox: never touched
        if not sandbox.expired(moment):
            log(f"{path}: kept, {describe_left(sandbox.left(moment))} (expires {format_time(sandbox.expires)})")
            continue
        with _locked(path) as acquired:
            if not acquired:
                log(f"{path}: skipped, another gc or extend holds its lock")
                continue
            try:
                backend = remote_backend(path)
                if backend:
                    log(f"{path}: skipped, not provably a sandbox: remote backend ({backend}), "
                        "gc handles only local state")
                    report.skipped.append(path)
                    continue
                existing = resources(sandbox)
                if not existing:
                    (path / DESTROYING_FILE).unlink(missing_ok=True)
                    log(f"{path}: already destroyed ({describe_left(sandbox.left(moment))})")
                    continue
                state = _pulled(sandbox)
                why = _why_not_a_sandbox(sandbox, state)
                if why:
                    log(f"{path}: skipped, not provably a sandbox: {why}")
                    report.skipped.append(path)
                    continue
                if dry_run:
                    log(f"{path}: would destroy {len(existing)} resources ({describe_left(sandbox.left(moment))}, "
                        f"owner {sandbox.owner})")
                    continue
                try:
                    (path / DESTROYING_FILE).write_text(json.dumps(_destroying(sandbox, state)) + "\n")
                except OSError as exc:
                    raise SandboxError(f"cannot write {path / DESTROYING_FILE}: {exc}") from None
                _destroy(sandbox, terraform_output)
                remaining = resources(sandbox)
                if remaining:
                    raise SandboxError(f"the state still lists {len(remaining)} resources: {', '.join(remaining[:5])}")
                (path / DESTROYING_FILE).unlink(missing_ok=True)
            except SandboxError as exc:
                log(f"{path}: FAILED: {exc}")
                report.failed.append(path)
                continue
            log(f"{path}: destroyed {len(existing)} resources ({sandbox.blueprint} on {sandbox.cloud}, "
                f"owner {sandbox.owner}, {describe_left(sandbox.left(moment))})")
            report.destroyed.append(path)
    return report


def extend(deployment: Path, duration: str, log: Log, apply: bool = True, now: datetime | None = None) -> Sandbox:
    """Move a sandbox's expiry ``duration`` later and apply it to the instances (in place)."""
    ttl = parse_ttl(duration)
    sandbox = read(deployment)
    if sandbox is None:
        raise SandboxError(f"{deployment} is not a sandbox (no `sandbox: true` in its {ANSWERS_FILE})")
    with _locked(deployment) as acquired:
        if not acquired:
            raise SandboxError(f"{deployment} is being handled by `castelet sandbox gc` right now")
        moved = set_expiry(sandbox, ttl, now)
        log(f"{deployment}: expires {format_time(moved.expires)} (was {format_time(sandbox.expires)})")
        if apply:
            apply_expiry(moved, log)
    return moved
