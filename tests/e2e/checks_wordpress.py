"""wordpress's own end-to-end checks, run inside its lifecycle deployment (tests/e2e/e2e_site.py).

`check_deployed()`, from the host over HTTPS with pebble's certificate, as a visitor and as the
administrator would: the installer offers nothing (the deployment installed the site), the first
administrator (`admin_email`, password generated on the instance, `nox -s secrets`) logs in and a
wrong password does not, an image uploaded through WordPress's REST API (what the block editor
uses) lands on the data volume and is served, a post published the same way is on the front page
for an anonymous visitor, and PHP dropped into the uploads folder is never run. Issue 21, point 5:
the first administrator's login name is the generated one (`wordpress-admin-user`), never `admin`;
/xmlrpc.php is refused and not advertised; WordPress's updater is on for the plugins and themes
installed in wp-content (not for Debian's links, nor for WordPress itself); failed logins on every
path (wp-login.php, the REST API's application passwords, XML-RPC's login as `xmlrpc: true` serves
it) reach the fail2ban jail, which bans the address.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import re
import secrets as token
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

from acme import chain_context
from castelet.local.cloud import lxc
from data_set import mariadb, sh
from e2e_site import Site
from nox_sessions import secrets

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALLER_SCRIPT = REPO_ROOT / "puppet" / "modules" / "castelet" / "files" / "wordpress-install.py"
ADMIN_EMAIL = "editor@example.org"
UPLOADS = "/srv/data/wordpress/uploads"
JAIL = "castelet-wordpress"
# XML-RPC's login failing, as /xmlrpc.php runs it once `xmlrpc: true` serves it (here the filter the
# must-use plugin adds while it is off is removed), from an address that is not the host's.
XMLRPC_ADDRESS = "203.0.113.77"
XMLRPC_LOGIN = f"""<?php
$_SERVER['HTTP_HOST'] = getenv('WP_HOST');
$_SERVER['REMOTE_ADDR'] = '{XMLRPC_ADDRESS}';
define('XMLRPC_REQUEST', true);
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . WPINC . '/class-IXR.php';
require_once ABSPATH . WPINC . '/class-wp-xmlrpc-server.php';
remove_all_filters('xmlrpc_enabled');
$server = new wp_xmlrpc_server();
echo $server->login('castelet-nobody', 'wrong') === false ? 'refused' : 'accepted';
"""
# What WordPress's background updater would do, asked of WordPress itself on the instance: for a
# plugin and a theme installed in wp-content, and for each plugin and theme Debian's packages link
# there (into /usr/share/wordpress: Debian updates those).
UPDATES = """<?php
$_SERVER['HTTP_HOST'] = getenv('WP_HOST');
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/update.php';
$debian = array();
foreach (array('plugin' => WP_PLUGIN_DIR, 'theme' => get_theme_root()) as $type => $dir) {
    foreach (scandir($dir) as $name) {
        $path = $dir . '/' . $name;
        if (is_link($path) && is_dir($path) && strpos((string) realpath($path), '/usr/share/wordpress/') === 0) {
            $item = $type === 'plugin' ? array('plugin' => "$name/$name.php") : array('theme' => $name);
            $debian["$type $name"] = apply_filters("auto_update_$type", true, (object) $item);
        }
    }
}
echo json_encode(array(
    'plugins' => wp_is_auto_update_enabled_for_type('plugin'),
    'themes' => wp_is_auto_update_enabled_for_type('theme'),
    'core' => WP_AUTO_UPDATE_CORE,
    'plugin' => apply_filters('auto_update_plugin', false, (object) array('plugin' => 'castelet-probe/probe.php')),
    'theme' => apply_filters('auto_update_theme', false, (object) array('theme' => 'castelet-probe')),
    'debian' => $debian,
));
"""
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
    generated = secrets(site.deployment)
    password = generated["wordpress-admin"]
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

    name = _login_name_is_generated(site, generated["wordpress-admin-user"], password, base, tls)
    _xmlrpc_is_refused(visitor, front.body)
    _updates_are_on(site)
    _every_login_path_feeds_the_jail(site, name, admin, nonce.body.strip(), base, tls)

    # PHP put into the uploads folder is never run.
    probe = f"{UPLOADS}/castelet-probe.php"
    lxc("exec", site.container, "--", "sh", "-c", f"echo '<?php echo 6 * 7;' > {probe}")
    try:
        answer = visitor.request("/wp-content/uploads/castelet-probe.php")
        assert answer.status == 403 and "42" not in answer.body, (answer.status, answer.body[:300])
    finally:
        lxc("exec", site.container, "--", "rm", "-f", probe)


def _php(site: Site, code: str) -> str:
    """PHP run as the web server's user on the instance, with the site's Host (Debian's wp-config);
    the last line it printed."""
    out = sh(site.container, f"runuser -u www-data -- env WP_HOST={site.domain} php", stdin=code, reading=True)
    return (out.strip().splitlines() or [""])[-1]


def _login_name_is_generated(site: Site, name: str, password: str, base: str, tls: Any) -> str:
    """The first administrator's login name is the generated secret, never `admin`; it logs in."""
    assert name != "admin" and len(name) >= 32, name
    logins = mariadb(site.container, "wordpress", "SELECT user_login FROM wp_users;", reading=True)
    assert logins.split() == [name], logins
    assert "Dashboard" in wp.log_in(wp.Session(base, site.domain, tls), name, password)
    return name


def _xmlrpc_is_refused(visitor: Any, front: str) -> None:
    """/xmlrpc.php is refused by Apache (GET and a real XML-RPC call), and the site does not
    advertise it (no RSD link on the front page)."""
    call = b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName></methodCall>"
    for body in (None, call):
        request = urllib.request.Request(visitor.url("/xmlrpc.php"), data=body,
                                         headers={"Host": visitor.host, "Content-Type": "text/xml"})
        try:
            with visitor.opener.open(request, timeout=60) as answer:
                status, text = answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as refused:
            status, text = refused.code, refused.read().decode("utf-8", "replace")
        assert status == 403 and "methodResponse" not in text, (status, text[:300])
    assert "xmlrpc.php" not in front, "the front page advertises /xmlrpc.php"


def _updates_are_on(site: Site) -> None:
    """WordPress's updater: on for plugins and themes installed in wp-content, forced on for each;
    off for Debian's links (Debian updates them) and for WordPress's core (Debian's package)."""
    state = json.loads(_php(site, UPDATES))
    debian = state.pop("debian")
    assert state == {"plugins": True, "themes": True, "core": False, "plugin": True, "theme": True}, state
    assert debian and not any(debian.values()), debian  # e.g. Akismet and the default theme


def _jail_status(site: Site) -> tuple[int, str]:
    status = sh(site.container, f"fail2ban-client status {JAIL}", reading=True)
    found = re.search(r"Total failed:\s*(\d+)", status)
    assert found, status
    return int(found.group(1)), status


def _counted(site: Site, before: int, path: str) -> int:
    """Waits until the jail has counted one failure more than ``before`` (fail2ban reads the journal)."""
    total, status = before, ""
    for _ in range(100):
        total, status = _jail_status(site)
        if total > before:
            return total
        time.sleep(0.3)
    raise AssertionError(f"a failed login on {path} did not reach fail2ban's {JAIL}:\n{status}")


def _every_login_path_feeds_the_jail(site: Site, name: str, admin: Any, nonce: str, base: str, tls: Any) -> None:
    """A failure on each login path is counted by the one jail; failing on goes to a ban (the host's
    address, unbanned afterwards). Application passwords are checked only once one exists."""
    total, _ = _jail_status(site)
    created = _rest(admin, "POST", "/wp/v2/users/me/application-passwords", nonce,
                    json.dumps({"name": "castelet-e2e"}).encode(), {"Content-Type": "application/json"})
    basic = base64.b64encode(f"{name}:{created['password'][::-1]}".encode()).decode()
    rest = wp.Session(base, site.domain, tls).request("/?rest_route=/wp/v2/users/me",
                                                      headers={"Authorization": f"Basic {basic}"})
    assert rest.status == 401, (rest.status, rest.body[:300])
    total = _counted(site, total, "the REST API (application password)")

    assert _php(site, XMLRPC_LOGIN) == "refused"
    total = _counted(site, total, "xmlrpc.php")

    banned = ""
    for _ in range(5):
        try:
            wp.log_in(wp.Session(base, site.domain, tls), name, "wrong-" + token.token_hex(8))
        except wp.InstallError:
            pass
        else:
            raise AssertionError("a wrong password opened the dashboard")
        total = _counted(site, total, "wp-login.php")
        _, banned = _jail_status(site)
        if site.bridge_address in banned:
            break
    try:
        assert site.bridge_address in banned, banned
    finally:
        lxc("exec", site.container, "--", "fail2ban-client", "set", JAIL, "unbanip", site.bridge_address)
