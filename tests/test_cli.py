"""The command line as a user meets it: exit codes, messages, nothing half-written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT, castelet

BAD = {
    "domain": "domain: not_a_domain",
    "admin_email": "admin_email: nobody",
    "admin_cidr": "admin_cidr: 10.0.0.1/8",
}


@pytest.mark.parametrize("field", sorted(BAD))
def test_new_with_bad_answers_exits_2_names_the_field_and_writes_nothing(tmp_path, field):
    answers = tmp_path / "bad.yaml"
    answers.write_text(BAD[field] + "\n")
    out = tmp_path / "out"
    proc = castelet("new", "omeka-s", "--no-input", "--answers", str(answers), "-o", str(out))
    assert proc.returncode == 2
    assert re.search(rf"^error {field}: ", proc.stderr, re.MULTILINE), proc.stderr
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("field", sorted(BAD))
def test_plain_cookiecutter_with_bad_context_leaves_no_directory(tmp_path, field):
    key, value = BAD[field].split(": ")
    proc = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(REPO_ROOT / "blueprints" / "omeka-s"), "--no-input",
         "-o", str(tmp_path), f"{key}={value}"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert f"{key}: " in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_plain_cookiecutter_renders_the_same_repo(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(REPO_ROOT / "blueprints" / "lamp"), "--no-input",
         "-o", str(tmp_path), "cloud=lxd"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    via_castelet = tmp_path / "via-castelet"
    assert castelet("new", "lamp", "--no-input", "--answers", "/dev/stdin", "-o", str(via_castelet),
                    stdin="cloud: lxd\n").returncode == 0

    def contents(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and ".git" not in p.relative_to(root).parts}

    assert contents(tmp_path / "lamp") == contents(via_castelet / "lamp")


def test_new_refuses_an_existing_directory(tmp_path):
    assert castelet("new", "lamp", "--no-input", "--answers", "/dev/stdin", "-o", str(tmp_path),
                    stdin="cloud: lxd\n").returncode == 0
    proc = castelet("new", "lamp", "--no-input", "--answers", "/dev/stdin", "-o", str(tmp_path), stdin="cloud: lxd\n")
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_answers_file_from_an_earlier_render_is_accepted(tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text("project_slug: atlas\ndomain: atlas.mylab.ca\ncloud: lxd\n")
    assert castelet("new", "lamp", "--no-input", "--answers", str(answers), "-o", str(tmp_path)).returncode == 0
    again = castelet("new", "lamp", "--no-input", "--answers", str(tmp_path / "atlas" / ".castelet-answers.yaml"),
                     "-o", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert 'name                   = "atlas"' in (tmp_path / "again" / "atlas" / "terraform.tfvars").read_text()


def test_global_options_go_before_or_after_the_sub_command():
    before = castelet("--lang", "fr", "show", "lamp")
    after = castelet("show", "lamp", "--lang", "fr")
    assert before.returncode == after.returncode == 0
    assert "Serveur d'applications LAMP" in after.stdout and before.stdout == after.stdout


def test_unknown_blueprint_lists_the_known_ones():
    proc = castelet("new", "wordpres", "--no-input")
    assert proc.returncode == 2 and "omeka-s" in proc.stderr


def test_new_without_a_terminal_asks_for_no_input(tmp_path):
    proc = castelet("new", "lamp", "-o", str(tmp_path), stdin="")
    assert proc.returncode == 2 and "--no-input" in proc.stderr


def test_list_show_validate():
    listing = castelet("list")
    assert listing.returncode == 0 and "omeka-s" in listing.stdout and "lamp" in listing.stdout
    shown = castelet("--lang", "fr", "show", "omeka-s")
    assert shown.returncode == 0 and "Portail de publication Omeka S" in shown.stdout
    assert castelet("validate").returncode == 0


def test_readme_catalogue_is_current():
    table = castelet("list", "--markdown").stdout
    readme = (REPO_ROOT / "README.md").read_text()
    assert table in readme, "README catalogue is stale: paste `castelet list --markdown`"


def test_doctor_finds_terraform():
    """Terraform or OpenTofu, whichever was found, with its version (1.x for both)."""
    proc = castelet("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"(Terraform|OpenTofu) v1\.\d+\.\d+", proc.stdout), proc.stdout
    assert "library" in proc.stdout and str(REPO_ROOT) in proc.stdout
