"""Entry points of the blueprints' cookiecutter hooks (``blueprints/*/hooks`` link here).

Cookiecutter runs each hook as a separate Python process in the project directory; a non-zero
exit makes cookiecutter delete the directory it created, so nothing is left half-written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from castelet.answers import AnswersError, validate
from castelet.library import library_root
from castelet.manifest import ManifestError, load
from castelet.render import assemble


def _answers(context: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if not k.startswith("_")}


def pre_generate(repo_dir: str, context: dict[str, Any]) -> int:
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
        assemble(bp, validate(bp, _answers(context)), Path(project_dir), library_root(blueprint_dir))
    except Exception as exc:  # any failure must make cookiecutter remove the directory
        print(f"castelet: could not assemble the deployment: {exc}", file=sys.stderr)
        return 1
    return 0
