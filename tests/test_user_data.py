"""User-data stays small for every blueprint: cloud-init carries the bootstrap and the deployment's
data, the provision step pushes the Puppet environment (issue 11: under 16 KiB uncompressed, far
from Nova's 64 KiB and with no need for gzip, which some metadata services fail to serve)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from castelet.blockers import resolved_for_checks
from castelet.manifest import load
from castelet.render import new
from helpers import BLUEPRINTS, REPO_ROOT, terraform_outputs

LIMIT = 16 * 1024
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"


@pytest.mark.parametrize("cloud", ["openstack", "lxd"])
@pytest.mark.parametrize("name", BLUEPRINTS)
def test_user_data_is_small_and_carries_no_puppet_code(name: str, cloud: str, terraform_cmd: list[str],
                                                        tmp_path: Path) -> None:
    answers = resolved_for_checks(load(REPO_ROOT / "blueprints" / name), {"admin_ssh_keys": f"{KEY}\n{KEY} two"})
    deployment = new(REPO_ROOT / "blueprints" / name, {**answers, "cloud": cloud}, tmp_path / "out")
    user_data = terraform_outputs(deployment, terraform_cmd, tmp_path)["user_data"]
    assert user_data, "no instance"
    puppet_sources = sum(len(p.read_bytes()) for p in (deployment / "puppet").rglob("*") if p.is_file())
    assert puppet_sources > LIMIT, "the environment itself is larger than the limit: the test would prove nothing"
    for hostname, document in user_data.items():
        size = len(document.encode())
        print(f"{name} {cloud} {hostname}: {size} bytes of user-data")
        assert size < LIMIT, f"{hostname}: {size} bytes"
        paths = [f["path"] for f in yaml.safe_load(document)["write_files"]]
        assert not [p for p in paths if p.endswith((".pp", ".epp", ".rb"))], paths
        assert "/etc/puppet/code/environments/production/data/terraform.yaml" in paths
