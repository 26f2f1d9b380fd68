"""Re-rendering an existing deployment (``castelet new --force``) without losing anything.

Each render records the sha256 of every file it wrote (``.castelet/rendered.json``). For each
file, three versions are compared: what Castelet wrote last time (base), what is there now
(the user's), and the new render. A file the user never edited takes the new render; a file
the new render does not change keeps the user's version; a file both changed is a conflict,
and any conflict refuses the whole re-render before anything is written. Files Castelet never
wrote — ``.git``, ``backend.tf``, state, ``.terraform/``, the user's own files — are never
touched. Stale files Castelet wrote and nobody edited are removed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from castelet import gitrepo

RENDERED_RECORD = ".castelet/rendered.json"


class TargetExists(FileExistsError):
    """The target folder exists and cannot be (re-)rendered as asked."""


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (outside .git), by POSIX relative path."""
    digests = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git" or not path.is_file() or path.is_symlink():
            continue
        digests[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


@dataclass
class MergePlan:
    write: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    keep_edited: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


class RenderConflict(TargetExists):
    def __init__(self, target: Path, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        listing = "\n".join(f"  - {c}" for c in conflicts)
        super().__init__(
            f"re-rendering {target} would overwrite what you changed; nothing was written:\n{listing}\n"
            "Carry your change into the answers (castelet new --answers), or move the file away, then re-run.")


def _digest(path: Path) -> str | None:
    if not path.is_file() or path.is_symlink():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded(target: Path) -> dict[str, str]:
    try:
        data = json.loads((target / RENDERED_RECORD).read_text())
    except (OSError, ValueError):
        return {}  # rendered before records existed: every existing file counts as the user's
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def plan_merge(rendered: Path, target: Path) -> MergePlan:
    base = _recorded(target)
    new = file_digests(rendered)
    plan = MergePlan()
    for rel, theirs in sorted(new.items()):
        if rel == RENDERED_RECORD:
            continue
        current_path = target / rel
        if (current_path.exists() and not current_path.is_file()) or current_path.is_symlink():
            plan.conflicts.append(f"{rel} (not a regular file in the deployment)")
            continue
        ours = _digest(current_path)
        if ours == theirs:
            continue
        if ours is None or ours == base.get(rel):
            plan.write.append(rel)
        elif base.get(rel) == theirs:
            plan.keep_edited.append(rel)
        else:
            plan.conflicts.append(f"{rel} (edited or added by you; the new render differs)")
    for rel, digest in sorted(base.items()):
        if rel not in new and _digest(target / rel) == digest:
            plan.delete.append(rel)
    return plan


def merge(rendered: Path, target: Path, plan: MergePlan, message: str) -> None:
    """Carry out a conflict-free plan and commit the files it changed."""
    assert not plan.conflicts
    for rel in plan.write:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(rendered / rel, target / rel)
    for rel in plan.delete:
        (target / rel).unlink()
    record = _recorded(target) | file_digests(rendered)
    for rel in plan.delete:
        record.pop(rel, None)
    record.pop(RENDERED_RECORD, None)
    (target / RENDERED_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    gitrepo.commit_paths(target, [*plan.write, *plan.delete, RENDERED_RECORD], message)
