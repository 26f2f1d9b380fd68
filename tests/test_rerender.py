"""A rendered deployment is a git repository, and re-rendering it never loses what the user made."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from castelet.render import new
from castelet.rerender import RenderConflict
from helpers import REPO_ROOT, castelet

LAMP = REPO_ROOT / "blueprints" / "lamp"
ANSWERS = {"cloud": "lxd", "project_slug": "keep"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_a_render_is_a_git_repository_with_state_ignored(tmp_path: Path) -> None:
    deployment = new(LAMP, ANSWERS, tmp_path)
    assert _git(deployment, "status", "--porcelain") == ""
    assert len(_git(deployment, "log", "--oneline").splitlines()) == 1
    (deployment / "terraform.tfstate").write_text("{}")
    (deployment / "terraform.tfstate.backup").write_text("{}")
    (deployment / "tfplan").write_text("plan")
    assert _git(deployment, "status", "--porcelain") == ""


def _customise(deployment: Path) -> dict[str, str]:
    """What a user does to a deployment: history, a backend, state, an extra file, an edited value."""
    (deployment / "backend.tf").write_text('terraform {\n  backend "http" {}\n}\n')
    (deployment / ".terraform").mkdir()
    (deployment / ".terraform" / "terraform.tfstate").write_text('{"backend": "http"}')
    (deployment / "terraform.tfstate").write_text('{"serial": 7}')
    (deployment / "notes.md").write_text("our runbook\n")
    site = deployment / "puppet" / "data" / "blueprint.yaml"
    site.write_text(site.read_text() + "castelet::profile::lamp_app::db_name: survey\n")
    _git(deployment, "add", "backend.tf", "notes.md", "puppet/data/blueprint.yaml")
    _git(deployment, "commit", "-q", "-m", "our changes")
    return {rel: (deployment / rel).read_text() for rel in
            ("backend.tf", ".terraform/terraform.tfstate", "terraform.tfstate", "notes.md",
             "puppet/data/blueprint.yaml")}


def test_force_keeps_history_backend_state_extra_files_and_edits(tmp_path: Path) -> None:
    deployment = new(LAMP, ANSWERS, tmp_path)
    kept = _customise(deployment)
    log_before = _git(deployment, "log", "--oneline")
    # A changed answer re-renders the files castelet owns; the user's edits are not touched.
    again = new(LAMP, {**ANSWERS, "timezone": "Europe/Paris"}, tmp_path, force=True)
    assert again == deployment
    for rel, text in kept.items():
        assert (deployment / rel).read_text() == text, rel
    assert 'timezone               = "Europe/Paris"' in (deployment / "terraform.tfvars").read_text()
    log_after = _git(deployment, "log", "--oneline")
    assert log_after.endswith(log_before) and len(log_after.splitlines()) == len(log_before.splitlines()) + 1
    assert _git(deployment, "status", "--porcelain", "--", "terraform.tfvars") == ""


def test_force_refuses_and_writes_nothing_when_an_edit_would_be_lost(tmp_path: Path) -> None:
    deployment = new(LAMP, ANSWERS, tmp_path)
    kept = _customise(deployment)
    tfvars = deployment / "terraform.tfvars"
    tfvars.write_text(tfvars.read_text().replace('"192.0.2.0/24"', '"198.51.100.0/24"'))
    before = {p: p.read_bytes() for p in deployment.rglob("*") if p.is_file()}
    with pytest.raises(RenderConflict) as refused:
        new(LAMP, {**ANSWERS, "timezone": "Europe/Paris"}, tmp_path, force=True)
    assert "terraform.tfvars" in str(refused.value)
    after = {p: p.read_bytes() for p in deployment.rglob("*") if p.is_file()}
    assert after == before
    assert kept["notes.md"] == (deployment / "notes.md").read_text()


def test_without_force_an_existing_folder_is_refused(tmp_path: Path) -> None:
    new(LAMP, ANSWERS, tmp_path)
    result = castelet("new", "lamp", "--no-input", "--answers", "/dev/stdin", "-o", str(tmp_path),
                      stdin="cloud: lxd\nproject_slug: keep\n")
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--force" in result.stderr


def test_force_refuses_a_folder_that_is_not_a_deployment(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "thesis.tex").write_text("years of work")
    result = castelet("new", "lamp", "--no-input", "--force", "--answers", "/dev/stdin", "-o", str(tmp_path),
                      stdin="cloud: lxd\nproject_slug: keep\n")
    assert result.returncode == 2 and "not a Castelet deployment" in result.stderr
    assert (tmp_path / "keep" / "thesis.tex").read_text() == "years of work"


def test_plain_cookiecutter_refuses_to_overwrite_a_deployment(tmp_path: Path) -> None:
    deployment = new(LAMP, ANSWERS, tmp_path)
    kept = _customise(deployment)
    import sys
    proc = subprocess.run([sys.executable, "-m", "cookiecutter", str(LAMP), "--no-input", "-f", "-o", str(tmp_path),
                           "cloud=lxd", "project_slug=keep"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "castelet new" in proc.stderr + proc.stdout
    for rel, text in kept.items():
        assert (deployment / rel).read_text() == text


# --- castelet pin ----------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    body = b"PK\x03\x04 a release archive " * 1000

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/omeka-s-9.9.9.zip"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", body
    finally:
        server.shutdown()


def test_pin_downloads_shows_and_records_the_checksum(tmp_path: Path, served: tuple[str, bytes]) -> None:
    import hashlib

    base, body = served
    deployment = new(REPO_ROOT / "blueprints" / "omeka-s", {"cloud": "lxd"}, tmp_path)
    result = castelet("pin", str(deployment), "--url", f"{base}/omeka-s-9.9.9.zip", "--release-version", "9.9.9")
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(body).hexdigest()
    assert digest in result.stdout and "releases/tag/v4.1.1" in result.stdout  # where to compare it
    lines = {" ".join(line.split()) for line in (deployment / "terraform.tfvars").read_text().splitlines()}
    assert f'release_sha256 = "{digest}"' in lines  # (alignment is terraform fmt's)
    assert f'release_url = "{base}/omeka-s-9.9.9.zip"' in lines and 'release_version = "9.9.9"' in lines


def test_pin_offline_says_what_to_do_and_changes_nothing(tmp_path: Path, served: tuple[str, bytes]) -> None:
    base, _ = served
    deployment = new(REPO_ROOT / "blueprints" / "omeka-s", {"cloud": "lxd"}, tmp_path)
    before = (deployment / "terraform.tfvars").read_text()
    result = castelet("pin", str(deployment), "--url", f"{base}/missing.zip")
    assert result.returncode == 1
    assert result.stderr.startswith("error cannot download") and "--file" in result.stderr
    assert "[red]" not in result.stderr
    assert (deployment / "terraform.tfvars").read_text() == before
