"""Render a blueprint into a deployment repo.

Both entry points take one path: ``castelet new`` validates, then runs cookiecutter into a
temporary directory; the blueprint's cookiecutter hooks call :func:`pre_generate` (validation)
and :func:`assemble` (the shared skeleton, the modules and Puppet copies, generated hieradata).
The finished tree is moved into place only when everything succeeded.
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
from cookiecutter.main import cookiecutter

from castelet import __version__
from castelet.answers import split_keys, validate
from castelet.manifest import Blueprint, load

SKELETON = Path(__file__).with_name("skeleton")
ANSWERS_FILE = ".castelet-answers.yaml"
_IGNORED = shutil.ignore_patterns(
    "tests", ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "__pycache__", ".*.swp"
)


class TargetExists(FileExistsError):
    pass


def hcl(value: Any) -> str:
    """A Python value as an HCL literal (strings escaped against ${ } and %{ } templates)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))} = {hcl(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot express {type(value).__name__} in HCL")


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
    return {"roles": roles, "services": services, "volumes": volumes,
            "public_keys": split_keys(answers.get("admin_ssh_keys", ""))}


def firewall_rules(bp: Blueprint, role: str, admin_cidr: str) -> list[dict[str, Any]]:
    """Host firewall openings of one role. SSH from the admin CIDR is added by the Puppet profile
    itself (a lock-out guard); public services are opened to IPv4 and IPv6."""
    rules = []
    for s in bp.services:
        if s.role != role:
            continue
        sources = [("", "0.0.0.0/0"), ("-ipv6", "::/0")] if s.exposure == "public" else [("", admin_cidr)]
        for suffix, source in sources:
            rules.append({"name": s.name + suffix, "port": s.port, "protocol": s.protocol, "source": source})
    return rules


def hieradata(bp: Blueprint, answers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Generated hiera files, relative to the environment's data/ folder."""
    files: dict[str, dict[str, Any]] = {
        "deployment.yaml": {
            "castelet::deployment": answers["project_slug"],
            "castelet::domain": answers.get("domain", "example.org"),
            "castelet::admin_email": answers.get("admin_email", "root@localhost"),
            "castelet::profile::base::admin_users": {
                "castelet": {"ssh_keys": split_keys(answers.get("admin_ssh_keys", ""))}
            },
            "castelet::profile::base::admin_cidr": answers.get("admin_cidr", "0.0.0.0/0"),
            "castelet::profile::base::timezone": answers.get("timezone", "UTC"),
        }
    }
    for role in bp.roles:
        files[f"roles/{role.name}.yaml"] = {
            "castelet::role_class": role.puppet_class,
            "castelet::profile::firewall::rules": firewall_rules(bp, role.name, answers["admin_cidr"]),
        }
    return files


class _HieraDumper(yaml.SafeDumper):
    """Quotes strings that Ruby's YAML (Psych) would read as a Symbol, such as ``::/0``."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if value.startswith(":") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_HieraDumper.add_representer(str, _represent_str)


def hiera_yaml(data: Any) -> str:
    """YAML that both PyYAML and Ruby's Psych (hiera) read as the same plain data."""
    return yaml.dump(data, Dumper=_HieraDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _write_yaml(path: Path, data: Any, header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {header}\n{hiera_yaml(data)}", encoding="utf-8")


def _skeleton_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SKELETON)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False,
    )
    env.filters["hcl"] = hcl
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def assemble(bp: Blueprint, answers: dict[str, Any], project_dir: Path, library: Path) -> None:
    """Add everything the blueprint shares with others to a freshly rendered ``project_dir``."""
    project_dir = Path(project_dir)
    tests_module = project_dir / bp.tests
    if not tests_module.is_file():
        raise FileNotFoundError(f"blueprint {bp.id} declares {bp.tests} but its template has no such file")
    shutil.copytree(library / "terraform-modules", project_dir / "modules", ignore=_IGNORED)
    shutil.copytree(library / "puppet", project_dir / "puppet", ignore=_IGNORED, dirs_exist_ok=True)
    generated = f"generated by castelet {__version__} from the answers of blueprint {bp.id}; re-render to change"
    for relpath, data in hieradata(bp, answers).items():
        _write_yaml(project_dir / "puppet" / "data" / relpath, data, generated)

    derived = design(bp, answers)
    context = {"bp": bp, "a": answers, "version": __version__, **derived}
    env = _skeleton_env()
    for template in sorted(p for p in SKELETON.rglob("*") if p.is_file()):
        rel = template.relative_to(SKELETON).as_posix()
        target = project_dir / rel.removesuffix(".j2")
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".j2"):
            target.write_text(env.get_template(rel).render(**context), encoding="utf-8")
        else:
            shutil.copy2(template, target)
    here = Path(__file__).parent
    (project_dir / ".castelet").mkdir(exist_ok=True)
    shutil.copy2(here / "runtime.py", project_dir / ".castelet" / "runtime.py")
    shutil.copy2(here / "verify.py", project_dir / "tests" / "castelet_checks.py")
    manifest = {"id": bp.id, "version": bp.version, "roles": [asdict(r) for r in bp.roles],
                "services": [asdict(s) for s in bp.services],
                "volumes": derived["volumes"]}
    (project_dir / ".castelet" / "blueprint.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _write_yaml(project_dir / ANSWERS_FILE,
                {"blueprint": bp.id, "blueprint_version": bp.version, "castelet_version": __version__,
                 "answers": answers},
                "answers this deployment was rendered from (castelet new --answers accepts this file)")


def _holds_state(path: Path) -> bool:
    return any(path.glob("*.tfstate")) or (path / "terraform.tfstate.d").exists()


def new(blueprint_dir: Path, given: dict[str, Any], output_dir: Path, force: bool = False) -> Path:
    """Validate ``given``, render into a temp dir beside the target, then move it into place."""
    bp = load(blueprint_dir)
    answers = validate(bp, given)  # raises before anything is written
    output_dir = Path(output_dir).resolve()
    target = output_dir / str(answers["project_slug"])
    if target.exists():
        if not force:
            raise TargetExists(f"{target} already exists (use --force to replace it)")
        if _holds_state(target):
            raise TargetExists(f"{target} holds Terraform state: destroy the deployment or move its "
                               "state away before replacing it")
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".castelet-render-", dir=output_dir) as tmp:
        extra = {k: v if isinstance(v, bool) else str(v) for k, v in answers.items()}
        rendered = Path(cookiecutter(str(bp.path), no_input=True, extra_context=extra, output_dir=tmp))
        if target.exists():
            backup = Path(tmp) / "previous"
            target.rename(backup)
        rendered.rename(target)
    return target
