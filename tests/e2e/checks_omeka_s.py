"""omeka-s's own end-to-end checks, run inside its data deployment (tests/e2e/test_data.py), which
installs the stand-in release (tests/e2e/omeka_standin.py) pinned by `castelet pin`.

`check_deployed()`, from the host over HTTPS with pebble's certificate: nobody can claim the site
(it installed itself, /install redirects and offers nothing), the administrator logs in with the
password generated on the instance and a wrong one does not, the project's title (with markup
characters) is shown as text, PHP dropped into the uploaded files is never run (refused, at the path
Apache serves and whatever its case), five failed logins get the address banned by fail2ban; then day 2:
a new release whose checksum does not match fails `terraform apply` cleanly and leaves the running
release serving. terraform.tfvars is put back afterwards, so the deployment goes on with its
pinned release (the tfvars edit, rebuild and restore tests come next).
"""

from __future__ import annotations

import html
import ssl
import time

import pytest

from acme import chain_context
from castelet.lifecycle import terraform_environment
from castelet.local.cloud import lxc
from castelet.pin import write_setting
from castelet.terraform import Terraform, TerraformError
from e2e_site import Site
from nox_sessions import secrets
from omeka_standin import LoginError, fetch, install_form_offered, login, standin_archive

TITLE = "Atlas des chartes & <actes>"
ADMIN_EMAIL = "admin@example.org"
RUNNING = "1.0.0-test"  # the version tests/e2e/test_data.py pins
FILES = "/srv/data/omeka-files"  # castelet::profile::omeka_s::files_dir


def answers(site: Site) -> dict[str, str]:
    return {"project_name": TITLE, "admin_email": ADMIN_EMAIL}


def check_deployed(site: Site) -> None:
    assert site.acme is not None and site.deployment is not None
    ip, domain = site.address(), site.domain
    base, tls = f"https://{ip}", chain_context(site.acme.roots_pem())

    # Nobody can claim the site: it installed itself and /install offers nothing.
    answer = fetch(base, domain, "/install", context=tls)
    assert (answer.status, answer.location) == (302, "/admin")
    assert not install_form_offered(fetch(base, domain, "/install", follow=True, context=tls).body)
    password = secrets(site.deployment)["omeka-admin"]
    assert len(password) >= 32
    assert "Admin dashboard" in login(base, domain, ADMIN_EMAIL, password, context=tls)
    front = fetch(base, domain, "/", follow=True, context=tls).body
    assert html.escape(TITLE, quote=False) in front
    with pytest.raises(LoginError):
        login(base, domain, ADMIN_EMAIL, password[::-1], context=tls)
    _uploads_never_run(site, base, tls)
    # Guessing goes nowhere: after 5 failed logins fail2ban bans the address (here, the host's).
    for _ in range(4):
        with pytest.raises(LoginError):
            login(base, domain, ADMIN_EMAIL, password[::-1], context=tls)
    jail = f"castelet-{domain}"
    banned = ""
    for _ in range(20):  # fail2ban polls the access log
        banned = lxc("exec", site.container, "--", "fail2ban-client", "status", jail).stdout
        if site.bridge_address in banned:
            break
        time.sleep(1)
    assert site.bridge_address in banned, banned
    lxc("exec", site.container, "--", "fail2ban-client", "set", jail, "unbanip", site.bridge_address)

    _day_2_wrong_checksum_fails_cleanly(site)


def _uploads_never_run(site: Site, base: str, tls: ssl.SSLContext) -> None:
    """PHP put into Omeka S's files (the data volume's omeka-files, served at /files through the
    release's symlink) is refused, never run: 403, and neither its output nor its source."""
    names = ("castelet-probe.php", "castelet-probe.PHTML")
    probes = [f"{FILES}/{name}" for name in names]
    lxc("exec", site.container, "--", "sh", "-c",
        " && ".join(f"echo '<?php echo 6 * 7, \"-ran\";' > {probe}" for probe in probes))
    try:
        for name in names:
            answer = fetch(base, site.domain, f"/files/{name}", context=tls)
            assert answer.status == 403, (name, answer.status, answer.body[:300])
            assert "42-ran" not in answer.body and "<?php" not in answer.body, (name, answer.body[:300])
    finally:
        lxc("exec", site.container, "--", "rm", "-f", *probes)


def _day_2_wrong_checksum_fails_cleanly(site: Site) -> None:
    assert site.deployment is not None
    served_path = f"/{site.container}/omeka-s-2.0.0-test.zip"
    site.served[served_path] = standin_archive("2.0.0-test")
    tfvars = site.deployment / "terraform.tfvars"
    pinned = tfvars.read_text()
    text = pinned
    for name, value in (("release_url", f"{site.base_url}{served_path}"), ("release_version", "2.0.0-test"),
                        ("release_sha256", "0" * 64)):
        text = write_setting(text, name, value)
    tfvars.write_text(text)
    tf = Terraform(site.deployment, env=terraform_environment("lxd"))
    try:
        with pytest.raises(TerraformError) as failed:
            tf.apply()
        assert "checksum" in str(failed.value).lower(), str(failed.value)[-3000:]
        # ...and the running release is untouched.
        link = lxc("exec", site.container, "--", "readlink", "/var/www/omeka-s").stdout.strip()
        assert link == f"/var/www/omeka-s-{RUNNING}/omeka-s"
        page = lxc("exec", site.container, "--", "curl", "-sk", "--resolve", f"{site.domain}:443:127.0.0.1",
                   f"https://{site.domain}/login").stdout
        assert f"castelet test archive {RUNNING}" in page
    finally:
        tfvars.write_text(pinned)
