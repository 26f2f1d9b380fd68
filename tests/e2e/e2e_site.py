"""What a blueprint's own end-to-end checks get: the deployment the generic lifecycle made.

A verified blueprint may add checks of its own in `tests/e2e/checks_<id with _>.py`, run inside
the one lifecycle deployment (one deployment per blueprint keeps CI short):

    def answers(site: Site) -> dict[str, str]: ...   # optional: answers for the render
    def check_deployed(site: Site) -> None: ...       # after verify passed, before the tfvars edit

`answers()` is also used by the data tests (tests/e2e/test_data.py), so the same answers deploy there.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from acme import Pebble, check_https_site
from castelet.local.cloud import POOL, lxc
from castelet.manifest import Blueprint
from castelet.runtime import LXD_STOP_RACE
from castelet.terraform import Terraform


@dataclass
class Site:
    blueprint: Blueprint
    container: str
    domain: str
    acme: Pebble | None  # None in the data tests (tests/e2e/test_data.py), which use no CA
    bridge_address: str
    base_url: str
    served: dict[str, bytes]
    tmp_path: Path
    deployment: Path | None = None
    notes: dict[str, object] = field(default_factory=dict)  # what answers() wants check_deployed() to know

    def address(self) -> str:
        """The container's IPv4 address on the bridge."""
        return container_address(self.container)


def container_address(container: str) -> str:
    """An LXD container's IPv4 address on the bridge."""
    state = json.loads(lxc("list", container, "--format=json").stdout)[0]["state"]
    return next(a["address"] for a in state["network"]["eth0"]["addresses"] if a["family"] == "inet")


def restart_container(container: str) -> None:
    """`lxc restart`, minding LXD 5.0's race: a halt it reports as failed while the container
    did stop (it is then started here)."""
    restarted = lxc("restart", container, check=False)
    if restarted.returncode == 0:
        return
    if LXD_STOP_RACE not in restarted.stderr:
        raise AssertionError(f"lxc restart {container} failed: {restarted.stderr.strip()}")
    for _ in range(60):
        if json.loads(lxc("list", container, "--format=json").stdout)[0]["status"] == "Stopped":
            lxc("start", container)
            return
        time.sleep(1)
    raise AssertionError(f"{container} neither restarted nor stopped: {restarted.stderr.strip()}")


def checks_module(blueprint_id: str) -> ModuleType | None:
    """`checks_<id>` of this folder, or None when the blueprint has no checks of its own."""
    name = "checks_" + blueprint_id.replace("-", "_")
    if not (Path(__file__).parent / f"{name}.py").is_file():
        return None
    return importlib.import_module(name)


def acme_answers(acme: Pebble, domain: str) -> dict[str, str]:
    """Answers that get the site's certificate from the test CA (pebble) for ``domain``."""
    return {"domain": domain, "acme_server": acme.directory_url, "acme_ca_certificate": acme.api_ca_pem}


def https_health_paths(blueprint: Blueprint) -> list[str]:
    """Health paths of the blueprint's HTTPS services."""
    return [s.health.path for s in blueprint.services if s.tls and s.health]


def created_at(container: str) -> str:
    return str(json.loads(lxc("list", container, "--format=json").stdout)[0]["created_at"])


def check_https_and_own_checks(site: Site, record: Callable[[str, dict[str, float]], None]) -> None:
    """HTTPS from the test CA at first boot (verify checked headers, ports...), then the
    blueprint's own checks (tests/e2e/checks_<id>.py), timed."""
    https = https_health_paths(site.blueprint)
    if https and site.acme is not None:
        check_https_site(site.container, site.address(), site.domain, site.acme, https[0])
    checks = checks_module(site.blueprint.id)
    if checks is not None:
        started = time.monotonic()
        checks.check_deployed(site)
        record(f"{site.blueprint.id} checks", {"checks": time.monotonic() - started})


def check_tfvars_edits_reach_the_instance(deployment: Path, container: str, admin_key: str, tf: Terraform) -> None:
    """terraform.tfvars is the one source of the settings: edit the admin network and the keys,
    apply, and nftables and authorized_keys follow without replacing the instance."""
    created = created_at(container)
    second_key = admin_key.rsplit(" ", 1)[0] + " second-admin"
    tfvars = deployment / "terraform.tfvars"
    text = tfvars.read_text().replace('"192.0.2.0/24"', '"198.51.100.0/24"')
    text = text.replace("public_keys = [\n", f"public_keys = [\n  {json.dumps(second_key)},\n", 1)
    tfvars.write_text(text)
    tf.apply()
    assert created_at(container) == created, "the instance was replaced for a settings change"
    nftables = lxc("exec", container, "--", "nft", "list", "table", "inet", "castelet").stdout
    assert "ip saddr 198.51.100.0/24 tcp dport 22 accept" in nftables
    assert "192.0.2.0/24" not in nftables
    keys = lxc("exec", container, "--", "cat", "/home/castelet/.ssh/authorized_keys").stdout
    assert second_key in keys and admin_key in keys


def check_renaming_is_refused(deployment: Path, container: str) -> None:
    """Issue 21 point 2, on the real provider: `name` renamed in terraform.tfvars (every cloud
    resource, data volumes included, would be replaced), then `nox -s configure -- -auto-approve`,
    what the generated GitLab CI job runs: the plan is refused naming the data volume, nothing is
    applied, the instance and the volumes are the same. A plan and no apply: seconds of CI.
    terraform.tfvars is put back afterwards."""
    from nox_sessions import nox, output

    tfvars = deployment / "terraform.tfvars"
    original = tfvars.read_text()
    found = re.search(r'^name *= *"([^"]+)"', original, re.MULTILINE)
    assert found, "terraform.tfvars has no name line"
    name = found.group(1)

    def volumes(prefix: str) -> list[str]:
        listed = json.loads(lxc("storage", "volume", "list", POOL, "--format=json").stdout)
        return sorted(v["name"] for v in listed if v.get("type") == "custom" and v["name"].startswith(f"{prefix}-"))

    kept, created = volumes(name), created_at(container)
    assert kept, f"no data volume of {name} to protect"
    renamed = f"{name}-rn"
    tfvars.write_text(original.replace(found.group(0), found.group(0).replace(f'"{name}"', f'"{renamed}"'), 1))
    try:
        refused = nox(deployment, "configure", "-auto-approve")
    finally:
        tfvars.write_text(original)
    text = output(refused, 20000)
    assert refused.returncode != 0, f"configure applied a renamed deployment:\n{text}"
    assert "configure refuses this plan" in text and "nothing was applied" in text, text
    assert all(f'lxd_volume.volume["{volume}"]' in text for volume in kept), text
    assert volumes(name) == kept and volumes(renamed) == [], "the data volumes changed"
    assert created_at(container) == created, "the instance was replaced"
