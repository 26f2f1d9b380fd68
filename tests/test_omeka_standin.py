"""The Omeka S stand-in and Castelet's Omeka S installer, for real, without a cloud.

A throwaway MariaDB (its own datadir and unix socket under a temporary directory) and PHP's
built-in web server run the stand-in release (`tests/e2e/omeka_standin.py`); the installer
Puppet ships (`puppet/modules/castelet/files/omeka-install.py`) completes the installation
over HTTP, then `login()` and `install_form_offered()` check the result as the end-to-end test
does on a deployed instance. Skipped, saying why, when php-cli (with pdo_mysql) or the MariaDB
server binaries are missing (`apt-get install php-cli php-mysql php-mbstring php-xml
mariadb-server`).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.omeka_standin import LoginError, fetch, install_form_offered, login, standin_archive

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALLER = REPO_ROOT / "puppet" / "modules" / "castelet" / "files" / "omeka-install.py"
HOST = "omeka.atlas.example.org"
ADMIN_EMAIL = "ada@example.org"
TITLE = "Atlas & co's <medieval> charters"
PHP_EXTENSIONS = {"pdo_mysql", "mbstring", "xml", "fileinfo"}


def new_password() -> str:
    """A password like castelet::secret's: 40 random letters and digits."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


def _which(name: str, *extra_dirs: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(extra_dirs))


def php_binary() -> str:
    """php-cli with the extensions the stand-in's pre-installation checks ask for, or skip."""
    php = _which("php", "/usr/bin")
    if php is None:
        pytest.skip("php-cli is missing: apt-get install php-cli php-mysql php-mbstring php-xml")
    modules = set(subprocess.run([php, "-m"], capture_output=True, text=True, check=True).stdout.split())
    missing = PHP_EXTENSIONS - modules
    if missing:
        pytest.skip(f"php-cli lacks the extensions {sorted(missing)}: apt-get install php-mysql php-mbstring php-xml")
    return php


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayMariaDB:
    """A MariaDB server of its own: datadir and unix socket in a temporary directory, no TCP."""

    def __init__(self) -> None:
        self.mariadbd = _which("mariadbd", "/usr/sbin", "/usr/libexec")
        self.install_db = _which("mariadb-install-db", "/usr/bin")
        self.client = _which("mariadb", "/usr/bin")
        missing = [n for n, p in (("mariadbd", self.mariadbd), ("mariadb-install-db", self.install_db),
                                  ("mariadb", self.client)) if p is None]  # fmt: skip
        if missing:
            pytest.skip(f"MariaDB server binaries missing ({', '.join(missing)}): apt-get install mariadb-server")
        # Short path: a unix socket path is limited to 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="castelet-mdb-"))
        self.socket = self.root / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ThrowawayMariaDB:
        datadir = self.root / "data"
        user = ["--user=root"] if os.geteuid() == 0 else []
        proc = subprocess.run(
            [str(self.install_db), "--no-defaults", f"--datadir={datadir}", *user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        self.proc = subprocess.Popen(
            [str(self.mariadbd), "--no-defaults", f"--datadir={datadir}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={self.root / 'mysqld.pid'}", f"--log-error={self.root / 'error.log'}",
             *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(self.client_cmd("SELECT 1"), capture_output=True, text=True)
            if probe.returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "error.log").read_text() if (self.root / "error.log").exists() else ""
                self.stop()
                raise AssertionError(f"the throwaway MariaDB did not start:\n{log[-3000:]}")
            time.sleep(0.3)

    def client_cmd(self, sql: str, database: str | None = None) -> list[str]:
        return [str(self.client), "--no-defaults", f"--socket={self.socket}", "--user=root", "--batch",
                "--skip-column-names", f"--execute={sql}", *([database] if database else [])]  # fmt: skip

    def sql(self, statement: str, database: str | None = None) -> str:
        proc = subprocess.run(self.client_cmd(statement, database), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def create_database(self, name: str, user: str, password: str) -> None:
        self.sql(
            f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; "
            f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'; "
            f"GRANT ALL PRIVILEGES ON {name}.* TO '{user}'@'localhost';"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class StandinSite:
    """The stand-in release unpacked like Puppet does, served by `php -S` on 127.0.0.1."""

    def __init__(self, root: Path, db: ThrowawayMariaDB, db_name: str, db_password: str, php: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(_archive_file(root, "9.9.9-test")) as archive:
            archive.extractall(root)
        self.docroot = root / "omeka-s"
        (self.docroot / "config" / "database.ini").write_text(
            f'user     = "{db_name}"\npassword = "{db_password}"\ndbname   = "{db_name}"\n'
            f'host     = "localhost"\nunix_socket = "{db.socket}"\n'
        )
        self.db = db
        self.db_name = db_name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = root / "php-server.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [php, "-S", f"127.0.0.1:{self.port}", "-t", str(self.docroot), str(self.docroot / "index.php")],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"php -S did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def _archive_file(root: Path, version: str) -> Path:
    path = root / f"omeka-s-{version}.zip"
    path.write_bytes(standin_archive(version))
    return path


def run_installer(site: StandinSite, password_file: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """The installer as Puppet's exec runs it: settings in the environment, password in a file."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMEKA_BASE_URL": site.base_url,
        "OMEKA_HOST": HOST,
        "OMEKA_ADMIN_EMAIL": ADMIN_EMAIL,
        "OMEKA_ADMIN_NAME": "Administrator",
        "OMEKA_ADMIN_PASSWORD_FILE": str(password_file),
        "OMEKA_SITE_TITLE": TITLE,
        "OMEKA_TIMEZONE": "America/Toronto",
        "OMEKA_LOCALE": "en_US",
        "OMEKA_WAIT": "10",
        **overrides,
    }
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    return subprocess.run([python, str(INSTALLER)], env=env, capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mariadb() -> Iterator[ThrowawayMariaDB]:
    server = ThrowawayMariaDB()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def site(mariadb: ThrowawayMariaDB, tmp_path: Path) -> Iterator[StandinSite]:
    php = php_binary()
    db_name = f"omeka_{secrets.token_hex(4)}"
    db_password = new_password()
    mariadb.create_database(db_name, db_name, db_password)
    served = StandinSite(tmp_path, mariadb, db_name, db_password, php)
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "omeka-admin"
    path.write_text(new_password() + "\n")
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------------------
# the archive
# --------------------------------------------------------------------------------------


def test_archive_has_the_release_layout_and_is_reproducible() -> None:
    data = standin_archive("1.0.0-test")
    assert data == standin_archive("1.0.0-test")
    assert data != standin_archive("2.0.0-test")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"omeka-s/index.php", "omeka-s/.htaccess", "omeka-s/config/local.config.php",
                "omeka-s/config/database.ini", "omeka-s/files/index.html"} <= names  # fmt: skip
        assert all(name.startswith("omeka-s/") for name in names)
        assert "1.0.0-test" in archive.read("omeka-s/application/standin.php").decode()
        assert "Require all denied" in archive.read("omeka-s/.htaccess").decode()


def test_php_sources_parse(tmp_path: Path) -> None:
    php = php_binary()
    with zipfile.ZipFile(_archive_file(tmp_path, "1.0.0-test")) as archive:
        archive.extractall(tmp_path)
    for source in sorted(tmp_path.rglob("*.php")):
        proc = subprocess.run([php, "-l", str(source)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------
# the installation
# --------------------------------------------------------------------------------------


def test_a_fresh_site_sends_everything_to_the_installer(site: StandinSite) -> None:
    for path in ("/", "/login", "/admin", "/s/anything"):
        answer = fetch(site.base_url, HOST, path)
        assert (answer.status, answer.location) == (302, "/install"), path
    page = fetch(site.base_url, HOST, "/install")
    assert page.status == 200 and install_form_offered(page.body)
    # The installation form has no CSRF element (InstallationForm removes it).
    assert "_csrf" not in page.body
    assert fetch(site.base_url, HOST, "/config/database.ini").status == 403


def test_installer_installs_and_closes_the_installer(site: StandinSite, password_file: Path) -> None:
    password = password_file.read_text().strip()
    proc = run_installer(site, password_file)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert password not in proc.stdout + proc.stderr
    assert "Omeka S installed" in proc.stdout and ADMIN_EMAIL in proc.stdout

    # /install never offers the form again: 302 to /admin, and following it ends on the login.
    answer = fetch(site.base_url, HOST, "/install")
    assert (answer.status, answer.location) == (302, "/admin")
    assert not install_form_offered(answer.body)
    followed = fetch(site.base_url, HOST, "/install", follow=True)
    assert followed.status == 200 and urllib.parse.urlsplit(followed.url).path == "/login"
    assert not install_form_offered(followed.body)

    # The admin dashboard only after a real form login with the generated password.
    anonymous = fetch(site.base_url, HOST, "/admin")
    assert (anonymous.status, anonymous.location) == (302, "/login")
    dashboard = login(site.base_url, HOST, ADMIN_EMAIL, password)
    assert "Admin dashboard" in dashboard and 'href="/logout"' in dashboard
    assert "Atlas &amp; co&#039;s &lt;medieval&gt; charters" in dashboard
    with pytest.raises(LoginError, match="Email or password is invalid"):
        login(site.base_url, HOST, ADMIN_EMAIL, password[:-1])

    # The public front page names the project; the health check's page answers 200.
    front = fetch(site.base_url, HOST, "/")
    assert front.status == 200 and "Atlas &amp; co&#039;s &lt;medieval&gt; charters" in front.body
    health = fetch(site.base_url, HOST, "/login")
    assert health.status == 200 and "loginform_csrf" in health.body

    # What Omeka S's tables hold.
    rows = site.db.sql("SELECT email, name, role, is_active, password_hash FROM user", site.db_name)
    (row,) = [line.split("\t") for line in rows.splitlines()]
    assert row[:4] == [ADMIN_EMAIL, "Administrator", "global_admin", "1"]
    assert row[4].startswith("$2y$") and password not in row[4]
    settings = dict(line.split("\t", 1) for line in site.db.sql("SELECT id, value FROM setting", site.db_name)
                    .splitlines())  # fmt: skip
    assert json.loads(settings["installation_title"]) == TITLE
    assert json.loads(settings["administrator_email"]) == ADMIN_EMAIL
    assert json.loads(settings["time_zone"].replace("\\\\", "\\")) == "America/Toronto"
    assert json.loads(settings["locale"]) == "en_US"

    # Idempotent: a second run only checks that the administrator can log in.
    again = run_installer(site, password_file)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already installed" in again.stdout


def test_installer_reports_the_installer_s_errors_without_the_password(
    site: StandinSite, password_file: Path
) -> None:
    password = password_file.read_text().strip()
    proc = run_installer(site, password_file, OMEKA_TIMEZONE="Mars/Olympus_Mons")
    assert proc.returncode == 1
    assert "Time zone: The input was not found in the haystack" in proc.stderr
    assert password not in proc.stdout + proc.stderr
    # Rejected by the form: nothing was installed, the installer still answers.
    assert install_form_offered(fetch(site.base_url, HOST, "/install").body)


def test_installer_reports_unmet_requirements(site: StandinSite, password_file: Path) -> None:
    (site.docroot / "files").rename(site.docroot / "files.away")
    proc = run_installer(site, password_file)
    assert proc.returncode == 1
    assert "requirements are not met" in proc.stderr and "is not a writable directory" in proc.stderr


def test_a_half_installed_site_fails_loudly(site: StandinSite, password_file: Path) -> None:
    # The installer refuses an e-mail Omeka S would only reject after creating its tables...
    refused = run_installer(site, password_file, OMEKA_ADMIN_EMAIL="ada@lab.test")
    assert refused.returncode == 1 and "unknown top-level domain" in refused.stderr
    assert install_form_offered(fetch(site.base_url, HOST, "/install").body)
    # ...which is what Omeka S does when that form is posted by hand: tables, no administrator.
    form = {"user[email]": "ada@lab.test", "user[email-confirm]": "ada@lab.test", "user[name]": "Ada",
            "user[password-confirm][password]": "secret-1", "user[password-confirm][password-confirm]": "secret-1",
            "settings[installation_title]": "T", "settings[time_zone]": "UTC", "settings[locale]": "en_US"}  # fmt: skip
    request = urllib.request.Request(f"{site.base_url}/install", data=urllib.parse.urlencode(form).encode(),
                                     headers={"Host": HOST})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert "There were errors during installation." in answer.read().decode()
    assert fetch(site.base_url, HOST, "/install").location == "/admin"
    proc = run_installer(site, password_file)
    assert proc.returncode == 1
    assert "already installed" in proc.stderr and "cannot use it" in proc.stderr


def test_login_needs_the_csrf_token_of_its_session(site: StandinSite, password_file: Path) -> None:
    assert run_installer(site, password_file).returncode == 0
    data = urllib.parse.urlencode({"email": ADMIN_EMAIL, "password": password_file.read_text().strip()}).encode()
    request = urllib.request.Request(f"{site.base_url}/login", data=data, headers={"Host": HOST})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        assert "CSRF: Invalid or missing CSRF token" in answer.read().decode()
