"""Entry points of the blueprints' cookiecutter hooks (``blueprints/*/hooks`` link here).

Cookiecutter runs each hook as a separate Python process in the project directory; a non-zero
exit makes cookiecutter delete the directory it created, so nothing is left half-written.
Errors are one clear line each (no traceback): the hook scripts print them and exit 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from castelet.answers import AnswersError, validate
from castelet.library import library_root
from castelet.manifest import ManifestError, load
from castelet.render import ANSWERS_FILE, QUIET_HOOKS, assemble


def _answers(context: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if not k.startswith("_")}


def pre_generate(repo_dir: str, context: dict[str, Any], project_dir: str = ".") -> int:
    if (Path(project_dir) / ANSWERS_FILE).exists():
        print("castelet: this folder already holds a Castelet deployment; cookiecutter would overwrite what you "
              "changed in it. Re-render it with `castelet new <blueprint> --answers .castelet-answers.yaml "
              "--force`, which keeps your edits or refuses.", file=sys.stderr)
        return 2
    try:
        validate(load(Path(repo_dir)), _answers(context))
    except (AnswersError, ManifestError) as exc:
        print(f"castelet: invalid answers, nothing was written:\n{exc}", file=sys.stderr)
        return 2
    return 0


def post_generate(repo_dir: str, context: dict[str, Any], project_dir: str = ".") -> int:
    try:
        blueprint_dir = Path(repo_dir)
        bp = load(blueprint_dir)
        blockers = assemble(bp, validate(bp, _answers(context)), Path(project_dir), library_root(blueprint_dir))
    except Exception as exc:  # any failure must make cookiecutter remove the directory
        print(f"castelet: could not assemble the deployment, nothing was kept: {exc}", file=sys.stderr)
        return 2
    if blockers and not os.environ.get(QUIET_HOOKS):
        print("castelet: before you apply (see README.md):", file=sys.stderr)
        for blocker in blockers:
            print(f"  - {blocker.text()}", file=sys.stderr)
    return 0
