"""Checks shared by every blueprint's testinfra module.

A rendered deployment carries a copy of this file as ``tests/castelet_checks.py``; it reads the
resolved manifest (``.castelet/blueprint.json``) so blueprints declare services once and never
copy tests. Keep it free of castelet imports: only testinfra's ``host`` and the standard library.
"""

from __future__ import annotations

import json
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
        url = f"http://127.0.0.1:{service['port']}{health['path']}"
        result = host.run(f"curl -s -o /tmp/castelet-health -w '%{{http_code}}' {url}")
        assert result.stdout.strip() == str(health["status"]), f"{url}: HTTP {result.stdout.strip()}"
        if health.get("text"):
            body = host.file("/tmp/castelet-health").content_string
            assert health["text"] in body, f"{url}: {health['text']!r} not in the response"
