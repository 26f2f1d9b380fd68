"""castelet-backup, the instance's backup and restore program, run for real.

The program Puppet installs as /usr/local/sbin/castelet-backup runs here as a subprocess against
real restic (the host's Debian package) and two repositories: a local directory and a REST server
(`rclone serve restic`, with a password file). MariaDB's client and dump, systemctl and the
after-restore command are small stand-ins that record their arguments, named through the
configuration's `commands`; a wrapper records every restic command line so the test can prove no
credential ever reaches one.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = REPO_ROOT / "puppet" / "modules" / "castelet" / "files" / "castelet-backup.py"
# The interpreter the instance runs it with (its shebang), when this machine has one.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
REST_USER = "castelet-omeka"
REST_PASSWORD = "p@ss:w/rd %s3cret"  # URL-hostile on purpose: it must be encoded into the URL
REPOSITORY_PASSWORD = "repo-password-0123456789abcdefghijklmnop"
# Long enough for castelet::secret, but not the repository's password.
OTHER_PASSWORD = "another-volume-password-0123456789abcdef"


def load_program() -> ModuleType:
    spec = importlib.util.spec_from_file_location("castelet_backup", PROGRAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["castelet_backup"] = module
    spec.loader.exec_module(module)
    return module


backup_program = load_program()


@pytest.fixture(scope="module")
def initialised_repository(restic_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local repository made once (init derives keys slowly): tests that do not test init copy it."""
    base = tmp_path_factory.mktemp("template")
    (base / "password").write_text(REPOSITORY_PASSWORD + "\n")
    env = {**os.environ, "HOME": str(base), "RESTIC_REPOSITORY": str(base / "repository"),
           "RESTIC_PASSWORD_FILE": str(base / "password")}
    subprocess.run([restic_bin, "init"], env=env, check=True, capture_output=True)
    return base / "repository"


def serve_restic(rclone: str, base: Path, *options: str) -> Iterator[str]:
    """`rclone serve restic` of ``base/repos`` on a free loopback port: its URL while it runs."""
    port = free_port()
    log = (base / "rclone.log").open("wb")
    proc = subprocess.Popen([rclone, "serve", "restic", str(base / "repos"), "--addr", f"127.0.0.1:{port}",
                             *options], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"rclone serve restic did not start: {(base / 'rclone.log').read_text()}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rclone serve restic` with a password (htpasswd {SHA}: rclone 1.60 also takes apr1 and bcrypt)."""
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.skip("rclone is missing: apt-get install rclone (.ci/setup --system installs it)")
    base = tmp_path_factory.mktemp("rest")
    digest = base64.b64encode(hashlib.sha1(REST_PASSWORD.encode()).digest()).decode()
    (base / "htpasswd").write_text(f"{REST_USER}:{{SHA}}{digest}\n")
    (base / "repos").mkdir()
    yield from serve_restic(rclone, base, "--htpasswd", str(base / "htpasswd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@dataclass
class Site:
    """An instance's layout under a temporary root, its configuration and stand-in commands."""

    root: Path
    config_file: Path
    config: dict[str, Any]
    calls: Path

    @property
    def files(self) -> Path:
        return self.root / "srv/data/omeka-files"

    @property
    def app_config(self) -> Path:
        return self.root / "var/www/omeka-s/config"

    @property
    def secrets(self) -> Path:
        return self.root / "var/lib/castelet/secrets"

    @property
    def status_file(self) -> Path:
        return Path(self.config["status_file"])

    def save(self) -> None:
        self.config_file.write_text(json.dumps(self.config, indent=1))

    def run(self, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, str(PROGRAM), "--config", str(self.config_file), *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
                              env={**os.environ, "HOME": str(self.root / "root")})

    def ok(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        proc = self.run(*args, stdin=stdin)
        assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def call_lines(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ok("status").stdout)
        return data


def make_site(tmp_path: Path, restic_bin: str, repository: str) -> Site:
    root = tmp_path / "instance"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    (root / "root").mkdir(parents=True)
    files = root / "srv/data/omeka-files"
    (files / "original/2026").mkdir(parents=True)
    (files / "original/2026/scan.tif").write_bytes(os.urandom(50_000))
    (files / "original/2026/notes.txt").write_text("first notes\n")
    (files / "private.txt").write_text("owner only\n")
    (files / "private.txt").chmod(0o600)
    (files / "latest").symlink_to("original/2026/scan.tif")
    os.utime(files / "original/2026/notes.txt", (1_600_000_000, 1_600_000_000))
    app_config = root / "var/www/omeka-s/config"
    app_config.mkdir(parents=True)
    (app_config / "database.ini").write_text('user = "omeka"\n')
    secrets = root / "var/lib/castelet/secrets"
    secrets.mkdir(parents=True, mode=0o700)
    (secrets / "restic-repository").write_text(REPOSITORY_PASSWORD + "\n")
    (secrets / "restic-repository").chmod(0o600)
    (secrets / "omeka-db").write_text("database password before\n")
    (secrets / "omeka-db").chmod(0o600)
    (tmp_path / "db-content").write_text("INSERT INTO item VALUES (1);\n")

    log = f'printf "%s\\n" "$(basename "$0") $*" >> {calls}\n'
    dump = script(bin_dir / "mariadb-dump",
                  log + f"[ -e {tmp_path}/dump-fails ] && exit 3\ncat {tmp_path}/db-content\n")
    client = script(bin_dir / "mariadb", log + 'for last; do :; done\n'
                    f'case "$*" in *@@datadir*) cat {tmp_path}/datadir 2>/dev/null ;; *" -e "*) ;;\n'
                    f'  *) cat > {tmp_path}/imported-"$last" ;; esac\ntrue\n')
    systemctl = script(bin_dir / "systemctl", log)
    after = script(bin_dir / "puppet-apply",
                   log + f"[ -e {tmp_path}/after-fails ] && {{ echo 'Error: could not apply' >&2; exit 4; }}\ntrue\n")
    restic = script(bin_dir / "restic", log + f'start=$(date +%s.%N); {restic_bin} "$@"; rc=$?\n'
                    f'echo "$start $(date +%s.%N) $1 $2" >> {tmp_path}/restic-times.log; exit $rc\n')
    config: dict[str, Any] = {
        "repository": repository,
        "password_file": str(secrets / "restic-repository"),
        "credentials_file": str(secrets / "backup-credentials.env"),
        "paths": [str(files), str(app_config)],
        "databases": [{"engine": "mariadb", "name": "omeka"}],
        "secrets_dir": str(secrets),
        "staging_dir": str(root / "var/lib/castelet/backup-staging"),
        "restore_dir": str(root / "srv/data/.castelet-restore"),
        "status_file": str(root / "var/lib/castelet/backup-status.json"),
        "keep": {"daily": 7, "weekly": 4, "monthly": 6},
        "stop_units": ["apache2"],
        "after_restore": [[after, "--restored"]],
        "host": "omeka-web1",
        "commands": {"restic": [restic], "mariadb_dump": [dump], "mariadb": [client], "systemctl": [systemctl]},
    }
    site = Site(root=root, config_file=tmp_path / "backup.json", config=config, calls=calls)
    site.save()
    return site


def tree(path: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under path: kind, content digest or link target, mode, owner, mtime."""
    entries: dict[str, tuple[Any, ...]] = {}
    for item in sorted([path, *path.rglob("*")]):
        st = item.lstat()
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(item)
        elif stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(item.read_bytes()).hexdigest()
        else:
            content = "dir"
        mtime = None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
        entries[str(item.relative_to(path))] = (content, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, mtime)
    return entries


def leaked(text: str) -> bool:
    return any(secret in text for secret in (REST_PASSWORD, urllib.parse.quote(REST_PASSWORD, safe=""),
                                             REPOSITORY_PASSWORD))


def test_local_repository_backup_and_exact_restore(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    (site.secrets / "backup-credentials.env").write_text("AWS_DEFAULT_REGION=before\n")

    first = site.ok("run")
    assert "initialised the repository" in first.stdout
    assert sum(line.startswith("restic init") for line in site.call_lines()) == 1
    dump_line = next(line for line in site.call_lines() if line.startswith("mariadb-dump"))
    assert dump_line == "mariadb-dump --single-transaction --routines --triggers --events --hex-blob omeka"
    status = site.status()
    assert status["last_success"] and status["last_snapshot"] and status["running"] is False
    assert status["repository"] == str(tmp_path / "repository")
    staging = Path(site.config["staging_dir"])
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700 and not any(staging.iterdir())

    second = site.ok("run")
    assert "initialised" not in second.stdout
    assert sum(line.startswith("restic init") for line in site.call_lines()) == 1
    forget = [line for line in site.call_lines() if line.startswith("restic forget")]
    assert forget[-1] == ("restic forget --tag castelet --host omeka-web1 --group-by host,paths,tags "
                          "--keep-daily 7 --keep-weekly 4 --keep-monthly 6 --prune")
    snapshots = json.loads(site.ok("snapshots").stdout)
    assert len(snapshots) == 1, "the retention policy keeps one snapshot a day"
    assert {"id", "short_id", "time", "paths", "tags"} <= set(snapshots[-1])
    assert snapshots[-1]["tags"] == ["castelet"]
    assert str(site.files) in snapshots[-1]["paths"] and str(site.secrets) in snapshots[-1]["paths"]
    assert site.status()["last_snapshot"] in (snapshots[-1]["id"], snapshots[-1]["short_id"])

    files_before, config_before = tree(site.files), tree(site.app_config)
    omeka_db_before = (site.secrets / "omeka-db").read_text()
    kept_inodes = {name: (site.secrets / name).stat().st_ino
                   for name in ("restic-repository", "backup-credentials.env")}
    # Life goes on after the backup: edits, deletions, new files, a new secret, a new database state.
    (site.files / "original/2026/notes.txt").write_text("edited notes\n")
    (site.files / "original/2026/scan.tif").unlink()
    (site.files / "private.txt").chmod(0o644)
    (site.files / "added-later.txt").write_text("not in the snapshot\n")
    (site.files / "new-dir/deep").mkdir(parents=True)
    (site.app_config / "database.ini").write_text('user = "changed"\n')
    (site.secrets / "omeka-db").write_text("database password after\n")
    (site.secrets / "backup-credentials.env").write_text("AWS_DEFAULT_REGION=after\n")
    (tmp_path / "db-content").write_text("INSERT INTO item VALUES (2);\n")
    files_changed = tree(site.files)
    site.calls.write_text("")

    proc = site.ok("restore")
    assert tree(site.files) == files_before
    assert tree(site.app_config) == config_before
    assert not (site.files / "added-later.txt").exists() and not (site.files / "new-dir").exists()
    assert (site.secrets / "omeka-db").read_text() == omeka_db_before
    assert (site.secrets / "backup-credentials.env").read_text() == "AWS_DEFAULT_REGION=after\n"
    assert {name: (site.secrets / name).stat().st_ino for name in kept_inodes} == kept_inodes
    assert (tmp_path / "imported-omeka").read_text() == "INSERT INTO item VALUES (1);\n"
    assert not Path(site.config["restore_dir"]).exists()

    lines = site.call_lines()
    tail = lines[lines.index("systemctl stop apache2"):]
    assert tail == [
        "systemctl stop apache2",
        "mariadb --batch -e DROP DATABASE IF EXISTS `omeka`; CREATE DATABASE `omeka` CHARACTER SET utf8mb4 "
        "COLLATE utf8mb4_unicode_ci;",
        "mariadb --batch -N -e SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'omeka'",
        "mariadb omeka",
        "puppet-apply --restored",
        "systemctl start apache2",
    ]
    # The safety backup ran first (a dump, then a backup tagged pre-restore) and is in the repository.
    assert lines.index("mariadb-dump --single-transaction --routines --triggers --events --hex-blob omeka") \
        < lines.index("systemctl stop apache2")
    safety = json.loads(site.ok("snapshots").stdout)[-1]
    assert sorted(safety["tags"]) == ["castelet", "pre-restore"]
    assert "omeka-files: 4 files" in proc.stdout and "database omeka (mariadb): imported" in proc.stdout
    assert site.status()["last_restore"]["snapshot"] == snapshots[-1]["id"]

    # Without --snapshot, the latest backup is restored, never a safety backup.
    (site.files / "after-first-restore.txt").write_text("x\n")
    site.ok("restore", "--no-safety-backup")
    assert tree(site.files) == files_before
    # A named snapshot: the safety backup undoes the restore.
    site.ok("restore", "--no-safety-backup", "--snapshot", safety["short_id"])
    assert tree(site.files) == files_changed
    assert (tmp_path / "imported-omeka").read_text() == "INSERT INTO item VALUES (2);\n"
    assert site.status()["last_restore"]["snapshot"] == safety["id"]


def test_rest_server_credentials_stay_out_of_argv_and_output(tmp_path: Path, restic_bin: str,
                                                              rest_server: str) -> None:
    site = make_site(tmp_path, restic_bin, f"{rest_server}/omeka-{os.getpid()}".replace("http:", "rest:http:", 1))
    site.config["commands"]["rsync"] = [str(tmp_path / "no-rsync-here")]  # the Python fallback restores
    site.save()
    outputs: list[str] = []
    # Wrong REST credentials: a 401 is "unreachable", never "missing" (restic 0.14 prints "Is there a
    # repository at the following location?" for both).
    site.ok("set-credentials", stdin=f"RESTIC_REST_USERNAME={REST_USER}\nRESTIC_REST_PASSWORD=wrong-{REST_PASSWORD}\n")
    refused = site.run("run")
    outputs += [refused.stdout, refused.stderr]
    assert refused.returncode == 1 and "repository unreachable" in refused.stderr and "401" in refused.stderr
    assert not any(line.startswith("restic init") for line in site.call_lines())

    proc = site.ok("set-credentials", stdin=f"RESTIC_REST_USERNAME={REST_USER}\nRESTIC_REST_PASSWORD={REST_PASSWORD}\n")
    outputs += [proc.stdout, proc.stderr]
    credentials = site.secrets / "backup-credentials.env"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for args in (("run",), ("snapshots",), ("status", "--check")):
        proc = site.ok(*args)
        outputs += [proc.stdout, proc.stderr]
    assert sum(line.startswith("restic init") for line in site.call_lines()) == 1
    checked = json.loads(outputs[-2])
    assert checked["repository_latest_snapshot"]["id"] and checked["repository_latest_age_seconds"] < 600

    (site.files / "original/2026/notes.txt").write_text("edited\n")
    (site.files / "extra.txt").write_text("extra\n")
    before = tree(site.files)
    del before["extra.txt"]
    before["original/2026/notes.txt"] = (hashlib.sha256(b"first notes\n").hexdigest(), *before[
        "original/2026/notes.txt"][1:4], 1_600_000_000 * 10**9)
    proc = site.ok("restore", "--no-safety-backup")
    outputs += [proc.stdout, proc.stderr]
    assert tree(site.files) == before

    assert not any(leaked(text) for text in outputs), "a credential reached the output"
    assert not leaked(site.calls.read_text()), "a credential reached restic's command line"
    assert not leaked(site.status_file.read_text())


def test_server_down_fails_fast_and_is_recorded(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, f"rest:http://127.0.0.1:{free_port()}/omeka")
    site.ok("set-credentials", stdin=f"RESTIC_REST_USERNAME={REST_USER}\nRESTIC_REST_PASSWORD={REST_PASSWORD}\n")
    started = time.monotonic()
    proc = site.run("run")
    assert time.monotonic() - started < 20
    assert proc.returncode == 1
    assert "repository unreachable" in proc.stderr and "connection refused" in proc.stderr
    assert not leaked(proc.stderr + proc.stdout)
    assert not any(line.startswith("restic init") for line in site.call_lines())
    status = site.status()
    assert status["last_failure"] and status["last_success"] is None and status["last_result"] == "failure"
    assert "repository unreachable" in status["last_error"] and "\n" not in status["last_error"]
    assert not any(Path(site.config["staging_dir"]).iterdir())
    assert site.run("snapshots").returncode == 1


def test_silent_server_times_out(tmp_path: Path, restic_bin: str) -> None:
    """A server that accepts connections and never answers (a firewall's black hole, a hung proxy)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        site = make_site(tmp_path, restic_bin, f"rest:http://127.0.0.1:{port}/omeka")
        site.config["probe_timeout"] = 2
        site.save()
        started = time.monotonic()
        proc = site.run("run")
        assert time.monotonic() - started < 15
    assert proc.returncode == 1 and "repository unreachable: no answer within 2 s" in proc.stderr
    assert "no answer" in site.status()["last_error"]


def test_wrong_password_never_initialises_and_set_password_repairs_it(
        tmp_path: Path, restic_bin: str, initialised_repository: Path) -> None:
    shutil.copytree(initialised_repository, tmp_path / "repository")
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    site.ok("run")
    keys_before = sorted((tmp_path / "repository/keys").iterdir())
    # A new volume's own secret, as after a rebuild that lost the old volume.
    password_file = site.secrets / "restic-repository"
    password_file.write_text(OTHER_PASSWORD + "\n")

    proc = site.run("run")
    assert proc.returncode == 1
    assert "wrong repository password" in proc.stderr and "nox -s restore -- --password-file" in proc.stderr
    assert OTHER_PASSWORD not in proc.stderr + proc.stdout
    assert sorted((tmp_path / "repository/keys").iterdir()) == keys_before
    assert not any(line.startswith("restic init") for line in site.call_lines())
    status = site.status()
    assert status["last_result"] == "failure" and "wrong repository password" in status["last_error"]
    assert status["last_failure"] >= status["last_success"]

    proc = site.ok("set-password", stdin=REPOSITORY_PASSWORD + "\n")
    assert "kept the previous password" in proc.stdout and REPOSITORY_PASSWORD not in proc.stdout
    (replaced,) = site.secrets.glob("restic-repository.replaced-*")
    assert replaced.read_text() == OTHER_PASSWORD + "\n"
    assert password_file.read_text() == REPOSITORY_PASSWORD + "\n"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in site.secrets.iterdir() if p.name.startswith(".")) == []

    # Snapshots are listed and restored per host: another host's are there, not picked by default.
    site.config["host"] = "omeka-web2"
    site.save()
    assert json.loads(site.ok("snapshots").stdout) == []
    assert {s["hostname"] for s in json.loads(site.ok("snapshots", "--all-hosts").stdout)} == {"omeka-web1"}
    proc = site.run("restore", "--no-safety-backup")
    assert proc.returncode == 1 and "no snapshot of host omeka-web2" in proc.stderr


def password_file_state(site: Site) -> tuple[bytes, int, int, int, list[str]]:
    """The password file's bytes, inode, mode and mtime, and every name in the secrets directory."""
    st = (site.secrets / "restic-repository").stat()
    return ((site.secrets / "restic-repository").read_bytes(), st.st_ino, st.st_mode, st.st_mtime_ns,
            sorted(p.name for p in site.secrets.iterdir()))


def test_set_password_that_does_not_open_the_repository_changes_nothing(
        tmp_path: Path, restic_bin: str, initialised_repository: Path) -> None:
    shutil.copytree(initialised_repository, tmp_path / "repository")
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    before = password_file_state(site)
    proc = site.run("set-password", stdin=OTHER_PASSWORD + "\n")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refused: this password does not open the repository" in proc.stderr
    assert "restic-repository was left as it was" in proc.stderr
    assert OTHER_PASSWORD not in proc.stdout + proc.stderr
    assert password_file_state(site) == before
    assert any(line.startswith("restic --no-lock cat config") for line in site.call_lines())
    assert json.loads(site.ok("snapshots").stdout) == []  # the current password still opens it


def test_set_password_without_a_repository_to_test_it_against_is_refused(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, str(tmp_path / "no-repository"))
    before = password_file_state(site)
    proc = site.run("set-password", stdin=OTHER_PASSWORD + "\n")
    assert proc.returncode == 1 and "there is no repository at" in proc.stderr, proc.stderr
    assert password_file_state(site) == before
    assert not (tmp_path / "no-repository").exists()


@pytest.mark.parametrize(("given", "reason"), [
    ("short\n", "has 5 characters: castelet::secret needs at least 32"),
    ("x" * 31 + "\n", "has 31 characters"),
    ("  " + "x" * 30 + "  \n", "has 30 characters"),
    ("é" * 40 + "\n", "printable ASCII"),
    ("x" * 20 + "\t" + "x" * 20 + "\n", "printable ASCII"),
    ("x" * 40 + "\n" + "y" * 40 + "\n", "one line"),
    ("", "has 0 characters"),
])
def test_set_password_refuses_what_castelet_secret_would_refuse(
        tmp_path: Path, restic_bin: str, given: str, reason: str) -> None:
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    before = password_file_state(site)
    proc = site.run("set-password", stdin=given)
    assert proc.returncode == 1 and "refused: " in proc.stderr and reason in proc.stderr, proc.stderr
    assert password_file_state(site) == before
    assert not any(line.startswith("restic ") for line in site.call_lines())


def test_password_rules_follow_castelet_secret() -> None:
    assert backup_program.password_problem("x" * 32) is None
    assert backup_program.password_problem(REPOSITORY_PASSWORD) is None
    assert backup_program.password_problem("with spaces and !#$%&'()*+,-./:;<=>?@[]^_`{|}~ ok") is None
    assert backup_program.password_problem("x" * 31) is not None
    secret_rb = (REPO_ROOT / "puppet/modules/castelet/lib/puppet/functions/castelet/secret.rb").read_text()
    assert f"def min_length\n    {backup_program.SECRET_MIN_LENGTH}\n  end" in secret_rb


def test_failed_safety_backup_changes_nothing(tmp_path: Path, restic_bin: str, initialised_repository: Path) -> None:
    shutil.copytree(initialised_repository, tmp_path / "repository")
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    site.ok("run")
    (site.files / "added-later.txt").write_text("keep me\n")
    before = tree(site.files)
    (tmp_path / "dump-fails").touch()
    site.calls.write_text("")
    proc = site.run("restore")
    assert proc.returncode == 1
    assert "safety backup of the current state failed, nothing was changed" in proc.stderr
    assert tree(site.files) == before
    assert not any(line.startswith(("systemctl", "mariadb ", "puppet-apply", "restic restore"))
                   for line in site.call_lines())

    # A failure once the units are stopped: they start again, and the message says how to undo.
    # (And a path missing on this instance, as on a fresh one, does not stop the safety backup.)
    (tmp_path / "dump-fails").unlink()
    (tmp_path / "after-fails").touch()
    config_before = tree(site.app_config)
    shutil.rmtree(site.app_config)
    proc = site.run("restore")
    assert proc.returncode == 1
    assert tree(site.app_config) == config_before
    assert "restore incomplete: after_restore" in proc.stderr and "Error: could not apply" in proc.stderr
    assert site.call_lines()[-2:] == ["puppet-apply --restored", "systemctl start apache2"]
    safety = json.loads(site.ok("snapshots").stdout)[-1]
    assert f"castelet-backup restore --snapshot {safety['short_id']}" in proc.stderr
    assert not (site.files / "added-later.txt").exists()
    assert not Path(site.config["restore_dir"]).exists()


def test_whole_data_volume_keeps_its_live_parts(tmp_path: Path, restic_bin: str, initialised_repository: Path) -> None:
    """LAMP backs up the whole data volume, which also holds the secrets, MariaDB's live datadir
    (excluded: the dump restores it) and the restore area."""
    shutil.copytree(initialised_repository, tmp_path / "repository")
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    data = site.root / "srv/data"
    secrets = data / "castelet/secrets"
    secrets.parent.mkdir()
    site.secrets.rename(secrets)
    (data / "mariadb").mkdir()
    (data / "mariadb/ibdata1").write_text("live\n")
    (data / "cache").mkdir()
    site.config.update(paths=[str(data)], secrets_dir=str(secrets), password_file=str(secrets / "restic-repository"),
                       credentials_file=str(secrets / "backup-credentials.env"), exclude=[str(data / "cache")])
    site.save()
    (tmp_path / "datadir").write_text(f"{data / 'mariadb'}/\n")  # what the server says its datadir is
    site.ok("run")
    (data / "mariadb/ibdata1").write_text("live, later\n")
    (data / "cache/entry").write_text("regenerated\n")
    (data / "omeka-files/added-later.txt").write_text("x\n")
    password_inode = (secrets / "restic-repository").stat().st_ino
    site.ok("restore", "--no-safety-backup")
    assert (data / "mariadb/ibdata1").read_text() == "live, later\n"
    assert (data / "cache/entry").read_text() == "regenerated\n"
    assert not (data / "omeka-files/added-later.txt").exists()
    assert (secrets / "restic-repository").stat().st_ino == password_inode
    assert (secrets / "omeka-db").read_text() == "database password before\n"
    backup_line = next(line for line in site.call_lines() if line.startswith("restic backup")).split()
    assert {f"--exclude={data / name}" for name in (".castelet-restore", "cache", "mariadb")} <= set(backup_line)
    assert str(data) in backup_line


def test_missing_path_fails_before_restic(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    shutil.rmtree(site.app_config)
    proc = site.run("run")
    assert proc.returncode == 1
    assert f"configured path(s) missing: {site.app_config}" in proc.stderr
    assert not any(line.startswith("restic") for line in site.call_lines())
    assert "missing" in site.status()["last_error"]


def test_concurrent_runs_are_refused_by_the_lock(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    lock_file = site.status_file.with_name("castelet-backup.lock")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        assert site.status()["running"] is True
        for args in (("run",), ("restore",), ("--wait", "0.5", "run")):
            proc = site.run(*args)
            assert proc.returncode == 75, proc.stderr
            assert "another castelet-backup (pid 4242) is running" in proc.stderr
    assert site.call_lines() == []
    assert site.status()["running"] is False and site.status()["last_failure"] is None


def test_set_credentials_allowlist(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, "s3:https://object.example/bucket/omeka")
    credentials = site.secrets / "backup-credentials.env"
    proc = site.run("set-credentials", stdin="AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nLD_PRELOAD=/tmp/evil.so\n"
                                              "AWS_SECRET_ACCESS_KEY=topsecretvalue\n")
    assert proc.returncode == 1 and "not allowed: LD_PRELOAD" in proc.stderr
    assert "topsecretvalue" not in proc.stderr + proc.stdout and "evil" not in proc.stderr
    assert not credentials.exists()
    assert site.run("set-credentials", stdin="just a secret pasted alone\n").returncode == 1
    assert site.run("set-credentials", stdin="AWS_ACCESS_KEY_ID=a\nAWS_ACCESS_KEY_ID=b\n").returncode == 1
    assert not credentials.exists()

    proc = site.ok("set-credentials", stdin="# from the object store\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\n\n"
                                            "AWS_SECRET_ACCESS_KEY=top=secret\nOS_REGION_NAME=persistent_01\n")
    assert "topsecret" not in proc.stdout
    assert credentials.read_text() == ("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=top=secret\n"
                                       "OS_REGION_NAME=persistent_01\n")
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    proc = site.ok("set-credentials", stdin="")
    assert "removed" in proc.stdout and not credentials.exists()


def test_invalid_configuration_exits_78(tmp_path: Path, restic_bin: str) -> None:
    site = make_site(tmp_path, restic_bin, "rest:http://user:pw@127.0.0.1:1/omeka")
    proc = site.run("run")
    assert proc.returncode == 78 and "must not hold credentials" in proc.stderr and "pw" not in proc.stderr
    site.config["repository"] = "/srv/backup-repo"
    site.config["databases"] = [{"engine": "mariadb", "name": "omeka`; DROP"}]
    site.save()
    assert site.run("run").returncode == 78


# ---------------------------------------------------------------- append-only repositories, checks


@pytest.fixture(scope="module")
def append_only_rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`rclone serve restic --append-only` (no authentication): what an instance is given when its
    repository refuses deletions (issue 21 point 3)."""
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.skip("rclone is missing: apt-get install rclone (.ci/setup --system installs it)")
    base = tmp_path_factory.mktemp("append-only")
    (base / "repos").mkdir()
    yield from serve_restic(rclone, base, "--append-only")


def test_append_only_mode_never_forgets_and_says_who_prunes(tmp_path: Path, restic_bin: str,
                                                             append_only_rest_server: str) -> None:
    """With append_only the instance never runs forget or prune against a server that refuses
    deletions (its retention would fail every night after the first: restic retries each refused
    deletion for a long while), every backup succeeds, and the status says that retention is the
    operator's (`nox -s prune`)."""
    site = make_site(tmp_path, restic_bin, f"rest:{append_only_rest_server}/append")
    site.config["append_only"] = True
    site.save()
    for _ in range(2):
        proc = site.ok("run")
        assert "append-only repository: no forget, no prune here" in proc.stdout
    assert not any(line.startswith("restic forget") or line.startswith("restic prune") for line in site.call_lines())
    assert len(json.loads(site.ok("snapshots").stdout)) == 2, "both snapshots stay"
    status = site.status()
    assert status["append_only"] is True and status["last_result"] == "success"
    assert status["keep"] == {"daily": 7, "weekly": 4, "monthly": 6} and status["host"] == "omeka-web1"
    assert "never forgets nor prunes" in status["retention"] and "nox -s prune" in status["retention"]
    site.config["append_only"] = "yes"
    site.save()
    assert site.run("run").returncode == 78


def test_weekly_check_reads_a_part_and_records_damage(tmp_path: Path, restic_bin: str,
                                                       initialised_repository: Path) -> None:
    """`castelet-backup check` runs restic check on this week's part of the data and records the
    result; a damaged pack fails it (exit 1, the reason in the status)."""
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    assert "nothing to check" in site.ok("check").stdout, "no repository yet: nothing to check, not a failure"
    assert site.status()["last_check_result"] == "no repository" and site.status()["last_check_success"] is None
    shutil.copytree(initialised_repository, tmp_path / "repository")
    site.ok("run")
    site.calls.write_text("")
    proc = site.ok("check", "--subset", "1/1")
    assert "no errors" in proc.stdout
    assert [line for line in site.call_lines() if line.startswith("restic check")] == \
        ["restic check --read-data-subset=1/1"]
    status = site.status()
    assert status["last_check_result"] == "success" and status["last_check_subset"] == "1/1"
    assert status["last_check_success"] and status["last_check_success_age_seconds"] is not None

    site.calls.write_text("")
    site.ok("check")
    week = int(time.time()) // (7 * 24 * 3600)
    assert [line for line in site.call_lines() if line.startswith("restic check")] == \
        [f"restic check --read-data-subset={week % 10 + 1}/10"]

    packs = sorted(p for p in (tmp_path / "repository" / "data").rglob("*") if p.is_file())
    assert packs
    for pack in packs:
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.chmod(0o644)
        pack.write_bytes(bytes(data))
    failed = site.run("check", "--subset", "1/1")
    assert failed.returncode == 1
    assert "restic check --read-data-subset=1/1 found the repository damaged" in failed.stderr
    status = site.status()
    assert status["last_check_result"] == "failure" and "damaged" in status["last_check_error"]
    assert status["last_check_success"], "the last good check stays recorded"
    assert site.run("check", "--subset", "3/2").returncode == 1


def test_weekly_parts_follow_each_other() -> None:
    import datetime

    site_config = type("C", (), {"check_parts": 4})()
    start = datetime.datetime(2026, 12, 28, tzinfo=datetime.UTC)  # across a new year: no jump
    parts = [backup_program.weekly_subset(site_config, start + datetime.timedelta(weeks=n)) for n in range(8)]
    numbers = [int(part.split("/")[0]) for part in parts]
    assert all(part.endswith("/4") for part in parts)
    assert sorted(numbers[:4]) == [1, 2, 3, 4] and numbers[4:] == numbers[:4]


# ---------------------------------------------------------------- the pieces, without restic


@pytest.mark.parametrize(("returncode", "output", "missing"), [
    (10, "Fatal: repository does not exist: unable to open config file", True),  # restic >= 0.17
    (12, "Fatal: wrong password or no key found", False),
    (1, "Fatal: unable to open config file: stat /srv/backup-repo/config: no such file or directory\n"
        "Is there a repository at the following location?\n/srv/backup-repo", True),  # 0.14, local
    (1, "Fatal: unable to open config file: <config/> does not exist\n"
        "Is there a repository at the following location?\nrest:http://u:***@10.166.0.1:8000/omeka/", True),
    (1, "Fatal: unable to open config file: Stat: The specified key does not exist.\n"
        "Is there a repository at the following location?\ns3:https://object.example/b", True),
    (1, "Fatal: unable to open config file: unexpected HTTP response (401): 401 Unauthorized\n"
        "Is there a repository at the following location?\nrest:http://10.166.0.1:8000/omeka/", False),
    (1, 'Fatal: unable to open config file: client.Head: Head "http://u:***@10.166.0.1:8000/omeka/config": '
        "dial tcp 10.166.0.1:8000: connect: connection refused\nIs there a repository at the following location?",
     False),
    (1, "Fatal: unable to open config file: dial tcp: lookup object.example: no such host", False),
    (1, "Resolving password failed: Fatal: /var/lib/castelet/secrets/restic-repository does not exist", False),
])
def test_repository_missing_only_when_restic_says_so(returncode: int, output: str, missing: bool) -> None:
    assert backup_program.repository_missing(returncode, output) is missing


def test_redact_hides_url_credentials_and_secret_values() -> None:
    text = 'Head "http://alice:p%40ss@10.0.0.1:8000/omeka/config" (s3cr3t-value) rest:https://bob:x@h/r'
    redacted = backup_program.redact(text, ["s3cr3t-value"])
    assert redacted == 'Head "http://***@10.0.0.1:8000/omeka/config" (***) rest:https://***@h/r'


def test_aliases_follow_bind_mounts() -> None:
    mountinfo = (
        "27 1 253:1 / / rw,relatime - ext4 /dev/vda1 rw\n"
        "90 27 253:16 / /srv/data rw,relatime - ext4 /dev/vdb rw\n"
        "91 27 253:16 /castelet/secrets /var/lib/castelet/secrets rw,relatime - ext4 /dev/vdb rw\n"
        "92 27 253:16 /mariadb /var/lib/mysql rw,relatime - ext4 /dev/vdb rw\n"
        "93 27 253:17 / /srv/other\040disk rw,relatime - ext4 /dev/vdc rw\n"
    )
    aliases = backup_program.aliases
    assert aliases(Path("/var/lib/castelet/secrets/restic-repository"), mountinfo) == {
        Path("/var/lib/castelet/secrets/restic-repository"), Path("/srv/data/castelet/secrets/restic-repository")}
    assert aliases(Path("/srv/data/mariadb"), mountinfo) == {Path("/srv/data/mariadb"), Path("/var/lib/mysql")}
    assert aliases(Path("/srv/other disk/x"), mountinfo) == {Path("/srv/other disk/x")}
    assert aliases(Path("/etc/castelet/backup.json"), mountinfo) == {Path("/etc/castelet/backup.json")}


def test_python_fallback_makes_an_exact_copy(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a/b").mkdir(parents=True)
    (src / "a/b/file").write_text("new content\n")
    (src / "a/b/file").chmod(0o640)
    os.utime(src / "a/b/file", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
    (src / "link").symlink_to("a/b/file")
    (src / "was-a-dir").write_text("now a file\n")
    (src / "secret").write_text("from the snapshot\n")
    (dst / "a/b").mkdir(parents=True)
    (dst / "a/b/file").write_text("old content, longer\n")
    (dst / "a/b/stale").write_text("remove me\n")
    (dst / "was-a-dir/x").mkdir(parents=True)
    (dst / "link").write_text("not a link yet\n")
    (dst / "secret").write_text("keep me\n")
    (dst / "stale-dir/y").mkdir(parents=True)
    (dst / "restore-area/work").mkdir(parents=True)
    (dst / "restore-area/work/file").write_text("in use\n")
    protected = frozenset({dst / "secret", dst / "restore-area/work"})
    backup_program.sync_tree(src, dst, protected)
    expected = tree(src)
    state = tree(dst)
    for kept in ("secret", "restore-area", "restore-area/work", "restore-area/work/file"):
        expected[kept] = state[kept]
    assert state == expected
    assert (dst / "secret").read_text() == "keep me\n"


def postgresql_site(tmp_path: Path, restic_bin: str) -> Site:
    """The site above backing up every PostgreSQL database (`*`) through stand-ins of psql, pg_dump
    and pg_restore, and every MariaDB one, whose client is not installed here."""
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    bin_dir = tmp_path / "bin"
    log = f'printf "%s\\n" "$(basename "$0") $*" >> {site.calls}\n'
    psql = script(bin_dir / "psql", log + f'case "$*" in *"SELECT datname"*) cat {tmp_path}/pg-databases ;;\n'
                  f'  *"SHOW data_directory"*) cat {tmp_path}/pg-datadir ;; esac\ntrue\n')
    pg_dump = script(bin_dir / "pg_dump", log + f'for last; do :; done\ncat {tmp_path}/pg-content-"$last"\n')
    pg_restore = script(bin_dir / "pg_restore", log + f"cat >> {tmp_path}/pg-restored\n")
    (tmp_path / "pg-databases").write_text("lab\nsurvey\n")
    for name in ("lab", "survey"):
        (tmp_path / f"pg-content-{name}").write_text(f"PGDMP {name} before\n")
    live = site.files / "postgresql/17/main"
    live.mkdir(parents=True)
    (live / "PG_VERSION").write_text("17\n")
    (tmp_path / "pg-datadir").write_text(f"{live}\n")
    site.config["databases"] = [{"engine": "postgresql", "name": "*"}, {"engine": "mariadb", "name": "*"}]
    site.config["postgresql_user"] = pwd.getpwuid(os.geteuid()).pw_name
    site.config["commands"].update({"psql": [psql], "pg_dump": [pg_dump], "pg_restore": [pg_restore],
                                    "mariadb": [str(tmp_path / "no-mariadb-here")]})
    site.save()
    return site


def test_postgresql_every_database_dumped_and_restored(tmp_path: Path, restic_bin: str) -> None:
    site = postgresql_site(tmp_path, restic_bin)
    live = site.files / "postgresql/17/main"
    site.ok("run")
    lines = site.call_lines()
    assert "pg_dump --format=custom lab" in lines and "pg_dump --format=custom survey" in lines
    assert not any(line.startswith(("mariadb", "no-mariadb")) for line in lines)
    backup_line = next(line for line in lines if line.startswith("restic backup"))
    assert f"--exclude={live}" in backup_line.split(), "the live cluster is dumped, never copied"

    # Later: new content, a database added after the backup, a change in the live files.
    (tmp_path / "pg-content-lab").write_text("PGDMP lab after\n")
    (tmp_path / "pg-databases").write_text("lab\nsurvey\nlater\n")
    (live / "PG_VERSION").write_text("17 live\n")
    site.calls.write_text("")
    proc = site.ok("restore", "--no-safety-backup")
    lines = site.call_lines()
    drops = [line for line in lines if "DROP DATABASE" in line]
    assert [d.split("DROP DATABASE IF EXISTS ")[1] for d in drops] == ['"lab" WITH (FORCE)', '"survey" WITH (FORCE)']
    assert lines.count("pg_restore --create --exit-on-error --dbname=postgres") == 2
    assert (tmp_path / "pg-restored").read_text() == "PGDMP lab before\nPGDMP survey before\n"
    assert "database lab (postgresql): imported" in proc.stdout
    assert "later" not in proc.stdout, "a database the snapshot does not hold is left alone"
    assert (live / "PG_VERSION").read_text() == "17 live\n", "the live cluster is never overwritten"


def test_postgresql_odd_database_name_fails_the_backup(tmp_path: Path, restic_bin: str) -> None:
    site = postgresql_site(tmp_path, restic_bin)
    (tmp_path / "pg-databases").write_text("lab\nodd-name\n")
    proc = site.run("run")
    assert proc.returncode == 1
    assert "'odd-name' cannot be backed up" in proc.stderr
    assert site.status()["last_result"] == "failure"


@pytest.mark.parametrize("entry", [{"engine": "postgresql", "name": "*x"}, {"engine": "oracle", "name": "lab"},
                                   {"engine": "postgresql", "name": "lab; DROP"}])
def test_unsupported_database_entries_are_refused(tmp_path: Path, restic_bin: str, entry: dict[str, str]) -> None:
    site = make_site(tmp_path, restic_bin, str(tmp_path / "repository"))
    site.config["databases"] = [entry]
    site.save()
    assert site.run("run").returncode == 78
