"""Blueprint manifests (``blueprints/<id>/blueprint.yaml``): loading and schema validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

MANIFEST_NAME = "blueprint.yaml"
# Questions the shared skeleton (terraform.tfvars, variables, README) needs from every blueprint.
REQUIRED_QUESTIONS = frozenset({"project_slug", "project_name", "domain", "admin_email", "admin_cidr",
                                "admin_ssh_keys", "cloud", "debian_release", "image", "existing_network",
                                "external_network", "timezone"})


class ManifestError(ValueError):
    """A manifest is unreadable or does not follow the schema; one problem per line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Question:
    name: str
    type: str
    default: Any
    help: dict[str, str]
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    optional: bool = False
    placeholder: bool = False
    before_apply: dict[str, str] | None = None


@dataclass(frozen=True)
class Role:
    name: str
    puppet_role: str
    count: int
    public: bool
    min_vcpus: int
    min_ram_mb: int
    min_disk_gb: int
    flavor_question: str = "flavor"

    @property
    def puppet_class(self) -> str:
        return f"castelet::role::{self.puppet_role}"


@dataclass(frozen=True)
class Health:
    path: str
    status: int
    text: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    role: str
    port: int
    protocol: str
    exposure: str
    systemd_unit: str | None = None
    health: Health | None = None
    tls: bool = False  # HTTPS with the node's certificate (castelet::profile::tls); checks use https


@dataclass(frozen=True)
class Volume:
    name: str
    role: str
    mount: str
    size_gb: int | str  # an integer, or "question:<name>" resolved from the answers

    def size_for(self, answers: dict[str, Any]) -> int:
        if isinstance(self.size_gb, int):
            return self.size_gb
        return int(answers[self.size_gb.removeprefix("question:")])


@dataclass(frozen=True)
class Blueprint:
    id: str
    version: str
    title: dict[str, str]
    description: dict[str, str]
    category: str
    maturity: str
    roles: tuple[Role, ...]
    services: tuple[Service, ...]
    questions: tuple[Question, ...]
    tests: str
    path: Path
    volumes: tuple[Volume, ...] = ()
    secrets: tuple[dict[str, str], ...] = ()
    backups: dict[str, Any] = field(default_factory=dict)
    upstream: dict[str, str] = field(default_factory=dict)
    release: dict[str, str] = field(default_factory=dict)

    @property
    def question_names(self) -> list[str]:
        return [q.name for q in self.questions]

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {q.name: q.default for q in self.questions}


@cache
def schema() -> dict[str, Any]:
    text = resources.files("castelet").joinpath("schema/blueprint.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def shared_questions() -> dict[str, dict[str, Any]]:
    """The question library that manifests reference with ``use:``."""
    text = resources.files("castelet").joinpath("questions.yaml").read_text("utf-8")
    data: dict[str, dict[str, Any]] = yaml.safe_load(text)
    return {name: {"name": name, **body} for name, body in data.items()}


def _schema_problems(data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"{where}: {error.message}")
    return problems


def _question(raw: dict[str, Any]) -> Question:
    return Question(
        name=raw["name"], type=raw["type"], default=raw["default"], help=dict(raw["help"]),
        pattern=raw.get("pattern"), choices=tuple(raw.get("choices", ())),
        minimum=raw.get("minimum"), maximum=raw.get("maximum"),
        min_length=raw.get("min_length"), max_length=raw.get("max_length"),
        optional=bool(raw.get("optional", False)),
        placeholder=bool(raw.get("placeholder", False)),
        before_apply=dict(raw["before_apply"]) if "before_apply" in raw else None,
    )


def _resolve_questions(raw_questions: list[dict[str, Any]], problems: list[str]) -> list[Question]:
    library = shared_questions()
    questions: list[Question] = []
    for index, raw in enumerate(raw_questions):
        if "use" in raw:
            base = library.get(raw["use"])
            if base is None:
                problems.append(f"questions/{index}: unknown shared question {raw['use']!r} "
                                f"(known: {', '.join(sorted(library))})")
                continue
            raw = {**base, **({"default": raw["default"]} if "default" in raw else {})}
        questions.append(_question(raw))
    names = [q.name for q in questions]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"questions: {name!r} is declared more than once")
    return questions


def _cross_check(data: dict[str, Any], questions: list[Question], problems: list[str]) -> None:
    role_names = [r["name"] for r in data["roles"]]
    question_names = {q.name for q in questions}
    for name in sorted(REQUIRED_QUESTIONS - question_names):
        problems.append(f"questions: every blueprint must ask `{name}` (the shared deployment templates use it;"
                        f" add `- use: {name}`)")
    if data.get("release") and "release_sha256" not in question_names:
        problems.append("questions: a blueprint with a `release` must ask `release_sha256` (castelet pin records it)")
    for kind in ("services", "volumes"):
        for index, item in enumerate(data.get(kind, [])):
            if item["role"] not in role_names:
                problems.append(f"{kind}/{index}: role {item['role']!r} is not one of the roles "
                                f"({', '.join(role_names)})")
    seen: set[tuple[str, str]] = set()
    for index, service in enumerate(data.get("services", [])):
        key = (service["role"], service["name"])
        if key in seen:
            problems.append(f"services/{index}: {service['name']!r} is declared twice for role {service['role']!r}")
        seen.add(key)
    if any(service.get("tls") for service in data.get("services", [])):
        for name in ("acme_server", "acme_ca_certificate"):
            if name not in question_names:
                problems.append(f"questions: a blueprint with a `tls: true` service must ask `{name}` "
                                f"(castelet::profile::tls reads it; add `- use: {name}`)")
    if any(service["exposure"] == "clients" for service in data.get("services", [])) \
            and "client_cidrs" not in question_names:
        problems.append("questions: a blueprint with an `exposure: clients` service must ask `client_cidrs` "
                        "(the networks that service is opened to; add `- use: client_cidrs`)")
    for name in ("backup_repository", "backup_append_only"):
        if data.get("backups") and name not in question_names:
            problems.append(f"questions: a blueprint with `backups:` must ask `{name}` "
                            f"(castelet::profile::backup reads it; add `- use: {name}`)")
    for index, service in enumerate(data.get("services", [])):
        if service.get("tls") and not any(
                other["role"] == service["role"] and other["port"] == 80 and other["protocol"] == "tcp"
                and other["exposure"] == service["exposure"] for other in data.get("services", [])):
            problems.append(f"services/{index}: {service['name']!r} has `tls: true`, so role {service['role']!r} "
                            f"must also declare tcp port 80 with the same exposure (ACME HTTP-01 and the redirect)")
    for index, vol in enumerate(data.get("volumes", [])):
        size = vol["size_gb"]
        if isinstance(size, str) and size.removeprefix("question:") not in question_names:
            problems.append(f"volumes/{index}: size_gb refers to unknown question {size!r}")
    for index, role in enumerate(data["roles"]):
        flavor_q = role.get("flavor_question", "flavor")
        if flavor_q not in question_names:
            problems.append(f"roles/{index}: flavor question {flavor_q!r} is not asked")


def load(blueprint_dir: Path) -> Blueprint:
    """Load and validate ``blueprint_dir/blueprint.yaml``; raise ManifestError listing every problem."""
    path = Path(blueprint_dir) / MANIFEST_NAME
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ManifestError(path, ["no blueprint.yaml here"]) from None
    except yaml.YAMLError as exc:
        raise ManifestError(path, [f"not valid YAML: {exc}"]) from None
    problems = _schema_problems(data)
    if problems:
        raise ManifestError(path, problems)
    questions = _resolve_questions(data["questions"], problems)
    _cross_check(data, questions, problems)
    if data["id"] != path.parent.name:
        problems.append(f"id: {data['id']!r} must equal the folder name {path.parent.name!r}")
    if problems:
        raise ManifestError(path, problems)
    return Blueprint(
        id=data["id"], version=data["version"], title=data["title"], description=data["description"],
        category=data["category"], maturity=data["maturity"],
        roles=tuple(
            Role(name=r["name"], puppet_role=r["puppet_role"], count=r["count"], public=r["public"],
                 min_vcpus=r["min"]["vcpus"], min_ram_mb=r["min"]["ram_mb"],
                 min_disk_gb=r["min"]["disk_gb"], flavor_question=r.get("flavor_question", "flavor"))
            for r in data["roles"]
        ),
        services=tuple(
            Service(name=s["name"], role=s["role"], port=s["port"], protocol=s["protocol"],
                    exposure=s["exposure"], systemd_unit=s.get("systemd_unit"),
                    health=Health(**s["health"]) if "health" in s else None, tls=bool(s.get("tls", False)))
            for s in data["services"]
        ),
        volumes=tuple(Volume(**v) for v in data.get("volumes", [])),
        questions=tuple(questions), tests=data["tests"], path=path.parent,
        secrets=tuple(data.get("secrets", [])), backups=data.get("backups", {}),
        upstream=data.get("upstream", {}), release=data.get("release", {}),
    )
