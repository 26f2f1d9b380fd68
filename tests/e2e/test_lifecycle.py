"""Blueprints applied to a real LXD cloud, verified, proven idempotent, and destroyed."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from castelet.lifecycle import leftovers, lifecycle, terraform_environment
from castelet.local.cloud import lxc
from castelet.render import new
from castelet.terraform import Terraform, TerraformError

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
TIMINGS = REPO_ROOT / ".nox" / "e2e-timings.json"


def _render(blueprint: str, slug: str, key: str, out: Path, **answers: str) -> Path:
    return new(REPO_ROOT / "blueprints" / blueprint, {"project_slug": slug, "cloud": "lxd", "admin_ssh_keys": key,
                                                      **answers}, out)


def _record(name: str, timings: dict[str, float]) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[name] = timings
    TIMINGS.write_text(json.dumps(data, indent=2))


def test_lamp_lifecycle(local_cloud, admin_key, tmp_path):
    deployment = _render("lamp", "e2e-lamp", admin_key, tmp_path)
    report = lifecycle(deployment, print)
    _record("lamp", report.timings)
    assert report.ok, f"{report.failed_phase}: {report.error}"
    assert list(report.timings) == ["init", "plan", "apply", "verify", "idempotence", "second plan", "destroy"]
    assert leftovers("lxd", "e2e-lamp") == []


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


def _omeka_archive(version: str) -> bytes:
    """A stand-in release with Omeka S's layout: the real archive cannot be downloaded here."""
    members = {
        "omeka-s/index.php": f'<?php echo "Omeka S (castelet test archive {version})";\n',
        "omeka-s/.htaccess": "RewriteEngine On\nRewriteCond %{REQUEST_FILENAME} !-f\nRewriteRule ^ index.php [L]\n",
        "omeka-s/config/local.config.php": "<?php return [];\n",
        "omeka-s/files/.keep": "",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--, as release archives carry
            archive.writestr(info, content)
    return buffer.getvalue()


@pytest.fixture
def archive_server(bridge_address: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serves {path: bytes} to the instances on the bridge address; stops after the test."""
    served: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
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


def _pin_release(deployment: Path, base_url: str, version: str, sha256: str) -> None:
    data_file = deployment / "puppet/data/blueprint.yaml"
    data = yaml.safe_load(data_file.read_text())
    data.update({"castelet::profile::omeka_s::version": version,
                 "castelet::profile::omeka_s::release_url": f"{base_url}/omeka-s-{version}.zip",
                 "castelet::profile::omeka_s::release_sha256": sha256})
    data_file.write_text(yaml.safe_dump(data, sort_keys=False))


def test_omeka_s_lifecycle_with_a_served_archive_and_a_wrong_checksum_on_day_2(
        local_cloud, admin_key, tmp_path, archive_server):
    base_url, served = archive_server
    first = _omeka_archive("1.0.0-test")
    served["/omeka-s-1.0.0-test.zip"] = first
    deployment = _render("omeka-s", "e2e-omeka", admin_key, tmp_path)
    _pin_release(deployment, base_url, "1.0.0-test", hashlib.sha256(first).hexdigest())
    try:
        report = lifecycle(deployment, print, keep=True)
        _record("omeka-s", report.timings)
        assert report.ok, f"{report.failed_phase}: {report.error}"

        # Day 2: a new release whose checksum does not match must fail cleanly...
        served["/omeka-s-2.0.0-test.zip"] = _omeka_archive("2.0.0-test")
        _pin_release(deployment, base_url, "2.0.0-test", "0" * 64)
        tf = Terraform(deployment, env=_lxd_env())
        with pytest.raises(TerraformError) as failed:
            tf.apply()
        assert "checksum" in str(failed.value).lower(), str(failed.value)[-3000:]
        # ...and leave the running release untouched.
        link = lxc("exec", "e2e-omeka-web1", "--", "readlink", "/var/www/omeka-s").stdout.strip()
        assert link == "/var/www/omeka-s-1.0.0-test/omeka-s"
        page = lxc("exec", "e2e-omeka-web1", "--", "curl", "-s", "http://127.0.0.1/install").stdout
        assert "castelet test archive 1.0.0-test" in page
    finally:
        Terraform(deployment, env=_lxd_env()).destroy()
    assert leftovers("lxd", "e2e-omeka") == []


def _lxd_env() -> dict[str, str]:
    return terraform_environment("lxd")


@pytest.mark.online
@pytest.mark.skipif(not os.environ.get("CASTELET_OMEKA_SHA256"),
                    reason="needs internet to download the pinned Omeka S release: set CASTELET_OMEKA_SHA256 "
                           "(sha256 of that archive) where the internet is reachable")
def test_real_omeka_s_release_passes_its_health_check(local_cloud, admin_key, tmp_path):
    deployment = _render("omeka-s", "e2e-omeka-real", admin_key, tmp_path,
                         omeka_release_sha256=os.environ["CASTELET_OMEKA_SHA256"])
    report = lifecycle(deployment, print)
    assert report.ok, f"{report.failed_phase}: {report.error}"
