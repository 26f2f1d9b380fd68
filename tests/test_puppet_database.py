"""Catalogs of the shared PostgreSQL profile and of the database blueprint's role, compiled with
Debian's real Puppet for Debian 12 and 13 nodes (the harness of test_puppet.py): versions, data
directory on the volume, pg_hba, TLS, roles whose passwords stay out of command lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from test_puppet import Compiled, debian_facts, errors_of, make_environment

pytestmark = pytest.mark.puppet

ROLE = "castelet::role::database"


def compile_database(tmp_path: Path, repo_root: Path, puppet_bin: str, release: str = "13",
                     **hiera: Any) -> tuple[Compiled, Path]:
    env = make_environment(tmp_path, puppet_bin, repo_root, ROLE, data_dir="/srv/data", blueprint=hiera)
    return env.compile(debian_facts(release)), env.secrets_dir


@pytest.mark.parametrize(("release", "version"), [("13", "17"), ("12", "15")])
def test_postgresql_server_of_the_release(tmp_path: Path, repo_root: Path, puppet_bin: str,
                                          release: str, version: str) -> None:
    cat, _ = compile_database(tmp_path, repo_root, puppet_bin, release)
    assert cat.returncode == 0, errors_of(cat)
    assert ("Package", "postgresql") in cat.resources
    # The data directory is bound onto the volume before the package makes the cluster.
    bind = cat.resource("Exec", "castelet-persistent-dir-/var/lib/postgresql")
    assert "'/srv/data/postgresql'" in bind["command"]
    # and its configuration: a rebuilt instance finds the whole cluster
    config = cat.resource("Exec", "castelet-persistent-dir-/etc/postgresql")
    assert "'/srv/data/postgresql-config'" in config["command"]
    assert "Package[postgresql]" in str(cat.resource("Castelet::Persistent_dir", "/var/lib/postgresql")["before"])
    assert ("File", f"/etc/systemd/system/postgresql@{version}-main.service.d/"
            "castelet-volume-var-lib-postgresql.conf") in cat.resources
    conf = cat.resource("File", f"/etc/postgresql/{version}/main/conf.d/castelet.conf")["content"]
    assert "listen_addresses = 'localhost'" in conf
    assert "ssl = on" in conf and "password_encryption = 'scram-sha-256'" in conf
    hba = cat.resource("File", f"/etc/postgresql/{version}/main/pg_hba.conf")["content"]
    assert "hostssl" not in hba


def test_remote_clients_over_tls_only(tmp_path: Path, repo_root: Path, puppet_bin: str) -> None:
    cat, secrets = compile_database(
        tmp_path, repo_root, puppet_bin,
        **{"castelet::profile::postgresql::client_cidrs": ["10.166.0.0/24", "2001:db8::/32"],
           "castelet::profile::database_server::databases": "survey:lab lab notes:lab"},
    )
    assert cat.returncode == 0, errors_of(cat)
    conf = cat.resource("File", "/etc/postgresql/17/main/conf.d/castelet.conf")["content"]
    assert "listen_addresses = '*'" in conf
    lines = [line.split() for line in cat.resource("File", "/etc/postgresql/17/main/pg_hba.conf")["content"]
             .splitlines() if line and not line.startswith("#")]
    assert ["hostssl", "all", "all", "10.166.0.0/24", "scram-sha-256"] in lines
    assert ["hostssl", "all", "all", "2001:db8::/32", "scram-sha-256"] in lines
    # Remote lines are TLS only; postgres never over TCP (its reject comes first).
    remote = [line for line in lines if line[0].startswith("host") and line[3] not in ("127.0.0.1/32", "::1/128")]
    assert all(line[0] == "hostssl" or line[-1] == "reject" for line in remote)
    assert lines.index(["host", "all", "postgres", "all", "reject"]) < lines.index(
        ["hostssl", "all", "all", "10.166.0.0/24", "scram-sha-256"])
    # Three databases, one role per owner, password generated on the node, never on a command line.
    assert cat.titles("Castelet::Postgresql::Database") == {"survey", "lab", "notes"}
    assert cat.titles("Castelet::Postgresql::Role") == {"lab"}
    password = (secrets / "postgresql-lab").read_text().strip()
    assert len(password) >= 32
    role = cat.resource("Exec", "castelet-postgresql-role-lab")
    # The shell reads it from the root-only file: it is in no parameter of the catalog.
    assert password not in json.dumps(role)
    assert "/postgresql-lab)" in role["command"] and "/postgresql-lab)" in role["unless"]
    service = f"{secrets}/postgresql-survey.conf"
    assert f"password={password}" in cat.resource("File", service)["content"].splitlines()
    assert "user=lab" in cat.resource("File", service)["content"].splitlines()
    assert cat.sensitive("File", service) == ["content"]
    assert cat.resource("File", service)["mode"] == "0600"


def test_mariadb_engine(tmp_path: Path, repo_root: Path, puppet_bin: str) -> None:
    cat, _ = compile_database(
        tmp_path, repo_root, puppet_bin,
        **{"castelet::profile::database_server::engine": "mariadb",
           "castelet::profile::database_server::databases": "survey:lab notes",
           "castelet::profile::database_server::client_cidrs": ["10.166.0.0/24", "192.0.2.7/32"]},
    )
    assert cat.returncode == 0, errors_of(cat)
    assert ("Package", "postgresql") not in cat.resources
    assert cat.resource("Mysql::Db", "survey")["user"] == "lab"
    local = cat.resource("Mysql::Db", "survey")["password"]
    for network in ("10.166.0.0/255.255.255.0", "192.0.2.7/255.255.255.255"):
        remote = cat.resource("Mysql_user", f"lab@{network}")
        assert remote["password_hash"] == local and remote["tls_options"] == ["SSL"]
        assert cat.resource("Mysql_grant", f"lab@{network}/survey.*")["privileges"] == ["ALL"]
    assert ("Exec", "castelet-mariadb-certificate") in cat.resources


@pytest.mark.parametrize(("databases", "cidrs"), [("a:lab b:lab", []), ("lab", ["2001:db8::/32"])])
def test_mariadb_refuses_shared_owners_and_ipv6(tmp_path: Path, repo_root: Path, puppet_bin: str,
                                                databases: str, cidrs: list[str]) -> None:
    cat, _ = compile_database(
        tmp_path, repo_root, puppet_bin,
        **{"castelet::profile::database_server::engine": "mariadb",
           "castelet::profile::database_server::databases": databases,
           "castelet::profile::database_server::client_cidrs": cidrs},
    )
    assert cat.returncode != 0
    assert "owner owns one database" in errors_of(cat) or "IPv4 networks only" in errors_of(cat)


@pytest.mark.parametrize("databases", ["survey survey", "a;b", "Survey", "x:y:z", "survey "])
def test_hostile_or_repeated_databases_are_refused(tmp_path: Path, repo_root: Path, puppet_bin: str,
                                                   databases: str) -> None:
    cat, _ = compile_database(tmp_path, repo_root, puppet_bin,
                              **{"castelet::profile::database_server::databases": databases})
    assert cat.returncode != 0


def test_self_signed_certificate_is_made_kept_and_remade_for_a_new_domain(
        tmp_path: Path, repo_root: Path, puppet_bin: str) -> None:
    """`castelet::self_signed_certificate` (PostgreSQL's and MariaDB's) applied for real on this
    host: made once, left alone while valid, made again when the domain changes."""
    env = make_environment(tmp_path / "env", puppet_bin, repo_root, None)
    tls = tmp_path / "tls"

    def apply(domain: str) -> int:
        proc = env.apply(f"castelet::self_signed_certificate {{ 'test-cert': directory => '{tls}', "
                         f"domain => '{domain}', owner => 'root', days => 60 }}")
        assert proc.returncode in (0, 2), proc.stdout + proc.stderr
        return proc.returncode

    def names() -> str:
        return subprocess.run(["openssl", "x509", "-in", str(tls / "server.crt"), "-noout", "-ext", "subjectAltName"],
                              capture_output=True, text=True, check=True).stdout

    assert apply("db.example.org") == 2
    assert "DNS:db.example.org" in names()
    assert (tls / "server.key").stat().st_mode & 0o777 == 0o600
    assert (tls / "server.crt").stat().st_mode & 0o777 == 0o644
    assert not list(tls.glob("*.new"))
    key = (tls / "server.key").read_bytes()
    assert apply("db.example.org") == 0, "a valid certificate was made again"
    assert (tls / "server.key").read_bytes() == key
    assert apply("data.example.org") == 2
    assert "DNS:data.example.org" in names() and (tls / "server.key").read_bytes() != key
