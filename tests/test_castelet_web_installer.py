"""castelet_web_installer, the module the web-application installers share (Omeka S, WordPress).

`puppet/modules/castelet/files/castelet_web_installer.py`, installed on the node by
`castelet::web_installer::library`. Its session is checked against a local `http.server` on the
loopback address: the Host header is the site's, cookies are kept, redirects are returned rather
than followed (and followed on request, within the site only), forms and JSON are posted. Then
waiting for a server that never answers, the settings and password file, and the command line.
Both installer scripts import it from their own folder in a checkout.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

FILES = Path(__file__).resolve().parents[1] / "puppet" / "modules" / "castelet" / "files"
HOST = "site.atlas.example.org"


def _load(name: str, path: Path) -> ModuleType:
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


web = _load("castelet_web_installer", FILES / "castelet_web_installer.py")


class _Handler(http.server.BaseHTTPRequestHandler):
    """/redirect -> /target (same site), /away -> another site, /loop -> itself, /cookie sets a
    cookie; every answer is JSON: the method, path, Host, Cookie, Content-Type and body seen."""

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "cookie": self.headers.get("Cookie"),
            "type": self.headers.get("Content-Type"),
            "body": self.rfile.read(length).decode() if length else "",
        }
        body = json.dumps(seen).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self._answer(302, {"Location": f"https://{HOST}/target?step=2"})
        elif self.path == "/away":
            self._answer(302, {"Location": "https://elsewhere.example.net/"})
        elif self.path == "/loop":
            self._answer(307, {"Location": "/loop"})
        elif self.path == "/cookie":
            self._answer(200, {"Set-Cookie": "session=abc; Path=/"})
        elif self.path == "/missing":
            self._answer(404)
        else:
            self._answer(200)

    def do_POST(self) -> None:
        if self.path == "/form":
            self._answer(303, {"Location": "/redirect"})
        else:
            self._answer(200)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _seen(page: object) -> dict[str, str | None]:
    return dict(json.loads(page.body))  # type: ignore[attr-defined]


def test_requests_carry_the_site_s_host_and_its_cookies(base_url: str) -> None:
    session = web.Session(base_url, HOST)
    first = session.request("/cookie")
    assert first.status == 200 and _seen(first)["host"] == HOST and _seen(first)["cookie"] is None
    assert _seen(session.request("/")).get("cookie") == "session=abc"
    assert _seen(web.Session(base_url, HOST).request("/"))["cookie"] is None  # one jar per session
    missing = session.request("/missing")  # an HTTP error is an answer, not an exception
    assert missing.status == 404 and _seen(missing)["path"] == "/missing"


def test_redirects_are_returned_and_followed_only_on_request(base_url: str) -> None:
    session = web.Session(base_url, HOST)
    page = session.request("/redirect")
    assert (page.status, page.location) == (302, f"https://{HOST}/target?step=2")
    where, final = session.follow("/redirect")
    # The site's absolute URL is fetched from base_url, with the Host header, query kept.
    assert where == f"https://{HOST}/target?step=2"
    assert final.status == 200 and _seen(final)["path"] == "/target?step=2" and _seen(final)["host"] == HOST
    # A POST answered by a redirect continues with GET.
    where, final = session.follow("/form", {"a": "1"})
    assert final.status == 200 and _seen(final)["method"] == "GET" and where.endswith("/target?step=2")
    # follow() gives up after `limit` redirects and returns the last redirect.
    where, final = session.follow("/loop", limit=2)
    assert (where, final.status) == ("/loop", 307)


def test_next_target_lets_an_installer_follow_paths_only(base_url: str) -> None:
    class PathsOnly(web.Session):  # type: ignore[misc,name-defined]
        def next_target(self, location: str) -> str:
            return "/only-path"

    where, final = PathsOnly(base_url, HOST).follow("/redirect")
    assert where == "/only-path" and _seen(final)["path"] == "/only-path"


def test_no_redirect_to_another_site(base_url: str) -> None:
    session = web.Session(base_url, HOST, app="Omeka S")
    with pytest.raises(web.InstallError, match=r"Omeka S redirected to another site: https://elsewhere"):
        session.follow("/away")
    # base_url's own host is this site too.
    assert session.url("http://127.0.0.1/x?y=1") == f"{base_url}/x?y=1"


def test_forms_and_json_are_posted(base_url: str) -> None:
    session = web.Session(base_url, HOST)
    form = _seen(session.request("/post", {"user[email]": "ada@example.org", "title": "A & B"}))
    assert form["method"] == "POST" and form["type"] == "application/x-www-form-urlencoded"
    assert form["body"] == "user%5Bemail%5D=ada%40example.org&title=A+%26+B"
    sent = _seen(session.request("/post", payload={"status": "publish"}, headers={"X-WP-Nonce": "n"}))
    assert sent["type"] == "application/json" and json.loads(str(sent["body"])) == {"status": "publish"}


def test_https_is_unchecked_on_the_loopback_address_only() -> None:
    for loopback in ("https://127.0.0.1", "https://[::1]:8443", "https://localhost/"):
        web.Session(loopback, HOST)
    with pytest.raises(web.InstallError, match="needs an SSL context that verifies it"):
        web.Session("https://192.0.2.7", HOST)


def test_wait_for_gives_up_with_the_last_reason() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = web.Session(f"http://127.0.0.1:{port}", HOST, timeout=5)
    start = time.monotonic()
    with pytest.raises(web.InstallError, match=rf"/install on http://127.0.0.1:{port} \(Host: {HOST}\) did not answer"):
        web.wait_for(session, "/install", 0.2, pause=0.05)
    assert time.monotonic() - start < 10


def test_wait_for_waits_until_ready(base_url: str) -> None:
    session = web.Session(base_url, HOST)
    assert web.wait_for(session, "/", 5).status == 200
    with pytest.raises(web.InstallError, match="did not answer after 0 s: HTTP 404"):
        web.wait_for(session, "/missing", 0.1, lambda page: None if page.status == 200 else f"HTTP {page.status}",
                     pause=0.02)  # fmt: skip


def test_settings_and_password_file(tmp_path: Path) -> None:
    with pytest.raises(web.InstallError, match=r"missing environment variables: B, C$"):
        web.require_env({"A": "1", "B": ""}, ("A", "B", "C"))
    web.require_env({"A": "1"}, ("A",))
    secret = tmp_path / "admin"
    with pytest.raises(web.InstallError, match="cannot read the administrator's password file"):
        web.read_password(str(secret))
    secret.write_text("\n")
    with pytest.raises(web.InstallError, match="is empty"):
        web.read_password(str(secret))
    secret.write_text("s3cret\n")
    assert web.read_password(str(secret)) == "s3cret"


def test_main_reports_the_result_or_the_error(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CASTELET_TEST_SETTING", "value")

    def install(env: dict[str, str]) -> str:
        return f"done with {env['CASTELET_TEST_SETTING']}"

    def failing(env: dict[str, str]) -> str:
        raise web.InstallError("the form was refused")

    assert web.main("prog", "App", "usage", install, argv=[]) == 0
    assert capsys.readouterr().out == "prog: done with value\n"
    assert web.main("prog", "App", "usage", failing, argv=[]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "prog: App installation failed: the form was refused\n")
    assert web.main("prog", "App", "usage", install, argv=["--help"]) == 0
    assert capsys.readouterr().out == "usage\n"
    assert web.main("prog", "App", "usage", install, argv=["extra"]) == 2


@pytest.mark.parametrize("script", ["omeka-install.py", "wordpress-install.py"])
def test_the_installers_use_this_module(script: str) -> None:
    """Loaded from a checkout's files/, each installer finds the module beside it."""
    module = _load(script.removesuffix(".py").replace("-", "_"), FILES / script)
    assert module.InstallError is web.InstallError
    session_class = getattr(module, "Client", None) or module.Session
    assert issubclass(session_class, web.Session)
