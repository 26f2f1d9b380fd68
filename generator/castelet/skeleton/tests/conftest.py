"""testinfra wiring: one `host` per instance of the roles a test module declares in ROLES."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import testinfra
import testinfra.host
from testinfra.backend.base import CommandResult
from testinfra.backend.lxc import LxcBackend

INVENTORY = Path(os.environ.get("CASTELET_INVENTORY", Path(__file__).parents[1] / ".castelet/inventory.json"))


def _inventory() -> dict[str, dict[str, Any]]:
    if not INVENTORY.exists():
        raise pytest.UsageError(f"no inventory at {INVENTORY}: run `nox -s verify` after `nox -s apply`")
    data: dict[str, dict[str, Any]] = json.loads(INVENTORY.read_text())
    return data


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "node" not in metafunc.fixturenames:
        return
    roles = getattr(metafunc.module, "ROLES", None)
    nodes = [(name, entry) for name, entry in sorted(_inventory().items())
             if roles is None or entry["role"] in roles]
    metafunc.parametrize("node", nodes, ids=[name for name, _ in nodes], scope="module")


@pytest.fixture(scope="module")
def role(node: tuple[str, dict[str, Any]]) -> str:
    return str(node[1]["role"])


def ssh_extra_args(known_hosts: str | None) -> str:
    """testinfra's ssh options: host keys checked against ``known_hosts`` when given. testinfra
    pastes them into a local shell command line as they are, so the path is quoted."""
    checking = ("-o StrictHostKeyChecking=yes -o " + shlex.quote(f"UserKnownHostsFile={known_hosts}")
                if known_hosts else "-o StrictHostKeyChecking=accept-new")
    return f"{checking} -o BatchMode=yes"


class RereadingLxcBackend(LxcBackend):
    """testinfra's `lxc exec` backend, asking again when a command came back with nothing at all.

    LXD 5.0.2 (Debian 12's) can end an exec session before the client has read the output when
    the host's CPU is busy (canonical/lxd#11422, fixed in later LXD): the command ran, but `lxc
    exec` reports exit 0 and no output, and a check then reads an empty file. Every check here
    only reads, so a result with exit 0, no stdout and no stderr is read up to twice more (a
    command that truly prints nothing costs two more `lxc exec`). Local cloud only: OpenStack
    instances are checked over SSH."""

    RETRIES = 2

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        result = super().run(command, *args, **kwargs)
        for _ in range(self.RETRIES):
            if result.rc != 0 or result.stdout_bytes or result.stderr_bytes:
                break
            result = super().run(command, *args, **kwargs)
        return result


@pytest.fixture(scope="module")
def host(node: tuple[str, dict[str, Any]]) -> Any:
    _, entry = node
    if entry["testinfra_url"].startswith("lxc://"):
        return testinfra.host.Host(RereadingLxcBackend(entry["testinfra_url"].removeprefix("lxc://")))
    options: dict[str, Any] = {"sudo": False}
    if entry["testinfra_url"].startswith("ssh://"):
        # `nox -s verify` hands the pinned host keys (.castelet/host_keys.json) as a known_hosts
        # file; a hand-run pytest without it falls back to trusting a new host on first contact.
        options["ssh_extra_args"] = ssh_extra_args(os.environ.get("CASTELET_KNOWN_HOSTS"))
        key = os.environ.get("CASTELET_SSH_KEY")
        if key:
            options["ssh_identity_file"] = key
    return testinfra.get_host(entry["testinfra_url"], **options)
