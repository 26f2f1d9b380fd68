"""End-to-end fixtures: the local LXD cloud and an admin key. Run with `nox -s e2e` (root)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO

import pytest
from xdist.scheduler import LoadScopeScheduling

import costs
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
        return scope_of(nodeid)


DATA_TESTS = "tests/e2e/test_data.py::"


def scope_of(nodeid: str) -> str:
    """The unit of scheduling: one blueprint's data tests together, any other test alone."""
    if nodeid.startswith(DATA_TESTS) and nodeid.endswith("]"):
        return "data[" + nodeid.rsplit("[", 1)[1]
    return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> DeploymentScheduling | None:
    """Only for the e2e run: the unit suite, which loads this file too, keeps `--dist loadgroup`."""
    return DeploymentScheduling(config, log) if _e2e_run(config) else None


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



# --- the cost table (tests/e2e/costs.py) -----------------------------------------------------


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _e2e_run(config: pytest.Config) -> bool:
    """True for `pytest -m e2e` (nox -s e2e), not for the unit suite that merely loads this file."""
    expression = str(config.option.markexpr or "")
    return "e2e" in expression and "not e2e" not in expression


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "blueprint(id): the blueprint a test deploys (for the cost table)")
    # A new run, a new ledger (before any worker starts); the last one orders the tests.
    if _e2e_run(config) and _is_controller(config) and costs.LEDGER.is_file():
        costs.LEDGER.replace(costs.PREVIOUS)
    if _e2e_run(config) and _is_controller(config) and os.geteuid() == 0 and cloud.daemon_ready():
        with _e2e_run_lock() as alone:
            if alone:
                for removed in purge_interrupted_run():
                    print(f"e2e: removed {removed}, left by an interrupted earlier run", flush=True)
            else:
                print(f"e2e: another e2e run is live ({RUN_LOCK}): nothing left over is removed", flush=True)


#: Every live e2e run holds it shared, for as long as it runs (released when its controller dies;
#: /run is empty after a reboot); the purge needs it exclusive.
RUN_LOCK = Path("/run/lock/castelet-e2e.lock")
_run_lock: list[IO[str]] = []


@contextlib.contextmanager
def _e2e_run_lock() -> Iterator[bool]:
    """Yields True when no other e2e run is live (the lock taken exclusive: the purge is safe),
    else False; afterwards this run holds the lock shared until it ends, so that a run started
    later sees it as live, even when it started beside another one."""
    RUN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    handle = RUN_LOCK.open("a")
    _run_lock.append(handle)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(handle, fcntl.LOCK_SH)  # waits only while a purge runs
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(handle, fcntl.LOCK_SH)


#: Every deployment an e2e test makes is named `e2e-…` (test_lifecycle.py, test_data.py,
#: test_sandboxes_e2e.py), so its instances and volumes are too.
E2E_PREFIX = "e2e-"


def purge_interrupted_run(prefix: str = E2E_PREFIX) -> list[str]:
    """Delete the instances and data volumes of e2e deployments still on the local cloud before the
    run starts (once, in the controller, before any worker): a run killed mid-test (a machine
    restart, a CI timeout) cannot destroy what it made, and a leftover `e2e-lamp12-web1` would make
    the next run's apply fail on a name already taken. Only `prefix` names (`e2e-`): nothing a user
    deployed.
    One e2e run per machine at a time (their names would collide anyway)."""
    removed: list[str] = []
    for instance in json.loads(cloud.lxc("list", "--format=json").stdout):
        if instance["name"].startswith(prefix):
            cloud.lxc("delete", "--force", instance["name"])
            removed.append(f"container {instance['name']}")
    for volume in json.loads(cloud.lxc("storage", "volume", "list", cloud.POOL, "--format=json").stdout):
        if volume.get("type") == "custom" and volume["name"].startswith(prefix):
            cloud.lxc("storage", "volume", "delete", cloud.POOL, volume["name"])
            removed.append(f"volume {volume['name']}")
    return removed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest work first (the last run's ledger, else tests/e2e/costs-baseline.jsonl): with two
    workers, a long deployment chain started last would run on alone at the end. `nox -s e2e`
    keeps this order (`--no-loadscope-reorder`)."""
    if not _e2e_run(config):
        return
    seconds = costs.seconds_per_test()
    per_scope: dict[str, float] = {}
    for item in items:
        scope = scope_of(item.nodeid)
        per_scope[scope] = per_scope.get(scope, 0.0) + seconds.get(item.nodeid, 0.0)
    order = {item.nodeid: index for index, item in enumerate(items)}
    items.sort(key=lambda item: (-per_scope[scope_of(item.nodeid)], order[item.nodeid]))


def _blueprint_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("blueprint")
    if marker is not None:
        return str(marker.args[0])
    params = getattr(getattr(item, "callspec", None), "params", {})
    for value in params.values():
        if hasattr(value, "roles") and hasattr(value, "id"):  # a Blueprint
            return str(value.id)
    return costs.SHARED


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Each test's whole time (its fixtures' set-up and tear-down included) goes to its blueprint."""
    started = time.monotonic()
    yield
    if _e2e_run(item.config):  # this hook sees the unit suite's tests too
        costs.record(_blueprint_of(item), "test", time.monotonic() - started, test=item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not (_e2e_run(config) and _is_controller(config)):
        return
    rows = costs.costs(costs.read())
    if not rows:
        return
    workers = int(getattr(config.option, "numprocesses", 0) or 1)
    terminalreporter.section("e2e cost per blueprint")
    terminalreporter.write_line(costs.table(rows, workers))
    terminalreporter.write_line(f"(ledger: {costs.LEDGER.relative_to(costs.REPO_ROOT)}; `nox -s ci-budget` projects "
                                "the CI time of a larger catalogue from it)")
