"""End-to-end fixtures: the local LXD cloud and an admin key. Run with `nox -s e2e` (root)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from acme import PORT_STEP, Pebble
from castelet.local import cloud
from castelet.releases import RELEASES
from files_server import serving


def worker_index() -> int:
    """0, or the number of this pytest-xdist worker (`gw3` → 3) when tests run in parallel."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


class DeploymentScheduling(LoadScopeScheduling):
    """pytest-xdist scheduling for deployments: the tests sharing one deployment
    (tests/e2e/test_data.py, one `deployed` per blueprint: `test_...[<blueprint>]`) run together
    and in order on one worker; every other test goes to the next free worker on its own.
    (xdist's `--dist loadgroup` ignores groups given to fixture parameters, and `loadscope` would
    keep the whole module on one worker.)"""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(DATA_TESTS) and nodeid.endswith("]"):
            return "data[" + nodeid.rsplit("[", 1)[1]
        return nodeid


DATA_TESTS = "tests/e2e/test_data.py::"


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> DeploymentScheduling:
    return DeploymentScheduling(config, log)


@pytest.fixture(scope="session")
def local_cloud() -> None:
    """The e2e session is asked for explicitly: a missing cloud is a failure, not a skip."""
    if os.geteuid() != 0:
        pytest.fail("end-to-end tests need root (LXD): run `sudo .venv/bin/nox -s e2e`")
    missing = [c.name for c in cloud.status(tuple(RELEASES)) if not c.ready]
    if missing:
        pytest.fail(f"local cloud not ready ({', '.join(missing)}): run `castelet local setup`")


@pytest.fixture(scope="session")
def admin_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "castelet-e2e", "-f", str(key)], check=True)
    return Path(f"{key}.pub").read_text().strip()


@pytest.fixture(scope="session")
def bridge_address(local_cloud: None) -> str:
    """The host's address on the LXD bridge (instances reach the host there)."""
    cidr = cloud.lxc("network", "get", cloud.NETWORK, "ipv4.address").stdout.strip()
    return cidr.split("/")[0]


@pytest.fixture(scope="session")
def acme(bridge_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A real ACME CA (Debian's pebble) on the bridge, and the DNS its validation uses: instance
    names (`<container>.lxd`) resolve at once, other test domains once `point()`-ed."""
    pebble = Pebble(tmp_path_factory.mktemp("acme"), bridge_address, port_offset=worker_index() * PORT_STEP)
    pebble.start()
    try:
        yield pebble
    finally:
        pebble.stop()


@pytest.fixture(scope="session")
def archive_server(bridge_address: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serves {path: bytes} to the instances on the bridge address (release archives, stand-ins)."""
    with serving(bridge_address) as server:
        yield server

