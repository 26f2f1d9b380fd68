#!/usr/bin/python3
"""castelet-backup: restic backups of a deployment's data, and their restore.

Written by Puppet (castelet::profile::backup) as /usr/local/sbin/castelet-backup, run as root
by a systemd timer and by the deployment's nox sessions. Settings come from a JSON file written
by Puppet (/etc/castelet/backup.json, `--config PATH` elsewhere); secrets come from files on the
instance and reach restic through its environment only (never its arguments, never our output).

  castelet-backup run                      dump the databases, back up paths + dumps + secrets,
                                           apply the retention policy (not with append_only:
                                           the operator's `nox -s prune` does); the repository
                                           is created when (and only when) it does not exist
  castelet-backup check [--subset N/T]     `restic check --read-data-subset`: this week's part
                                           of check_parts (every pack read once in check_parts
                                           weeks); the result is recorded in the status
  castelet-backup snapshots [--all-hosts]  this host's snapshots (JSON), or every host's
  castelet-backup status [--check]         the recorded state (JSON); --check also asks the
                                           repository for its latest snapshot
  castelet-backup restore [--snapshot ID] [--no-safety-backup]
                                           bring back files, secrets and databases of a snapshot
                                           (default: this host's latest), after a safety backup
                                           of the current state (tag pre-restore)
  castelet-backup set-credentials          NAME=VALUE lines on stdin (allowlisted names) become
                                           the repository credentials; empty stdin removes them
  castelet-backup set-password             one line on stdin: the repository password (e.g. of
                                           an earlier volume), stored only once it opens the
                                           repository (at least 32 printable ASCII characters, as
                                           castelet::secret wants); the previous one is kept aside

Global options: --config PATH, --wait SECONDS (wait for a running backup or restore instead of
giving up at once).

Configuration keys: repository, password_file, credentials_file, paths, databases ([{engine:
"mariadb" or "postgresql", name}]; name "*": every database of that engine's server on this
host, none where that engine's client is not installed), secrets_dir, staging_dir, restore_dir,
status_file, keep ({daily, weekly, monthly, ...}), stop_units, after_restore (argument lists),
host; optional: append_only (true: the repository refuses deletions, so `run` never forgets nor
prunes; retention is the operator's `nox -s prune`, default false), check_parts (the weekly check
reads 1/check_parts of the data, default 10), exclude (paths left out of backups and left alone by restores, e.g. a live
database directory inside a backed-up path), lock_file (default: castelet-backup.lock next to
status_file), probe_timeout (seconds restic may take to open the repository and list snapshots,
default 120), postgresql_user (the system user psql, pg_dump and pg_restore run as, default
postgres), commands (restic, mariadb_dump, mariadb, psql, pg_dump, pg_restore, systemctl, rsync:
argument-list prefixes).

Exit codes: 0 done; 1 failed (the reason is on stderr and, for run, in the status file);
2 usage; 75 another castelet-backup holds the lock (nothing done); 78 invalid configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/castelet/backup.json")
TAG = "castelet"
SAFETY_TAG = "pre-restore"
EX_FAILURE = 1
EX_TEMPFAIL = 75
EX_CONFIG = 78
DEFAULT_COMMANDS: dict[str, list[str]] = {
    "restic": ["restic"],
    "mariadb_dump": ["mariadb-dump"],
    "mariadb": ["mariadb"],
    "psql": ["psql"],
    "pg_dump": ["pg_dump"],
    "pg_restore": ["pg_restore"],
    "systemctl": ["systemctl"],
    "rsync": ["rsync"],
}
# The variables a credentials file may set: restic's backends we support, nothing else.
ALLOWED_CREDENTIALS = frozenset({
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
    "RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD",
    "B2_ACCOUNT_ID", "B2_ACCOUNT_KEY",
    # OpenStack Swift (restic's `swift:` backend)
    "OS_AUTH_URL", "OS_REGION_NAME", "OS_USERNAME", "OS_USER_ID", "OS_PASSWORD",
    "OS_TENANT_ID", "OS_TENANT_NAME", "OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID",
    "OS_PROJECT_NAME", "OS_PROJECT_ID", "OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID",
    "OS_TRUST_ID", "OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_NAME",
    "OS_APPLICATION_CREDENTIAL_SECRET", "OS_STORAGE_URL", "OS_AUTH_TOKEN",
})
# Values scrubbed from any restic output we relay (URL user-info is scrubbed in every case).
SECRET_CREDENTIALS = frozenset({
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "RESTIC_REST_PASSWORD", "B2_ACCOUNT_KEY",
    "OS_PASSWORD", "OS_APPLICATION_CREDENTIAL_SECRET", "OS_AUTH_TOKEN",
})
# Inherited variables that would change what restic talks to, or how: only our files count.
FOREIGN_ENV_PREFIXES = ("RESTIC_", "AWS_", "B2_", "OS_", "AZURE_", "GOOGLE_")
DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
EVERY_DATABASE = "*"
ENGINES = ("mariadb", "postgresql")
# The client whose absence means "this engine's server is not on this host", per engine.
CLIENT = {"mariadb": "mariadb", "postgresql": "psql"}
DUMP_SUFFIX = {"mariadb": ".sql", "postgresql": ".dump"}
MARIADB_SYSTEM_DATABASES = frozenset({"information_schema", "performance_schema", "mysql", "sys"})
UNIT_NAME = re.compile(r"^[A-Za-z0-9@_.:-]+$")
USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
# restic < 0.17 has no exit code for "no repository here": it exits 1 with
# "unable to open config file: <backend error>\nIs there a repository at the following location?"
# for every failure to read the config, including refused connections and 401s. Only the backend
# errors that mean "not found" count as missing; anything that smells of access or network wins.
MISSING_MARKERS = ("no such file or directory", "does not exist", "doesn't exist", "not found")
UNREACHABLE_MARKERS = ("connection refused", "no such host", "timeout", "timed out", "unreachable",
                       "401", "403", "unauthorized", "forbidden", "denied", "tls", "x509", "certificate",
                       "reset by peer", "eof")
RESTIC_NO_REPOSITORY = 10  # restic >= 0.17
RESTIC_LOCKED = 11  # restic >= 0.17
RESTIC_WRONG_PASSWORD = 12  # restic >= 0.17.1
# The repository password is the castelet secret `restic-repository`: castelet::secret (secret.rb,
# min_length) refuses a shorter one; one line of printable ASCII reads the same in Ruby, Python and restic.
SECRET_MIN_LENGTH = 32
SECRET_CHARACTERS = re.compile(r"[\x20-\x7e]+")


class Failure(Exception):
    """An operation failed; the message is one line and holds no secret."""


class ConfigError(Exception):
    """The configuration file is missing or invalid."""


class NoRepository(Failure):
    """restic says there is no repository at the configured location."""


class Locked(Exception):
    """Another castelet-backup holds the lock."""


@dataclass(frozen=True)
class Database:
    engine: str
    name: str


@dataclass(frozen=True)
class Config:
    repository: str
    password_file: Path
    credentials_file: Path | None
    paths: tuple[Path, ...]
    databases: tuple[Database, ...]
    secrets_dir: Path
    staging_dir: Path
    restore_dir: Path
    status_file: Path
    lock_file: Path
    exclude: tuple[Path, ...]
    probe_timeout: float
    postgresql_user: str
    keep: dict[str, int]
    stop_units: tuple[str, ...]
    after_restore: tuple[tuple[str, ...], ...]
    host: str
    commands: dict[str, list[str]]
    append_only: bool = False
    check_parts: int = 10


def now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _absolute(raw: dict[str, Any], key: str) -> Path:
    value = raw.get(key)
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"'{key}' must be an absolute path")
    return Path(os.path.normpath(value))


def load_config(path: Path) -> Config:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a JSON object")
    repository = raw.get("repository")
    if not isinstance(repository, str) or not repository.strip():
        raise ConfigError("'repository' must be a restic repository string")
    if USERINFO.search(repository):
        raise ConfigError("'repository' must not hold credentials: give them with `castelet-backup set-credentials`")
    credentials = raw.get("credentials_file")
    paths = raw.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise ConfigError("'paths' must be a list of absolute paths")
    databases = []
    for entry in raw.get("databases") or []:
        if not isinstance(entry, dict) or entry.get("engine") not in ENGINES or not isinstance(entry.get("name"), str) \
                or not (DB_NAME.match(entry["name"]) or entry["name"] == EVERY_DATABASE):
            raise ConfigError(f"unsupported database entry {entry!r}: engine 'mariadb' or 'postgresql' "
                              "and a plain name or '*'")
        databases.append(Database(entry["engine"], entry["name"]))
    postgresql_user = raw.get("postgresql_user", "postgres")
    if not isinstance(postgresql_user, str) or not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", postgresql_user):
        raise ConfigError("'postgresql_user' must be a system user name")
    keep_raw = raw.get("keep") or {}
    if not isinstance(keep_raw, dict) or set(keep_raw) - {"last", "hourly", "daily", "weekly", "monthly", "yearly"} \
            or not all(isinstance(v, int) and v >= 0 for v in keep_raw.values()):
        raise ConfigError("'keep' must map daily/weekly/monthly/... to counts")
    keep = {k: v for k, v in keep_raw.items() if v > 0}
    if not keep:
        raise ConfigError("'keep' keeps nothing: at least one count must be positive")
    units = raw.get("stop_units") or []
    if not isinstance(units, list) or not all(isinstance(u, str) and UNIT_NAME.match(u) for u in units):
        raise ConfigError("'stop_units' must be a list of unit names")
    after = raw.get("after_restore") or []
    if not isinstance(after, list) or not all(
            isinstance(a, list) and a and all(isinstance(x, str) for x in a) for a in after):
        raise ConfigError("'after_restore' must be a list of argument lists")
    host = raw.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError("'host' must be the host name recorded in snapshots")
    commands = {k: list(v) for k, v in DEFAULT_COMMANDS.items()}
    for key, value in (raw.get("commands") or {}).items():
        if key not in DEFAULT_COMMANDS or not isinstance(value, list) or not value \
                or not all(isinstance(x, str) for x in value):
            raise ConfigError(f"'commands.{key}' is unknown or not an argument list")
        commands[key] = value
    status_file = _absolute(raw, "status_file")
    lock_file = _absolute(raw, "lock_file") if "lock_file" in raw else status_file.with_name("castelet-backup.lock")
    exclude = raw.get("exclude") or []
    append_only = raw.get("append_only", False)
    if not isinstance(append_only, bool):
        raise ConfigError("'append_only' must be true or false")
    check_parts = raw.get("check_parts", 10)
    if not isinstance(check_parts, int) or isinstance(check_parts, bool) or not 1 <= check_parts <= 1000:
        raise ConfigError("'check_parts' must be a whole number from 1 to 1000")
    probe_timeout = raw.get("probe_timeout", 120)
    if not isinstance(probe_timeout, int | float) or probe_timeout <= 0:
        raise ConfigError("'probe_timeout' must be a number of seconds")
    if not isinstance(exclude, list) or not all(isinstance(p, str) and p.startswith("/") for p in exclude):
        raise ConfigError("'exclude' must be a list of absolute paths")
    return Config(
        repository=repository.strip(),
        password_file=_absolute(raw, "password_file"),
        credentials_file=_absolute(raw, "credentials_file") if credentials is not None else None,
        paths=tuple(Path(os.path.normpath(p)) for p in paths),
        databases=tuple(databases),
        secrets_dir=_absolute(raw, "secrets_dir"),
        staging_dir=_absolute(raw, "staging_dir"),
        restore_dir=_absolute(raw, "restore_dir"),
        status_file=status_file,
        lock_file=lock_file,
        exclude=tuple(Path(os.path.normpath(p)) for p in exclude),
        probe_timeout=float(probe_timeout),
        postgresql_user=postgresql_user,
        keep=keep,
        stop_units=tuple(units),
        after_restore=tuple(tuple(a) for a in after),
        host=host,
        commands=commands,
        append_only=append_only,
        check_parts=check_parts,
    )


# ---------------------------------------------------------------- files written atomically


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_status(config: Config) -> dict[str, Any]:
    try:
        data = json.loads(config.status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_status(config: Config, **changes: Any) -> None:
    status = read_status(config)
    status["repository"] = config.repository
    status.update(changes)
    write_atomically(config.status_file, (json.dumps(status, indent=2) + "\n").encode(), 0o644)


# ---------------------------------------------------------------- credentials


def parse_credentials(text: str, origin: str) -> dict[str, str]:
    """NAME=VALUE lines (blank lines and # comments ignored). Errors never show a value."""
    values: dict[str, str] = {}
    rejected: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise Failure(f"{origin}: line {number} is not NAME=VALUE")
        if name not in ALLOWED_CREDENTIALS:
            rejected.append(name)
            continue
        if name in values:
            raise Failure(f"{origin}: {name} is given twice")
        values[name] = value.strip()
    if rejected:
        raise Failure(f"{origin}: not allowed: {', '.join(rejected)} "
                      f"(allowed: {', '.join(sorted(ALLOWED_CREDENTIALS))})")
    return values


def read_credentials(config: Config) -> dict[str, str]:
    if config.credentials_file is None or not config.credentials_file.exists():
        return {}
    return parse_credentials(config.credentials_file.read_text(encoding="utf-8"), str(config.credentials_file))


# ---------------------------------------------------------------- restic


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    text = USERINFO.sub(r"\1***@", text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def json_message(line: str) -> str:
    """The words of a restic --json error line (0.17+ prints errors as JSON too), else the line."""
    try:
        data = json.loads(line)
    except ValueError:
        return line
    if not isinstance(data, dict):
        return line
    if data.get("message_type") == "exit_error":
        return str(data.get("message", line))
    if data.get("message_type") == "error":
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return f"{data.get('item', '')}: {message}".lstrip(": ")
    return line


def one_line(text: str) -> str:
    """The most telling line of a program's output: restic's Fatal line, else the last line."""
    lines = [json_message(line.strip()) for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith('{"message_type":"status"')]
    fatal = [line for line in lines if line.startswith("Fatal:")]
    line = (fatal[0].removeprefix("Fatal:").strip() if fatal else (lines[-1] if lines else "no output"))
    return line[:400]


def repository_missing(returncode: int, output: str) -> bool:
    """Whether `restic cat config` failed because no repository exists (and only then)."""
    if returncode == RESTIC_NO_REPOSITORY:
        return True
    if returncode != 1:
        return False
    for line in output.splitlines():
        _, found, detail = line.partition("unable to open config file:")
        if found:
            detail = detail.lower()
            if any(marker in detail for marker in UNREACHABLE_MARKERS):
                return False
            return any(marker in detail for marker in MISSING_MARKERS)
    return False


def wrong_password(returncode: int, output: str) -> bool:
    return returncode == RESTIC_WRONG_PASSWORD or "wrong password" in output.lower()


class Restic:
    def __init__(self, config: Config) -> None:
        self.config = config
        credentials = read_credentials(config)
        self.secrets = sorted({v for k, v in credentials.items() if k in SECRET_CREDENTIALS and len(v) >= 4}
                              | {urllib.parse.quote(v, safe="") for k, v in credentials.items()
                                 if k in SECRET_CREDENTIALS and len(v) >= 4}, key=len, reverse=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
        repository = config.repository
        user, password = credentials.get("RESTIC_REST_USERNAME"), credentials.get("RESTIC_REST_PASSWORD")
        if repository.startswith("rest:") and (user or password):
            # restic < 0.16 ignores RESTIC_REST_USERNAME/PASSWORD; user-info in the URL works everywhere.
            if not (user and password):
                raise Failure("credentials: RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD go together")
            scheme, sep, rest = repository[len("rest:"):].partition("://")
            if not sep:
                raise Failure("repository: a rest: repository needs an http:// or https:// URL")
            repository = (f"rest:{scheme}://{urllib.parse.quote(user, safe='')}:"
                          f"{urllib.parse.quote(password, safe='')}@{rest}")
            credentials = {k: v for k, v in credentials.items() if not k.startswith("RESTIC_REST_")}
        env.update(credentials)
        env["RESTIC_REPOSITORY"] = repository
        env["RESTIC_PASSWORD_FILE"] = str(config.password_file)
        self.env = env
        if not config.password_file.is_file():
            raise Failure(f"repository password file {config.password_file} is missing "
                          "(Puppet generates it; nothing was done)")

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def run(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """restic with our environment; `timeout` bounds the quick questions (a server that accepts
        connections and never answers would otherwise hold them for restic's ~15 minutes of retries)."""
        argv = [*self.config.commands["restic"], *args]
        try:
            proc = subprocess.Popen(argv, env=self.env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as error:
            raise Failure(f"cannot run restic: {error}") from None
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise Failure(f"repository unreachable: no answer within {timeout:g} s "
                          f"({redact(self.config.repository)})") from None
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    def fail(self, what: str, proc: subprocess.CompletedProcess[str]) -> Failure:
        output = proc.stderr + proc.stdout
        hint = ""
        if proc.returncode == RESTIC_LOCKED or "already locked" in output:
            hint = " (a stale lock of an interrupted run? `restic unlock` removes stale locks)"
        return Failure(f"{what} (restic exit {proc.returncode}): {self.redact(one_line(output))}{hint}")

    def opening_failure(self, proc: subprocess.CompletedProcess[str], what: str) -> Failure:
        """Why restic could not do `what`: a wrong password, no repository, or anything else."""
        output = proc.stderr + proc.stdout
        if wrong_password(proc.returncode, output):
            return Failure(
                f"wrong repository password for {redact(self.config.repository)}: it was made by another volume "
                "(or instance) with another password; nothing was initialised. Give it that password: "
                "`nox -s restore -- --password-file F`, or `castelet-backup set-password` on the instance")
        if repository_missing(proc.returncode, output):
            return NoRepository(f"no repository at {redact(self.config.repository)} yet (no backup has run)")
        if "unable to open config file" in output or "Is there a repository" in output:
            return Failure(f"repository unreachable: {self.redact(one_line(output))}")
        return self.fail(what, proc)

    def reachable(self) -> None:
        """A rest: or s3: server that refuses connections fails at once: restic 0.17+ would retry
        for minutes. Skipped behind a proxy (restic goes through it, this check could not)."""
        if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
            return
        found = re.match(r"(?:rest|s3):(https?)://([^/@]+)", self.config.repository)
        if found is None:
            return
        url = urllib.parse.urlsplit(f"{found.group(1)}://{found.group(2)}")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname or "", port), timeout=min(30.0, self.config.probe_timeout)).close()
        except OSError as error:
            reason = str(error.strerror or error).lower()
            raise Failure(f"repository unreachable: cannot connect to {url.hostname}:{port} ({reason})") from None

    def probe(self) -> bool:
        """True when the repository exists, False when there is none; anything else raises."""
        self.reachable()
        proc = self.run("--no-lock", "cat", "config", timeout=self.config.probe_timeout)
        if proc.returncode == 0:
            return True
        failure = self.opening_failure(proc, "cannot read the repository's config")
        if isinstance(failure, NoRepository):
            return False
        raise failure

    def ensure_repository(self) -> None:
        if self.probe():
            return
        proc = self.run("init")
        if proc.returncode != 0:
            raise self.fail("cannot initialise the repository", proc)
        print(f"castelet-backup: initialised the repository {redact(self.config.repository)}")

    def snapshots(self, *selection: str) -> list[dict[str, Any]]:
        """Raises NoRepository when there is none (without a separate probe: one key derivation less)."""
        self.reachable()
        proc = self.run("--no-lock", "snapshots", "--json", *selection, timeout=self.config.probe_timeout)
        if proc.returncode != 0:
            raise self.opening_failure(proc, "cannot list snapshots")
        try:
            data = json.loads(proc.stdout or "[]")
        except ValueError:
            raise Failure("cannot list snapshots: restic printed no JSON") from None
        return data if isinstance(data, list) else []


# ---------------------------------------------------------------- locking


class Lock:
    def __init__(self, path: Path, wait: float) -> None:
        self.path, self.wait = path, wait
        self.fd = -1

    def __enter__(self) -> Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(self.fd)
                    raise Locked(f"another castelet-backup (pid {holder}) is running; nothing was done") from None
                time.sleep(0.2)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        os.ftruncate(self.fd, 0)
        os.close(self.fd)


def lock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# ---------------------------------------------------------------- backup


def empty_directory(path: Path) -> None:
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def run_program(argv: Sequence[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, check=False, **kwargs)
    except OSError as error:
        raise Failure(f"{what}: {error}") from None
    if proc.returncode != 0:
        output = (proc.stderr + proc.stdout).decode(errors="replace")
        raise Failure(f"{what} failed (exit {proc.returncode}): {redact(one_line(output))}")
    return proc


def recreate_database(config: Config, name: str, attempts: int = 5) -> None:
    """DROP and CREATE the database, then make sure it is empty: MariaDB 11.8 may log "cannot
    DROP TABLE ... due to 1 open handles" (a table still open by a background thread), keep the
    table and still answer OK; a later attempt succeeds."""
    client = config.commands["mariadb"]
    for attempt in range(1, attempts + 1):
        run_program([*client, "--batch", "-e",
                     f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` "
                     "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"],
                    f"recreating database {name}", stdin=subprocess.DEVNULL)
        counted = run_program([*client, "--batch", "-N", "-e",
                               f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{name}'"],
                              f"checking database {name}", stdin=subprocess.DEVNULL).stdout.decode().strip()
        if not counted.isdigit() or int(counted) == 0:
            return
        if attempt < attempts:
            time.sleep(2)
    raise Failure(f"database {name} still holds {counted} table(s) after DROP DATABASE ({attempts} attempts): "
                  "the server kept them open; nothing was imported")


def as_postgres(config: Config) -> dict[str, Any]:
    """subprocess options running a PostgreSQL client as the cluster's owner (peer authentication
    over the unix socket): files are opened by us and handed over as stdin/stdout."""
    if os.geteuid() != 0:  # not root: cannot switch users (tests run the clients as themselves)
        return {"cwd": "/"}
    try:
        gid = pwd.getpwnam(config.postgresql_user).pw_gid
    except KeyError:
        raise Failure(f"no system user {config.postgresql_user} to run the PostgreSQL clients as") from None
    return {"user": config.postgresql_user, "group": gid, "extra_groups": [], "cwd": "/"}


def engine_present(config: Config, engine: str) -> bool:
    return shutil.which(config.commands[CLIENT[engine]][0]) is not None


def server_databases(config: Config, engine: str) -> list[str]:
    """The databases of this host's server of ``engine`` (its own system databases left out)."""
    if engine == "postgresql":
        proc = run_program([*config.commands["psql"], "-X", "-At", "-d", "postgres", "-c",
                            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                            "AND datname <> 'postgres' ORDER BY 1"],
                           "listing PostgreSQL databases", stdin=subprocess.DEVNULL, **as_postgres(config))
        names = proc.stdout.decode().split()
    else:
        proc = run_program([*config.commands["mariadb"], "--batch", "--skip-column-names", "-e", "SHOW DATABASES"],
                           "listing MariaDB databases", stdin=subprocess.DEVNULL)
        names = [n for n in proc.stdout.decode().split() if n not in MARIADB_SYSTEM_DATABASES]
    odd = [n for n in names if not DB_NAME.match(n)]
    if odd:
        raise Failure(f"{engine} database name(s) {', '.join(repr(n) for n in odd)} cannot be backed up "
                      "(letters, digits and _ only); nothing was backed up")
    return names


def resolved_databases(config: Config) -> list[Database]:
    """The configured databases, each `*` replaced by the databases of that engine's server here
    (none where that engine's client is not installed: the server is not on this host)."""
    found: list[Database] = []
    for entry in config.databases:
        if entry.name != EVERY_DATABASE:
            names = [entry.name]
        elif engine_present(config, entry.engine):
            names = server_databases(config, entry.engine)
        else:
            names = []
        found.extend(Database(entry.engine, name) for name in names if Database(entry.engine, name) not in found)
    return found


def dump_databases(config: Config) -> None:
    config.staging_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.staging_dir, 0o700)
    empty_directory(config.staging_dir)
    for database in resolved_databases(config):
        target_dir = config.staging_dir / database.engine
        target_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(target_dir, 0o700)
        target = target_dir / f"{database.name}{DUMP_SUFFIX[database.engine]}"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            options: dict[str, Any] = {}
            if database.engine == "postgresql":
                # custom format: pg_restore --create brings back the database with its owner and grants
                argv = [*config.commands["pg_dump"], "--format=custom", database.name]
                options = as_postgres(config)
            else:
                argv = [*config.commands["mariadb_dump"], "--single-transaction", "--routines", "--triggers",
                        "--events", "--hex-blob", database.name]
            try:
                proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, check=False,
                                      **options)
            except OSError as error:
                raise Failure(f"cannot dump database {database.name}: {error}") from None
        if proc.returncode != 0:
            raise Failure(f"dump of database {database.name} failed (exit {proc.returncode}): "
                          f"{redact(one_line(proc.stderr.decode(errors='replace')))}")


def restore_postgresql(config: Config, name: str, dump: Path) -> None:
    """Replace the database by the dump's: drop it (closing its sessions), then pg_restore --create
    (the database with its owner, grants and settings); the first error stops the import."""
    run_program([*config.commands["psql"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c",
                 f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                f"dropping database {name}", stdin=subprocess.DEVNULL, **as_postgres(config))
    with dump.open("rb") as stdin:
        run_program([*config.commands["pg_restore"], "--create", "--exit-on-error", "--dbname=postgres"],
                    f"importing database {name}", stdin=stdin, **as_postgres(config))


def unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def aliases(path: Path, mountinfo: str | None = None) -> set[Path]:
    """path, and the other places bind mounts show it at: the secrets directory is the data
    volume's castelet/secrets bound at /var/lib/castelet/secrets, so a backed-up path that holds
    the data volume must not overwrite the repository password through the other name."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
        except OSError:
            return {path}
    mounts: list[tuple[str, Path, Path]] = []  # (device, root inside the filesystem, mount point)
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            mounts.append((fields[2], Path(unescape_mountinfo(fields[3])), Path(unescape_mountinfo(fields[4]))))
    containing = [m for m in mounts if inside(path, m[2])]
    if not containing:
        return {path}
    device, root, mount_point = max(containing, key=lambda m: len(m[2].parts))
    in_filesystem = root / path.relative_to(mount_point)
    found = {path}
    for other_device, other_root, other_mount in mounts:
        if other_device == device and inside(in_filesystem, other_root):
            found.add(other_mount / in_filesystem.relative_to(other_root))
    return found


def database_directories(config: Config) -> set[Path]:
    """The live data directories of the database servers and their other names (on a data volume
    /var/lib/mysql is the volume's mariadb/ bound there, /var/lib/postgresql its postgresql/):
    never copied by a backup nor overwritten by a restore, even when a backed-up path holds them;
    the dumps carry the databases."""
    found: set[Path] = set()
    engines = {db.engine for db in config.databases}
    if "mariadb" in engines:
        found |= mariadb_directories(config)
    if "postgresql" in engines and engine_present(config, "postgresql"):
        try:
            proc = subprocess.run([*config.commands["psql"], "-X", "-At", "-d", "postgres", "-c",
                                   "SHOW data_directory"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=60, check=False, **as_postgres(config))
        except (OSError, subprocess.TimeoutExpired):
            return found
        lines = proc.stdout.split() if proc.returncode == 0 else []
        if lines and lines[-1].startswith("/"):
            found |= aliases(Path(os.path.normpath(lines[-1])))
    return found


def mariadb_directories(config: Config) -> set[Path]:
    try:
        proc = subprocess.run([*config.commands["mariadb"], "--batch", "--skip-column-names", "-e", "SELECT @@datadir"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    lines = proc.stdout.split() if proc.returncode == 0 else []
    if not lines or not lines[-1].startswith("/"):
        return set()
    return aliases(Path(os.path.normpath(lines[-1])))


def not_backed_up(config: Config) -> set[Path]:
    """Left out of backups and left alone by restores: the configured exclusions, MariaDB's live
    data directory, the restore's working directory and this program's own run records (status,
    lock: on the data volume, so that a rebuilt instance knows its last snapshot)."""
    return {*config.exclude, *database_directories(config), config.restore_dir, config.status_file,
            config.lock_file}


def backup(config: Config, restic: Restic, tags: Sequence[str], safety: bool = False) -> str:
    """One snapshot of paths + database dumps + secrets; returns its id. A safety backup (before a
    restore) skips the paths that do not exist yet (a fresh instance): there is nothing to keep."""
    missing = [p for p in config.paths if not (p.exists() or p.is_symlink())]
    if missing and not safety:
        raise Failure(f"configured path(s) missing: {', '.join(map(str, missing))} (nothing was backed up)")
    paths = [str(p) for p in config.paths if p not in missing]
    if not config.secrets_dir.is_dir():
        raise Failure(f"secrets directory {config.secrets_dir} is missing (nothing was backed up)")
    try:
        dump_databases(config)
        if not safety:  # a restore has just read the repository
            restic.ensure_repository()
        tag_args = [arg for tag in tags for arg in ("--tag", tag)]
        proc = restic.run("backup", "--json", "--host", config.host, *tag_args,
                          *[f"--exclude={p}" for p in sorted(not_backed_up(config))],
                          *paths, str(config.staging_dir), str(config.secrets_dir))
        if proc.returncode != 0:
            what = "restic could not read every file" if proc.returncode == 3 else "restic backup failed"
            raise restic.fail(what, proc)
        snapshot = ""
        for line in proc.stdout.splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("message_type") == "summary":
                snapshot = str(message.get("snapshot_id") or "")
        if not snapshot:
            raise Failure("restic backup reported no snapshot id")
        return snapshot
    finally:
        empty_directory(config.staging_dir)


def forget(config: Config, restic: Restic) -> None:
    keep_args = [arg for period, count in config.keep.items() for arg in (f"--keep-{period}", str(count))]
    # Grouped by tags too: safety backups (tag pre-restore) never take a regular backup's place.
    proc = restic.run("forget", "--tag", TAG, "--host", config.host, "--group-by", "host,paths,tags",
                      *keep_args, "--prune")
    if proc.returncode != 0:
        raise restic.fail("retention (restic forget --prune) failed; the new snapshot is kept", proc)


def retention(config: Config) -> str:
    """Who applies the retention policy, in words (the status says it)."""
    policy = ", ".join(f"{count} {period}" for period, count in config.keep.items())
    if config.append_only:
        return (f"the operator: append-only repository, this instance never forgets nor prunes; "
                f"`nox -s prune` from the operator's machine keeps {policy}")
    return f"this instance, after each backup: {policy}"


def command_run(config: Config, args: argparse.Namespace) -> int:
    with Lock(config.lock_file, args.wait):
        update_status(config, running_since=now())
        try:
            restic = Restic(config)
            snapshot = backup(config, restic, [TAG])
            update_status(config, last_snapshot=snapshot, last_snapshot_time=now())
            if not config.append_only:
                forget(config, restic)
        except Failure as error:
            update_status(config, running_since=None, last_failure=now(), last_error=str(error), last_result="failure")
            raise
        except Exception as error:
            update_status(config, running_since=None, last_failure=now(),
                          last_error=f"unexpected error: {type(error).__name__}", last_result="failure")
            raise
        update_status(config, running_since=None, last_success=now(), last_result="success")
    print(f"castelet-backup: snapshot {snapshot} saved to {redact(config.repository)}")
    if config.append_only:
        print("castelet-backup: append-only repository: no forget, no prune here (`nox -s prune` from the "
              "operator's machine applies the retention policy)")
    return 0


# ---------------------------------------------------------------- check


def weekly_subset(config: Config, when: datetime.datetime | None = None) -> str:
    """This week's part of the data, N/T (T = check_parts): the parts follow each other week
    after week (weeks counted from the epoch: no jump at a new year), so every pack is read once
    in T weeks."""
    moment = when or datetime.datetime.now(datetime.UTC)
    week = int(moment.timestamp()) // (7 * 24 * 3600)
    return f"{week % config.check_parts + 1}/{config.check_parts}"


def command_check(config: Config, args: argparse.Namespace) -> int:
    subset = args.subset or weekly_subset(config)
    if not re.fullmatch(r"[1-9][0-9]{0,3}/[1-9][0-9]{0,3}", subset) \
            or int(subset.split("/")[0]) > int(subset.split("/")[1]):
        raise Failure(f"--subset {subset!r}: give N/T with 1 <= N <= T")
    with Lock(config.lock_file, args.wait):
        update_status(config, check_running_since=now())
        try:
            restic = Restic(config)
            if not restic.probe():
                update_status(config, check_running_since=None, last_check=now(), last_check_subset=subset,
                              last_check_result="no repository", last_check_error=None)
                print(f"castelet-backup: no repository at {redact(config.repository)} yet: nothing to check")
                return 0
            proc = restic.run("check", f"--read-data-subset={subset}")
            if proc.returncode != 0:
                raise restic.fail(f"restic check --read-data-subset={subset} found the repository damaged "
                                  "or could not read it", proc)
        except Failure as error:
            update_status(config, check_running_since=None, last_check=now(), last_check_subset=subset,
                          last_check_result="failure", last_check_error=str(error))
            raise
        except Exception as error:
            update_status(config, check_running_since=None, last_check=now(), last_check_subset=subset,
                          last_check_result="failure", last_check_error=f"unexpected error: {type(error).__name__}")
            raise
        update_status(config, check_running_since=None, last_check=now(), last_check_subset=subset,
                      last_check_result="success", last_check_error=None, last_check_success=now())
    print(f"castelet-backup: restic check --read-data-subset={subset}: no errors in {redact(config.repository)}")
    return 0


# ---------------------------------------------------------------- snapshots and status


def command_snapshots(config: Config, args: argparse.Namespace) -> int:
    keys = ("id", "short_id", "time", "hostname", "paths", "tags")
    hosts = [] if args.all_hosts else ["--host", config.host]
    try:
        found = Restic(config).snapshots("--tag", TAG, *hosts)
    except NoRepository as error:
        print(f"castelet-backup: {error}", file=sys.stderr)
        found = []
    listing = [{k: s.get(k) for k in keys} for s in found]
    print(json.dumps(sorted(listing, key=lambda s: str(s["time"])), indent=2))
    return 0


def age_seconds(stamp: object) -> int | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        then = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((datetime.datetime.now(datetime.UTC) - then).total_seconds())


def command_status(config: Config, args: argparse.Namespace) -> int:
    recorded = read_status(config)
    status: dict[str, Any] = {key: recorded.get(key) for key in (
        "last_success", "last_snapshot", "last_snapshot_time", "last_failure", "last_error", "last_result",
        "last_restore", "last_check", "last_check_result", "last_check_error", "last_check_subset",
        "last_check_success")}
    status = {"repository": config.repository, "host": config.host, "append_only": config.append_only,
              "keep": config.keep, "retention": retention(config), **status,
              "last_success_age_seconds": age_seconds(recorded.get("last_success")),
              "last_check_success_age_seconds": age_seconds(recorded.get("last_check_success")),
              "running": lock_held(config.lock_file)}
    if status["running"]:
        status["running_since"] = recorded.get("running_since")
    code = 0
    if args.check:
        try:
            try:
                latest = Restic(config).snapshots("--tag", TAG, "--host", config.host, "--latest", "1")
            except NoRepository:
                latest = []
            newest = max(latest, key=lambda s: str(s.get("time")), default=None)
            status["repository_latest_snapshot"] = newest and {"id": newest.get("id"), "time": newest.get("time")}
            status["repository_latest_age_seconds"] = newest and age_seconds(newest.get("time"))
        except Failure as error:
            status["check_error"] = str(error)
            code = EX_FAILURE
    print(json.dumps(status, indent=2))
    return code


# ---------------------------------------------------------------- restore


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def copy_metadata(src: Path, dst: Path) -> None:
    st = os.lstat(src)
    try:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    except PermissionError:
        if os.geteuid() == 0:
            raise
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    shutil.copystat(src, dst, follow_symlinks=False)


def copy_entry(src: Path, dst: Path) -> None:
    """Replace dst (not a directory) by a copy of the file or symbolic link src, metadata included."""
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    tmp = dst.with_name(f".{dst.name}.castelet-tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    mode = os.lstat(src).st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), tmp)
    elif stat.S_ISREG(mode):
        shutil.copyfile(src, tmp)
    else:
        return  # sockets, fifos, devices: not data a service keeps
    copy_metadata(src, tmp)
    os.replace(tmp, dst)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def sync_tree(src: Path, dst: Path, protected: frozenset[Path]) -> None:
    """Make dst an exact copy of src (what rsync -a --delete does), leaving `protected` alone."""
    if not (src.is_dir() and not src.is_symlink()):
        copy_entry(src, dst)
        return
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        dst.unlink()
    if not dst.exists():
        dst.mkdir()
    wanted = set(os.listdir(src))
    for name in os.listdir(dst):
        if name not in wanted and not any(inside(p, dst / name) for p in protected):
            remove(dst / name)
    for name in sorted(wanted):
        if dst / name not in protected:
            sync_tree(src / name, dst / name, protected)
    copy_metadata(src, dst)


def count_files(path: Path) -> int:
    if not (path.is_dir() and not path.is_symlink()):
        return 1
    return sum(len(files) + sum(1 for d in dirs if (Path(root) / d).is_symlink())
               for root, dirs, files in os.walk(path))


def replace_path(config: Config, src: Path, dst: Path, protected: frozenset[Path]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    rsync = shutil.which(config.commands["rsync"][0])
    if rsync is None:
        sync_tree(src, dst, protected)
        return
    if src.is_dir() and not src.is_symlink():
        excludes = [f"--exclude=/{p.relative_to(dst)}" for p in sorted(protected) if inside(p, dst) and p != dst]
        if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
            dst.unlink()
        run_program([rsync, *config.commands["rsync"][1:], "-a", "-H", "--numeric-ids", "--checksum", "--delete",
                     *excludes, f"{src}/", f"{dst}/"], f"rsync into {dst}")
    else:
        copy_entry(src, dst)


def restored(config: Config, path: Path) -> Path:
    return config.restore_dir / path.relative_to("/")


def systemctl(config: Config, action: str) -> None:
    if config.stop_units:
        run_program([*config.commands["systemctl"], action, *config.stop_units],
                    f"systemctl {action} {' '.join(config.stop_units)}")


def pick_snapshot(config: Config, restic: Restic, wanted: str | None) -> dict[str, Any]:
    """The snapshot named, else this host's latest regular backup (never a safety backup)."""
    if wanted:
        found = restic.snapshots(wanted)
        if not found:
            raise Failure(f"no snapshot {wanted} in the repository (castelet-backup snapshots --all-hosts lists them)")
        return found[0]
    candidates = [s for s in restic.snapshots("--tag", TAG, "--host", config.host)
                  if SAFETY_TAG not in (s.get("tags") or [])]
    if not candidates:
        raise Failure(f"no snapshot of host {config.host} in the repository: nothing to restore "
                      "(another host's: --snapshot ID, from castelet-backup snapshots --all-hosts)")
    return max(candidates, key=lambda s: str(s.get("time")))


def snapshot_dumps(config: Config) -> dict[Database, Path]:
    """The restored snapshot's dump of each configured database (perhaps missing: the caller
    checks); a `*` entry stands for every dump of that engine the snapshot holds."""
    dumps: dict[Database, Path] = {}
    for entry in config.databases:
        folder = restored(config, config.staging_dir / entry.engine)
        suffix = DUMP_SUFFIX[entry.engine]
        if entry.name != EVERY_DATABASE:
            dumps[entry] = folder / f"{entry.name}{suffix}"
            continue
        for dump in sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []:
            name = dump.name.removesuffix(suffix)
            if DB_NAME.match(name):
                dumps.setdefault(Database(entry.engine, name), dump)
    return dumps


def restore(config: Config, args: argparse.Namespace) -> list[str]:
    restic = Restic(config)
    try:
        snapshot = pick_snapshot(config, restic, args.snapshot)
    except NoRepository:
        raise Failure(f"no repository at {redact(config.repository)}: nothing to restore") from None
    snapshot_id = str(snapshot["id"])
    short = str(snapshot.get("short_id") or snapshot_id[:8])
    summary = [f"restored snapshot {short} ({snapshot.get('time')}, host {snapshot.get('hostname')})"]

    safety = ""
    if not args.no_safety_backup:
        try:
            safety = backup(config, restic, [TAG, SAFETY_TAG], safety=True)
        except Failure as error:
            raise Failure(f"safety backup of the current state failed, nothing was changed: {error}") from None
        summary.append(f"safety backup of the state before: snapshot {safety} (tags {TAG},{SAFETY_TAG})")

    if config.restore_dir.exists():
        shutil.rmtree(config.restore_dir)
    config.restore_dir.mkdir(parents=True, mode=0o700)
    try:
        proc = restic.run("restore", snapshot_id, "--target", str(config.restore_dir))
        if proc.returncode != 0:
            raise restic.fail("restic restore failed, nothing was changed", proc)
        dumps = snapshot_dumps(config)
        lacking = [db.name for db, dump in dumps.items() if not dump.is_file()]
        if lacking:
            raise Failure(f"the snapshot has no dump of database(s) {', '.join(lacking)}; nothing was changed")
        keep = {config.password_file} | ({config.credentials_file} if config.credentials_file else set())
        protected = frozenset(alias for item in keep | not_backed_up(config) | {
            config.staging_dir, config.lock_file, config.status_file} for alias in aliases(item))

        failure: BaseException | None = None
        changing = False
        try:
            systemctl(config, "stop")
            changing = True
            for path in config.paths:
                src = restored(config, path)
                if not (src.exists() or src.is_symlink()):
                    summary.append(f"{path}: not in the snapshot, left as it is")
                    continue
                replace_path(config, src, path, protected)
                count = count_files(src)
                summary.append(f"{path}: {count} file{'' if count == 1 else 's'}")
            secrets_src = restored(config, config.secrets_dir)
            copied = 0
            if secrets_src.is_dir():
                for root, _dirs, files in os.walk(secrets_src):
                    for name in files:
                        src = Path(root) / name
                        dst = config.secrets_dir / src.relative_to(secrets_src)
                        if dst in keep:
                            continue
                        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                        copy_entry(src, dst)
                        copied += 1
            summary.append(f"secrets: {copied} file{'' if copied == 1 else 's'} (kept the current "
                           f"{', '.join(sorted(p.name for p in keep if p.exists()))})")
            for db, dump in dumps.items():
                if db.engine == "postgresql":
                    restore_postgresql(config, db.name, dump)
                else:
                    recreate_database(config, db.name)
                    with dump.open("rb") as stdin:
                        run_program([*config.commands["mariadb"], db.name], f"importing database {db.name}",
                                    stdin=stdin)
                summary.append(f"database {db.name} ({db.engine}): imported")
            for argv in config.after_restore:
                run_program(argv, f"after_restore {argv[0]}", stdin=subprocess.DEVNULL)
                summary.append(f"after_restore: {' '.join(argv)} done")
        except (Failure, OSError) as error:
            failure = error
            reason = str(error) if isinstance(error, Failure) else f"{error.strerror}: {error.filename}"
            if not changing:
                raise Failure(f"{reason}; nothing was changed") from None
            undo = (f"; the state before it is snapshot {safety} (castelet-backup restore --snapshot {safety})"
                    if safety else "")
            raise Failure(f"restore incomplete: {reason}{undo}") from None
        except BaseException as error:
            failure = error
            raise
        finally:
            try:
                systemctl(config, "start")
            except Failure as error:
                if failure is None:
                    raise
                print(f"castelet-backup: also: {error}", file=sys.stderr)
    finally:
        shutil.rmtree(config.restore_dir, ignore_errors=True)
    update_status(config, last_restore={"time": now(), "snapshot": snapshot_id})
    return summary


def command_restore(config: Config, args: argparse.Namespace) -> int:
    with Lock(config.lock_file, args.wait):
        summary = restore(config, args)
    print("castelet-backup: " + "\n  ".join(summary))
    return 0


# ---------------------------------------------------------------- set-credentials, set-password


def command_set_credentials(config: Config, args: argparse.Namespace) -> int:
    with Lock(config.lock_file, args.wait):
        return set_credentials(config)


def set_credentials(config: Config) -> int:
    if config.credentials_file is None:
        raise Failure("the configuration names no credentials_file")
    values = parse_credentials(sys.stdin.read(), "stdin")
    if not values:
        if config.credentials_file.exists():
            config.credentials_file.unlink()
            print(f"castelet-backup: no credentials given: removed {config.credentials_file}")
        else:
            print("castelet-backup: no credentials given, and there were none")
        return 0
    text = "".join(f"{name}={value}\n" for name, value in sorted(values.items()))
    write_atomically(config.credentials_file, text.encode(), 0o600)
    print(f"castelet-backup: wrote {', '.join(sorted(values))} to {config.credentials_file}")
    return 0


def command_set_password(config: Config, args: argparse.Namespace) -> int:
    with Lock(config.lock_file, args.wait):
        return set_password(config)


def password_problem(password: str) -> str | None:
    """Why `castelet::secret` (or restic) would not take this repository password, or None.

    The file is the secret `restic-repository`: castelet::secret refuses one shorter than
    SECRET_MIN_LENGTH once stripped (Puppet would fail on every run), and Ruby, Python and restic
    strip and decode the same way only a single line of printable ASCII. The deployment's noxfile
    applies the same rules (`_password_problem`) before it contacts the instance."""
    if "\n" in password or "\r" in password:
        return "the password must be one line"
    if len(password) < SECRET_MIN_LENGTH:
        return (f"the password has {len(password)} characters: castelet::secret needs at least "
                f"{SECRET_MIN_LENGTH}")
    if not SECRET_CHARACTERS.fullmatch(password):
        return "the password may only hold printable ASCII characters (letters, digits, punctuation, spaces)"
    return None


def private_file(directory: Path, name: str, data: bytes) -> Path:
    """A new mode-0600 file in `directory` (its content synced to disk), for os.replace later."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f".{name}.new-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def opens_repository(config: Config, password_file: Path) -> None:
    """Raise Failure unless the password in `password_file` opens the configured repository."""
    restic = Restic(dataclasses.replace(config, password_file=password_file))
    restic.reachable()
    proc = restic.run("--no-lock", "cat", "config", timeout=config.probe_timeout)
    if proc.returncode == 0:
        return
    output = proc.stderr + proc.stdout
    where = redact(config.repository)
    if wrong_password(proc.returncode, output):
        raise Failure(f"this password does not open the repository at {where} (restic: wrong password)")
    if repository_missing(proc.returncode, output):
        raise Failure(f"there is no repository at {where}: no password can be tested against it")
    raise restic.fail(f"cannot test the password against {where}", proc)


def keep_aside(target: Path) -> Path:
    """A hard link to the current password file under a new name (the file itself stays)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(100):
        kept = target.with_name(f"{target.name}.replaced-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            os.link(target, kept)
            return kept
        except FileExistsError:
            continue
    raise Failure(f"cannot keep the previous password aside next to {target}")


def set_password(config: Config) -> int:
    """Store the password given on stdin once it is known to open the repository; until then
    (and whenever it is refused) the current password file is left exactly as it was."""
    password = sys.stdin.buffer.read().decode("utf-8", errors="replace").strip()
    problem = password_problem(password)
    if problem:
        raise Failure(f"refused: {problem}; give the repository password on one line of stdin "
                      f"({config.password_file} was left as it was)")
    target = config.password_file
    if target.is_file() and target.read_bytes().decode("utf-8", errors="replace").strip() == password:
        print(f"castelet-backup: {target} already holds this password")
        return 0
    candidate = private_file(target.parent, target.name, (password + "\n").encode())
    try:
        try:
            opens_repository(config, candidate)
        except Failure as error:
            raise Failure(f"refused: {error}; {target} was left as it was") from None
        if target.exists():
            print(f"castelet-backup: kept the previous password as {keep_aside(target)}")
        os.replace(candidate, target)
    finally:
        candidate.unlink(missing_ok=True)
    print(f"castelet-backup: the password opens the repository: wrote it to {target}")
    return 0


# ---------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="castelet-backup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=CONFIG, help=f"settings (default {CONFIG})")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for a running backup or restore (default: give up at once, exit 75)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="one backup")
    check = sub.add_parser("check", help="restic check --read-data-subset (this week's part)")
    check.add_argument("--subset", metavar="N/T", help="the part to read (default: this week's of check_parts)")
    snapshots = sub.add_parser("snapshots", help="this host's snapshots (JSON)")
    snapshots.add_argument("--all-hosts", action="store_true", help="every host's snapshots in the repository")
    status = sub.add_parser("status", help="the recorded state (JSON)")
    status.add_argument("--check", action="store_true", help="also ask the repository for its latest snapshot")
    restore_p = sub.add_parser("restore", help="restore a snapshot (default: the latest)")
    restore_p.add_argument("--snapshot", metavar="ID")
    restore_p.add_argument("--no-safety-backup", action="store_true")
    sub.add_parser("set-credentials", help="NAME=VALUE lines on stdin")
    sub.add_parser("set-password", help="the repository password on stdin")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    commands = {"run": command_run, "check": command_check, "snapshots": command_snapshots, "status": command_status,
                "restore": command_restore, "set-credentials": command_set_credentials,
                "set-password": command_set_password}
    try:
        config = load_config(args.config)
        return commands[args.command](config, args)
    except ConfigError as error:
        print(f"castelet-backup: invalid configuration: {error}", file=sys.stderr)
        return EX_CONFIG
    except Locked as error:
        print(f"castelet-backup: {error}", file=sys.stderr)
        return EX_TEMPFAIL
    except Failure as error:
        print(f"castelet-backup: {error}", file=sys.stderr)
        return EX_FAILURE
    except OSError as error:
        print(f"castelet-backup: {error.strerror}: {error.filename}", file=sys.stderr)
        return EX_FAILURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
