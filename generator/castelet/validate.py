"""`castelet validate`: a blueprint's manifest against the schema and against its template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from castelet.manifest import Blueprint, ManifestError, load

TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
HOOKS = ("pre_gen_project.py", "post_gen_project.py")
LITERAL_EXTENSION = "castelet.literal.LiteralAnswers"


def cookiecutter_json(bp: Blueprint, lang: str = "en") -> dict[str, Any]:
    """The cookiecutter.json a manifest implies: defaults in order, with help as prompts, and
    the extension that keeps cookiecutter from evaluating answers as templates."""
    data: dict[str, Any] = {"_extensions": [LITERAL_EXTENSION]}
    for q in bp.questions:
        data[q.name] = list(q.choices) if q.type == "choice" else q.default
    data["__prompts__"] = {q.name: q.help[lang] for q in bp.questions}
    return data


def cookiecutter_json_text(bp: Blueprint) -> str:
    return json.dumps(cookiecutter_json(bp), indent=2, ensure_ascii=False) + "\n"


def write_cookiecutter_json(blueprint_dir: Path) -> Path:
    """Generate ``cookiecutter.json`` from the manifest (``castelet validate --fix``)."""
    path = blueprint_dir / "cookiecutter.json"
    path.write_text(cookiecutter_json_text(load(blueprint_dir)), encoding="utf-8")
    return path


def problems(blueprint_dir: Path, library: Path) -> list[str]:
    """Every inconsistency found; empty when the blueprint is sound."""
    try:
        bp = load(blueprint_dir)
    except ManifestError as exc:
        return exc.problems
    found: list[str] = []
    cc_path = blueprint_dir / "cookiecutter.json"
    try:
        current = cc_path.read_text("utf-8")
    except OSError as exc:
        current = f"(unreadable: {exc})"
    if current != cookiecutter_json_text(bp):
        found.append("cookiecutter.json: not generated from the manifest (questions, defaults, prompts or "
                     "extensions differ): run `castelet validate --fix`")
    for role in bp.roles:
        role_file = library / "puppet/modules/castelet/manifests/role" / f"{role.puppet_role}.pp"
        if not role_file.is_file():
            found.append(f"roles: {role.name!r} needs the Puppet class {role.puppet_class} "
                         f"({role_file.relative_to(library)} is missing)")
    template = blueprint_dir / TEMPLATE_DIR
    if not template.is_dir():
        found.append(f"template: folder {TEMPLATE_DIR} is missing")
    elif not (template / bp.tests).is_file():
        found.append(f"tests: {bp.tests} is not in the template")
    for hook in HOOKS:
        if not (blueprint_dir / "hooks" / hook).is_file():
            found.append(f"hooks/{hook} is missing (link hooks to generator/castelet/cookiecutter_hooks)")
    return found
