"""castelet_web_installer: what Castelet's web-application installers share.

Managed by Puppet (castelet::web_installer::library), installed as
/usr/local/lib/castelet/python/castelet_web_installer.py and imported by the installers
(/usr/local/sbin/castelet-omeka-install, /usr/local/sbin/castelet-wordpress-install), each of
which completes its application's installation through the application's own web installer,
on the node itself (https://127.0.0.1, Host header = the site's name).

Shared here, the application-neutral parts:
* `Session`: a browser-like HTTP session on one virtual host: fixed Host header, a cookie jar,
  redirects returned rather than followed (`follow()` follows them on request, within the site),
  certificates not checked on the loopback address only (it may still be the self-signed one of
  first boot, and loopback traffic stays on the node);
* `wait_for()`: waits for the web server to answer;
* `require_env()` and `read_password()`: the settings from the environment, the password from
  its root-only file (never on a command line, in the environment or in the output);
* `InstallError` and `main()`: a failure is reported on stderr with exit status 1.

Standard library only, Python 3.11 (Debian 12's and 13's system python3).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

LOOPBACK = ("127.0.0.1", "::1", "localhost")
REDIRECTS = (301, 302, 303, 307, 308)


class InstallError(Exception):
    """A failure to report and exit with status 1."""


@dataclass
class Page:
    """One HTTP answer: status, Location header ("" if none) and body as text."""

    status: int
    location: str
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Session:
    """HTTP to base_url as one site (`host`, the Host header) with a cookie jar; redirects are
    returned, not followed, unless asked with follow(). `app` names the application in errors."""

    def __init__(self, base_url: str, host: str, context: ssl.SSLContext | None = None, *,
                 timeout: float = 300, app: str = "the site") -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.host = host
        self.timeout = timeout
        self.app = app
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme == "https" and context is None:
            if parts.hostname not in LOOPBACK:
                raise InstallError(f"https to {parts.hostname} needs an SSL context that verifies it")
            # Loopback: the node talks to itself (its certificate may still be the self-signed one).
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.cookies = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect(), urllib.request.HTTPCookieProcessor(self.cookies)]
        if context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)

    def url(self, target: str) -> str:
        """Absolute URL on base_url for a path or for a URL naming this site (or base_url's host)."""
        parts = urllib.parse.urlsplit(target)
        if parts.netloc and parts.hostname not in (self.host, urllib.parse.urlsplit(self.base_url).hostname):
            raise InstallError(f"{self.app} redirected to another site: {target}")
        return self.base_url + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def request(self, target: str, form: Mapping[str, str] | None = None, payload: object = None,
                headers: Mapping[str, str] | None = None) -> Page:  # fmt: skip
        """GET, or POST a form or a JSON payload; redirects are returned, not followed."""
        data, sent = None, {"Host": self.host, **(headers or {})}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
        elif payload is not None:
            data, sent["Content-Type"] = json.dumps(payload).encode(), "application/json"
        req = urllib.request.Request(self.url(target), data=data, headers=sent)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return Page(resp.status, resp.headers.get("Location", ""), resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            return Page(exc.code, exc.headers.get("Location", ""), exc.read().decode("utf-8", "replace"))

    def next_target(self, location: str) -> str:
        """What follow() requests for a redirect to `location` (and returns if it is the last)."""
        return location

    def follow(self, target: str, form: Mapping[str, str] | None = None, limit: int = 5) -> tuple[str, Page]:
        """Request target, then follow redirects with GET; returns the final target and page."""
        page = self.request(target, form)
        while page.status in REDIRECTS and page.location and limit > 0:
            target = self.next_target(page.location)
            page, limit = self.request(target), limit - 1
        return target, page


def wait_for(session: Session, target: str, seconds: float,
             not_ready: Callable[[Page], str | None] = lambda page: None, pause: float = 2) -> Page:  # fmt: skip
    """GET target until the server answers and not_ready(page) has no reason to wait (None).

    Raises InstallError, with the last reason, once `seconds` have passed.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            page = session.request(target)
            reason = not_ready(page)
            if reason is None:
                return page
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = str(exc)
        if time.monotonic() > deadline:
            raise InstallError(
                f"{target} on {session.base_url} (Host: {session.host}) did not answer after {seconds:.0f} s: {reason}"
            )
        time.sleep(pause)


def require_env(env: Mapping[str, str], names: Sequence[str]) -> None:
    """Raises InstallError naming the variables among `names` that are unset or empty."""
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise InstallError("missing environment variables: " + ", ".join(missing))


def read_password(path: str) -> str:
    """The administrator's password from its file (stripped); never echoed in an error."""
    try:
        with open(path, encoding="utf-8") as fh:
            password = fh.read().strip()
    except OSError as exc:
        raise InstallError(f"cannot read the administrator's password file: {exc.strerror}") from exc
    if not password:
        raise InstallError(f"the administrator's password file {path} is empty")
    return password


def main(prog: str, app: str, doc: str | None, install: Callable[[dict[str, str]], str],
         argv: Sequence[str] | None = None) -> int:  # fmt: skip
    """An installer's command line: no arguments (`-h`/`--help` prints `doc`); settings from the
    environment. Prints install()'s result (status 0), or the InstallError on stderr (status 1)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(doc)
        return 0 if args[0] in ("-h", "--help") else 2
    try:
        print(f"{prog}: {install(dict(os.environ))}")
    except InstallError as exc:
        print(f"{prog}: {app} installation failed: {exc}", file=sys.stderr)
        return 1
    return 0
