#!/usr/bin/python3
"""castelet-wordpress-install: completes a fresh WordPress installation through its own installer.

Managed by Puppet (castelet::profile::wordpress, through castelet::web_installer), installed as
/usr/local/sbin/castelet-wordpress-install; what it shares with the other installers (HTTP
session, waiting, settings, errors) is castelet_web_installer.py, in /usr/local/lib/castelet/python.

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
import os
import re
import ssl
import sys

# The shared module where castelet::web_installer::library installs it, else beside this script.
sys.path[:0] = ["/usr/local/lib/castelet/python", os.path.dirname(os.path.abspath(__file__))]
import castelet_web_installer as web  # noqa: E402

PROG = "castelet-wordpress-install"
TIMEOUT = 300
INSTALL = "/wp-admin/install.php"

InstallError = web.InstallError  # a failure to report and exit with status 1
Answer = web.Page  # one HTTP answer: status, location, body


class Session(web.Session):
    """A browser-like session on one site: fixed Host header, cookies, redirects followed only
    within the site (WordPress redirects to its absolute URL, https://<host>/...)."""

    def __init__(self, base_url: str, host: str, context: ssl.SSLContext | None = None) -> None:
        super().__init__(base_url, host, context, timeout=TIMEOUT, app="WordPress")


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


def installer_not_ready(answer: Answer) -> str | None:
    """Why install.php is not ready yet (anything but HTTP 200), for web.wait_for."""
    return None if answer.status == 200 else f"HTTP {answer.status}: {messages(answer.body)}"


def log_in(session: Session, login: str, password: str) -> str:
    """Log in through wp-login.php like a browser; returns the dashboard's HTML."""
    session.request("/wp-login.php")  # sets WordPress's test cookie
    answer = session.request("/wp-login.php", {
        "log": login, "pwd": password, "wp-submit": "Log In", "redirect_to": "/wp-admin/", "testcookie": "1",
    })  # fmt: skip
    if answer.status not in (302, 303):
        raise InstallError(f"logging in as {login} failed (HTTP {answer.status}): {messages(answer.body)}")
    where, dashboard = session.follow(answer.location)
    if dashboard.status != 200 or "/wp-admin" not in where or "wp-admin-bar-logout" not in dashboard.body:
        raise InstallError(f"after logging in, {where} answered HTTP {dashboard.status} without the dashboard")
    return dashboard.body


def install(env: dict[str, str]) -> str:
    web.require_env(env, ("WORDPRESS_HOST", "WORDPRESS_SITE_TITLE", "WORDPRESS_ADMIN_USER",
                          "WORDPRESS_ADMIN_EMAIL", "WORDPRESS_ADMIN_PASSWORD_FILE"))  # fmt: skip
    user, email = env["WORDPRESS_ADMIN_USER"], env["WORDPRESS_ADMIN_EMAIL"]
    password = web.read_password(env["WORDPRESS_ADMIN_PASSWORD_FILE"])

    session = Session(env.get("WORDPRESS_BASE_URL") or "https://127.0.0.1", env["WORDPRESS_HOST"])
    first = web.wait_for(session, INSTALL, float(env.get("WORDPRESS_WAIT") or 120), not_ready=installer_not_ready)
    if already_installed(first.body):
        try:
            log_in(session, user, password)
        except InstallError as exc:
            raise InstallError(
                f"WordPress says it is already installed, but the administrator {user} cannot use it: {exc}. "
                "If an earlier installation stopped halfway, empty the WordPress database (drop it and let "
                "Puppet recreate it) and run Puppet again.") from exc
        return f"WordPress was already installed; {user} can log in."
    if not installer_offered(first.body):
        raise InstallError(f"{INSTALL} answered without the installation form: {messages(first.body)}")

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
        raise InstallError(
            f"the WordPress installer refused or failed (HTTP {answer.status}): {messages(answer.body)}")
    log_in(session, user, password)
    title = env["WORDPRESS_SITE_TITLE"]
    return f"WordPress installed: administrator {user} <{email}>, title {title!r}; they can log in."


def main() -> int:
    return web.main(PROG, "WordPress", __doc__, install)


if __name__ == "__main__":
    sys.exit(main())
