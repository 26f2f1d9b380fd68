"""``castelet check``: validate and plan a rendered deployment offline, with real Terraform core.

The deployment is never modified: it is copied (without ``.terraform/``, state files, ``.git``
and caches) into a temporary directory where Terraform runs ``fmt -check -recursive``, ``init``,
``plan`` (which validates the configuration first; empty state, fake ``OS_*`` credentials) and
``show -json`` of the saved plan. The OpenStack provider is castelet's plan-only stand-in
(:mod:`castelet.offline.plugin`); in ``auto`` mode, when ``terraform init`` can install the real
provider, a ``validate`` runs against the real one first (its own validators) and only ``plan``
uses the stand-in, since a real plan needs a cloud.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from castelet.offline.cdktf_schema import SchemaConversionError
from castelet.offline.install import StandinInstallation, install_standin
from castelet.offline.real_provider import RealProvider, RealProviderUnavailable, ensure_real_provider
from castelet.offline.schema import SchemaSourceMissing, cache_root, ensure_schema
from castelet.runtime import TerraformNotFound, find_terraform, terraform_env

JSON = dict[str, Any]
ProviderMode = Literal["auto", "stand-in", "registry", "real"]

SHARED = "(shared)"
PLAN_FILE = "castelet-offline.tfplan"
OVERRIDE_FILE = "zz_castelet_offline_override.tf"
# Credentials the provider configuration may read; the stand-in never uses them.
FAKE_OPENSTACK_ENV = {
    "OS_AUTH_URL": "http://127.0.0.1:9/v3",
    "OS_USERNAME": "castelet-offline",
    "OS_PASSWORD": "castelet-offline",
    "OS_PROJECT_NAME": "castelet-offline",
    "OS_USER_DOMAIN_NAME": "Default",
    "OS_PROJECT_DOMAIN_NAME": "Default",
    "OS_REGION_NAME": "RegionOne",
}
_NOT_COPIED = shutil.ignore_patterns(
    ".terraform", "*.tfstate", "*.tfstate.*", "terraform.tfstate.d", "*.tfplan", ".git", ".nox",
    ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
)
_BACKEND = re.compile(r'^\s*(backend\s+"|cloud\s*\{)', re.MULTILINE)
_WARNING = re.compile(r"^(?:│ )?Warning: (.+)$", re.MULTILINE)
_LOCKED_VERSION = re.compile(
    r'provider "[^"/]+/terraform-provider-openstack/openstack" \{\s*version\s*=\s*"([^"]+)"'
)


@dataclass
class Phase:
    """One Terraform command of the check, with its verbatim output."""

    name: str
    args: list[str]
    returncode: int
    seconds: float
    output: str
    provider: str = "stand-in"
    optional: bool = False  # the registry probe of ``auto`` mode may fail without failing the check

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class CheckReport:
    deployment: Path
    provider: Literal["stand-in", "registry", "real"] = "stand-in"
    provider_line: str = ""
    phases: list[Phase] = field(default_factory=list)
    error: str | None = None  # castelet's own failure (nothing to check with), not Terraform's
    to_add_by_type: dict[str, int] = field(default_factory=dict)
    to_add_by_role: dict[str, dict[str, int]] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)  # resource changes per action, data reads
    warnings: list[str] = field(default_factory=list)  # Terraform's warning summaries, deduplicated
    notes: list[str] = field(default_factory=list)  # what castelet adjusted in its working copy
    terraform: list[str] = field(default_factory=list)
    workdir: Path | None = None  # kept only with keep_workdir=True

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.phases) and self.phases[-1].name == "show" and all(
            p.ok or p.optional for p in self.phases
        )

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per phase name (fmt, registry-probe, init, validate, plan, show)."""
        return {p.name: p.seconds for p in self.phases}

    @property
    def diagnostics(self) -> str:
        """Terraform's own output of every failed phase, verbatim (empty when all passed)."""
        failed = [
            f"$ terraform {' '.join(p.args)}\n{p.output.strip()}" for p in self.phases if not (p.ok or p.optional)
        ]
        return "\n\n".join([*([self.error] if self.error else []), *failed])

    @property
    def to_add(self) -> int:
        return sum(self.to_add_by_type.values())

    def summary_lines(self) -> list[str]:
        """A short human summary (the CLI prints it)."""
        lines = [self.provider_line] if self.provider_line else []
        lines += [
            f"{p.name}: {'ok' if p.ok else ('unavailable' if p.optional else 'FAILED')} ({p.seconds:.1f} s)"
            for p in self.phases
        ]
        if self.ok:
            lines.append(f"plan: {self.to_add} to add")
            lines += [f"  {t}: {n}" for t, n in sorted(self.to_add_by_type.items())]
            for role, types in sorted(self.to_add_by_role.items()):
                lines.append(f"  role {role}: " + ", ".join(f"{n} {t}" for t, n in sorted(types.items())))
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"offline check {'passed' if self.ok else 'FAILED'} in {self.seconds:.1f} s")
        return lines

    def to_json(self) -> JSON:
        return {
            "deployment": str(self.deployment),
            "ok": self.ok,
            "provider": self.provider,
            "provider_line": self.provider_line,
            "error": self.error,
            "phases": [
                {"name": p.name, "args": p.args, "returncode": p.returncode, "seconds": round(p.seconds, 3),
                 "provider": p.provider, "output": p.output}
                for p in self.phases
            ],
            "to_add": self.to_add,
            "to_add_by_type": self.to_add_by_type,
            "to_add_by_role": self.to_add_by_role,
            "actions": self.actions,
            "warnings": self.warnings,
            "notes": self.notes,
        }


def _role_map(plan: JSON, creates: list[JSON]) -> dict[str, str]:
    """hostname => role, from the instances to create (metadata.castelet_role or the name)."""
    name = plan.get("variables", {}).get("name", {}).get("value")
    hosts: dict[str, str] = {}
    for change in creates:
        key = change.get("index")
        if change.get("type") != "openstack_compute_instance_v2" or not isinstance(key, str):
            continue
        metadata = (change["change"].get("after") or {}).get("metadata") or {}
        role = metadata.get("castelet_role")
        if not isinstance(role, str) and isinstance(name, str):
            match = re.fullmatch(re.escape(name) + r"-(.+?)\d+", key)
            role = match.group(1) if match else None
        if isinstance(role, str):
            hosts[key] = role
    return hosts


def _role_of(key: Any, hosts: dict[str, str]) -> str:
    """The role a resource instance key belongs to: a hostname, ``<hostname>-<volume>``,
    a role name or ``<role>/<rule>/...``; anything else is shared by the deployment."""
    if not isinstance(key, str):
        return SHARED
    if key in hosts:
        return hosts[key]
    for host in sorted(hosts, key=len, reverse=True):
        if key.startswith((host + "-", host + "/")):
            return hosts[host]
    head = key.split("/", 1)[0]
    return head if head in set(hosts.values()) else SHARED


def summarize_plan(plan: JSON) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, int]]:
    """(to add by type, to add by role and type, count per action) of a ``show -json`` plan."""
    changes: list[JSON] = plan.get("resource_changes", [])
    creates = [c for c in changes if c.get("mode") == "managed" and "create" in c["change"]["actions"]]
    by_type = Counter(c["type"] for c in creates)
    hosts = _role_map(plan, creates)
    by_role: dict[str, Counter[str]] = {}
    for change in creates:
        by_role.setdefault(_role_of(change.get("index"), hosts), Counter())[change["type"]] += 1
    actions = Counter("-".join(c["change"]["actions"]) for c in changes)
    return (
        dict(sorted(by_type.items())),
        {role: dict(sorted(types.items())) for role, types in sorted(by_role.items())},
        dict(sorted(actions.items())),
    )


def terraform_environment(cli_config: Path | None, plugin_cache: Path | None) -> dict[str, str]:
    """Terraform's environment: the user's, minus OS_* credentials, TF_CLI_ARGS*, TF_DATA_DIR and
    TF_WORKSPACE, plus fake OS_* credentials. For the stand-in (``cli_config``), no plugin cache:
    the stand-in must never land in a cache that real ``terraform init`` runs read."""
    base = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("OS_", "TF_CLI_ARGS")) and k not in ("TF_DATA_DIR", "TF_WORKSPACE")
    }
    env = terraform_env(base)
    env.update(FAKE_OPENSTACK_ENV)
    if cli_config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(cli_config)
        env.pop("TF_PLUGIN_CACHE_DIR", None)
    elif plugin_cache is not None and not env.get("TF_PLUGIN_CACHE_DIR"):
        plugin_cache.mkdir(parents=True, exist_ok=True)
        env["TF_PLUGIN_CACHE_DIR"] = str(plugin_cache)
    env.setdefault("TF_REGISTRY_CLIENT_TIMEOUT", "10")
    return env


class _Runner:
    def __init__(self, terraform: list[str], cwd: Path, progress: Callable[[str], None], timeout: float) -> None:
        self.terraform = terraform
        self.cwd = cwd
        self.progress = progress
        self.timeout = timeout

    def run(
        self, name: str, args: list[str], env: dict[str, str], provider: str = "stand-in", optional: bool = False
    ) -> tuple[Phase, str]:
        """Run one phase; return it and its stdout (``show -json`` needs it apart)."""
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [*self.terraform, *args], cwd=self.cwd, env=env, capture_output=True, text=True,
                timeout=self.timeout, check=False,
            )
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stdout = 124, ""
            stderr = f"castelet: terraform {' '.join(args)} timed out after {self.timeout:.0f} s\n"
            stderr += exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        phase = Phase(name, args, returncode, time.monotonic() - start, "", provider, optional)
        phase.output = stderr if name == "show" else stdout + stderr
        status = "ok" if phase.ok else ("failed (optional)" if optional else "FAILED")
        self.progress(f"terraform {' '.join(args)}: {status} ({phase.seconds:.1f} s)")
        return phase, stdout


def _init_args(needs_backend: bool) -> list[str]:
    return ["init", "-input=false", "-no-color", *([] if needs_backend else ["-backend=false"])]


def check(
    deployment_dir: Path,
    progress: Callable[[str], None] | None = None,
    *,
    provider: ProviderMode = "auto",
    keep_workdir: bool = False,
    timeout: float = 600.0,
    schema_cache: Path | None = None,
) -> CheckReport:
    """Check one rendered deployment offline; see the module docstring. Never raises for a
    failing deployment: the report says what failed (``ok``, ``diagnostics``)."""
    say = progress or (lambda _line: None)
    report = CheckReport(Path(deployment_dir))
    if not report.deployment.is_dir() or not any(report.deployment.glob("*.tf")):
        report.error = f"{report.deployment}: not a Terraform root module (no *.tf file)"
        return report
    try:
        report.terraform = find_terraform()
        schema = ensure_schema(schema_cache)
        real = ensure_real_provider(progress=say) if provider == "real" else None
    except (TerraformNotFound, SchemaSourceMissing, SchemaConversionError, RealProviderUnavailable) as exc:
        report.error = str(exc)
        return report
    tmp = Path(tempfile.mkdtemp(prefix="castelet-check-"))
    try:
        standin = install_standin(tmp / "standin", schema)
        work = tmp / "deployment"
        shutil.copytree(report.deployment, work, ignore=_NOT_COPIED, symlinks=True)
        needs_backend = any(_BACKEND.search(p.read_text(errors="replace")) for p in work.glob("*.tf"))
        if needs_backend:  # plan against a throw-away local state, never the real backend
            (work / OVERRIDE_FILE).write_text('terraform {\n  backend "local" {}\n}\n')
        _run_phases(report, _Runner(report.terraform, work, say, timeout), standin, provider,
                    needs_backend, cache_root(), real)
    finally:
        if keep_workdir:
            report.workdir = tmp
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"offline check {'passed' if report.ok else 'FAILED'} in {report.seconds:.1f} s")
    return report


def _forget_providers(work: Path) -> None:
    """Drop installed providers and the lock file, so the next init picks the stand-in."""
    (work / ".terraform.lock.hcl").unlink(missing_ok=True)
    shutil.rmtree(work / ".terraform" / "providers", ignore_errors=True)


def _run_phases(
    report: CheckReport, runner: _Runner, standin: StandinInstallation, mode: ProviderMode,
    needs_backend: bool, data_home: Path, real: RealProvider | None = None,
) -> None:
    standin_env = terraform_environment(standin.cli_config, None)
    phase, _ = runner.run("fmt", ["fmt", "-check", "-recursive", "-no-color"], standin_env)
    report.phases.append(phase)

    if mode == "real" and real is not None:
        # The real provider's own validators, from the mirror it was built into; then the
        # stand-in plans (a real plan configures the provider, which needs a cloud).
        real_env = terraform_environment(real.cli_config, None)
        report.provider = "real"
        report.provider_line = f"offline: validating against {real.description}, planning against {standin.description}"
        runner.progress(report.provider_line)
        for name, args in (("init", _init_args(needs_backend)), ("validate", ["validate", "-no-color"])):
            phase, _ = runner.run(name, args, real_env, provider="real")
            report.phases.append(phase)
            if not phase.ok:
                return
    elif mode != "stand-in":
        registry_env = terraform_environment(None, data_home / "terraform-plugins")
        phase, _ = runner.run("init" if mode == "registry" else "registry-probe", _init_args(needs_backend),
                              registry_env, provider="registry", optional=mode == "auto")
        report.phases.append(phase)
        if phase.ok:
            phase.name = "init"
            lock = runner.cwd / ".terraform.lock.hcl"
            found = _LOCKED_VERSION.search(lock.read_text()) if lock.is_file() else None
            report.provider = "registry"
            report.provider_line = (
                f"offline: validating against terraform-provider-openstack {found.group(1) if found else '?'} "
                f"(registry), planning against {standin.description}"
            )
            runner.progress(report.provider_line)
            phase, _ = runner.run("validate", ["validate", "-no-color"], registry_env, provider="registry")
            report.phases.append(phase)
            if not phase.ok:
                return
        elif mode == "registry":
            return
    if report.provider == "stand-in":
        report.provider_line = f"offline: planning against {standin.description}"
        runner.progress(report.provider_line)

    _forget_providers(runner.cwd)
    phase, _ = runner.run("init", _init_args(needs_backend), standin_env)
    report.phases.append(phase)
    if not phase.ok:
        return
    # With the stand-in alone there is no separate `validate`: `plan` validates the configuration
    # (the same checks, the same provider) before it plans, and fails with the same diagnostics.
    phase, _ = runner.run("plan", ["plan", "-input=false", "-no-color", "-lock=false", f"-out={PLAN_FILE}"],
                          standin_env)
    report.phases.append(phase)
    report.warnings = sorted({
        w.strip() for p in report.phases if p.name in ("validate", "plan") for w in _WARNING.findall(p.output)
    })
    if not phase.ok:
        return
    phase, stdout = runner.run("show", ["show", "-json", "-no-color", PLAN_FILE], standin_env)
    report.phases.append(phase)
    if phase.ok:
        try:
            plan = json.loads(stdout)
        except json.JSONDecodeError as exc:
            phase.returncode, phase.output = 1, f"castelet: terraform show -json printed no JSON: {exc}"
            return
        report.to_add_by_type, report.to_add_by_role, report.actions = summarize_plan(plan)
