"""Blueprint manifests: the schema, the shared questions and the template cross-checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from castelet.manifest import ManifestError, load
from castelet.validate import cookiecutter_json, problems
from helpers import BLUEPRINTS, REPO_ROOT


def test_the_library_has_the_first_blueprints():
    assert {"lamp", "omeka-s"} <= set(BLUEPRINTS)


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_every_blueprint_is_consistent(name):
    assert problems(REPO_ROOT / "blueprints" / name, REPO_ROOT) == []


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_manifest_declares_what_a_deployment_needs(name):
    bp = load(REPO_ROOT / "blueprints" / name)
    assert bp.title.keys() == {"en", "fr"} and bp.description.keys() == {"en", "fr"}
    assert all(q.help["en"] and q.help["fr"] for q in bp.questions)
    assert bp.roles and all(r.min_vcpus >= 1 for r in bp.roles)
    # a sandbox serves nothing of its own (its tests check its packages and ports instead); a
    # database server serves no page (its own testinfra checks log in with the generated credentials)
    assert bp.category in ("sandbox", "database") or any(s.health for s in bp.services), \
        "a blueprint needs at least one health check"
    assert bp.maturity in {"draft", "rendered", "planned", "verified"}


@pytest.fixture
def blueprint_copy(tmp_path: Path) -> Path:
    """A writable copy of the lamp blueprint inside a copy of the library layout."""
    library = tmp_path / "lib"
    shutil.copytree(REPO_ROOT / "blueprints" / "lamp", library / "blueprints" / "lamp")
    (library / "terraform-modules").mkdir()
    shutil.copytree(REPO_ROOT / "puppet" / "modules" / "castelet" / "manifests" / "role",
                    library / "puppet" / "modules" / "castelet" / "manifests" / "role")
    return library / "blueprints" / "lamp"


def _edit_manifest(path: Path, change) -> None:
    manifest = path / "blueprint.yaml"
    data = yaml.safe_load(manifest.read_text())
    change(data)
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("roles"), "'roles' is a required property"),
        (lambda d: d["services"][0].update(role="db"), "services/0: role 'db' is not one of the roles"),
        (lambda d: d["services"][0].update(port=70000), "services/0/port"),
        (lambda d: d.update(maturity="done"), "maturity"),
        (lambda d: d["questions"].append({"use": "domain"}), "'domain' is declared more than once"),
        (lambda d: d["questions"].append({"use": "colour"}), "unknown shared question 'colour'"),
        (lambda d: d["title"].pop("fr"), "'fr' is a required property"),
        (lambda d: d["volumes"][0].update(size_gb="question:nope"), "unknown question 'question:nope'"),
        (lambda d: d.update(id="other"), "must equal the folder name"),
    ],
)
def test_bad_manifests_are_rejected_with_the_place_named(blueprint_copy, change, expected):
    _edit_manifest(blueprint_copy, change)
    with pytest.raises(ManifestError) as caught:
        load(blueprint_copy)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_cookiecutter_json_must_match_the_questions(blueprint_copy):
    library = blueprint_copy.parents[1]
    assert problems(blueprint_copy, library) == []
    cc_path = blueprint_copy / "cookiecutter.json"
    cc = json.loads(cc_path.read_text())
    cc["colour"] = "blue"
    del cc["domain"]
    cc["image"] = "Ubuntu"
    cc_path.write_text(json.dumps(cc))
    found = problems(blueprint_copy, library)
    assert any(p.startswith("cookiecutter.json: not generated from the manifest") for p in found), found
    # `castelet validate --fix` regenerates it, prompts and the literal-answers extension included
    from castelet.validate import write_cookiecutter_json

    write_cookiecutter_json(blueprint_copy)
    assert problems(blueprint_copy, library) == []
    regenerated = json.loads(cc_path.read_text())
    assert regenerated["_extensions"] == ["castelet.literal.LiteralAnswers"]
    assert regenerated["__prompts__"]["domain"].startswith("Fully qualified domain name")


def test_every_role_needs_its_puppet_class(blueprint_copy):
    _edit_manifest(blueprint_copy, lambda d: d["roles"][0].update(puppet_role="no_such_role"))
    found = problems(blueprint_copy, blueprint_copy.parents[1])
    assert any("castelet::role::no_such_role" in p for p in found), found


def test_declared_test_module_must_exist(blueprint_copy):
    (blueprint_copy / "{{cookiecutter.project_slug}}" / "tests" / "test_lamp.py").unlink()
    assert "tests: tests/test_lamp.py is not in the template" in problems(blueprint_copy, blueprint_copy.parents[1])


def test_cookiecutter_json_is_derived_from_the_manifest():
    bp = load(REPO_ROOT / "blueprints" / "omeka-s")
    derived = cookiecutter_json(bp)
    assert derived["cloud"] == ["openstack", "lxd"]
    assert derived["__prompts__"]["domain"].startswith("Fully qualified")


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_verified_blueprints_have_an_end_to_end_test(name):
    bp = load(REPO_ROOT / "blueprints" / name)
    if bp.maturity != "verified":
        return
    e2e = (REPO_ROOT / "tests" / "e2e" / "test_lifecycle.py").read_text()
    own = [p for p in (REPO_ROOT / "tests" / "e2e").glob("test_*.py") if f'BLUEPRINT = "{name}"' in p.read_text()]
    if bp.release:  # its release needs a stand-in, hence a test of its own
        assert f'_render("{name}"' in e2e or own, f"{name} is `verified` but no e2e test applies it"
        return
    # Otherwise the generic lifecycle (or, with backups, the data tests) finds it from its manifest;
    # what blocks its default render on the local cloud must be answered by its own e2e checks.
    from castelet.answers import validate
    from castelet.blockers import before_apply

    blocked = before_apply(bp, validate(bp, {"cloud": "lxd"}))
    checks = REPO_ROOT / "tests" / "e2e" / f"checks_{name.replace('-', '_')}.py"
    if blocked:
        assert checks.is_file() and "def answers(" in checks.read_text(), \
            f"{name}: its default render is blocked ({[b.question for b in blocked]}) and no e2e answers() gives them"


@pytest.mark.parametrize("question", ["admin_cidr", "timezone", "debian_release", "project_name"])
def test_a_manifest_without_a_question_the_shared_templates_need_is_refused(blueprint_copy, question):
    from castelet.manifest import REQUIRED_QUESTIONS

    assert question in REQUIRED_QUESTIONS
    _edit_manifest(blueprint_copy,
                   lambda d: d.update(questions=[q for q in d["questions"] if q.get("use") != question]))
    found = problems(blueprint_copy, blueprint_copy.parents[1])
    assert any(f"must ask `{question}`" in p for p in found), found


def test_a_blueprint_with_backups_must_ask_both_backup_questions(blueprint_copy):
    """castelet::profile::backup reads backup_repository and backup_append_only (issue 21 point 3):
    a blueprint with `backups:` that does not ask one of them is refused, naming it."""
    _edit_manifest(blueprint_copy,
                   lambda d: d.update(questions=[q for q in d["questions"] if q.get("use") != "backup_append_only"]))
    found = problems(blueprint_copy, blueprint_copy.parents[1])
    assert any("`backups:` must ask `backup_append_only`" in p and "- use: backup_append_only" in p
               for p in found), found


CLIENTS_SERVICE = {"name": "pg", "role": "web", "port": 5432, "protocol": "tcp", "exposure": "clients"}


def test_a_clients_service_needs_the_client_networks_question(blueprint_copy):
    _edit_manifest(blueprint_copy, lambda d: d["services"].append(dict(CLIENTS_SERVICE)))
    with pytest.raises(ManifestError) as caught:
        load(blueprint_copy)
    assert any("`exposure: clients` service must ask `client_cidrs`" in p and "- use: client_cidrs" in p
               for p in caught.value.problems), caught.value.problems
    _edit_manifest(blueprint_copy, lambda d: d["questions"].append({"use": "client_cidrs"}))
    bp = load(blueprint_copy)
    assert [s.exposure for s in bp.services] == ["public", "public", "clients"]
    assert bp.question("client_cidrs").type == "cidrs" and bp.question("client_cidrs").optional


def test_an_unknown_exposure_is_refused_by_the_schema(blueprint_copy):
    _edit_manifest(blueprint_copy, lambda d: d["services"][0].update(exposure="everyone"))
    with pytest.raises(ManifestError) as caught:
        load(blueprint_copy)
    assert any(p.startswith("services/0/exposure") and "'clients'" in p for p in caught.value.problems), \
        caught.value.problems
