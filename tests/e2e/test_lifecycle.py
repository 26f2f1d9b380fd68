"""Blueprints applied to a real LXD cloud, verified, proven idempotent, and destroyed."""

from __future__ import annotations

import hashlib
import html
import os
import time
from pathlib import Path

import pytest

from acme import chain_context, check_https_site, self_signed_served, served_certificate, unverified_context
from castelet.library import load_all
from castelet.lifecycle import leftovers, lifecycle, terraform_environment
from castelet.local.cloud import lxc
from castelet.pin import pin, write_setting
from castelet.render import new
from castelet.terraform import Terraform, TerraformError
from e2e_site import (
    Site,
    acme_answers,
    check_https_and_own_checks,
    check_tfvars_edits_reach_the_instance,
    checks_module,
    https_health_paths,
)
from e2e_site import (
    container_address as _address,
)
from nox_sessions import destroy_everything, record_timings, secrets, verify
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
    record_timings(TIMINGS, name, timings)


# Verified blueprints with data (`backups:`) prove their lifecycle in tests/e2e/test_data.py, on the
# deployment that also proves rebuild and restore: one deployment per blueprint keeps CI short.
GENERIC = [bp for bp in VERIFIED if not bp.release and not bp.backups]


def test_every_verified_blueprint_has_a_lifecycle_here():
    """Blueprints are discovered from their manifests; one that installs an upstream release needs
    a stand-in of that release (the real archive is not downloaded in CI) and its own test; one
    with data has its lifecycle in the data tests."""
    missing = [bp.id for bp in VERIFIED if bp.release and bp.id not in RELEASE_STANDIN_TESTS]
    assert missing == [], f"verified blueprints with a release but no stand-in test: {missing}"
    assert all(name in globals() for name in RELEASE_STANDIN_TESTS.values())
    from test_data import DATA_BLUEPRINTS

    covered = {bp.id for bp in GENERIC} | {bp.id for bp in DATA_BLUEPRINTS} | set(RELEASE_STANDIN_TESTS)
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
        assert report.ok, f"{report.failed_phase}: {report.error}"
        assert list(report.timings) == ["init", "plan", "apply", "verify", "idempotence", "second plan"]
        check_https_and_own_checks(site, _record)
        check_tfvars_edits_reach_the_instance(deployment, container, admin_key, tf)
    finally:
        destroy_everything(deployment, slug)  # data volumes too (`--with-data`)


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
        tf.apply()
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


def test_omeka_s_installs_itself_and_refuses_a_wrong_checksum_on_day_2(
        local_cloud, admin_key, tmp_path, archive_server, acme, bridge_address):
    base_url, served = archive_server
    served["/omeka-s-1.0.0-test.zip"] = standin_archive("1.0.0-test")
    title = "Atlas des chartes & <actes>"
    domain = "e2e-omeka-web1.lxd"
    deployment = _render("omeka-s", "e2e-omeka", admin_key, tmp_path, project_name=title,
                         **acme_answers(acme, domain))
    pinned = pin(deployment, print, url=f"{base_url}/omeka-s-1.0.0-test.zip", version="1.0.0-test")
    assert pinned.sha256 == hashlib.sha256(served["/omeka-s-1.0.0-test.zip"]).hexdigest()
    tf = Terraform(deployment, env=_lxd_env())
    try:
        report = lifecycle(deployment, print, keep=True)
        _record("omeka-s", report.timings)
        assert report.ok, f"{report.failed_phase}: {report.error}"

        # HTTPS from the CA, redirect, HSTS, renewal without a failed request.
        ip = tf.outputs()["instances"]["e2e-omeka-web1"]["private_address"]
        check_https_site("e2e-omeka-web1", ip, domain, acme, "/login")

        # Nobody can claim the site: it installed itself, /install offers nothing, and the
        # administrator logs in over HTTPS with the password generated on the instance.
        site, tls = f"https://{ip}", chain_context(acme.roots_pem())
        answer = fetch(site, domain, "/install", context=tls)
        assert (answer.status, answer.location) == (302, "/admin")
        assert not install_form_offered(fetch(site, domain, "/install", follow=True, context=tls).body)
        password = secrets(deployment)["omeka-admin"]
        assert len(password) >= 32
        dashboard = login(site, domain, "admin@example.org", password, context=tls)
        assert "Admin dashboard" in dashboard
        front = fetch(site, domain, "/", follow=True, context=tls).body
        assert html.escape(title, quote=False) in front
        with pytest.raises(LoginError):
            login(site, domain, "admin@example.org", password[::-1], context=tls)
        # Guessing goes nowhere: after 5 failed logins fail2ban bans the address (here, the host's).
        for _ in range(4):
            with pytest.raises(LoginError):
                login(site, domain, "admin@example.org", password[::-1], context=tls)
        jail = f"castelet-{domain}"
        banned = ""
        for _ in range(20):  # fail2ban polls the access log
            banned = lxc("exec", "e2e-omeka-web1", "--", "fail2ban-client", "status", jail).stdout
            if bridge_address in banned:
                break
            time.sleep(1)
        assert bridge_address in banned, banned
        lxc("exec", "e2e-omeka-web1", "--", "fail2ban-client", "set", jail, "unbanip", bridge_address)

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
        page = lxc("exec", "e2e-omeka-web1", "--", "curl", "-sk", "--resolve", f"{domain}:443:127.0.0.1",
                   f"https://{domain}/login").stdout
        assert "castelet test archive 1.0.0-test" in page
    finally:
        destroy_everything(deployment, "e2e-omeka")


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
