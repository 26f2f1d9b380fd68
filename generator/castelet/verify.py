"""Checks shared by every blueprint's testinfra module.

A rendered deployment carries a copy of this file as ``tests/castelet_checks.py``; it reads the
resolved manifest (``.castelet/blueprint.json``) so blueprints declare services once and never
copy tests. Keep it free of castelet imports: only testinfra's ``host`` and the standard library.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parents[1] / ".castelet" / "blueprint.json"


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def services_of(role: str) -> list[dict[str, Any]]:
    return [s for s in manifest()["services"] if s["role"] == role]


def check_bootstrap_succeeded(host: Any) -> None:
    """cloud-init finished without errors and castelet's bootstrap recorded success."""
    status = host.run("cloud-init status --long")
    assert "status: done" in status.stdout, f"cloud-init is not done:\n{status.stdout}{status.stderr}"
    record = host.file("/var/lib/castelet/status")
    assert record.exists, "castelet bootstrap left no status file"
    assert "state=done" in record.content_string, f"bootstrap did not finish:\n{record.content_string}"


def check_ssh_hardened(host: Any) -> None:
    with host.sudo():
        effective = host.run("sshd -T").stdout.lower()
    assert "permitrootlogin no" in effective
    assert "passwordauthentication no" in effective
    tries = [int(line.split()[1]) for line in effective.splitlines() if line.startswith("maxauthtries ")]
    assert tries and tries[0] <= 4, f"sshd MaxAuthTries is {tries or 'unset'}, expected at most 4"


def check_fail2ban(host: Any) -> None:
    """fail2ban runs and watches SSH (and every web login jail it was given)."""
    unit = host.service("fail2ban")
    assert unit.is_running and unit.is_enabled, "fail2ban is not running/enabled"
    with host.sudo():
        status = host.run("fail2ban-client status sshd")
        jails = host.run("fail2ban-client status").stdout
        configured = host.run("ls /etc/fail2ban/jail.d").stdout.split()
    assert status.rc == 0 and "Currently banned" in status.stdout, f"no sshd jail:\n{status.stdout}{status.stderr}"
    for name in configured:
        if name.startswith("castelet-") and name.endswith(".local"):
            assert name.removesuffix(".local") in jails, f"fail2ban jail {name} is not running:\n{jails}"


def check_only_declared_ports_listen(host: Any, role: str) -> None:
    """Nothing listens on a non-loopback address but SSH and the role's declared ports (and
    the DHCP client's UDP 68, which only receives answers to its own requests)."""
    allowed = {("tcp", 22), ("udp", 68)} | {(s["protocol"], int(s["port"])) for s in services_of(role)}
    with host.sudo():
        listing = host.run("ss -H -l -n -t -u").stdout
    unexpected = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        protocol, local = fields[0], fields[4]
        address, _, port = local.rpartition(":")
        address = address.strip("[]").split("%")[0]
        if address.startswith("127.") or address == "::1":
            continue
        if (protocol, int(port)) not in allowed:
            unexpected.append(f"{protocol} {local}")
    assert not unexpected, f"listening beyond the manifest's ports: {', '.join(unexpected)}"


def web_roles(role: str) -> list[dict[str, Any]]:
    return [s for s in services_of(role) if s.get("tls")]


def tls_config(host: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(host.file("/etc/castelet/tls.json").content_string)
    return data


def _curl(host: Any, domain: str, url_path: str, *options: str) -> Any:
    argv = ["curl", "-sk", "--max-time", "20", "--resolve", f"{domain}:443:127.0.0.1",
            "--resolve", f"{domain}:80:127.0.0.1", *options, url_path]
    return host.run(shlex.join(argv))


def site_get(host: Any, path: str) -> str:
    """The body of GET https://<domain><path>, fetched on the instance itself (for blueprint tests)."""
    domain = tls_config(host)["domain"]
    return str(_curl(host, domain, f"https://{domain}{path}").stdout)


def check_https(host: Any, role: str) -> None:
    """Port 80 redirects to https://<domain>/..., HTTPS sends HSTS and the security headers, and
    neither the web server nor PHP advertises its version."""
    if not web_roles(role):
        return
    domain = tls_config(host)["domain"]
    redirect = _curl(host, domain, f"http://{domain}/castelet-check?x=1", "-o", "/dev/null",
                     "-w", "%{http_code} %{redirect_url}")
    assert redirect.stdout.strip() == f"301 https://{domain}/castelet-check?x=1", \
        f"http:// does not redirect to https://: {redirect.stdout!r}"
    head = _curl(host, domain, f"https://{domain}/", "-D", "-", "-o", "/dev/null")
    headers = {}
    for line in head.stdout.splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get("strict-transport-security", "").startswith("max-age="), f"no HSTS: {headers}"
    assert headers.get("x-content-type-options") == "nosniff", "no X-Content-Type-Options: nosniff"
    assert "referrer-policy" in headers, "no Referrer-Policy"
    server = headers.get("server", "")
    assert not any(ch.isdigit() for ch in server), f"the server advertises its version: {server!r}"
    assert "x-powered-by" not in headers, f"X-Powered-By is sent: {headers['x-powered-by']!r}"


def check_web_roots_not_writable(host: Any, role: str) -> None:
    """The web server's user cannot modify what it serves under /var/www (data the application
    writes lives on the data volume)."""
    if not web_roles(role) or not host.user("www-data").exists:
        return
    with host.sudo():
        found = host.run("runuser -u www-data -- find /var/www -xdev -writable -not -type l -print")
    writable = [line for line in found.stdout.splitlines() if line.strip()]
    assert not writable, f"writable by www-data under /var/www: {', '.join(writable[:10])}"


def check_tls_certificate(host: Any, role: str, address: str) -> None:
    """The served certificate is the one castelet-tls says it is. While an ACME certificate is
    awaited, fail with what to do (point DNS at the instance), not with a TLS error."""
    if not web_roles(role):
        return
    config = tls_config(host)
    domain = config["domain"]
    read = host.run("cat /var/lib/castelet/tls-status.json")
    assert read.rc == 0 and read.stdout.strip(), (
        f"castelet-tls left no status in /var/lib/castelet/tls-status.json (exit {read.rc}): {read.stderr.strip()}")
    status = json.loads(read.stdout)
    served = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(domain)} </dev/null 2>/dev/null"
        " | openssl x509 -noout -issuer -subject -ext subjectAltName")
    assert served.rc == 0, f"no certificate served on 443: {served.stderr}"
    assert f"DNS:{domain}" in served.stdout, f"the served certificate is not for {domain}:\n{served.stdout}"
    self_signed = "Castelet self-signed" in served.stdout.split("subject=")[0]
    if config["acme_server"] == "self-signed":
        assert self_signed, f"expected the self-signed certificate:\n{served.stdout}"
        return
    if status.get("state") != "issued" or self_signed:
        try:
            resolved = sorted({str(info[4][0]) for info in socket.getaddrinfo(domain, 443, proto=socket.IPPROTO_TCP)})
        except socket.gaierror:
            resolved = []
        reason = status.get("reason") or "none recorded"
        raise AssertionError(
            f"TLS: waiting for DNS {domain} → {address} (it resolves to {', '.join(resolved) or 'nothing'}); "
            f"the site serves a self-signed certificate until the CA can reach it, and retries every few "
            f"minutes. The CA said: {reason}")


def check_unattended_upgrades(host: Any) -> None:
    assert host.package("unattended-upgrades").is_installed
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1"' in periodic


def check_services_listening(host: Any, role: str) -> None:
    for service in services_of(role):
        spec = f"{service['protocol']}://0.0.0.0:{service['port']}"
        assert host.socket(spec).is_listening or host.socket(
            f"{service['protocol']}://:::{service['port']}").is_listening, f"{service['name']} not listening"
        if service.get("systemd_unit"):
            unit = host.service(service["systemd_unit"])
            assert unit.is_running and unit.is_enabled, f"{service['systemd_unit']} not running/enabled"


def check_health(host: Any, role: str) -> None:
    """Every declared health check answers through the real service on the instance."""
    for service in services_of(role):
        health = service.get("health")
        if not health:
            continue
        if service.get("tls"):
            domain = tls_config(host)["domain"]
            url = f"https://{domain}:{service['port']}{health['path']}"
            result = _curl(host, domain, url, "-o", "/tmp/castelet-health", "-w", "%{http_code}")
        else:
            url = f"http://127.0.0.1:{service['port']}{health['path']}"
            result = host.run(shlex.join(["curl", "-s", "-o", "/tmp/castelet-health", "-w", "%{http_code}", url]))
        assert result.stdout.strip() == str(health["status"]), f"{url}: HTTP {result.stdout.strip()}"
        if health.get("text"):
            body = host.file("/tmp/castelet-health").content_string
            assert health["text"] in body, f"{url}: {health['text']!r} not in the response"


#: A good snapshot older than this fails verify (the timer runs daily, with up to 30 min of delay).
BACKUP_MAX_AGE_HOURS = 26


def check_state_on_volumes(host: Any) -> None:
    """Every volume of the node is mounted, and on a node with a data volume the secrets (and
    MariaDB's files, where MariaDB runs) are bind mounts from it: a rebuilt instance finds them."""
    hieradata = host.file("/etc/puppet/code/environments/production/data/terraform.yaml")
    with host.sudo():
        check = host.run("castelet-volumes check")
        mounts = host.run("findmnt -rn -o TARGET").stdout.split()
    assert check.rc == 0, f"volumes: {check.stderr.strip() or check.stdout.strip()}"
    data_dir = re.search(r'^\s*"?data_dir"?:\s*"?(/[^"\s]*)"?\s*$', hieradata.content_string, re.MULTILINE)
    if data_dir is None:  # null, or no volume
        return
    assert "/var/lib/castelet/secrets" in mounts, "the secrets are not on the data volume"
    if host.exists("mariadbd") or host.package("mariadb-server").is_installed:
        assert "/var/lib/mysql" in mounts, "MariaDB's files (/var/lib/mysql) are not on the data volume"


def backup_status(host: Any) -> dict[str, Any] | None:
    """castelet-backup's status on the node, or None where backups are off."""
    with host.sudo():
        if not host.file("/etc/castelet/backup.json").exists:
            return None
        status = host.run("castelet-backup status")
    assert status.rc == 0, f"castelet-backup status failed: {status.stderr.strip()}"
    data: dict[str, Any] = json.loads(status.stdout)
    return data


def check_backups(host: Any) -> None:
    """Where backups are on: the last run did not fail, and the last good snapshot is younger than
    BACKUP_MAX_AGE_HOURS (a node that never backed up yet passes until its first day is over)."""
    status = backup_status(host)
    if status is None:
        return
    with host.sudo():
        failed = host.run("systemctl is-failed castelet-backup.service").stdout.strip() == "failed"
        journal = host.run("journalctl -u castelet-backup.service -n 8 --no-pager -o cat").stdout if failed else ""
        since = host.run("stat -c %Y /var/lib/castelet/bootstrap.done").stdout.strip()
    now = float(host.run("date +%s").stdout.strip())
    last = status.get("last_success")
    age = None
    if last:
        age = (now - _epoch(str(last))) / 3600
    described = f"last good snapshot {age:.1f} h ago" if age is not None else "no good snapshot yet"
    assert not failed, (f"backup: the last run of castelet-backup.service failed ({described}; "
                        f"last error: {status.get('last_error') or 'see below'}):\n{journal}")
    if age is None:
        first_boot_hours = (now - float(since)) / 3600 if since.isdigit() else 0.0
        assert first_boot_hours < BACKUP_MAX_AGE_HOURS, f"backup: {described} after {first_boot_hours:.0f} h"
        return
    assert age < BACKUP_MAX_AGE_HOURS, f"backup: {described} (more than {BACKUP_MAX_AGE_HOURS} h)"


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
