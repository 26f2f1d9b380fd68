"""Render a blueprint into a deployment repo.

Both entry points take one path: ``castelet new`` validates, then runs cookiecutter into a
temporary directory; the blueprint's cookiecutter hooks call :func:`castelet.hooks.pre_generate`
(validation) and :func:`assemble` (the shared skeleton, the modules and the Puppet environment).
Answers reach the deployment as data only: cookiecutter's own rendering of them is the
identity (:mod:`castelet.literal`), the skeleton escapes each one for the language of the file
it lands in (HCL, Markdown), and Puppet gets them from Terraform, never from a file written
here. The finished tree is moved into place, or merged into an existing deployment, only when
everything succeeded and nothing the user made would be lost (:mod:`castelet.rerender`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jinja2
import yaml

from castelet import __version__, gitrepo, tfrules
from castelet.answers import split_keys, validate
from castelet.blockers import Blocker, before_apply
from castelet.deployment import settings_of, tfvars_of
from castelet.escape import hcl, markdown, markdown_cell
from castelet.manifest import Blueprint, load
from castelet.project import project_home
from castelet.rerender import RENDERED_RECORD, RenderConflict, TargetExists, file_digests, merge, plan_merge

SKELETON = Path(__file__).with_name("skeleton")
ANSWERS_FILE = ".castelet-answers.yaml"
QUIET_HOOKS = "CASTELET_QUIET_HOOKS"
_IGNORED = shutil.ignore_patterns(
    "tests", ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "__pycache__", ".*.swp"
)


def design(bp: Blueprint, answers: dict[str, Any]) -> dict[str, Any]:
    """The deployment's design data, derived once from manifest + answers for every consumer."""
    roles = {
        r.name: {"count": r.count, "public": r.public, "flavor": answers[r.flavor_question],
                 "min_vcpus": r.min_vcpus, "min_ram_mb": r.min_ram_mb, "min_disk_gb": r.min_disk_gb,
                 "puppet_class": r.puppet_class}
        for r in bp.roles
    }
    services = [
        {"name": s.name, "role": s.role, "port": s.port, "protocol": s.protocol, "exposure": s.exposure}
        for s in bp.services
    ]
    volumes = {
        v.name: {"role": v.role, "mount": v.mount, "size_gb": v.size_for(answers)} for v in bp.volumes
    }
    # The client networks of `exposure: clients` services: a list variable of terraform.tfvars,
    # declared only by deployments whose blueprint asks client_cidrs (None: not asked).
    client_cidrs = str(answers["client_cidrs"]).split() if "client_cidrs" in bp.question_names else None
    return {"roles": roles, "services": services, "volumes": volumes,
            "public_keys": split_keys(answers.get("admin_ssh_keys", "")), "client_cidrs": client_cidrs}


def _skeleton_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SKELETON)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False,
    )
    env.filters["hcl"] = hcl
    env.filters["md"] = markdown
    env.filters["cell"] = markdown_cell
    env.globals["width"] = lambda mapping: max((len(str(k)) for k in mapping), default=0)
    return env


def _skeleton_files(cloud: str) -> list[tuple[str, Path]]:
    """(relative output path, template) of the skeleton; ``README.<cloud>.md.j2`` is the README
    of that cloud only."""
    files = []
    for template in sorted(p for p in SKELETON.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = template.relative_to(SKELETON).as_posix()
        if template.name.startswith("_"):  # partials, included by other templates
            continue
        if rel.startswith("README."):
            if rel != f"README.{cloud}.md.j2":
                continue
            rel = "README.md.j2"
        files.append((rel.removesuffix(".j2"), template))
    return files


def assemble(bp: Blueprint, answers: dict[str, Any], project_dir: Path, library: Path) -> list[Blocker]:
    """Add everything the blueprint shares with others to a freshly rendered ``project_dir``,
    record what was written, and make it a git repository. Returns the "Before you apply" list."""
    project_dir = Path(project_dir)
    tests_module = project_dir / bp.tests
    if not tests_module.is_file():
        raise FileNotFoundError(f"blueprint {bp.id} declares {bp.tests} but its template has no such file")
    shutil.copytree(library / "terraform-modules", project_dir / "modules", ignore=_IGNORED)
    shutil.copytree(library / "puppet", project_dir / "puppet", ignore=_IGNORED, dirs_exist_ok=True)

    derived = design(bp, answers)
    blockers = before_apply(bp, answers)
    context = {"bp": bp, "a": answers, "version": __version__, "home": project_home(library),
               "tfvars": tfvars_of(bp, answers), "settings": settings_of(bp, answers),
               "https": any(s.tls for s in bp.services),
               "blockers": blockers, "rules": tfrules.rules(bp, answers), **derived}
    env = _skeleton_env()
    for rel, template in _skeleton_files(str(answers["cloud"])):
        target = project_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if template.name.endswith(".j2"):
            source = template.relative_to(SKELETON).as_posix()
            target.write_text(env.get_template(source).render(**context), encoding="utf-8")
        else:
            shutil.copy2(template, target)
    here = Path(__file__).parent
    (project_dir / ".castelet").mkdir(exist_ok=True)
    shutil.copy2(here / "runtime.py", project_dir / ".castelet" / "runtime.py")
    shutil.copy2(here / "hostkeys.py", project_dir / ".castelet" / "hostkeys.py")
    shutil.copy2(here / "verify.py", project_dir / "tests" / "castelet_checks.py")
    manifest = {"id": bp.id, "version": bp.version, "cloud": answers["cloud"], "roles": [asdict(r) for r in bp.roles],
                "services": [asdict(s) for s in bp.services], "volumes": derived["volumes"],
                "secrets": list(bp.secrets), "release": bp.release}
    (project_dir / ".castelet" / "blueprint.json").write_text(json.dumps(manifest, indent=2) + "\n")
    header = "# Answers this deployment was rendered from (castelet new --answers accepts this file).\n"
    recorded = {"blueprint": bp.id, "blueprint_version": bp.version, "castelet_version": __version__,
                "answers": answers}
    (project_dir / ANSWERS_FILE).write_text(
        header + yaml.safe_dump(recorded, sort_keys=False, allow_unicode=True), encoding="utf-8")
    record = project_dir / RENDERED_RECORD
    record.write_text(json.dumps(file_digests(project_dir), indent=1, sort_keys=True) + "\n")
    gitrepo.init(project_dir, f"castelet new {bp.id} {bp.version} (castelet {__version__})")
    return blockers


def new(blueprint_dir: Path, given: dict[str, Any], output_dir: Path, force: bool = False) -> Path:
    """Validate ``given``, render into a temp dir beside the target, then move it into place, or
    with ``force`` merge it into the existing deployment without losing anything (else refuse)."""
    bp = load(blueprint_dir)
    answers = validate(bp, given)  # raises before anything is written
    output_dir = Path(output_dir).resolve()
    target = output_dir / str(answers["project_slug"])
    if target.exists():
        if not force:
            raise TargetExists(f"{target} already exists: `--force` re-renders it in place, keeping its git "
                               "history, state and every file you added or edited (or refuses)")
        if not (target / ANSWERS_FILE).is_file():
            raise TargetExists(f"{target} is not a Castelet deployment ({ANSWERS_FILE} is missing): "
                               "refusing to write into it")
    output_dir.mkdir(parents=True, exist_ok=True)
    from cookiecutter.main import cookiecutter  # imported here: the hook processes never need it

    from castelet.library import library_root

    with tempfile.TemporaryDirectory(prefix=".castelet-render-", dir=output_dir) as tmp:
        extra = {k: v if isinstance(v, bool) else str(v) for k, v in answers.items()}
        # The blueprint's hooks would validate again and assemble in two new Python processes
        # (most of a render's time); here both run in this process, on the answers validated
        # above. Plain `cookiecutter` still runs the hooks (castelet.hooks), to the same effect.
        rendered = Path(cookiecutter(str(bp.path), no_input=True, extra_context=extra, output_dir=tmp,
                                     default_config=True, accept_hooks=False))
        assemble(bp, validate(bp, extra), rendered, library_root(bp.path))
        if not target.exists():
            rendered.rename(target)
            return target
        plan = plan_merge(rendered, target)
        if plan.conflicts:
            raise RenderConflict(target, plan.conflicts)
        merge(rendered, target, plan, f"castelet new {bp.id} --force: re-render ({__version__})")
    return target
