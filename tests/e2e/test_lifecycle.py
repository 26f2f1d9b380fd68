"""Blueprints applied to a real LXD cloud, verified, proven idempotent, and destroyed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import costs
from acme import self_signed_served, served_certificate, unverified_context
from castelet.library import load_all
from castelet.lifecycle import leftovers, lifecycle, terraform_environment
from castelet.local.cloud import POOL, lxc
from castelet.render import new
from castelet.terraform import Terraform
from e2e_site import (
    Site,
    acme_answers,
    check_https_and_own_checks,
    check_renaming_is_refused,
    check_tfvars_edits_reach_the_instance,
    checks_module,
    https_health_paths,
)
from e2e_site import (
    container_address as _address,
)
from nox_sessions import destroy_everything, record_timings, secrets, verify
from omeka_standin import fetch, install_form_offered, login

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
VERIFIED = [bp for bp in load_all(REPO_ROOT)[0] if bp.maturity == "verified"]
TIMINGS = REPO_ROOT / ".nox" / "e2e-timings.json"


def _render(blueprint: str, slug: str, key: str, out: Path, **answers: str) -> Path:
    return new(REPO_ROOT / "blueprints" / blueprint, {"project_slug": slug, "cloud": "lxd", "admin_ssh_keys": key,
                                                      **answers}, out)


def _record(name: str, timings: dict[str, float]) -> None:
    record_timings(TIMINGS, name, timings)


# Verified blueprints with data (`backups:`) prove their lifecycle in tests/e2e/test_data.py, on the
# deployment that also proves rebuild and restore: one deployment per blueprint keeps CI short.
GENERIC = [bp for bp in VERIFIED if not bp.release and not bp.backups]


def test_what_an_interrupted_run_left_is_removed_and_nothing_else(local_cloud):
    """The purge `nox -s e2e` makes before it starts (conftest.purge_interrupted_run), on names of its
    own (the real prefix, `e2e-`, would take the deployments of the tests running beside this one)."""
    from conftest import purge_interrupted_run

    prefix, kept = "purgetest-", "purgetest0-kept-data"
    lxc("init", "castelet/debian-13", f"{prefix}web1", "--storage", POOL)
    for volume in (f"{prefix}web1-data", kept):
        lxc("storage", "volume", "create", POOL, volume, "size=16MiB")
    try:
        assert sorted(purge_interrupted_run(prefix)) == [f"container {prefix}web1", f"volume {prefix}web1-data"]
        assert leftovers("lxd", prefix.rstrip("-")) == []
        assert lxc("storage", "volume", "show", POOL, kept, check=False).returncode == 0
    finally:
        lxc("delete", "--force", f"{prefix}web1", check=False)
        for volume in (f"{prefix}web1-data", kept):
            lxc("storage", "volume", "delete", POOL, volume, check=False)


def test_every_verified_blueprint_has_a_lifecycle_here():
    """Blueprints are discovered from their manifests; one with data has its lifecycle in the
    data tests, and one that installs an upstream release is deployed there with a stand-in of
    that release (the real archive is not downloaded in CI; its own checks live in
    tests/e2e/checks_<id>.py)."""
    from test_data import DATA_BLUEPRINTS, STANDIN_RELEASES

    missing = [bp.id for bp in VERIFIED if bp.release and (not bp.backups or bp.id not in STANDIN_RELEASES)]
    assert missing == [], f"verified blueprints with a release but no stand-in in the data tests: {missing}"
    covered = {bp.id for bp in GENERIC} | {bp.id for bp in DATA_BLUEPRINTS}
    assert {bp.id for bp in VERIFIED} <= covered
    assert VERIFIED, "no verified blueprint found"


@pytest.mark.parametrize("blueprint", GENERIC, ids=lambda bp: bp.id)
def test_lifecycle_and_settings_edited_in_tfvars_reach_the_instance(
        local_cloud, admin_key, tmp_path, blueprint, acme, archive_server, bridge_address):
    slug = f"e2e-{blueprint.id}"[:24].rstrip("-")
    container = f"{slug}-{blueprint.roles[0].name}1"
    # The instance's own DNS name: pebble can validate it as soon as the site answers.
    domain = f"{container}.lxd"
    answers = acme_answers(acme, domain) if https_health_paths(blueprint) else {}
    # The blueprint's own checks (tests/e2e/checks_<id>.py) run in this same deployment.
    checks = checks_module(blueprint.id)
    site = Site(blueprint, container, domain, acme, bridge_address, archive_server[0], archive_server[1], tmp_path)
    if checks is not None and hasattr(checks, "answers"):
        answers.update(checks.answers(site))
    deployment = _render(blueprint.id, slug, admin_key, tmp_path, **answers)
    site.deployment = deployment
    tf = Terraform(deployment, env=_lxd_env())
    try:
        report = lifecycle(deployment, print, keep=True)
        _record(blueprint.id, report.timings)
        costs.record(blueprint.id, "apply", report.timings.get("apply", 0.0), deployments=1)
        assert report.ok, f"{report.failed_phase}: {report.error}"
        assert list(report.timings) == ["init", "plan", "apply", "verify", "idempotence", "second plan"]
        check_https_and_own_checks(site, _record)
        check_tfvars_edits_reach_the_instance(deployment, container, admin_key, tf)
        if blueprint.volumes:
            check_renaming_is_refused(deployment, container)
    finally:
        destroy_everything(deployment, slug)  # data volumes too (`--with-data`)


@pytest.mark.blueprint("lamp")
def test_lamp_on_debian_12_serves_https_before_and_after_dns(local_cloud, admin_key, tmp_path, acme):
    """Debian 12 stays supported (Puppet 7, bookworm's modules and certbot). Its domain does not
    resolve at first: the site starts with a self-signed certificate and verify says it waits for
    DNS; once the record exists, the retry timer's service gets the certificate."""
    domain = "portal.e2e-lamp12.castelet.test"
    deployment = _render("lamp", "e2e-lamp12", admin_key, tmp_path, debian_release="12",
                         **acme_answers(acme, domain))
    tf = Terraform(deployment, env=_lxd_env())
    container = "e2e-lamp12-web1"
    try:
        tf.init()
        tf.plan()
        costs.timed_deployment("lamp", tf.apply)
        ip = _address(container)
        assert self_signed_served(ip, domain)
        waiting = verify(deployment)
        assert waiting.returncode != 0
        assert f"TLS: waiting for DNS {domain} → {ip}" in waiting.stdout, waiting.stdout[-3000:]
        failed = [line for line in waiting.stdout.splitlines() if line.startswith("FAILED")]
        assert len(failed) == 1 and "test_tls_certificate" in failed[0], failed
        timer = lxc("exec", container, "--", "systemctl", "is-enabled", "castelet-tls-issue.timer").stdout.strip()
        assert timer == "enabled"

        acme.point(domain, ip)
        lxc("exec", container, "--", "systemctl", "start", "castelet-tls-issue.service")
        assert ("DNS", domain) in served_certificate(ip, domain, acme.roots_pem())["subjectAltName"]
        passed = verify(deployment)
        assert passed.returncode == 0, passed.stdout[-3000:]
    finally:
        acme.point(domain, None)
        destroy_everything(deployment, "e2e-lamp12")


@pytest.mark.blueprint("lamp")
def test_broken_profile_fails_apply_naming_the_resource_and_still_cleans_up(local_cloud, admin_key, tmp_path):
    """A resource that fails on the instance fails the apply, naming it, and the lifecycle still
    destroys everything. The broken class runs in a run stage before `main`, so Puppet skips the
    rest of the catalog as depending on it (what Puppet does with any failed dependency): the
    failure costs a boot and a compile, not a whole install."""
    deployment = _render("lamp", "e2e-broken", admin_key, tmp_path)
    manifests = deployment / "puppet/modules/castelet/manifests"
    (manifests / "broken.pp").write_text(
        "# A deliberately broken class (tests/e2e/test_lifecycle.py)\n"
        "class castelet::broken {\n  exec { 'castelet-deliberately-broken': command => '/bin/false' }\n}\n")
    role = manifests / "role/lamp.pp"
    text = role.read_text().rstrip()
    assert text.endswith("}")
    role.write_text(text[:-1] + "  stage { 'castelet-broken': before => Stage['main'] }\n"
                    "  class { 'castelet::broken': stage => 'castelet-broken' }\n}\n")
    report = lifecycle(deployment, print)
    costs.record("lamp", "apply", report.timings.get("apply", 0.0), deployments=1)
    assert report.failed_phase == "apply"
    assert "castelet-deliberately-broken" in report.error, report.error
    assert "destroy" in report.timings
    assert leftovers("lxd", "e2e-broken") == []


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
        site = f"https://{tf.outputs()['instances']['e2e-omeka-real-web1']['private_address']}"
        # the local cloud's default: a self-signed certificate (verify checked it is that one)
        unverified = unverified_context()
        assert not install_form_offered(fetch(site, "example.org", "/install", follow=True, context=unverified).body)
        assert "Admin dashboard" in login(site, "example.org", "admin@example.org", secrets(deployment)["omeka-admin"],
                                          context=unverified)
    finally:
        destroy_everything(deployment, "e2e-omeka-real")
