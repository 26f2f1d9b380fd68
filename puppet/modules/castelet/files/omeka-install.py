#!/usr/bin/python3
"""castelet-omeka-install: completes a fresh Omeka S installation through its own web installer.

Managed by Puppet (castelet::profile::omeka_s, through castelet::web_installer), installed as
/usr/local/sbin/castelet-omeka-install; what it shares with the other installers (HTTP session,
waiting, settings, errors) is castelet_web_installer.py, in /usr/local/lib/castelet/python.

Why the web installer over HTTP, and not a PHP CLI script booting Omeka:
* The installer form is Omeka S's public, long-stable contract (Omeka\\Form\\InstallationForm:
  `user[email]`, `user[email-confirm]`, `user[name]`, `user[password-confirm][password]`,
  `user[password-confirm][password-confirm]`, `settings[installation_title]`,
  `settings[time_zone]`, `settings[locale]`). Posting it runs exactly what a person at
  /install runs: Omeka\\Controller\\InstallController validates the form, then
  Omeka\\Installation\\Installer runs the pre-tasks (environment, writable files/) and the
  tasks (schema, migrations, vocabularies, templates, first user, settings) - in Apache's PHP,
  as www-data, with Apache's php.ini. A CLI script would depend on internal classes and
  service names (Application::init, 'Omeka\\Installer', task variable keys), on php-cli being
  installed, and would run as another user and with another php.ini than the site.
* The form has no CSRF element (InstallationForm removes `installationform_csrf`) and needs no
  session before installation, so one POST is enough. Success is a redirect to the `login`
  route; a failure re-renders the form with `<ul class="messages"><li class="error">`; unmet
  requirements are listed in `<ul class="pre-errors">` on GET. Once installed, /install
  redirects to /admin (InstallController::indexAction).
* After installing, it logs in for real (Omeka\\Controller\\LoginController: `email`,
  `password`, CSRF element `loginform_csrf`, session cookie) and checks that the admin
  dashboard answers: the installation is only reported done when the administrator can use it.

Settings come from the environment (set by Puppet's exec), the password from a root-only file
whose path is given: it is never on a command line, in the environment or in the output.

  OMEKA_BASE_URL      where to connect (default http://127.0.0.1); an https:// URL on the loopback
                      address is not certificate-checked (the certificate may still be the
                      self-signed one of first boot, and loopback traffic stays on the node)
  OMEKA_HOST          Host header: the Apache ServerName of the Omeka S virtual host
  OMEKA_ADMIN_EMAIL   e-mail (login) of the first global administrator
  OMEKA_ADMIN_NAME    display name of that administrator
  OMEKA_ADMIN_PASSWORD_FILE  file holding the administrator's password
  OMEKA_SITE_TITLE    installation title
  OMEKA_TIMEZONE      time zone (a PHP DateTimeZone identifier, e.g. UTC)
  OMEKA_LOCALE        locale (en_US, or another locale of application/language)
  OMEKA_WAIT          seconds to wait for the web server to answer (default 120)

Exit status 0: installed now, or already installed and the administrator can log in.
Exit status 1: anything else, with the reason on stderr (never the password).
"""

from __future__ import annotations

import html.parser
import os
import ssl
import sys
import urllib.parse
from dataclasses import dataclass, field

# The shared module where castelet::web_installer::library installs it, else beside this script.
sys.path[:0] = ["/usr/local/lib/castelet/python", os.path.dirname(os.path.abspath(__file__))]
import castelet_web_installer as web  # noqa: E402

PROG = "castelet-omeka-install"
SPECIAL_USE_TLDS = {"test", "example", "invalid", "localhost", "local", "internal", "lan", "home", "corp"}
TIMEOUT = 600  # the real installer imports vocabularies: allow it minutes, not seconds

InstallError = web.InstallError  # a failure to report and exit with status 1
Page = web.Page  # one HTTP answer: status, location, body


@dataclass
class Form:
    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)


class PageParser(html.parser.HTMLParser):
    """Forms and their fields, Omeka's messages and pre-installation errors of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.errors: list[str] = []
        self.pre_errors: list[str] = []
        self._form: Form | None = None
        self._list: str | None = None  # "messages" or "pre-errors"
        self._item: list[str] | None = None
        self._item_is_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "form":
            self._form = Form(a)
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and self._form is not None and a.get("name"):
            self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "ul" and ("messages" in classes or "pre-errors" in classes):
            self._list = "messages" if "messages" in classes else "pre-errors"
        elif tag == "li" and self._list is not None:
            self._item = []
            self._item_is_error = self._list == "pre-errors" or "error" in classes

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "li" and self._item is not None:
            text = " ".join("".join(self._item).split())
            if self._item_is_error and text:
                (self.pre_errors if self._list == "pre-errors" else self.errors).append(text)
            self._item = None
        elif tag == "ul":
            self._list = None

    def handle_data(self, data: str) -> None:
        if self._item is not None:
            self._item.append(data)


def parse(body: str) -> PageParser:
    parser = PageParser()
    parser.feed(body)
    parser.close()
    return parser


class Client(web.Session):
    """HTTP to base_url with a fixed Host header and a cookie jar; redirects are not followed
    (follow() does, with GET, to the redirect's path)."""

    def __init__(self, base_url: str, host: str, context: ssl.SSLContext | None = None) -> None:
        super().__init__(base_url, host, context, timeout=TIMEOUT, app="Omeka S")

    def next_target(self, location: str) -> str:
        return urllib.parse.urlsplit(location).path or "/"


def path_of(location: str) -> str:
    return urllib.parse.urlsplit(location).path.rstrip("/") or "/"


def check_login(client: Client, email: str, password: str) -> None:
    """Log in through /login like a browser and check that the admin dashboard answers."""
    where, page = client.follow("/login")
    if where.rstrip("/") != "/login" or page.status != 200:
        raise InstallError(f"GET /login ended at {where} with HTTP {page.status}, not the login form")
    forms = [f for f in parse(page.body).forms if "email" in f.fields and "password" in f.fields]
    if not forms:
        raise InstallError("the login page has no form with `email` and `password` fields")
    form = forms[0]
    data = {name: value for name, value in form.fields.items() if name.endswith("_csrf")}
    if not data:
        raise InstallError("the login form has no CSRF element (`loginform_csrf`)")
    data.update({"email": email, "password": password, "submit": "Log in"})
    action = form.attrs.get("action") or "/login"
    answer = client.request(action, data)
    if answer.status not in (302, 303):
        errors = parse(answer.body).errors
        raise InstallError(
            f"logging in as {email} failed (HTTP {answer.status}): " + ("; ".join(errors) or "no message")
        )
    where, admin = client.follow(answer.location)
    if admin.status != 200 or not where.startswith("/admin") or 'href="/logout"' not in admin.body.replace("'", '"'):
        raise InstallError(f"after logging in, {where} answered HTTP {admin.status} without the admin dashboard")


def install(env: dict[str, str]) -> str:
    web.require_env(env, ("OMEKA_HOST", "OMEKA_ADMIN_EMAIL", "OMEKA_ADMIN_NAME", "OMEKA_ADMIN_PASSWORD_FILE",
                          "OMEKA_SITE_TITLE", "OMEKA_TIMEZONE", "OMEKA_LOCALE"))  # fmt: skip
    email = env["OMEKA_ADMIN_EMAIL"]
    tld = email.rpartition(".")[2].lower()
    if "@" not in email or tld in SPECIAL_USE_TLDS:
        # Omeka validates the e-mail only after creating its tables (CreateFirstUserTask, Laminas
        # EmailAddress knows IANA's TLDs only): refuse it here rather than leave a half-installed site.
        raise InstallError(f"Omeka S refuses the administrator e-mail {email!r} (unknown top-level domain)")
    password = web.read_password(env["OMEKA_ADMIN_PASSWORD_FILE"])

    client = Client(env.get("OMEKA_BASE_URL") or "http://127.0.0.1", env["OMEKA_HOST"])
    first = web.wait_for(client, "/install", float(env.get("OMEKA_WAIT") or 120))

    if first.status in (301, 302, 303, 307) and path_of(first.location) != "/install":
        # InstallController: an installed Omeka S redirects /install to the admin route.
        try:
            check_login(client, email, password)
        except InstallError as exc:
            raise InstallError(
                f"Omeka S says it is already installed (/install redirects to {first.location}), but the "
                f"administrator {email} cannot use it: {exc}. If an earlier installation stopped halfway, "
                "empty the Omeka S database (drop and let Puppet recreate it) and run Puppet again."
            ) from exc
        return f"Omeka S was already installed; {email} can log in."
    if first.status != 200:
        raise InstallError(f"GET /install answered HTTP {first.status} {first.location}".rstrip())

    page = parse(first.body)
    if page.pre_errors:
        raise InstallError("Omeka S installation requirements are not met: " + "; ".join(page.pre_errors))
    if not any("user[email]" in form.fields for form in page.forms):
        raise InstallError("GET /install answered HTTP 200 without the installation form")

    answer = client.request("/install", {
        "user[email]": email,
        "user[email-confirm]": email,
        "user[name]": env["OMEKA_ADMIN_NAME"],
        "user[password-confirm][password]": password,
        "user[password-confirm][password-confirm]": password,
        "settings[installation_title]": env["OMEKA_SITE_TITLE"],
        "settings[time_zone]": env["OMEKA_TIMEZONE"],
        "settings[locale]": env["OMEKA_LOCALE"],
        "submit": "Submit",
    })  # fmt: skip
    if answer.status not in (302, 303) or path_of(answer.location) != "/login":
        result = parse(answer.body)
        reasons = result.errors + result.pre_errors
        raise InstallError(
            f"the Omeka S installer refused or failed (HTTP {answer.status}): "
            + ("; ".join(reasons) or "no error message in the answer")
        )
    check_login(client, email, password)
    return (
        f"Omeka S installed: global administrator {email}, title {env['OMEKA_SITE_TITLE']!r}, "
        f"time zone {env['OMEKA_TIMEZONE']}, locale {env['OMEKA_LOCALE']}; the administrator can log in."
    )


def main() -> int:
    return web.main(PROG, "Omeka S", __doc__, install)


if __name__ == "__main__":
    sys.exit(main())
