"""Blueprints applied to a real LXD cloud, verified, proven idempotent, and destroyed."""

from __future__ import annotations

import hashlib
import html
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from castelet.library import load_all
from castelet.lifecycle import leftovers, lifecycle, terraform_environment
from castelet.local.cloud import lxc
from castelet.pin import pin, write_setting
from castelet.render import new
from castelet.terraform import Terraform, TerraformError
from omeka_standin import LoginError, fetch, install_form_offered, login, standin_archive

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
VERIFIED = [bp for bp in load_all(REPO_ROOT)[0] if bp.maturity == "verified"]
# Verified blueprints that install an upstream release, and the test that runs them on a stand-in.
RELEASE_STANDIN_TESTS = {"omeka-s": "test_omeka_s_installs_itself_and_refuses_a_wrong_checksum_on_day_2"}
TIMINGS = REPO_ROOT / ".nox" / "e2e-timings.json"


def _render(blueprint: str, slug: str, key: str, out: Path, **answers: str) -> Path:
    return new(REPO_ROOT / "blueprints" / blueprint, {"project_slug": slug, "cloud": "lxd", "admin_ssh_keys": key,
                                                      **answers}, out)


def _record(name: str, timings: dict[str, float]) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[name] = timings
    TIMINGS.write_text(json.dumps(data, indent=2))


def _created(container: str) -> str:
    return str(json.loads(lxc("list", container, "--format=json").stdout)[0]["created_at"])


def test_every_verified_blueprint_has_a_lifecycle_here():
    """Blueprints are discovered from their manifests; one that installs an upstream release needs
    a stand-in of that release (the real archive is not downloaded in CI) and its own test."""
    missing = [bp.id for bp in VERIFIED if bp.release and bp.id not in RELEASE_STANDIN_TESTS]
    assert missing == [], f"verified blueprints with a release but no stand-in test: {missing}"
    assert all(name in globals() for name in RELEASE_STANDIN_TESTS.values())
    assert VERIFIED, "no verified blueprint found"


@pytest.mark.parametrize("blueprint", [bp for bp in VERIFIED if not bp.release], ids=lambda bp: bp.id)
def test_lifecycle_and_settings_edited_in_tfvars_reach_the_instance(local_cloud, admin_key, tmp_path, blueprint):
    slug = f"e2e-{blueprint.id}"[:24].rstrip("-")
    container = f"{slug}-{blueprint.roles[0].name}1"
    deployment = _render(blueprint.id, slug, admin_key, tmp_path)
    tf = Terraform(deployment, env=_lxd_env())
    try:
        report = lifecycle(deployment, print, keep=True)
        _record(blueprint.id, report.timings)
        assert report.ok, f"{report.failed_phase}: {report.error}"
        assert list(report.timings) == ["init", "plan", "apply", "verify", "idempotence", "second plan"]

        # terraform.tfvars is the one source of the settings: edit the admin network and the keys,
        # apply, and nftables and authorized_keys follow without replacing the instance.
        created = _created(container)
        second_key = admin_key.rsplit(" ", 1)[0] + " second-admin"
        tfvars = deployment / "terraform.tfvars"
        text = tfvars.read_text().replace('"192.0.2.0/24"', '"198.51.100.0/24"')
        text = text.replace("public_keys = [\n", f"public_keys = [\n  {json.dumps(second_key)},\n", 1)
        tfvars.write_text(text)
        tf.apply()
        assert _created(container) == created, "the instance was replaced for a settings change"
        nftables = lxc("exec", container, "--", "nft", "list", "table", "inet", "castelet").stdout
        assert "ip saddr 198.51.100.0/24 tcp dport 22 accept" in nftables
        assert "192.0.2.0/24" not in nftables
        keys = lxc("exec", container, "--", "cat", "/home/castelet/.ssh/authorized_keys").stdout
        assert second_key in keys and admin_key in keys
    finally:
        tf.destroy()
    assert leftovers("lxd", slug) == []


def test_lamp_on_debian_12(local_cloud, admin_key, tmp_path):
    """Debian 12 stays supported: the same blueprint, Puppet 7 and bookworm's modules."""
    deployment = _render("lamp", "e2e-lamp12", admin_key, tmp_path, debian_release="12")
    report = lifecycle(deployment, print)
    _record("lamp (Debian 12)", report.timings)
    assert report.ok, f"{report.failed_phase}: {report.error}"
    assert leftovers("lxd", "e2e-lamp12") == []


def test_broken_profile_fails_apply_naming_the_resource_and_still_cleans_up(local_cloud, admin_key, tmp_path):
    deployment = _render("lamp", "e2e-broken", admin_key, tmp_path)
    role = deployment / "puppet/modules/castelet/manifests/role/lamp.pp"
    text = role.read_text().rstrip()
    assert text.endswith("}")
    role.write_text(text[:-1] + "  exec { 'castelet-deliberately-broken': command => '/bin/false' }\n}\n")
    report = lifecycle(deployment, print)
    assert report.failed_phase == "apply"
    assert "castelet-deliberately-broken" in report.error, report.error
    assert "destroy" in report.timings
    assert leftovers("lxd", "e2e-broken") == []


@pytest.fixture
def archive_server(bridge_address: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serves {path: bytes} to the instances on the bridge address; stops after the test."""
    served: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((bridge_address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{bridge_address}:{server.server_address[1]}", served
    finally:
        server.shutdown()


def _secrets(deployment: Path) -> dict[str, str]:
    """`nox -s secrets` of the deployment, as an administrator runs it."""
    nox = Path(sys.executable).parent / "nox"
    proc = subprocess.run([str(nox), "-s", "secrets"], cwd=deployment, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = {}
    for line in proc.stdout.splitlines():
        if ": " in line and not line.startswith("#"):
            name, value = line.split(": ", 1)
            found[name] = value.split("   #", 1)[0].strip()
    return found


def test_omeka_s_installs_itself_and_refuses_a_wrong_checksum_on_day_2(
        local_cloud, admin_key, tmp_path, archive_server):
    base_url, served = archive_server
    served["/omeka-s-1.0.0-test.zip"] = standin_archive("1.0.0-test")
    title = "Atlas des chartes & <actes>"
    deployment = _render("omeka-s", "e2e-omeka", admin_key, tmp_path, project_name=title)
    pinned = pin(deployment, print, url=f"{base_url}/omeka-s-1.0.0-test.zip", version="1.0.0-test")
    assert pinned.sha256 == hashlib.sha256(served["/omeka-s-1.0.0-test.zip"]).hexdigest()
    tf = Terraform(deployment, env=_lxd_env())
    try:
        report = lifecycle(deployment, print, keep=True)
        _record("omeka-s", report.timings)
        assert report.ok, f"{report.failed_phase}: {report.error}"

        # Nobody can claim the site: it installed itself, /install offers nothing, and the
        # administrator logs in over HTTP with the password generated on the instance.
        site = f"http://{tf.outputs()['instances']['e2e-omeka-web1']['private_address']}"
        answer = fetch(site, "example.org", "/install")
        assert (answer.status, answer.location) == (302, "/admin")
        assert not install_form_offered(fetch(site, "example.org", "/install", follow=True).body)
        password = _secrets(deployment)["omeka-admin"]
        assert len(password) >= 32
        dashboard = login(site, "example.org", "admin@example.org", password)
        assert "Admin dashboard" in dashboard
        front = fetch(site, "example.org", "/", follow=True).body
        assert html.escape(title, quote=False) in front
        with pytest.raises(LoginError):
            login(site, "example.org", "admin@example.org", password[::-1])

        # Day 2: a new release whose checksum does not match must fail cleanly...
        served["/omeka-s-2.0.0-test.zip"] = standin_archive("2.0.0-test")
        tfvars = deployment / "terraform.tfvars"
        text = tfvars.read_text()
        for name, value in (("release_url", f"{base_url}/omeka-s-2.0.0-test.zip"), ("release_version", "2.0.0-test"),
                            ("release_sha256", "0" * 64)):
            text = write_setting(text, name, value)
        tfvars.write_text(text)
        with pytest.raises(TerraformError) as failed:
            tf.apply()
        assert "checksum" in str(failed.value).lower(), str(failed.value)[-3000:]
        # ...and leave the running release untouched.
        link = lxc("exec", "e2e-omeka-web1", "--", "readlink", "/var/www/omeka-s").stdout.strip()
        assert link == "/var/www/omeka-s-1.0.0-test/omeka-s"
        page = lxc("exec", "e2e-omeka-web1", "--", "curl", "-s", "http://127.0.0.1/login").stdout
        assert "castelet test archive 1.0.0-test" in page
    finally:
        tf.destroy()
    assert leftovers("lxd", "e2e-omeka") == []


def _lxd_env() -> dict[str, str]:
    return terraform_environment("lxd")


@pytest.mark.online
@pytest.mark.skipif(not os.environ.get("CASTELET_OMEKA_SHA256"),
                    reason="needs internet to download the pinned Omeka S release: set CASTELET_OMEKA_SHA256 "
                           "(sha256 of that archive) where the internet is reachable")
def test_real_omeka_s_release_passes_its_health_check(local_cloud, admin_key, tmp_path):
    deployment = _render("omeka-s", "e2e-omeka-real", admin_key, tmp_path,
                         release_sha256=os.environ["CASTELET_OMEKA_SHA256"])
    tf = Terraform(deployment, env=_lxd_env())
    try:
        report = lifecycle(deployment, print, keep=True)
        assert report.ok, f"{report.failed_phase}: {report.error}"
        site = f"http://{tf.outputs()['instances']['e2e-omeka-real-web1']['private_address']}"
        assert not install_form_offered(fetch(site, "example.org", "/install", follow=True).body)
        assert "Admin dashboard" in login(site, "example.org", "admin@example.org", _secrets(deployment)["omeka-admin"])
    finally:
        tf.destroy()
