"""Castelet's plan-only stand-in of terraform-provider-openstack, driven by real Terraform core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from castelet.offline import standin as values
from castelet.offline.cdktf_schema import PROVIDER_SOURCE
from castelet.offline.check import FAKE_OPENSTACK_ENV, check, summarize_plan
from castelet.offline.install import StandinInstallation, install_standin
from castelet.offline.schema import SchemaFiles, ensure_schema
from castelet.runtime import terraform_env

pytest.importorskip("tf", reason="pip install 'castelet[offline]'")

REQUIRED = """
terraform {
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.0"
    }
  }
}
"""
HEADER = REQUIRED + """
provider "openstack" {
  cloud = "castelet-offline"
}
"""


@pytest.fixture(scope="session")
def schema_files(tmp_path_factory: pytest.TempPathFactory) -> SchemaFiles:
    return ensure_schema(tmp_path_factory.mktemp("offline-cache"))


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory, schema_files: SchemaFiles) -> StandinInstallation:
    return install_standin(tmp_path_factory.mktemp("standin"), schema_files)


@pytest.fixture(scope="session")
def tf_env(standin: StandinInstallation) -> dict[str, str]:
    env = terraform_env({k: v for k, v in os.environ.items() if not k.startswith(("OS_", "TF_PLUGIN_CACHE"))})
    env.update(FAKE_OPENSTACK_ENV)
    env["TF_CLI_CONFIG_FILE"] = str(standin.cli_config)
    return env


class Workspace:
    """A tiny root module in a temporary directory, initialized against the stand-in."""

    def __init__(self, path: Path, command: list[str], env: dict[str, str], body: str) -> None:
        self.path, self.command, self.env = path, command, env
        (path / "main.tf").write_text(HEADER + body)
        init = self.run("init", "-backend=false", "-input=false", "-no-color")
        assert init.returncode == 0, init.stdout + init.stderr

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], cwd=self.path, env=self.env, capture_output=True,
                              text=True, check=False, timeout=120)

    def fails(self, *args: str) -> str:
        """Run a command expected to fail; its output with line wrapping undone."""
        result = self.run(*args, "-no-color")
        assert result.returncode != 0, result.stdout
        return " ".join((result.stdout + result.stderr).split())


@pytest.fixture
def workspace(tmp_path: Path, terraform_cmd: list[str], tf_env: dict[str, str]) -> Any:
    return lambda body: Workspace(tmp_path, terraform_cmd, tf_env, body)


# --- the schema Terraform sees --------------------------------------------------------------


_ADDED = ("description", "description_kind", "deprecated", "sensitive")


def _normalized_block(block: dict[str, Any]) -> dict[str, Any]:
    """Terraform's rendering of a block minus what it adds by itself (descriptions, false flags)."""
    result: dict[str, Any] = {}
    if block.get("attributes"):
        result["attributes"] = {
            name: {k: v for k, v in attribute.items() if k not in _ADDED and v is not False}
            for name, attribute in block["attributes"].items()
        }
    if block.get("block_types"):
        result["block_types"] = {
            name: {k: (_normalized_block(v) if k == "block" else v) for k, v in nested.items()}
            for name, nested in block["block_types"].items()
        }
    return result


def _normalized(schema: dict[str, Any]) -> dict[str, Any]:
    return {"version": schema["version"], "block": _normalized_block(schema["block"])}


def test_terraform_reports_the_converted_schema(workspace: Any, schema_files: SchemaFiles) -> None:
    ws = workspace('resource "openstack_networking_secgroup_v2" "sg" {\n  name = "sg"\n}\n')
    result = ws.run("providers", "schema", "-json")
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout)["provider_schemas"][PROVIDER_SOURCE]
    converted = json.loads(schema_files.json_path.read_text())["provider_schemas"][PROVIDER_SOURCE]
    assert _normalized(served["provider"]) == converted["provider"]
    for kind in ("resource_schemas", "data_source_schemas"):
        assert {name: _normalized(s) for name, s in served[kind].items()} == converted[kind], kind


# --- Terraform's own errors, from the real schema ----------------------------------------------

NEGATIVE = {
    "misspelt argument": (
        'resource "openstack_compute_instance_v2" "vm" {\n  name         = "vm"\n  flavour_name = "p2-3gb"\n}\n',
        ["Unsupported argument", 'An argument named "flavour_name" is not expected here. Did you mean "flavor_name"?'],
    ),
    "missing required argument": (
        'resource "openstack_networking_secgroup_rule_v2" "r" {\n  ethertype         = "IPv4"\n'
        '  security_group_id = "sg"\n}\n',
        ["Missing required argument", 'The argument "direction" is required, but no definition was found.'],
    ),
    "wrong type": (
        'resource "openstack_networking_port_v2" "p" {\n  network_id         = "n"\n'
        '  security_group_ids = "sg"\n}\n',
        ["Incorrect attribute value type",
         'Inappropriate value for attribute "security_group_ids": set of string required'],
    ),
    "unknown resource type": (
        'resource "openstack_compute_instance_v3" "vm" {\n  name = "vm"\n}\n',
        ["Invalid resource type", 'does not support resource type "openstack_compute_instance_v3"'],
    ),
    "too many blocks": (
        'resource "openstack_compute_instance_v2" "vm" {\n  name = "vm"\n'
        "  vendor_options {\n    ignore_resize_confirmation = true\n  }\n"
        "  vendor_options {\n    detach_ports_before_destroy = true\n  }\n}\n",
        ['Too many vendor_options blocks', 'No more than 1 "vendor_options" blocks are allowed'],
    ),
    "computed-only attribute": (
        'resource "openstack_compute_instance_v2" "vm" {\n  name    = "vm"\n  created = "yesterday"\n}\n',
        ['Computed attribute "created" cannot be set', "created = \"yesterday\"", "castelet offline stand-in"],
    ),
    "computed-only attribute in a block": (
        'resource "openstack_compute_instance_v2" "vm" {\n  name = "vm"\n'
        '  network {\n    name = "private"\n    mac  = "fa:16:3e:00:00:01"\n  }\n}\n',
        ['Computed attribute "network.mac" cannot be set', 'mac = "fa:16:3e:00:00:01"'],
    ),
    "computed-only attribute of a data source": (
        'data "openstack_compute_flavor_v2" "f" {\n  name        = "p2-3gb"\n  extra_specs = {}\n}\n',
        ['Computed attribute "extra_specs" cannot be set'],
    ),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_validate_rejects(case: str, workspace: Any) -> None:
    body, expected = NEGATIVE[case]
    output = workspace(body).fails("validate")
    for text in expected:
        assert text in output


# --- plan ----------------------------------------------------------------------------------

PLAN = """
data "openstack_networking_network_v2" "net" {
  name = "def-mylab-network"
}

data "openstack_compute_flavor_v2" "small" {
  name = "p2-3gb"
}

data "openstack_compute_flavor_v2" "big" {
  name = "c8-30gb-186"
}

resource "openstack_networking_secgroup_v2" "sg" {
  name = "sg"
}

resource "openstack_networking_port_v2" "port" {
  name               = "port"
  network_id         = data.openstack_networking_network_v2.net.id
  security_group_ids = [openstack_networking_secgroup_v2.sg.id]
  fixed_ip {
    subnet_id = "subnet"
  }
}

resource "openstack_compute_instance_v2" "vm" {
  name        = "vm"
  flavor_name = data.openstack_compute_flavor_v2.small.name
  network {
    port = openstack_networking_port_v2.port.id
  }
  timeouts {
    create = "20m"
  }
  lifecycle {
    precondition {
      condition     = local.small.vcpus >= 2 && local.small.ram >= 3072
      error_message = "too small"
    }
  }
}

locals {
  small = data.openstack_compute_flavor_v2.small
}

output "big_flavor" {
  value = [for a in ["vcpus", "ram", "disk"] : data.openstack_compute_flavor_v2.big[a]]
}
"""


def test_plan_marks_computed_values_unknown_and_reads_placeholders(workspace: Any) -> None:
    ws = workspace(PLAN)
    plan = ws.run("plan", "-input=false", "-no-color", "-out=tfplan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in plan.stdout
    assert "Warning" not in plan.stdout

    shown = ws.run("show", "-json", "tfplan")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    changes = {c["address"]: c["change"] for c in document["resource_changes"]}
    port = changes["openstack_networking_port_v2.port"]
    assert port["actions"] == ["create"]
    assert port["after_unknown"]["id"] is True
    assert port["after_unknown"]["security_group_ids"] == [True]
    assert port["after_unknown"]["fixed_ip"] == [{}]  # subnet_id set, so known
    assert len(port["after"]["network_id"]) == 36  # a placeholder UUID from the data source
    vm = changes["openstack_compute_instance_v2.vm"]
    assert vm["after"]["flavor_name"] == "p2-3gb"
    assert vm["after_unknown"]["network"] == [{"port": True, "mac": True, "fixed_ip_v4": True,
                                               "fixed_ip_v6": True, "name": True, "uuid": True}]
    assert vm["after"]["timeouts"] == {"create": "20m", "delete": None, "update": None}
    assert vm["after_unknown"]["all_metadata"] is True and vm["after_unknown"]["created"] is True
    # a "c" flavor from the Alliance catalogue: 20 GB root disk (its 186 GB are ephemeral)
    assert document["planned_values"]["outputs"]["big_flavor"]["value"] == [8, 30720, 20]


@pytest.mark.parametrize(("lookup", "message"), [
    ('data "openstack_compute_flavor_v2" "f" {\n  name = "m1.small"\n}\n',
     'Flavor "m1.small" is not an Alliance flavor'),
    ('data "openstack_compute_flavor_v2" "f" {\n  name = "p2-3gb-20"\n}\n',
     'Flavor "p2-3gb-20" is not an Alliance flavor'),
    ('data "openstack_images_image_v2" "i" {\n  name_regex = "^Debain-13"\n}\n',
     'No Alliance image matches name_regex "^Debain-13"'),
    ('data "openstack_images_image_v2" "i" {\n  name = "Debian-13"\n}\n',
     'Image "Debian-13" is not an Alliance image name'),
    ('data "openstack_networking_network_v2" "n" {\n  name     = "Public-Net"\n  external = true\n}\n',
     'External network "Public-Net" is not an Alliance external network'),
    ('data "openstack_networking_network_v2" "n" {\n  name = "my-network-here"\n}\n',
     'Network "my-network-here" is not an Alliance project network'),
])
def test_lookups_outside_the_alliance_catalogue_fail(lookup: str, message: str, workspace: Any) -> None:
    output = " ".join(workspace(lookup).fails("plan", "-input=false").split())
    assert f"Error: {message}" in output, output


def test_lookups_inside_the_catalogue() -> None:
    image = {"attributes": {a: {"type": "string", "optional": True} for a in ("name", "name_regex")}}
    state, problems = values.read_data_source("openstack_images_image_v2", image, {"name_regex": "^Debian-12"})
    assert state["name"] == "Debian-12-x64-2025-09" and problems == []
    network = {"attributes": {"name": {"type": "string", "optional": True}, "external": {"type": "bool",
                                                                                         "optional": True}}}
    state, problems = values.read_data_source("openstack_networking_network_v2", network, {"external": True})
    assert state["name"] == "Public-Network" and problems == []


def test_precondition_against_flavor_name_fails_when_too_small(workspace: Any) -> None:
    output = workspace(PLAN.replace('name = "p2-3gb"', 'name = "p1-1.5gb"')).fails("plan", "-input=false")
    assert "Resource precondition failed" in output and "too small" in output


def test_apply_and_import_are_refused(workspace: Any) -> None:
    ws = workspace('resource "openstack_networking_secgroup_v2" "sg" {\n  name = "sg"\n}\n')
    output = ws.fails("apply", "-auto-approve", "-input=false")
    assert "Error: castelet offline stand-in: plan only; use the real terraform-provider-openstack to apply" in output
    assert not (ws.path / "terraform.tfstate").exists() or "openstack_networking_secgroup_v2" not in (
        ws.path / "terraform.tfstate"
    ).read_text()
    output = ws.fails("import", "-input=false", "openstack_networking_secgroup_v2.sg", "0123")
    assert "import is not possible offline" in output


def test_plugin_refuses_to_run_outside_terraform() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"}
    result = subprocess.run([sys.executable, "-m", "castelet.offline.plugin"], env=env, capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert "this is a Terraform plugin" in result.stderr


# --- the stand-in's value logic, without Terraform ---------------------------------------------

BLOCK = {
    "attributes": {
        "id": {"type": "string", "optional": True, "computed": True},
        "name": {"type": "string", "required": True},
        "created": {"type": "string", "computed": True},
        "tags": {"type": ["set", "string"], "optional": True},
    },
    "block_types": {
        "network": {"nesting_mode": "list", "block": {"attributes": {
            "port": {"type": "string", "optional": True, "computed": True},
            "mac": {"type": "string", "computed": True},
        }}},
        "timeouts": {"nesting_mode": "single",
                     "block": {"attributes": {"create": {"type": "string", "optional": True}}}},
    },
}


def test_computed_only_problems_name_paths() -> None:
    config = {"id": None, "name": "a", "created": values.UNKNOWN, "tags": None,
              "network": [{"port": None, "mac": None}, {"port": "p", "mac": "m"}], "timeouts": None}
    problems = values.computed_only_problems("t", BLOCK, config)
    assert [p.path for p in problems] == [
        (("attribute", "created"),),
        (("attribute", "network"), ("key", 1), ("attribute", "mac")),
    ]
    assert problems[1].summary == 'Computed attribute "network.mac" cannot be set'


def test_plan_create_and_msgpack_round_trip() -> None:
    proposed = {"id": None, "name": "a", "created": None, "tags": None,
                "network": [{"port": "p", "mac": None}], "timeouts": {"create": None}}
    planned = values.plan_create(BLOCK, proposed)
    assert planned["id"] is values.UNKNOWN and planned["created"] is values.UNKNOWN
    assert planned["tags"] is None and planned["network"] == [{"port": "p", "mac": values.UNKNOWN}]
    assert planned["timeouts"] == {"create": None}
    decoded = values.decode(values.encode(planned))
    assert values.is_unknown(decoded["id"]) and decoded["name"] == "a"


def test_data_source_placeholders() -> None:
    state, problems = values.read_data_source("openstack_thing", BLOCK, {
        "id": None, "name": "a", "created": None, "tags": None, "network": [{"port": None, "mac": None}],
        "timeouts": None,
    })
    assert state["name"] == "a" and state["created"] == "" and state["tags"] == []
    assert len(state["id"]) == 36 and state["network"] == [{"port": "", "mac": ""}]
    assert problems == []
    flavor = {"attributes": {a: {"type": "number", "optional": True} for a in ("vcpus", "ram", "disk")}
              | {"name": {"type": "string", "optional": True}}}
    state, problems = values.read_data_source("openstack_compute_flavor_v2", flavor, {"name": "c4-15gb-83"})
    assert (state["vcpus"], state["ram"], state["disk"], problems) == (4, 15360, 20, [])
    state, problems = values.read_data_source("openstack_compute_flavor_v2", flavor, {"name": "m1.small"})
    assert problems[0].summary == 'Flavor "m1.small" is not an Alliance flavor' and not problems[0].warning


def test_conform_drops_unknown_attributes() -> None:
    state = values.conform(BLOCK, {"name": "a", "gone": 1, "network": [{"port": "p", "old": 2}]})
    assert state == {"id": None, "name": "a", "created": None, "tags": None,
                     "network": [{"port": "p", "mac": None}], "timeouts": None}


# --- castelet check ------------------------------------------------------------------------

MODULE = """
variable "name" {
  type = string
}

variable "roles" {
  type = map(number)
}

locals {
  instances = merge([
    for role, count in var.roles : { for i in range(1, count + 1) : "${var.name}-${role}${i}" => role }
  ]...)
}

resource "openstack_networking_secgroup_v2" "role" {
  for_each = var.roles
  name     = "${var.name}-${each.key}"
}

resource "openstack_networking_secgroup_rule_v2" "ssh" {
  for_each          = var.roles
  security_group_id = openstack_networking_secgroup_v2.role[each.key].id
  direction         = "ingress"
  ethertype         = "IPv4"
}

resource "openstack_networking_network_v2" "main" {
  name = var.name
}

resource "openstack_compute_instance_v2" "instance" {
  for_each    = local.instances
  name        = each.key
  flavor_name = "p2-3gb"
  metadata = {
    castelet_role = each.value
  }
  network {
    uuid = openstack_networking_network_v2.main.id
  }
}

resource "openstack_blockstorage_volume_v3" "volume" {
  for_each = local.instances
  name     = "${each.key}-data"
  size     = 10
}
"""

ROOT = """
module "cloud" {
  source = "./modules/cloud"
  name   = var.name
  roles  = { web = 2, db = 1 }
}

variable "name" {
  type = string
}
"""


def _deployment(path: Path) -> Path:
    (path / "modules" / "cloud").mkdir(parents=True)
    (path / "modules" / "cloud" / "main.tf").write_text(MODULE)
    (path / "modules" / "cloud" / "versions.tf").write_text(REQUIRED)
    (path / "main.tf").write_text(HEADER + ROOT)
    (path / "terraform.tfvars").write_text('name = "atlas"\n')
    return path


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_check_summarizes_a_deployment_without_touching_it(tmp_path: Path, schema_files: SchemaFiles) -> None:
    deployment = _deployment(tmp_path / "atlas")
    before = _tree(deployment)
    lines: list[str] = []
    report = check(deployment, lines.append, provider="stand-in", schema_cache=schema_files.json_path.parent)
    assert report.ok, report.diagnostics
    assert _tree(deployment) == before
    assert report.provider == "stand-in"
    assert report.provider_line == (
        "offline: planning against castelet's stand-in of terraform-provider-openstack 3.0.0 (plan only)"
    )
    assert report.provider_line in lines
    assert [p.name for p in report.phases] == ["fmt", "init", "plan", "show"]
    assert set(report.timings) == {"fmt", "init", "plan", "show"}
    assert report.to_add_by_type == {
        "openstack_blockstorage_volume_v3": 3,
        "openstack_compute_instance_v2": 3,
        "openstack_networking_network_v2": 1,
        "openstack_networking_secgroup_rule_v2": 2,
        "openstack_networking_secgroup_v2": 2,
    }
    assert report.to_add_by_role == {
        "(shared)": {"openstack_networking_network_v2": 1},
        "db": {"openstack_blockstorage_volume_v3": 1, "openstack_compute_instance_v2": 1,
               "openstack_networking_secgroup_rule_v2": 1, "openstack_networking_secgroup_v2": 1},
        "web": {"openstack_blockstorage_volume_v3": 2, "openstack_compute_instance_v2": 2,
                "openstack_networking_secgroup_rule_v2": 1, "openstack_networking_secgroup_v2": 1},
    }
    assert report.actions == {"create": 11}
    assert report.to_json()["ok"] is True
    assert report.summary_lines()[-1].startswith("offline check passed")


def test_check_fails_with_terraforms_diagnostics(tmp_path: Path, schema_files: SchemaFiles) -> None:
    deployment = _deployment(tmp_path / "broken")
    (deployment / "extra.tf").write_text(
        'resource "openstack_networking_network_v2" "x" {\n  name="x"\n  mtuu = 1500\n}\n'
    )
    report = check(deployment, provider="stand-in", schema_cache=schema_files.json_path.parent)
    assert not report.ok
    # plan validates first: the configuration error stops it before anything is planned
    assert [(p.name, p.ok) for p in report.phases] == [("fmt", False), ("init", True), ("plan", False)]
    assert "extra.tf" in report.diagnostics
    assert 'An argument named "mtuu" is not expected here. Did you mean "mtu"?' in " ".join(
        report.diagnostics.split()
    )
    assert not check(tmp_path / "nowhere").ok


def test_check_ignores_backend_state_and_lock_file(tmp_path: Path, schema_files: SchemaFiles) -> None:
    deployment = _deployment(tmp_path / "remote")
    (deployment / "backend.tf").write_text(
        'terraform {\n  backend "s3" {\n    bucket = "b"\n    key    = "k"\n    region = "r"\n  }\n}\n'
    )
    (deployment / "terraform.tfstate").write_text("not json: never read")
    (deployment / ".terraform.lock.hcl").write_text(
        'provider "registry.terraform.io/terraform-provider-openstack/openstack" {\n'
        '  version = "3.0.0"\n  hashes  = ["h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]\n}\n'
    )
    report = check(deployment, provider="stand-in", schema_cache=schema_files.json_path.parent)
    assert report.ok, report.diagnostics
    assert report.to_add == 11


def test_auto_mode_validates_with_an_installable_provider(
    tmp_path: Path, schema_files: SchemaFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``auto`` uses whatever ``terraform init`` installs with the user's CLI config for validate
    (here a filesystem mirror holding the stand-in, as no registry is reachable in tests)."""
    mirror = install_standin(tmp_path / "fake-registry", schema_files)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(mirror.cli_config))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the plugin cache of this mode
    report = check(_deployment(tmp_path / "atlas"), provider="auto", schema_cache=schema_files.json_path.parent)
    assert report.ok, report.diagnostics
    assert report.provider == "registry"
    assert report.provider_line.startswith("offline: validating against terraform-provider-openstack 3.0.0")
    assert [(p.name, p.provider) for p in report.phases] == [
        ("fmt", "stand-in"), ("init", "registry"), ("validate", "registry"), ("init", "stand-in"),
        ("plan", "stand-in"), ("show", "stand-in"),
    ]


def test_summarize_plan_by_role_keys() -> None:
    def change(type_: str, index: Any, after: Any = None, module: str = "module.cloud") -> dict[str, Any]:
        return {"mode": "managed", "type": type_, "index": index, "module_address": module,
                "change": {"actions": ["create"], "after": after or {}}}

    plan = {
        "variables": {"name": {"value": "atlas"}},
        "resource_changes": [
            change("openstack_compute_instance_v2", "atlas-web1", {"metadata": {"castelet_role": "web"}}),
            change("openstack_compute_instance_v2", "atlas-db1"),  # role from the hostname
            change("openstack_blockstorage_volume_v3", "atlas-db1-data"),
            change("openstack_networking_secgroup_rule_v2", "web/http/ipv4"),
            change("openstack_networking_secgroup_v2", "db"),
            change("openstack_networking_network_v2", 0),
            change("terraform_data", "atlas-web1"),
            {"mode": "data", "type": "openstack_images_image_v2", "index": "Debian-12",
             "change": {"actions": ["read"]}},
        ],
    }
    by_type, by_role, actions = summarize_plan(plan)
    assert by_type["openstack_compute_instance_v2"] == 2
    assert by_role == {
        "(shared)": {"openstack_networking_network_v2": 1},
        "db": {"openstack_blockstorage_volume_v3": 1, "openstack_compute_instance_v2": 1,
               "openstack_networking_secgroup_v2": 1},
        "web": {"openstack_compute_instance_v2": 1, "openstack_networking_secgroup_rule_v2": 1,
                "terraform_data": 1},
    }
    assert actions == {"create": 7, "read": 1}


def test_rendered_deployment_attaches_an_existing_volume_instead_of_creating_one(
        tmp_path: Path, schema_files: SchemaFiles) -> None:
    """existing_volumes in a rendered OpenStack deployment: the volume is looked up by name (data
    source) and attached; no volume is created. A key that is no volume fails the plan, naming the
    valid keys."""
    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load
    from castelet.render import new
    from helpers import REPO_ROOT

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
    answers = resolved_for_checks(load(REPO_ROOT / "blueprints" / "lamp"), {"admin_ssh_keys": key})
    deployment = new(REPO_ROOT / "blueprints" / "lamp", answers, tmp_path)
    tfvars = deployment / "terraform.tfvars"
    original = tfvars.read_text()
    cache = schema_files.json_path.parent

    tfvars.write_text(original + '\nexisting_volumes = {\n  lamp-web1-data = "lamp-web1-data-old"\n}\n')
    attached = check(deployment, provider="stand-in", schema_cache=cache)
    assert attached.ok, attached.diagnostics
    assert "openstack_blockstorage_volume_v3" not in attached.to_add_by_type
    assert attached.to_add_by_type["openstack_compute_volume_attach_v2"] == 1

    tfvars.write_text(original + '\nexisting_volumes = {\n  lamp-db1-data = "old"\n}\n')
    wrong = check(deployment, provider="stand-in", schema_cache=cache)
    assert not wrong.ok
    message = " ".join(wrong.diagnostics.split())
    assert "existing_volumes names no volume of this deployment: lamp-db1-data (its volumes: lamp-web1-data)" in message


def test_a_clients_service_plans_offline(
        tmp_path: Path, schema_files: SchemaFiles, standin: StandinInstallation) -> None:
    """A render with an `exposure: clients` service (tests/fixtures/clients_probe.py): the offline
    plan admits each client network to its port with a security group rule of its own
    ethertype (checkov scans the same render in test_check_blueprints.py)."""
    import shutil

    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load
    from castelet.offline.check import PLAN_FILE, terraform_environment
    from castelet.render import new
    from castelet.terraform import find_terraform
    from fixtures.clients_probe import clients_blueprint

    probe = clients_blueprint(tmp_path)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
    given = {"admin_ssh_keys": key, "client_cidrs": "10.20.0.0/16 2001:db8:42::/48"}
    deployment = new(probe, resolved_for_checks(load(probe), given), tmp_path / "out")
    report = check(deployment, provider="stand-in", schema_cache=schema_files.json_path.parent, keep_workdir=True)
    assert report.workdir is not None
    try:
        assert report.ok, report.diagnostics
        # main: SSH + one rule per client network; internal: IPv4 + IPv6
        assert report.to_add_by_type["openstack_networking_secgroup_rule_v2"] == 1 + 2 + 2
        shown = subprocess.run([*find_terraform(), "show", "-json", "-no-color", PLAN_FILE],
                               cwd=report.workdir / "deployment", env=terraform_environment(standin.cli_config, None),
                               capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(report.workdir, ignore_errors=True)
    rules = {c["index"]: c["change"]["after"] for c in json.loads(shown.stdout)["resource_changes"]
             if c["type"] == "openstack_networking_secgroup_rule_v2" and c["name"] == "role"}
    assert sorted(rules) == ["main/probe/10.20.0.0/16", "main/probe/2001:db8:42::/48", "main/ssh"]
    assert rules["main/probe/10.20.0.0/16"]["ethertype"] == "IPv4"
    assert rules["main/probe/10.20.0.0/16"]["remote_ip_prefix"] == "10.20.0.0/16"
    assert rules["main/probe/2001:db8:42::/48"]["ethertype"] == "IPv6"
    assert {(r["port_range_min"], r["port_range_max"], r["protocol"]) for k, r in rules.items()
            if k.startswith("main/probe/")} == {(5432, 5432, "tcp")}
