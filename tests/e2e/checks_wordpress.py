"""wordpress's own end-to-end checks, run inside its lifecycle deployment (tests/e2e/e2e_site.py).

`check_deployed()`, from the host over HTTPS with pebble's certificate, as a visitor and as the
administrator would: the installer offers nothing (the deployment installed the site), the first
administrator (`admin_email`, password generated on the instance, `nox -s secrets`) logs in and a
wrong password does not, an image uploaded through WordPress's REST API (what the block editor
uses) lands on the data volume and is served, a post published the same way is on the front page
for an anonymous visitor, and PHP dropped into the uploads folder is never run.
"""

from __future__ import annotations

import html
import importlib.util
import json
import secrets as token
import sys
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

from acme import chain_context
from castelet.local.cloud import lxc
from e2e_site import Site
from nox_sessions import secrets

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALLER_SCRIPT = REPO_ROOT / "puppet" / "modules" / "castelet" / "files" / "wordpress-install.py"
ADMIN_EMAIL = "editor@example.org"
UPLOADS = "/srv/data/wordpress/uploads"
# A 1x1 PNG.
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360f80f000001010000d2e1a0a00000000049454e44ae426082")


def _load_installer() -> ModuleType:
    """The deployment's installer script as a module: its Session is the browser here."""
    loaded = sys.modules.get("wordpress_install")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("wordpress_install", INSTALLER_SCRIPT)
    assert spec is not None and spec.loader is not None, INSTALLER_SCRIPT
    module = importlib.util.module_from_spec(spec)
    sys.modules["wordpress_install"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.TIMEOUT = 60  # type: ignore[attr-defined]  # seconds per request: these helpers only check
    return module


wp = _load_installer()


def answers(site: Site) -> dict[str, str]:
    return {"admin_email": ADMIN_EMAIL}


def _rest(session: Any, method: str, route: str, nonce: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A call to WordPress's REST API in the administrator's session (cookie + nonce), as the
    block editor makes it; plain permalinks, so the route goes in `rest_route`."""
    request = urllib.request.Request(session.url(f"/?rest_route={route}"), data=body, method=method,
                                     headers={"Host": session.host, "X-WP-Nonce": nonce, **headers})
    with session.opener.open(request, timeout=60) as answer:
        assert answer.status == 201, f"{method} {route}: HTTP {answer.status}"
        return dict(json.loads(answer.read()))


def check_deployed(site: Site) -> None:
    assert site.deployment is not None
    assert site.acme is not None, "wordpress's checks need the test CA (pebble)"
    base, tls = f"https://{site.address()}", chain_context(site.acme.roots_pem())

    # Nobody can claim the site: it is installed, and the installer says so without a form.
    visitor = wp.Session(base, site.domain, tls)
    page = visitor.request("/wp-admin/install.php")
    assert wp.already_installed(page.body), page.body[:2000]
    assert not wp.installer_offered(page.body)

    # The first administrator logs in with the password generated on the instance; a wrong one fails.
    password = secrets(site.deployment)["wordpress-admin"]
    assert len(password) >= 32
    try:
        wp.log_in(wp.Session(base, site.domain, tls), ADMIN_EMAIL, password[::-1])
    except wp.InstallError:
        pass
    else:
        raise AssertionError("a wrong password opened the dashboard")
    admin = wp.Session(base, site.domain, tls)
    dashboard = wp.log_in(admin, ADMIN_EMAIL, password)
    assert "Dashboard" in dashboard

    # The REST nonce a logged-in editor gets, then an upload and a post through the REST API.
    nonce = admin.request("/wp-admin/admin-ajax.php?action=rest-nonce")
    assert nonce.status == 200 and nonce.body.strip().isalnum(), nonce.body[:500]
    media = _rest(admin, "POST", "/wp/v2/media", nonce.body.strip(), PIXEL,
                  {"Content-Type": "image/png", "Content-Disposition": 'attachment; filename="castelet-pixel.png"'})
    stored = lxc("exec", site.container, "--", "find", UPLOADS, "-name", "castelet-pixel*.png").stdout.split()
    assert stored, f"the uploaded image is not under {UPLOADS}"
    served = visitor.request(media["source_url"])
    assert served.status == 200, media["source_url"]

    title = f"Field notes {token.token_hex(4)}"
    content = ('<!-- wp:paragraph --><p>First entry.</p><!-- /wp:paragraph -->'
               f'<!-- wp:image --><figure class="wp-block-image"><img src="{media["source_url"]}" alt=""/></figure>'
               '<!-- /wp:image -->')
    post = _rest(admin, "POST", "/wp/v2/posts", nonce.body.strip(),
                 json.dumps({"title": title, "status": "publish", "content": content}).encode(),
                 {"Content-Type": "application/json"})
    assert post["status"] == "publish", post

    # An anonymous visitor sees it on the front page.
    where, front = wp.Session(base, site.domain, tls).follow("/")
    assert front.status == 200, where
    assert html.escape(title) in front.body, f"{title!r} is not on the front page"

    # PHP put into the uploads folder is never run.
    probe = f"{UPLOADS}/castelet-probe.php"
    lxc("exec", site.container, "--", "sh", "-c", f"echo '<?php echo 6 * 7;' > {probe}")
    try:
        answer = visitor.request("/wp-content/uploads/castelet-probe.php")
        assert answer.status == 403 and "42" not in answer.body, (answer.status, answer.body[:300])
    finally:
        lxc("exec", site.container, "--", "rm", "-f", probe)
