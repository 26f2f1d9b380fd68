"""Database server specifics (the checks every blueprint shares are in test_base.py)."""

import castelet_checks as checks
import pytest

ROLES = ["db"]
HIERADATA = "/etc/puppet/code/environments/production/data/terraform.yaml"

# Debian's PostgreSQL of each supported release (castelet::profile::postgresql says the same)
POSTGRESQL = {"13": "17", "12": "15"}


def _version(host):
    return POSTGRESQL[host.system_info.release.split(".")[0]]


@pytest.fixture(scope="module")
def engine(host):
    """The `engine` answer, as Terraform wrote it for Puppet (read with Puppet's Ruby)."""
    with host.sudo():
        result = host.run(f"ruby -ryaml -e 'puts YAML.load_file(ARGV[0])[\"terraform\"][\"settings\"][\"engine\"]' "
                          f"{HIERADATA}")
    assert result.stdout.strip() in ("postgresql", "mariadb"), result.stdout + result.stderr
    return result.stdout.strip()


def test_mariadb_engine_requires_tls_on_the_database_port(host, engine):
    if engine != "mariadb":
        assert not host.package("mariadb-server").is_installed
        return
    with host.sudo():
        settings = host.run("mariadb -N -B -e 'SELECT @@port, @@require_secure_transport, @@have_ssl'")
    assert settings.stdout.split() == ["5432", "1", "YES"], settings.stdout + settings.stderr


def test_postgresql_of_the_release_runs_on_the_data_volume(host, engine):
    if engine != "postgresql":
        assert not host.package("postgresql").is_installed
        return
    version = _version(host)
    assert host.package(f"postgresql-{version}").is_installed
    assert host.service(f"postgresql@{version}-main").is_running
    with host.sudo():
        mounts = host.run("findmnt -n -o SOURCE /var/lib/postgresql").stdout
        assert "/postgresql" in mounts, mounts
        assert host.file(f"/var/lib/postgresql/{version}/main/PG_VERSION").exists


def test_remote_access_needs_tls_and_a_password(host, engine):
    if engine != "postgresql":
        assert not host.package("postgresql").is_installed
        return
    version = _version(host)
    with host.sudo():
        hba = host.file(f"/etc/postgresql/{version}/main/pg_hba.conf").content_string
        settings = host.run("runuser -u postgres -- psql -X -At -c 'SHOW ssl' -c 'SHOW password_encryption'")
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    for rule in rules:
        if rule[0] == "host":
            assert rule[-1] == "reject" or rule[3] in ("127.0.0.1/32", "::1/128"), rule
        if rule[0] == "hostssl":
            assert rule[-1] in ("scram-sha-256", "reject"), rule
    assert settings.stdout.split() == ["on", "scram-sha-256"], settings.stdout + settings.stderr


def test_owners_connect_with_their_generated_passwords(host, engine):
    if engine != "postgresql":
        assert not host.package("postgresql").is_installed
        return
    with host.sudo():
        names = host.run("ls /var/lib/castelet/secrets").stdout.split()
        services = [n for n in names if n.startswith("postgresql-") and n.endswith(".conf")]
        assert services, names
        for service in services:
            database = service.removeprefix("postgresql-").removesuffix(".conf")
            result = host.run(f"PGSERVICEFILE=/var/lib/castelet/secrets/{service} psql -X -At service={database} "
                              "-c 'SELECT current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'")
            assert result.rc == 0, result.stderr
            assert result.stdout.strip() == f"{database}|t"
        assert host.file("/var/lib/castelet/secrets").mode == 0o700


def test_the_server_certificate_names_the_domain(host, engine):
    if engine != "postgresql":
        assert not host.package("postgresql").is_installed
        return
    domain = checks.tls_config(host)["domain"] if host.file("/etc/castelet/tls.json").exists else None
    with host.sudo():
        names = host.run("openssl x509 -in /var/lib/postgresql/castelet-tls/server.crt -noout -ext subjectAltName")
        key = host.file("/var/lib/postgresql/castelet-tls/server.key")
        assert key.user == "postgres" and key.mode == 0o600
    assert "DNS:" in names.stdout
    if domain:
        assert f"DNS:{domain}" in names.stdout
