"""No unreviewed apply deletes or replaces what it was not asked to (issue 21, point 2).

`nox -s configure` and `nox -s rebuild` (run by hand or by the generated GitLab CI job, usually
with `-auto-approve`) save a plan, read it with `terraform show -json` and apply that plan or
nothing: a deletion or replacement outside their own targets, and any of a data volume, is
refused, naming the resources. `nox -s apply` of a reviewed plan refuses to delete a data volume
unless `--with-data` and the deployment's name. Here: the deployment's real sessions against real
Terraform core on a provider-free stand-in of the cloud module (the acceptance case: `name`
renamed, then `configure -- -auto-approve`), and against a stand-in `terraform` for `apply`; the
same refusal on the real LXD provider is checked in the e2e lifecycle
(tests/e2e/e2e_site.py, check_renaming_is_refused). Rebuild: tests/test_rebuild.py."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

# A stand-in of a cloud module: a data volume, an instance and its provisioning step, keyed by the
# deployment's name as the real modules key theirs (a renamed deployment replaces all three).
CLOUD_MODULE = '''variable "name" {
  type = string
}

resource "terraform_data" "volume" {
  for_each = toset(["${var.name}-web1-data"])
  input    = each.key
}

resource "terraform_data" "instance" {
  for_each = toset(["${var.name}-web1"])
  input    = terraform_data.volume["${each.key}-data"].id
}

resource "terraform_data" "provision" {
  for_each         = terraform_data.instance
  triggers_replace = { instance = each.value.id }
}
'''
ROOT_MODULE = '''variable "name" {
  type = string
}

module "cloud" {
  source = "./cloud"
  name   = var.name
}
'''
VOLUME = 'module.cloud.terraform_data.volume["guard-web1-data"]'
INSTANCE = 'module.cloud.terraform_data.instance["guard-web1"]'
PROVISION = 'module.cloud.terraform_data.provision["guard-web1"]'


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local-cloud deployment (`nox -s apply` learns no host keys there)."""
    return new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", "project_slug": "guard"},
               tmp_path_factory.mktemp("guard"))


@pytest.fixture(scope="module")
def rendered_openstack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OpenStack deployment, whose Terraform configuration the stand-in replaces (its sessions
    need no local cloud set up)."""
    return new(REPO_ROOT / "blueprints" / "lamp", {"admin_ssh_keys": KEY, "project_slug": "guard"},
               tmp_path_factory.mktemp("guard-openstack"))


@pytest.fixture(scope="module")
def noxfile(rendered: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("deployment_noxfile", rendered / "noxfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Standin:
    """A copy of the rendered deployment (its noxfile, settings and .castelet/) whose Terraform
    configuration is the provider-free stand-in above, applied with real Terraform core."""

    def __init__(self, rendered: Path, tmp_path: Path, terraform_cmd: list[str]) -> None:
        from castelet.runtime import terraform_env

        self.root, self.terraform_cmd = tmp_path / "deployment", terraform_cmd
        shutil.copytree(rendered, self.root, ignore=shutil.ignore_patterns(".git", ".terraform", "modules"))
        for path in self.root.glob("*.tf"):
            path.unlink()
        (self.root / "main.tf").write_text(ROOT_MODULE)
        (self.root / "cloud").mkdir()
        (self.root / "cloud" / "main.tf").write_text(CLOUD_MODULE)
        self.env = {**terraform_env(), "CASTELET_TERRAFORM": " ".join(terraform_cmd)}
        self.tfvars = 'name = "guard"\n'
        (self.root / "terraform.tfvars").write_text(self.tfvars)
        for args in (["init", "-input=false"], ["apply", "-input=false", "-auto-approve"]):
            self.terraform(*args)

    def terraform(self, *args: str) -> str:
        done = subprocess.run([*self.terraform_cmd, *args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def ids(self) -> dict[str, str]:
        """address => id of every resource in the state."""
        state = json.loads(self.terraform("show", "-json"))
        modules = [state.get("values", {}).get("root_module", {})]
        found: dict[str, str] = {}
        while modules:
            module = modules.pop()
            found.update({r["address"]: r["values"]["id"] for r in module.get("resources", [])})
            modules.extend(module.get("child_modules", []))
        return found

    def rename(self, name: str) -> None:
        (self.root / "terraform.tfvars").write_text(self.tfvars.replace('"guard"', f'"{name}"', 1))

    def nox(self, session: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nox", "-s", session, "--", *args], cwd=self.root, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=300, check=False)


def test_configure_replaces_only_its_provisioning(
        rendered_openstack: Path, tmp_path: Path, terraform_cmd: list[str]) -> None:
    deployment = Standin(rendered_openstack, tmp_path, terraform_cmd)
    before = deployment.ids()
    assert sorted(before) == sorted([VOLUME, INSTANCE, PROVISION])
    done = deployment.nox("configure", "-auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    after = deployment.ids()
    assert after[PROVISION] != before[PROVISION], "configure did not run the provisioning again"
    assert {a: i for a, i in after.items() if a != PROVISION} == {a: i for a, i in before.items() if a != PROVISION}


def test_configure_refuses_a_renamed_deployment_and_applies_nothing(
        rendered_openstack: Path, tmp_path: Path, terraform_cmd: list[str]) -> None:
    """The acceptance case: `name` renamed in terraform.tfvars, then what CI runs
    (`nox -s configure -- -auto-approve`): refused, naming what would go, nothing applied."""
    deployment = Standin(rendered_openstack, tmp_path, terraform_cmd)
    before = deployment.ids()
    deployment.rename("guard2")
    refused = deployment.nox("configure", "-auto-approve")
    text = refused.stdout + refused.stderr
    assert refused.returncode != 0, text
    assert "configure refuses this plan" in text and "nothing was applied" in text, text
    assert f"delete   {VOLUME}" in text and f"delete   {INSTANCE}" in text, text
    assert deployment.ids() == before, "the refused configure changed the state"


def test_configure_asks_before_it_applies(rendered_openstack: Path, tmp_path: Path, terraform_cmd: list[str]) -> None:
    deployment = Standin(rendered_openstack, tmp_path, terraform_cmd)
    before = deployment.ids()
    declined = deployment.nox("configure", stdin="no\n")
    assert declined.returncode != 0 and "configure cancelled: nothing was applied" in declined.stderr, declined.stderr
    assert deployment.ids() == before
    accepted = deployment.nox("configure", stdin="yes\n")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert deployment.ids()[PROVISION] != before[PROVISION]


# --- the rules, on plans as the real providers make them --------------------------------------------


def _change(address: str, kind: str, actions: list[str], before: dict[str, Any] | None = None,
            mode: str = "managed") -> dict[str, Any]:
    return {"address": address, "mode": mode, "type": kind, "change": {"actions": actions, "before": before}}


OS = "module.cloud."
OS_INSTANCE = OS + 'openstack_compute_instance_v2.instance["lab-web1"]'
OS_PLAN = {"resource_changes": [
    _change(OS_INSTANCE, "openstack_compute_instance_v2", ["delete", "create"], {"id": "5f0c-web1"}),
    _change(OS + 'openstack_compute_volume_attach_v2.volume["lab-web1-data"]', "openstack_compute_volume_attach_v2",
            ["delete", "create"], {"id": "5f0c-web1/9d1e", "instance_id": "5f0c-web1", "volume_id": "9d1e"}),
    _change(OS + 'module.provision.terraform_data.puppet["lab-web1"]', "terraform_data", ["delete", "create"],
            {"id": "p1", "triggers_replace": {"instance": "5f0c-web1", "hieradata": "x"}}),
    _change(OS + 'openstack_compute_volume_attach_v2.volume["lab-web2-data"]', "openstack_compute_volume_attach_v2",
            ["delete", "create"], {"id": "77aa-web2/8c2f", "instance_id": "77aa-web2", "volume_id": "8c2f"}),
    _change(OS + 'openstack_blockstorage_volume_v3.volume["lab-web1-data"]', "openstack_blockstorage_volume_v3",
            ["create", "delete"], {"id": "9d1e", "name": "lab-web1-data"}),
    _change(OS + 'openstack_networking_port_v2.instance["lab-web1"]', "openstack_networking_port_v2",
            ["update"], {"id": "a1", "device_id": "5f0c-web1"}),
    _change(OS + 'data.openstack_images_image_v2.image["Debian-13"]', "openstack_images_image_v2", ["read"],
            mode="data"),
    _change(OS + 'openstack_networking_secgroup_v2.role["db"]', "openstack_networking_secgroup_v2", ["delete"],
            {"id": "s1"}),
    _change(OS + 'terraform_data.forgotten', "terraform_data", ["forget"], {"id": "f1"}),
]}


def test_a_rebuild_may_replace_the_instance_and_what_records_its_id(noxfile: ModuleType) -> None:
    allowed = noxfile._rebuild_allows(OS_PLAN, (OS_INSTANCE,))
    refused = [c["address"] for c in noxfile._refused_changes(OS_PLAN, allowed)]
    assert refused == [
        OS + 'openstack_compute_volume_attach_v2.volume["lab-web2-data"]',  # another instance's
        OS + 'openstack_blockstorage_volume_v3.volume["lab-web1-data"]',  # a data volume, never
        OS + 'openstack_networking_secgroup_v2.role["db"]',  # not asked for
    ]


def test_a_data_volume_is_refused_even_when_named_and_a_target_is_never_just_deleted(noxfile: ModuleType) -> None:
    lxd_volume = 'module.cloud.lxd_volume.volume["lab-web1-data"]'
    provision = 'module.cloud.terraform_data.provision["lab-web1"]'
    plan = {"resource_changes": [_change(lxd_volume, "lxd_volume", ["delete", "create"], {"id": "v"}),
                                 _change(provision, "terraform_data", ["delete"], {"id": "p"})]}
    refused = noxfile._refused_changes(plan, {lxd_volume, provision})
    assert [c["address"] for c in refused] == [lxd_volume, provision]
    listed = noxfile._listed(refused)
    assert f"replace  {lxd_volume}   <- a DATA VOLUME" in listed and f"delete   {provision}" in listed


# --- nox -s apply: the reviewed plan, data volumes only with --with-data ------------------------------

FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + r'''if args[:2] == ["show", "-json"] and args[2:] == ["tfplan"]:
    print(os.environ["FAKE_TF_PLAN"])
elif args[:2] == ["apply", "-input=false"] and args[2:] == ["tfplan"]:
    print("Apply complete!")
else:
    sys.exit(f"fake terraform: unexpected {args}")
'''
CREATE_ONLY = {"format_version": "1.2", "resource_changes": [
    _change('module.cloud.lxd_volume.volume["guard-web1-data"]', "lxd_volume", ["create"]),
    _change('module.cloud.lxd_container.instance["guard-web1"]', "lxd_container", ["create"]),
]}
REPLACES_VOLUME = {"format_version": "1.2", "resource_changes": [
    _change('module.cloud.lxd_volume.volume["guard-web1-data"]', "lxd_volume", ["delete", "create"], {"id": "v"}),
    _change('module.cloud.lxd_container.instance["guard-web1"]', "lxd_container", ["update"], {"id": "c"}),
]}


def nox_apply(rendered: Path, tmp_path: Path, plan: dict[str, Any], *args: str,
              stdin: str = "") -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    state_file, log_file, fake = tmp_path / "state.json", tmp_path / "calls.log", tmp_path / "fake_terraform.py"
    state_file.write_text("[]")
    log_file.write_text("")
    fake.write_text(FAKE_TERRAFORM)
    (rendered / "tfplan").write_text("a saved plan")
    env = {**os.environ, "CASTELET_TERRAFORM": f"{sys.executable} {fake}", "FAKE_TF_STATE": str(state_file),
           "FAKE_TF_LOG": str(log_file), "FAKE_TF_PLAN": json.dumps(plan)}
    try:
        proc = subprocess.run([sys.executable, "-m", "nox", "-s", "apply", "--", *args], cwd=rendered, env=env,
                              input=stdin, capture_output=True, text=True, timeout=120, check=False)
    finally:
        (rendered / "tfplan").unlink(missing_ok=True)
    calls = [json.loads(line) for line in log_file.read_text().splitlines()]
    return proc, [call for call in calls if call[0] == "apply"]


def test_apply_of_a_first_deployment_just_applies(rendered: Path, tmp_path: Path) -> None:
    proc, applies = nox_apply(rendered, tmp_path, CREATE_ONLY)
    assert proc.returncode == 0 and applies == [["apply", "-input=false", "tfplan"]], proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "stdin"), [
    ((), ""), (("-auto-approve",), ""), (("--with-data",), "other\n"), (("--with-data", "--confirm", "guard2"), ""),
], ids=["plain", "auto-approve", "wrong-name-typed", "wrong-name-given"])
def test_apply_refuses_a_plan_that_replaces_a_data_volume(
        rendered: Path, tmp_path: Path, args: tuple[str, ...], stdin: str) -> None:
    proc, applies = nox_apply(rendered, tmp_path, REPLACES_VOLUME, *args, stdin=stdin)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and applies == [], text
    assert 'lxd_volume.volume["guard-web1-data"]' in text and "nothing was applied" in text, text


def test_apply_with_data_and_the_name_deletes_the_volume(rendered: Path, tmp_path: Path) -> None:
    proc, applies = nox_apply(rendered, tmp_path, REPLACES_VOLUME, "--with-data", stdin="guard\n")
    assert proc.returncode == 0 and len(applies) == 1, proc.stdout + proc.stderr
    assert "Type the deployment's name (guard)" in proc.stdout
    proc, applies = nox_apply(rendered, tmp_path, REPLACES_VOLUME, "--with-data", "--confirm", "guard")
    assert proc.returncode == 0 and len(applies) == 1, proc.stdout + proc.stderr


def test_apply_takes_no_terraform_options(rendered: Path, tmp_path: Path) -> None:
    proc, applies = nox_apply(rendered, tmp_path, CREATE_ONLY, "-target=module.cloud")
    assert proc.returncode != 0 and applies == [] and "nox -s plan" in proc.stderr, proc.stderr


def test_a_plan_that_cannot_be_read_is_not_applied(rendered: Path, tmp_path: Path) -> None:
    proc, applies = nox_apply(rendered, tmp_path, {"resource_changes": []})
    assert proc.returncode != 0 and applies == [] and "could not read the plan" in proc.stderr, proc.stderr
