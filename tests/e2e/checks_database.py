"""database's own end-to-end checks, run inside its lifecycle deployment (tests/e2e/e2e_site.py).

`answers()`: the instance's DNS name as `domain`, remote clients from the host only (`client_cidrs`
= the bridge address as a /32) and two databases with one owner (`lab survey:lab`).
`check_deployed()`: from the host, Debian's psql connects over TLS, verifying the server's
certificate (pinned: the file copied from the instance) against the instance's name, with the
owner's password that `nox -s secrets` shows, to both databases; the same client without TLS
(`sslmode=disable`) is refused, and so is the superuser `postgres`; a second container on the
bridge (an address outside `client_cidrs`) cannot reach the port (the host firewall drops it), and
the instance's own bridge address, which passes the firewall, is refused by pg_hba.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from castelet.local.cloud import lxc
from e2e_site import Site
from nox_sessions import secrets

DATABASES = "lab survey:lab"
CERTIFICATE = "/var/lib/postgresql/castelet-tls/server.crt"


def answers(site: Site) -> dict[str, str]:
    # The instance's own name: clients verify the server certificate against `domain`.
    return {"domain": site.domain, "client_cidrs": f"{site.bridge_address}/32", "databases": DATABASES}


def _psql(conninfo: str, password: str, sql: str = "SELECT 1") -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    assert psql, "psql is missing on the host: apt-get install postgresql-client"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGCONNECT_TIMEOUT="15")
    return subprocess.run([psql, "-X", "-A", "-t", "-c", sql, conninfo], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def _refused(proc: subprocess.CompletedProcess[str], why: str) -> None:
    assert proc.returncode != 0, f"{why}: the connection was accepted: {proc.stdout}"
    assert "FATAL" in proc.stderr or "timeout" in proc.stderr.lower() or "refused" in proc.stderr, proc.stderr


def check_deployed(site: Site) -> None:
    assert site.deployment is not None
    address = site.address()
    password = secrets(site.deployment)["postgresql-lab"]
    assert len(password) >= 32
    pinned = Path(site.tmp_path) / "server.crt"
    pinned.write_text(lxc("exec", site.container, "--", "cat", CERTIFICATE).stdout)

    # Allowed client, TLS verified against the pinned certificate and the instance's name.
    tls = f"host={site.domain} hostaddr={address} port=5432 sslmode=verify-full sslrootcert={pinned}"
    for database in ("lab", "survey"):
        proc = _psql(f"{tls} dbname={database} user=lab", password,
                     "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [f"lab|{database}|t"], proc.stdout
    # The owner owns the database: it can create a table there.
    proc = _psql(f"{tls} dbname=survey user=lab", password, "CREATE TABLE e2e_probe (n int); DROP TABLE e2e_probe")
    assert proc.returncode == 0, proc.stderr
    # A wrong password, no TLS, the superuser: refused.
    _refused(_psql(f"{tls} dbname=lab user=lab", password[::-1]), "a wrong password")
    _refused(_psql(f"host={address} port=5432 sslmode=disable dbname=lab user=lab", password), "sslmode=disable")
    _refused(_psql(f"{tls} dbname=lab user=postgres", password), "the postgres superuser over TCP")

    # From the instance's own bridge address (past the firewall: local traffic): pg_hba refuses it.
    probe = ("PGPASSWORD=\"$(cat /var/lib/castelet/secrets/postgresql-lab)\" "
             f"psql -X -c 'SELECT 1' 'host={address} dbname=lab user=lab sslmode=require'")
    local = lxc("exec", site.container, "--", "sh", "-c", probe, check=False)
    assert local.returncode != 0 and "no pg_hba.conf entry" in local.stderr, local.stdout + local.stderr

    # Another address on the bridge, outside client_cidrs: the firewall drops its packets.
    other = f"{site.container}-x"
    lxc("launch", "castelet/debian-13", other, "-p", "castelet")
    try:
        probe_site = Site(site.blueprint, other, site.domain, None, site.bridge_address, site.base_url, site.served,
                          site.tmp_path)
        deadline = time.monotonic() + 120
        while True:  # until the new container has its address
            try:
                assert probe_site.address() != address
                break
            except (StopIteration, KeyError, IndexError):
                assert time.monotonic() < deadline, f"{other} got no IPv4 address"
                time.sleep(2)
        script = ("import socket, sys\n"
                  "try:\n"
                  f"    socket.create_connection(('{address}', 5432), timeout=10)\n"
                  "except (TimeoutError, ConnectionRefusedError) as error:\n"
                  "    print('refused', type(error).__name__)\n"
                  "    sys.exit(0)\n"
                  "print('connected')\n"
                  "sys.exit(1)\n")
        reached = lxc("exec", other, "--", "python3", "-c", script, check=False)
        assert reached.returncode == 0 and "refused" in reached.stdout, reached.stdout + reached.stderr
    finally:
        lxc("delete", "--force", other, check=False)
