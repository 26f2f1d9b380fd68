"""terraform-modules/openstack's own `terraform test` suite, offline.

The suite (terraform-modules/openstack/tests/*.tftest.hcl) only plans: it runs against castelet's
plan-only stand-in of terraform-provider-openstack 3.0.0 (castelet.offline), installed from a
local filesystem mirror through a generated CLI configuration, with fake OS_* credentials.
Mutation checks then break a copy of the module in one precise way each and require the run
written for that behaviour to fail, so the suite is known to be able to fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from castelet.offline.check import terraform_environment
from castelet.offline.install import StandinInstallation, install_standin
from castelet.offline.schema import ensure_schema

pytest.importorskip("tf", reason="pip install 'castelet[offline]'")

TESTS = "openstack/tests"
RUN_BLOCK = re.compile(r'^run\s+"([^"]+)"\s*\{.*?^\}\n', re.M | re.S)
SUMMARY = re.compile(r"(Success|Failure)! (\d+) passed, (\d+) failed(?:, (\d+) skipped)?\.")


@pytest.fixture(scope="session")
def openstack_standin(tmp_path_factory: pytest.TempPathFactory) -> StandinInstallation:
    """The stand-in provider, its schema converted once per session into a temporary cache."""
    schema = ensure_schema(tmp_path_factory.mktemp("offline-cache"))
    return install_standin(tmp_path_factory.mktemp("standin"), schema)


@pytest.fixture(scope="session")
def standin_env(openstack_standin: StandinInstallation) -> dict[str, str]:
    """Terraform's environment for the stand-in, exactly as `castelet check` builds it."""
    return terraform_environment(openstack_standin.cli_config, None)


def _terraform(cmd: list[str], cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _copy_modules(repo_root: Path, dest: Path) -> Path:
    """Copy terraform-modules/ (the module calls ../common/...); return the openstack/ copy."""
    shutil.copytree(
        repo_root / "terraform-modules",
        dest / "terraform-modules",
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*", "*.tfplan"),
    )
    return dest / "terraform-modules" / "openstack"


def _init(cmd: list[str], workdir: Path, env: dict[str, str]) -> None:
    init = _terraform(cmd, workdir, env, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stdout + init.stderr


def _summary(output: str) -> tuple[str, int, int, int]:
    match = SUMMARY.search(output)
    assert match, f"no summary in terraform test output:\n{output}"
    return match.group(1), int(match.group(2)), int(match.group(3)), int(match.group(4) or 0)


def test_openstack_module_terraform_test(
    repo_root: Path, terraform_cmd: list[str], standin_env: dict[str, str], tmp_path: Path
) -> None:
    source_tests = sorted((repo_root / "terraform-modules" / TESTS).glob("*.tftest.hcl"))
    assert {f.name for f in source_tests} >= {"deployment.tftest.hcl", "guards.tftest.hcl"}
    expected_runs = sum(len(RUN_BLOCK.findall(f.read_text())) for f in source_tests)
    assert expected_runs >= 18, "the openstack suite lost run blocks"

    workdir = _copy_modules(repo_root, tmp_path)
    _init(terraform_cmd, workdir, standin_env)
    result = _terraform(terraform_cmd, workdir, standin_env, "test")
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert _summary(output) == ("Success", expected_runs, 0, 0), output
    assert output.count("... pass") == expected_runs + len(source_tests), output
    # Every flavor of the suite is Arbutus-style: the stand-in must have sized them all.
    assert "unknown offline" not in output, output


class Mutation(NamedTuple):
    path: str  # under terraform-modules/
    old: str
    new: str
    tests: str  # file under openstack/tests/
    run: str  # the run block that must catch it


MUTATIONS = {
    "ssh-open-to-the-world": Mutation(
        "common/design/main.tf",
        'port     = 22\n    protocol = "tcp"\n    cidr     = var.admin_cidr',
        'port     = 22\n    protocol = "tcp"\n    cidr     = "0.0.0.0/0"',
        "deployment.tftest.hcl",
        "security_groups",
    ),
    "no-ipv6-twin": Mutation(
        "openstack/secgroups.tf",
        'ethertype = "IPv6"\n        }) if rule.exposure == "public"',
        'ethertype = "IPv6"\n        }) if rule.exposure == "nobody"',
        "deployment.tftest.hcl",
        "security_groups",
    ),
    "volume-on-the-wrong-instance": Mutation(
        "openstack/volumes.tf",
        "instance_id = openstack_compute_instance_v2.instance[each.value.instance].id",
        "instance_id = openstack_compute_instance_v2.instance[sort(keys(local.instances))[0]].id",
        "deployment.tftest.hcl",
        "volumes",
    ),
    "device-named-by-the-whole-id": Mutation(
        "openstack/volumes.tf",
        '"/dev/disk/by-id/*${substr(id, 0, 20)}*"',
        '"/dev/disk/by-id/virtio-${id}"',
        "deployment.tftest.hcl",
        "volumes",
    ),
    "existing-volume-created-anyway": Mutation(
        "openstack/volumes.tf",
        "created_volumes  = { for key, volume in module.design.volumes : key => volume if volume.existing == null }",
        "created_volumes  = module.design.volumes",
        "deployment.tftest.hcl",
        "existing_volume",
    ),
    "existing-volume-not-attached-by-its-id": Mutation(
        "openstack/volumes.tf",
        "{ for key, volume in data.openstack_blockstorage_volume_v3.existing : key => volume.id },",
        "{ for key, volume in data.openstack_blockstorage_volume_v3.existing : key => volume.name },",
        "deployment.tftest.hcl",
        "existing_volume",
    ),
    "floating-ip-for-every-instance": Mutation(
        "openstack/floating_ips.tf",
        'resource "openstack_networking_floatingip_v2" "public" {\n  for_each = local.allocated_ips',
        'resource "openstack_networking_floatingip_v2" "public" {\n  for_each = local.instances',
        "deployment.tftest.hcl",
        "floating_ips",
    ),
    "network-despite-existing-one": Mutation(
        "openstack/network.tf",
        'resource "openstack_networking_network_v2" "main" {\n  count = local.create_network ? 1 : 0',
        'resource "openstack_networking_network_v2" "main" {\n  count = 1',
        "deployment.tftest.hcl",
        "discovered_network",
    ),
    "preallocated-floating-ip-allocated-again": Mutation(
        "openstack/floating_ips.tf",
        "if !contains(keys(var.floating_ips), hostname) }",
        "if true }",
        "deployment.tftest.hcl",
        "preallocated_floating_ip",
    ),
    "subnet-without-dns": Mutation(
        "openstack/variables.tf",
        "condition     = !var.network.create || length(var.network.dns_nameservers) > 0",
        "condition     = !var.network.create || length(var.network.dns_nameservers) >= 0",
        "deployment.tftest.hcl",
        "created_network_without_dns",
    ),
    "no-user-data-size-guard": Mutation(
        "openstack/instances.tf",
        "local.user_data_nova_base64_length[each.key] <= 65535",
        "local.user_data_nova_base64_length[each.key] <= 655350",
        "guards.tftest.hcl",
        "user_data_too_large_without_gzip",
    ),
    "no-public-keys-guard": Mutation(
        "openstack/instances.tf",
        "condition     = length(var.public_keys) > 0",
        "condition     = length(var.public_keys) >= 0",
        "guards.tftest.hcl",
        "no_public_keys",
    ),
    "key-pair-ignored": Mutation(
        "openstack/instances.tf",
        "key_pair    = var.key_pair",
        "key_pair    = null",
        "deployment.tftest.hcl",
        "instances",
    ),
    "puppet-data-without-firewall-rules": Mutation(
        "openstack/main.tf",
        "volume_devices          = local.volume_devices\n  admin_user              = var.admin_user\n"
        "  public_keys             = var.public_keys\n  admin_cidr              = var.admin_cidr\n"
        "  firewall_rules          = module.design.firewall_rules",
        "volume_devices          = local.volume_devices\n  admin_user              = var.admin_user\n"
        "  public_keys             = var.public_keys\n  admin_cidr              = var.admin_cidr\n"
        "  firewall_rules          = {}",
        "deployment.tftest.hcl",
        "puppet_data",
    ),
    "clients-open-to-the-world": Mutation(
        "common/design/main.tf",
        "clients = local.client_cidrs",
        'clients = ["0.0.0.0/0"]',
        "deployment.tftest.hcl",
        "clients_service",
    ),
    "client-networks-kept-from-puppet": Mutation(
        "common/configuration/main.tf",
        "client_cidrs   = local.client_cidrs",
        "client_cidrs   = []",
        "deployment.tftest.hcl",
        "clients_service",
    ),
    "no-vcpu-guard": Mutation(
        "openstack/instances.tf",
        ".vcpus, 0) >= each.value.min_vcpus",
        ".vcpus, 0) >= 0",
        "guards.tftest.hcl",
        "flavor_too_few_vcpus",
    ),
}


def _only_run(text: str, name: str) -> str:
    """The test file with its run blocks reduced to `name` (provider and variables kept)."""
    blocks = {m.group(1): m for m in RUN_BLOCK.finditer(text)}
    assert name in blocks, f"run {name!r} is gone: update MUTATIONS"
    header = text[: min(m.start() for m in blocks.values())]
    return header + blocks[name].group(0)


@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_openstack_suite_catches_a_broken_module(
    mutation: Mutation, repo_root: Path, terraform_cmd: list[str], standin_env: dict[str, str], tmp_path: Path
) -> None:
    workdir = _copy_modules(repo_root, tmp_path)
    target = workdir.parent / mutation.path
    source = target.read_text()
    assert source.count(mutation.old) == 1, f"{mutation.path} changed: update this mutation"
    target.write_text(source.replace(mutation.old, mutation.new))

    tests_dir = workdir / "tests"
    for other in tests_dir.glob("*.tftest.hcl"):
        if other.name != mutation.tests:
            other.unlink()
    test_file = tests_dir / mutation.tests
    test_file.write_text(_only_run(test_file.read_text(), mutation.run))

    _init(terraform_cmd, workdir, standin_env)
    result = _terraform(terraform_cmd, workdir, standin_env, "test")
    output = result.stdout + result.stderr

    assert result.returncode != 0, output
    assert f'run "{mutation.run}"... fail' in output, output
    assert _summary(output)[:3] == ("Failure", 0, 1), output
    # Caught by an assertion or a missing expected failure, not by a broken configuration.
    assert "Error: Test assertion failed" in output or "Error: Missing expected failure" in output, output
