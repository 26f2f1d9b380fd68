"""The test data set of a blueprint that has data (a `backups:` section in its manifest), written
on a deployed instance and read back to compare: rows in each of the manifest's databases, written
with the application's own database credentials, and files under the backed-up paths that live on
a data volume. Used by the e2e data tests (tests/e2e/test_data.py) and `nox -s bench`.

Everything is derived from the manifest: a later blueprint with data is covered without a line
here, unless its database engine is new (add it to SQL_CLIENTS).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field

from castelet.manifest import Blueprint

SECRETS_DIR = "/var/lib/castelet/secrets"
# MariaDB's datadir lives on the data volume (bind-mounted at /var/lib/mysql) and is backed up
# as a dump (`mariadb-dump --single-transaction`), not as files: its files are not compared; nor
# are PostgreSQL's clusters (the volume's postgresql/ is /var/lib/postgresql; `pg_dump`).
# castelet-backup's run records (status, lock) live on the volume too and change with every run.
NOT_COMPARED = ("/srv/data/mariadb/", "/srv/data/postgresql/15/main/", "/srv/data/postgresql/17/main/",
                "/srv/data/castelet/backup-status.json", "/srv/data/castelet/castelet-backup.lock",
                # the e2e Node.js app counts its visits there: every health check (the deploy's
                # own, verify's) changes it, so it is live data, not data a rebuild must keep still
                "/srv/data/app/visits")
# A manifest's `name: '*'`: every database of that engine's server on the instance.
EVERY_DATABASE = "*"
MARKER = "castelet-e2e"


def sh(container: str, script: str, stdin: str | None = None, check: bool = True, reading: bool = False) -> str:
    """Run a shell script as root on the instance; returns its stdout. A ``reading`` script (one
    that changes nothing) is run again, up to twice, when it exits 0 with no output at all: LXD
    5.0.2 can lose an exec's output when the CPU is busy (canonical/lxd#11422; see
    RereadingLxcBackend in the deployment's tests/conftest.py)."""
    for _ in range(3 if reading else 1):
        proc = subprocess.run(["lxc", "exec", container, "--", "sh", "-ec", script], input=stdin,
                              capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode != 0 or proc.stdout or proc.stderr:
            break
    if check and proc.returncode != 0:
        raise AssertionError(f"{container}: {script[:300]!r} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def mariadb(container: str, database: str, sql: str, reading: bool = False) -> str:
    """SQL as the database's own user: the client file Puppet writes from the generated password
    (`<secrets>/mariadb-<db>.cnf`), so a wrong or lost credential fails here."""
    return sh(container, f"mariadb --defaults-extra-file={SECRETS_DIR}/mariadb-{database}.cnf -N -B {database}",
              stdin=sql, reading=reading)


def postgresql(container: str, database: str, sql: str, reading: bool = False) -> str:
    """SQL as the database's owner, over TLS: the libpq service file Puppet writes from the
    generated password (`<secrets>/postgresql-<db>.conf`); rows come back tab separated."""
    return sh(container, f"PGSERVICEFILE={SECRETS_DIR}/postgresql-{database}.conf "
                         f"psql -X -q -A -t -F \"$(printf '\\t')\" -v ON_ERROR_STOP=1 service={database}",
              stdin=sql, reading=reading)


SQL_CLIENTS = {"mariadb": mariadb, "postgresql": postgresql}


@dataclass(frozen=True)
class Dialect:
    """What differs in the data set's SQL between engines."""

    id_column: str  # an auto-numbered primary key
    sha256: str  # hex SHA-256 of a string literal, `{}` stands for it
    list_tables: str  # one table name a line
    quote: str  # identifier quote


DIALECTS = {
    "mariadb": Dialect("id INT AUTO_INCREMENT PRIMARY KEY", "SHA2({}, 256)", "SHOW TABLES;", "`"),
    "postgresql": Dialect("id SERIAL PRIMARY KEY", "encode(sha256(convert_to({}, 'UTF8')), 'hex')",
                          "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;", '"'),
}
# Listing every database of an engine's server on the instance (as root), for `name: '*'`; none
# where the engine's client is not installed (castelet-backup's rule).
LIST_DATABASES = {
    "mariadb": "if command -v mariadb >/dev/null; then mariadb -N -B -e 'SHOW DATABASES' "
               "| grep -vxE 'information_schema|performance_schema|mysql|sys' || true; fi",
    "postgresql": "if command -v psql >/dev/null; then runuser -u postgres -- psql -X -A -t -d postgres -c "
                  "\"SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                  "AND datname <> 'postgres' ORDER BY 1\"; fi",
}


@dataclass(frozen=True)
class DataSet:
    """How much to write: `rows` rows per database, `files` files of `file_kb` KiB each."""

    rows: int = 200
    files: int = 8
    file_kb: int = 512


E2E = DataSet()


@dataclass
class State:
    """What a comparison looks at: file checksums, row counts per table, and the test rows."""

    files: dict[str, str] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    marked: dict[str, str] = field(default_factory=dict)


def backup_role(blueprint: Blueprint) -> str:
    """The role whose instances hold the data (as the deployment skeleton decides)."""
    role = blueprint.backups.get("role")
    if role:
        return str(role)
    return blueprint.volumes[0].role if blueprint.volumes else blueprint.roles[0].name


def volume_paths(blueprint: Blueprint) -> list[str]:
    """The backed-up paths that live on a data volume (what survives a rebuild by itself)."""
    role = backup_role(blueprint)
    mounts = [v.mount.rstrip("/") for v in blueprint.volumes if v.role == role]
    return [p for p in blueprint.backups.get("paths", [])
            if any(p.rstrip("/") == m or p.startswith(m + "/") for m in mounts)]


def databases(blueprint: Blueprint) -> list[tuple[str, str]]:
    """(engine, name) of the manifest's databases; an engine without a client here fails loudly."""
    found = [(str(db["engine"]), str(db["name"])) for db in blueprint.backups.get("databases", [])]
    unknown = sorted({engine for engine, _ in found} - set(SQL_CLIENTS))
    assert not unknown, f"{blueprint.id}: no SQL client in the data tests for {unknown}: add one to SQL_CLIENTS"
    return found


def instance_databases(container: str, blueprint: Blueprint) -> list[tuple[str, str]]:
    """The manifest's databases on the instance: each `*` replaced by the databases its server has."""
    found: list[tuple[str, str]] = []
    for engine, name in databases(blueprint):
        names = sh(container, LIST_DATABASES[engine], reading=True).split() if name == EVERY_DATABASE else [name]
        found.extend((engine, n) for n in names if (engine, n) not in found)
    # A `*` entry may stand for no database at all (an application whose database is an option).
    assert found or all(name == EVERY_DATABASE for _, name in databases(blueprint)), \
        f"{blueprint.id}: no database on {container} to write the data set into"
    return found


def write(container: str, blueprint: Blueprint, label: str, data: DataSet = E2E) -> None:
    """Rows in every database and files on the data volume, tagged with ``label``."""
    for engine, name in instance_databases(container, blueprint):
        dialect = DIALECTS[engine]
        values = ", ".join(f"('{label}', {i}, {dialect.sha256.format(repr(f'{label}-{i}'))})"
                           for i in range(data.rows))
        SQL_CLIENTS[engine](container, name, f"""
            CREATE TABLE IF NOT EXISTS castelet_e2e (
              {dialect.id_column}, label VARCHAR(64), n INT, token CHAR(64));
            INSERT INTO castelet_e2e (label, n, token) VALUES {values};""")
    paths = volume_paths(blueprint)
    assert paths, f"{blueprint.id}: none of the backed-up paths {blueprint.backups.get('paths')} is on a volume"
    folder = f"{paths[0].rstrip('/')}/{MARKER}/{label}"
    sh(container, f"mkdir -p {shlex.quote(folder)} && for i in $(seq 1 {data.files}); do "
                  f"head -c {data.file_kb * 1024} /dev/urandom > {shlex.quote(folder)}/file-$i.bin; done")


def marked_files(container: str, blueprint: Blueprint) -> dict[str, str]:
    """Checksums of the files `write` made."""
    folders = " ".join(shlex.quote(f"{p.rstrip('/')}/{MARKER}") for p in volume_paths(blueprint))
    return _sha256(sh(container, f"find {folders} -type f -print0 2>/dev/null | xargs -0 -r sha256sum || true",
                      reading=True))


def _sha256(listing: str) -> dict[str, str]:
    return {line[66:]: line[:64] for line in listing.splitlines() if len(line) > 66}


def state(container: str, blueprint: Blueprint) -> State:
    """Checksums of every file under the backed-up paths (except NOT_COMPARED), row counts of every
    table of every database, and the test rows themselves."""
    paths = " ".join(shlex.quote(p) for p in blueprint.backups.get("paths", []))
    listing = sh(container, f"find {paths} -type f -print0 2>/dev/null | xargs -0 -r sha256sum || true", reading=True)
    files = {path: digest for path, digest in _sha256(listing).items() if not path.startswith(NOT_COMPARED)}
    found = State(files=files)
    for engine, name in instance_databases(container, blueprint):
        client, q = SQL_CLIENTS[engine], DIALECTS[engine].quote
        tables = client(container, name, DIALECTS[engine].list_tables, reading=True).split()
        counts = client(container, name, " UNION ALL ".join(
            f"SELECT '{t}', COUNT(*) FROM {q}{t}{q}" for t in tables) + ";", reading=True) if tables else ""
        found.rows[name] = {t: int(c) for t, c in (line.split("\t") for line in counts.splitlines())}
        if "castelet_e2e" in tables:
            found.marked[name] = client(container, name, "SELECT label, n, token FROM castelet_e2e ORDER BY id;",
                                        reading=True)
    return found
