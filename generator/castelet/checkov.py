"""checkov (static security analysis of Terraform) on a rendered deployment.

checkov has many dependencies of its own, so `.ci/setup` installs it in its own virtual
environment (`.venv-checkov/`); it is found through ``$CASTELET_CHECKOV``, then ``PATH``, then
that environment next to castelet's. A finding is suppressed only in the Terraform source, next
to the resource, with a reason: ``#checkov:skip=CKV_X_N:why``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = ("checkov is not installed: run `bash .ci/setup` in the library (it makes .venv-checkov), "
                "or `pip install 'checkov>=3.3.30,<4'` in its own environment and set CASTELET_CHECKOV")


class CheckovMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Finding:
    check_id: str
    check_name: str
    resource: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file}:{self.line}): {self.check_name}"


@dataclass
class CheckovReport:
    passed: int = 0
    skipped: int = 0
    failed: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (f"checkov: {self.passed} passed, {len(self.failed)} failed, {self.skipped} suppressed "
                f"(with a reason in the source)")


def find_checkov() -> list[str]:
    configured = os.environ.get("CASTELET_CHECKOV")
    if configured:
        return [configured]
    on_path = shutil.which("checkov")
    if on_path:
        return [on_path]
    beside = Path(sys.prefix).parent / ".venv-checkov" / "bin" / "checkov"
    if beside.is_file():
        return [str(beside)]
    raise CheckovMissing(INSTALL_HINT)


# A module call with a local source: `source = "./modules/openstack"`, `source = "../common/design"`.
LOCAL_SOURCE = re.compile(r'^\s*source\s*=\s*"(\.{1,2}/[^"]*)"', re.MULTILINE)


def called_modules(root: Path) -> set[Path]:
    """The folders of every module the root module calls, directly or through another module."""
    called: set[Path] = set()
    pending = [root.resolve()]
    while pending:
        folder = pending.pop()
        for tf in sorted(folder.glob("*.tf")):
            for source in LOCAL_SOURCE.findall(tf.read_text(errors="replace")):
                module = (folder / source).resolve()
                if module.is_dir() and module not in called:
                    called.add(module)
                    pending.append(module)
    return called


def uncalled_module_folders(root: Path) -> list[Path]:
    """Folders under the deployment's `modules/` that its Terraform never calls: the other cloud's
    module and the modules' `examples/`. They create nothing, and checkov spends most of a scan
    building their graphs."""
    root = root.resolve()
    called = called_modules(root)
    uncalled: list[Path] = []
    pending = [root / "modules"] if (root / "modules").is_dir() else []
    while pending:
        for child in sorted(p for p in pending.pop().iterdir() if p.is_dir() and not p.name.startswith(".")):
            if child in called or any(module.is_relative_to(child) for module in called):
                pending.append(child)
            else:
                uncalled.append(child)
    return uncalled


def run_checkov(deployment: Path) -> CheckovReport:
    """Scan every Terraform file the deployment uses (the modules it calls included), offline."""
    return _scan(Path(deployment), lambda relative: "")[""]


def run_checkov_each(parent: Path) -> dict[str, CheckovReport]:
    """Scan the deployments that are folders of ``parent`` in one checkov process (its start-up
    is most of a scan's time): {folder name: that deployment's report}."""
    return _scan(Path(parent), lambda relative: relative.parts[0] if len(relative.parts) > 1 else "")


def _scan(directory: Path, owner_of: Callable[[Path], str]) -> dict[str, CheckovReport]:
    directory = directory.resolve()
    deployments = [directory] if (directory / "modules").is_dir() else sorted(
        p for p in directory.iterdir() if p.is_dir() and (p / "modules").is_dir())
    # checkov matches each --skip-path as a regular expression against the absolute paths it walks.
    skipped = [f"--skip-path=^{re.escape(str(folder))}$"
               for deployment in deployments for folder in uncalled_module_folders(deployment)]
    argv = [*find_checkov(), "--directory", str(directory), "--framework", "terraform", "--skip-download",
            "--output", "json", "--compact", *skipped]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900,
                          env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"checkov failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from exc
    reports: dict[str, CheckovReport] = {}
    for result in data if isinstance(data, list) else [data]:
        if not isinstance(result, dict) or "results" not in result:
            continue  # e.g. {"passed": 0, ...} when nothing was scanned
        for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
            for item in result["results"].get(outcome, []):
                relative = Path(str(item.get("file_path", "")).lstrip("/"))
                report = reports.setdefault(owner_of(relative), CheckovReport())
                if outcome == "passed_checks":
                    report.passed += 1
                elif outcome == "skipped_checks":
                    report.skipped += 1
                else:
                    lines = item.get("file_line_range") or [0]
                    report.failed.append(Finding(str(item["check_id"]), str(item.get("check_name", "")),
                                                 str(item.get("resource", "")), str(item.get("file_path", "")),
                                                 int(lines[0])))
    if not reports:
        raise RuntimeError(f"checkov scanned nothing in {directory} (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return reports
