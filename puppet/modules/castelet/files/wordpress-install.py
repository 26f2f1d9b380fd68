#!/usr/bin/python3
"""castelet-wordpress-install: completes a fresh WordPress installation through its own installer.

Managed by Puppet (castelet::profile::wordpress), installed as /usr/local/sbin/castelet-wordpress-install.

Why WordPress's web installer, over HTTPS on the loopback address: it is WordPress's stable,
public way to install (wp-admin/install.php, step 2: `weblog_title`, `user_name`,
`admin_password`, `admin_password2`, `admin_email`, `blog_public`; no nonce, since nobody is
logged in yet) and it runs exactly what a person would run, in Apache's PHP as www-data with
Debian's wp-config.php. WP-CLI is not in Debian. The firewall keeps the public ports closed
until Puppet's `castelet::installed`, after this script: the installer is never reachable
from outside.

After installing, it logs in for real (wp-login.php: test cookie, `log`, `pwd`) and checks that
the dashboard answers: the installation is only reported done when the administrator can use it.

Settings come from the environment (set by Puppet's exec); the password from a root-only file
whose path is given: it is never on a command line, in the environment or in the output.

  WORDPRESS_BASE_URL       where to connect (default https://127.0.0.1; certificates are not
                           checked on the loopback address: it may still be the self-signed one)
  WORDPRESS_HOST           Host header: the Apache ServerName of the site
  WORDPRESS_SITE_TITLE     the site's title
  WORDPRESS_ADMIN_USER     user name of the first administrator
  WORDPRESS_ADMIN_EMAIL    its e-mail
  WORDPRESS_ADMIN_PASSWORD_FILE  file holding its password
  WORDPRESS_PUBLIC         1: search engines may index the site, 0: they are asked not to
  WORDPRESS_WAIT           seconds to wait for the web server to answer (default 120)

Exit status 0: installed now, or already installed and the administrator can log in.
Exit status 1: anything else, with the reason on stderr (never the password).
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

PROG = "castelet-wordpress-install"
TIMEOUT = 300
INSTALL = "/wp-admin/install.php"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class WordPressError(Exception):
    """A failure to report and exit with status 1."""


@dataclass
class Answer:
    status: int
    location: str
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Session:
    """A browser-like session on one site: fixed Host header, cookies, redirects followed only
    within the site (WordPress redirects to its absolute URL, https://<host>/...)."""

    def __init__(self, base_url: str, host: str, context: ssl.SSLContext | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = host
        if context is None and urllib.parse.urlsplit(self.base_url).scheme == "https":
            if urllib.parse.urlsplit(self.base_url).hostname not in LOOPBACK:
                raise WordPressError(f"https to {self.base_url} needs an SSL context that verifies it")
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.cookies = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect(), urllib.request.HTTPCookieProcessor(self.cookies)]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)

    def _url(self, target: str) -> str:
        parts = urllib.parse.urlsplit(target)
        if parts.netloc and parts.hostname != self.host:
            raise WordPressError(f"WordPress redirected to another site: {target}")
        return self.base_url + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def request(self, target: str, form: dict[str, str] | None = None, payload: object = None,
                headers: dict[str, str] | None = None) -> Answer:
        """GET, or POST a form or a JSON payload; redirects are returned, not followed."""
        data, sent = None, {"Host": self.host, **(headers or {})}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
        elif payload is not None:
            data, sent["Content-Type"] = json.dumps(payload).encode(), "application/json"
        req = urllib.request.Request(self._url(target), data=data, headers=sent)
        try:
            with self.opener.open(req, timeout=TIMEOUT) as resp:
                return Answer(resp.status, resp.headers.get("Location", ""), resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers.get("Location", ""), exc.read().decode("utf-8", "replace"))

    def follow(self, target: str, form: dict[str, str] | None = None, limit: int = 5) -> tuple[str, Answer]:
        """Request target, then follow redirects with GET; returns the final target and answer."""
        answer = self.request(target, form)
        while answer.status in (301, 302, 303, 307, 308) and answer.location and limit > 0:
            target, answer, limit = answer.location, self.request(answer.location), limit - 1
        return target, answer


def messages(body: str) -> str:
    """WordPress's error messages in a page (installer, login form, wp_die), as text."""
    found = re.findall(r'<(?:p|div)[^>]*class="[^"]*\b(?:message|login_error|notice-error|wp-die-message)\b[^"]*"[^>]*>'
                       r"(.*?)</(?:p|div)>", body, re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(m)) for m in found)
    return " ".join(text.split()) or "no message"


def installer_offered(body: str) -> bool:
    """Whether a page offers WordPress's installation (its setup or language form)."""
    return bool(re.search(r'<form[^>]+id="(?:setup|language-continue)"|name="admin_password"', body))


def already_installed(body: str) -> bool:
    """install.php on an installed site: "Already Installed", and no form."""
    return "<h1>Already Installed</h1>" in body and not installer_offered(body)


def log_in(session: Session, login: str, password: str) -> str:
    """Log in through wp-login.php like a browser; returns the dashboard's HTML."""
    session.request("/wp-login.php")  # sets WordPress's test cookie
    answer = session.request("/wp-login.php", {
        "log": login, "pwd": password, "wp-submit": "Log In", "redirect_to": "/wp-admin/", "testcookie": "1",
    })  # fmt: skip
    if answer.status not in (302, 303):
        raise WordPressError(f"logging in as {login} failed (HTTP {answer.status}): {messages(answer.body)}")
    where, dashboard = session.follow(answer.location)
    if dashboard.status != 200 or "/wp-admin" not in where or "wp-admin-bar-logout" not in dashboard.body:
        raise WordPressError(f"after logging in, {where} answered HTTP {dashboard.status} without the dashboard")
    return dashboard.body


def wait_for_installer(session: Session, seconds: float) -> Answer:
    deadline = time.monotonic() + seconds
    while True:
        try:
            answer = session.request(INSTALL)
            if answer.status == 200:
                return answer
            reason = f"HTTP {answer.status}: {messages(answer.body)}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = str(exc)
        if time.monotonic() > deadline:
            raise WordPressError(f"{INSTALL} on {session.base_url} (Host: {session.host}) did not answer after "
                                 f"{seconds:.0f} s: {reason}")
        time.sleep(2)


def install(env: dict[str, str]) -> str:
    required = ("WORDPRESS_HOST", "WORDPRESS_SITE_TITLE", "WORDPRESS_ADMIN_USER", "WORDPRESS_ADMIN_EMAIL",
                "WORDPRESS_ADMIN_PASSWORD_FILE")  # fmt: skip
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise WordPressError("missing environment variables: " + ", ".join(missing))
    user, email = env["WORDPRESS_ADMIN_USER"], env["WORDPRESS_ADMIN_EMAIL"]
    try:
        with open(env["WORDPRESS_ADMIN_PASSWORD_FILE"], encoding="utf-8") as fh:
            password = fh.read().strip()
    except OSError as exc:
        raise WordPressError(f"cannot read the administrator's password file: {exc.strerror}") from exc
    if not password:
        raise WordPressError(f"the administrator's password file {env['WORDPRESS_ADMIN_PASSWORD_FILE']} is empty")

    session = Session(env.get("WORDPRESS_BASE_URL") or "https://127.0.0.1", env["WORDPRESS_HOST"])
    first = wait_for_installer(session, float(env.get("WORDPRESS_WAIT") or 120))
    if already_installed(first.body):
        try:
            log_in(session, user, password)
        except WordPressError as exc:
            raise WordPressError(
                f"WordPress says it is already installed, but the administrator {user} cannot use it: {exc}. "
                "If an earlier installation stopped halfway, empty the WordPress database (drop it and let "
                "Puppet recreate it) and run Puppet again.") from exc
        return f"WordPress was already installed; {user} can log in."
    if not installer_offered(first.body):
        raise WordPressError(f"{INSTALL} answered without the installation form: {messages(first.body)}")

    answer = session.request(f"{INSTALL}?step=2", {
        "weblog_title": env["WORDPRESS_SITE_TITLE"],
        "user_name": user,
        "admin_password": password,
        "admin_password2": password,
        "admin_email": email,
        "blog_public": env.get("WORDPRESS_PUBLIC") or "1",
        "language": "",
        "Submit": "Install WordPress",
    })  # fmt: skip
    if answer.status != 200 or "install-success" not in answer.body:
        raise WordPressError(
            f"the WordPress installer refused or failed (HTTP {answer.status}): {messages(answer.body)}")
    log_in(session, user, password)
    title = env["WORDPRESS_SITE_TITLE"]
    return f"WordPress installed: administrator {user} <{email}>, title {title!r}; they can log in."


def main() -> int:
    if len(sys.argv) > 1:
        print(__doc__)
        return 0 if sys.argv[1] in ("-h", "--help") else 2
    try:
        print(f"{PROG}: {install(dict(os.environ))}")
    except WordPressError as exc:
        print(f"{PROG}: WordPress installation failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
