"""The deployment's `nox -s destroy`: instances and networking go, data volumes stay, unless
`--with-data` and the deployment's name typed (or given with `--confirm NAME`).

The session runs for real (nox in a rendered deployment) against a stand-in `terraform`
(CASTELET_TERRAFORM) that keeps a state as a list of resource addresses, destroys what it is asked
to the way Terraform does (a target and its dependents, or everything), answers Terraform's own
prompt from stdin, and records every call. Real clouds cannot be reached from the unit tests; the
lifecycle e2e tests destroy real LXD deployments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"

# What `terraform state list` shows for an applied OpenStack lamp deployment (abridged).
VOLUME = 'module.cloud.openstack_blockstorage_volume_v3.volume["lamp-web1-data"]'
APPLIED = [
    'module.cloud.data.openstack_compute_flavor_v2.flavor["p2-3gb"]',
    'module.cloud.data.openstack_images_image_v2.image["^Debian-13"]',
    'module.cloud.data.openstack_networking_subnet_v2.existing[0]',
    VOLUME,
    'module.cloud.openstack_compute_instance_v2.instance["lamp-web1"]',
    'module.cloud.openstack_compute_volume_attach_v2.volume["lamp-web1-data"]',
    'module.cloud.openstack_networking_floatingip_associate_v2.public["lamp-web1"]',
    'module.cloud.openstack_networking_floatingip_v2.public["lamp-web1"]',
    'module.cloud.openstack_networking_port_v2.instance["lamp-web1"]',
    'module.cloud.openstack_networking_secgroup_rule_v2.role["web/ssh"]',
    'module.cloud.openstack_networking_secgroup_v2.internal',
    'module.cloud.openstack_networking_secgroup_v2.role["web"]',
    'module.cloud.module.provision.terraform_data.provision["lamp-web1"]',
]
# resource => resources that depend on it (destroying it destroys them first, as Terraform does)
DEPENDENTS = {
    "module.cloud.openstack_compute_instance_v2.instance": [
        "module.cloud.openstack_compute_volume_attach_v2.volume",
        "module.cloud.openstack_networking_floatingip_associate_v2.public",
        "module.cloud.module.provision.terraform_data.provision",
    ],
    "module.cloud.openstack_blockstorage_volume_v3.volume": ["module.cloud.openstack_compute_volume_attach_v2.volume"],
}

FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + r'''if args[0] != "destroy":
    sys.exit(f"fake terraform: unexpected {args}")
targets = [a.split("=", 1)[1] for a in args if a.startswith("-target=")]
resource = lambda address: re.sub(r"\[[^\]]*\]$", "", address)
if targets:
    dependents = json.loads(os.environ["FAKE_TF_DEPENDENTS"])
    doomed = set(targets)
    for target in targets:
        doomed.update(dependents.get(target, []))
    going = [a for a in state if resource(a) in doomed or a in doomed]
else:
    going = list(state)
going = [a for a in going if ".data." not in a and not a.startswith("data.")]
print("Plan: 0 to add, 0 to change, %d to destroy." % len(going))
for address in going:
    print("  # %s will be destroyed" % address)
if "-auto-approve" not in args:
    print("Do you really want to destroy? Only 'yes' will be accepted to approve.")
    if sys.stdin.readline().strip() != "yes":
        sys.exit("Error: Destroy cancelled.")
json.dump([a for a in state if a not in going], open(state_file, "w"))
print("Destroy complete! Resources: %d destroyed." % len(going))
'''


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = new(REPO_ROOT / "blueprints" / "lamp", {"admin_ssh_keys": KEY}, tmp_path_factory.mktemp("destroy"))
    (root / ".terraform").mkdir()
    return root


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], state: list[str], calls: list[list[str]]) -> None:
        self.returncode, self.output, self.state, self.calls = proc.returncode, proc.stdout + proc.stderr, state, calls

    @property
    def destroys(self) -> list[list[str]]:
        return [call for call in self.calls if call[0] == "destroy"]


def nox_destroy(deployment: Path, tmp_path: Path, *args: str, state: list[str] | None = None,
                stdin: str = "", initialised: bool = True) -> Run:
    state_file, log_file, fake = tmp_path / "state.json", tmp_path / "calls.log", tmp_path / "fake_terraform.py"
    state_file.write_text(json.dumps(APPLIED if state is None else state))
    log_file.write_text("")
    fake.write_text(FAKE_TERRAFORM)
    marker = deployment / ".terraform"
    if initialised:
        marker.mkdir(exist_ok=True)
    elif marker.exists():
        marker.rmdir()
    env = {**os.environ, "CASTELET_TERRAFORM": f"{sys.executable} {fake}", "FAKE_TF_STATE": str(state_file),
           "FAKE_TF_LOG": str(log_file), "FAKE_TF_DEPENDENTS": json.dumps(DEPENDENTS)}
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "destroy", "--", *args], cwd=deployment, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120, check=False)
    calls = [json.loads(line) for line in log_file.read_text().splitlines()]
    return Run(proc, json.loads(state_file.read_text()), calls)


def test_default_destroy_keeps_the_volumes_and_says_how_to_delete_them(deployment: Path, tmp_path: Path) -> None:
    run = nox_destroy(deployment, tmp_path, "-auto-approve")
    assert run.returncode == 0, run.output
    assert run.state == [a for a in APPLIED if ".data." in a] + [VOLUME]
    [call] = run.destroys
    targets = sorted(a.removeprefix("-target=") for a in call if a.startswith("-target="))
    assert targets == sorted({a.split("[")[0] for a in APPLIED if ".data." not in a and a != VOLUME}), call
    assert "-auto-approve" in call and "-input=false" in call
    assert "lamp-web1-data" in run.output and "--with-data" in run.output, run.output


def test_terraforms_own_prompt_still_guards_the_default_destroy(deployment: Path, tmp_path: Path) -> None:
    declined = nox_destroy(deployment, tmp_path, stdin="no\n")
    assert declined.returncode != 0 and declined.state == APPLIED, declined.output
    assert "-input=true" in declined.destroys[0]
    accepted = nox_destroy(deployment, tmp_path, stdin="yes\n")
    assert accepted.returncode == 0 and VOLUME in accepted.state and len(accepted.state) == 4, accepted.output


def test_with_data_and_the_right_name_deletes_everything_without_a_terminal(deployment: Path, tmp_path: Path) -> None:
    """`--with-data --confirm NAME` is the unattended total cleanup: the name is the confirmation,
    Terraform does not ask again (stdin is empty here)."""
    run = nox_destroy(deployment, tmp_path, "--with-data", "--confirm", "lamp")
    assert run.returncode == 0, run.output
    assert run.state == [a for a in APPLIED if ".data." in a]
    [call] = run.destroys
    assert "-auto-approve" in call and "-input=false" in call, call
    assert not [a for a in call if a.startswith("-target=") or a.startswith("--")], call


def test_with_data_asks_for_the_name_at_a_prompt(deployment: Path, tmp_path: Path) -> None:
    run = nox_destroy(deployment, tmp_path, "--with-data", stdin="lamp\n")
    assert run.returncode == 0, run.output
    assert run.destroys[0].count("-auto-approve") == 1
    assert "Type the deployment's name (lamp)" in run.output and "lamp-web1-data" in run.output
    assert VOLUME not in run.state


@pytest.mark.parametrize(("args", "stdin"), [
    (["--with-data", "--confirm", "omeka", "-auto-approve"], ""),
    (["--with-data", "--confirm=lamp2"], ""),
    (["--with-data"], "LAMP\n"),
    (["--with-data", "-auto-approve"], ""),  # no terminal, nothing typed
], ids=["wrong-name", "wrong-name-equals", "wrong-typed", "nothing-typed"])
def test_with_data_and_a_wrong_name_refuses_and_destroys_nothing(
        deployment: Path, tmp_path: Path, args: list[str], stdin: str) -> None:
    run = nox_destroy(deployment, tmp_path, *args, stdin=stdin)
    assert run.returncode != 0, run.output
    assert "nothing was destroyed" in run.output, run.output
    assert run.destroys == [] and run.state == APPLIED


def test_a_second_destroy_only_lists_the_kept_volumes(deployment: Path, tmp_path: Path) -> None:
    run = nox_destroy(deployment, tmp_path, "-auto-approve", state=[VOLUME])
    assert run.returncode == 0, run.output
    assert run.destroys == [] and run.state == [VOLUME]
    assert "lamp-web1-data" in run.output


def test_nothing_applied_says_so_and_succeeds(deployment: Path, tmp_path: Path) -> None:
    never = nox_destroy(deployment, tmp_path, initialised=False)
    assert never.returncode == 0 and "nothing to destroy" in never.output, never.output
    assert never.calls == []
    empty = nox_destroy(deployment, tmp_path, "--with-data", state=[])
    assert empty.returncode == 0 and "nothing to destroy" in empty.output, empty.output
    assert empty.destroys == []


def test_lxd_volumes_and_nested_addresses_are_recognised(deployment: Path) -> None:
    """The address parser of the deployment's noxfile, on LXD addresses (keys with dots too)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deployment_noxfile", deployment / "noxfile.py")
    assert spec and spec.loader
    noxfile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(noxfile)
    targets, volumes = noxfile._destroy_targets([
        'module.cloud.lxd_volume.volume["lamp-web1-data"]',
        'module.cloud.lxd_container.instance["lamp-web1"]',
        'module.cloud.lxd_container.instance["lamp-web2"]',
        'module.cloud.terraform_data.provision["lamp-web1"]',
        'module.cloud.data.openstack_images_image_v2.image["Debian-13.1"]',
        'module.x["a.b"].terraform_data.y',
        "",
        "Warning: not an address",
    ])
    assert volumes == ['module.cloud.lxd_volume.volume["lamp-web1-data"]']
    assert targets == ["module.cloud.lxd_container.instance", "module.cloud.terraform_data.provision",
                       'module.x["a.b"].terraform_data.y']


def test_targeted_destroy_with_real_terraform_core(deployment: Path, tmp_path: Path, terraform_cmd: list[str]) -> None:
    """The same session with real Terraform core on a provider-free stand-in of the deployment
    (built-in terraform_data in a module, as the cloud modules nest their resources): `state list`
    is read as Terraform prints it and every resource is destroyed through -target."""
    import shutil

    from castelet.runtime import terraform_env

    root = tmp_path / "deployment"
    shutil.copytree(deployment, root, ignore=shutil.ignore_patterns(".git", ".terraform", "modules"))
    for name in ("main.tf", "versions.tf", "outputs.tf", "variables.tf"):
        (root / name).unlink()
    (root / "terraform.tfvars").write_text('name = "lamp"\n')
    (root / "cloud").mkdir()
    (root / "cloud" / "main.tf").write_text(
        'resource "terraform_data" "instance" {\n  for_each = toset(["lamp-web1", "lamp-web2"])\n'
        '  input = each.key\n}\n\n'
        'resource "terraform_data" "provision" {\n  for_each = terraform_data.instance\n  input = each.value.id\n}\n')
    (root / "main.tf").write_text('module "cloud" {\n  source = "./cloud"\n}\n')
    env = {**terraform_env(), "CASTELET_TERRAFORM": " ".join(terraform_cmd)}
    for args in (["init", "-input=false"], ["apply", "-input=false", "-auto-approve"]):
        done = subprocess.run([*terraform_cmd, *args], cwd=root, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def nox(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nox", "-s", "destroy", "--", *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    refused = nox("--with-data", "--confirm", "other", "-auto-approve")
    assert refused.returncode != 0 and "nothing was destroyed" in refused.stdout + refused.stderr
    state = subprocess.run([*terraform_cmd, "state", "list"], cwd=root, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(state) == 4, state
    destroyed = nox("-auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "-target=module.cloud.terraform_data.instance" in destroyed.stdout + destroyed.stderr
    state = subprocess.run([*terraform_cmd, "state", "list"], cwd=root, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert state == []
    again = nox("-auto-approve")
    assert again.returncode == 0 and "nothing to destroy" in again.stdout, again.stdout + again.stderr
