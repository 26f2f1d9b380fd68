"""`castelet validate`: a blueprint's manifest against the schema and against its template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from castelet.manifest import Blueprint, ManifestError, load

TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
HOOKS = ("pre_gen_project.py", "post_gen_project.py")


def cookiecutter_json(bp: Blueprint, lang: str = "en") -> dict[str, Any]:
    """The cookiecutter.json a manifest implies: defaults in order, with help as prompts."""
    data: dict[str, Any] = {}
    for q in bp.questions:
        data[q.name] = list(q.choices) if q.type == "choice" else q.default
    data["__prompts__"] = {q.name: q.help[lang] for q in bp.questions}
    return data


def problems(blueprint_dir: Path, library: Path) -> list[str]:
    """Every inconsistency found; empty when the blueprint is sound."""
    try:
        bp = load(blueprint_dir)
    except ManifestError as exc:
        return exc.problems
    found: list[str] = []
    cc_path = blueprint_dir / "cookiecutter.json"
    try:
        cc = json.loads(cc_path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"cookiecutter.json: cannot be read ({exc})"]
    variables = {k: v for k, v in cc.items() if not k.startswith("_")}
    for name in bp.question_names:
        if name not in variables:
            found.append(f"cookiecutter.json: question {name!r} of the manifest is missing")
    for name in variables:
        if name not in bp.question_names:
            found.append(f"cookiecutter.json: variable {name!r} is not a question of the manifest")
    expected = cookiecutter_json(bp)
    for name in bp.question_names:
        if name in variables and variables[name] != expected[name]:
            found.append(f"cookiecutter.json: default of {name!r} is {variables[name]!r}, "
                         f"the manifest says {expected[name]!r}")
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
