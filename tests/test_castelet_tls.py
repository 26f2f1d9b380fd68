"""castelet-tls (files/castelet-tls.py): a private ACME CA reaches certbot, and only certbot
(issue 21 point 10). The first issue runs certbot with REQUESTS_CA_BUNDLE pointing at the CA
Puppet wrote (`ca_bundle` in /etc/castelet/tls.json); without one, certbot gets the environment
as it is (the public trust store)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "puppet/modules/castelet/files/castelet-tls.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("castelet_tls", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("ca_bundle", ["/etc/castelet/acme-ca.pem", ""])
def test_certbot_alone_is_given_the_private_acme_ca(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     ca_bundle: str) -> None:
    tls = load()
    monkeypatch.setattr(tls, "STATUS", tmp_path / "tls-status.json")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/from/the/caller")  # replaced, never merged, when a CA is given
    monkeypatch.setattr(tls, "ensure", lambda config: 0)
    ran: list[tuple[list[str], dict[str, str] | None]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        ran.append((argv, kwargs.get("env")))
        return subprocess.CompletedProcess(argv, 1, "", "Detail: no DNS record yet")

    monkeypatch.setattr(tls.subprocess, "run", run)
    config = {"domain": "atlas.example.org", "email": "", "acme_server": "https://acme.ca.example.org/dir",
              "dir": str(tmp_path / "tls"), "webroot": str(tmp_path / "webroot"), "reload_unit": "apache2",
              "ca_bundle": ca_bundle}
    assert tls.issue(config) == tls.EX_TEMPFAIL
    ((argv, env),) = ran
    assert argv[0] == "certbot" and env is not None
    assert env["REQUESTS_CA_BUNDLE"] == (ca_bundle or "/from/the/caller")
