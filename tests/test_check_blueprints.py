"""Every blueprint, with representative answers, validates against the real
terraform-provider-openstack (3.4.0, built here from its Go module) and plans offline against the
stand-in that answers from the provider's 3.0 schema; misspelt or missing arguments, wrong types,
removed resources and values the provider's own validators refuse fail with their messages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from castelet.blockers import resolved_for_checks
from castelet.manifest import load
from castelet.offline.check import check
from castelet.render import new
from helpers import BLUEPRINTS, REPO_ROOT, castelet

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
ANSWER_SETS = {
    "defaults": {"admin_ssh_keys": KEY},
    "existing-network": {"existing_network": "def-mylab-network", "admin_ssh_keys": f"{KEY},{KEY}",
                         "flavor": "p4-6gb", "data_volume_gb": "250", "admin_cidr": "2001:db8::/32"},
    "bigger": {"project_slug": "atlas-edition", "domain": "edition.mylab.ca", "flavor": "c8-30gb-186",
               "admin_ssh_keys": KEY, "data_volume_gb": "1000"},
}


def resolved(name: str, answers: dict[str, str]) -> dict[str, str]:
    return resolved_for_checks(load(REPO_ROOT / "blueprints" / name), answers)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("check")


# Every blueprint plans with its defaults; the other answer sets exercise the shared Terraform
# modules' inputs (an existing network, IPv6 admin network, two keys, other flavors and sizes):
# each is planned once, on the blueprint whose services use most of them.
PLANS = [(name, "defaults") for name in BLUEPRINTS] + [("database", "existing-network"), ("omeka-s", "bigger")]


@pytest.mark.parametrize(("name", "answers"), PLANS)
def test_blueprint_plans_offline(out, name, answers):
    """Each plan with its "Before you apply" list done as a user would."""
    deployment = new(REPO_ROOT / "blueprints" / name, resolved(name, ANSWER_SETS[answers]), out / f"{name}-{answers}")
    report = check(deployment, provider="real")
    assert report.ok, report.diagnostics
    assert [(p.name, p.provider) for p in report.phases if p.name == "validate"] == [("validate", "real")]
    assert report.to_add_by_type["openstack_compute_instance_v2"] == 1
    assert report.to_add_by_type.get("openstack_networking_floatingip_v2") == 1
    # the project's network is used (discovered, or named): nothing to create, no router quota
    assert "openstack_networking_router_v2" not in report.to_add_by_type
    assert "openstack_networking_network_v2" not in report.to_add_by_type


# A held-out review's kinds of mistake, each in the deployment's copy of the OpenStack module.
MISTAKES = {
    "misspelt argument": ("instances.tf", "  flavor_name = each.value.flavor", "  flavor_nmae = each.value.flavor",
                          'An argument named "flavor_nmae" is not expected here'),
    "wrong type": ("secgroups.tf", 'direction         = "ingress"', 'direction         = ["ingress"]',
                   "Incorrect attribute value type"),
    "removed resource": ("secgroups.tf", 'resource "openstack_networking_secgroup_v2" "internal" {',
                         'resource "openstack_compute_secgroup_v2" "internal" {', "Invalid resource type"),
    "value the provider's validator refuses": ("secgroups.tf", 'direction         = "ingress"',
                                               'direction         = "sideways"', 'unknown "sideways" direction'),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_real_provider_refuses_a_held_out_mistake_at_validate(out, mistake):
    """`castelet check --provider real`: the provider built from its Go module validates the
    configuration and names the mistake; the plan never runs."""
    deployment = new(REPO_ROOT / "blueprints" / "lamp", resolved("lamp", ANSWER_SETS["defaults"]),
                     out / f"mistake-{mistake.replace(' ', '-').replace(chr(39), '')}")
    name, good, bad, message = MISTAKES[mistake]
    module = deployment / "modules" / "openstack" / name
    text = module.read_text()
    assert good in text, f"{name} no longer holds {good!r}: update the test's mistake"
    module.write_text(text.replace(good, bad, 1))
    report = check(deployment, provider="real")
    assert not report.ok
    failed = [(p.name, p.provider) for p in report.phases if not p.ok]
    assert failed == [("validate", "real")], report.diagnostics
    assert message in " ".join(report.diagnostics.split()), report.diagnostics
    assert "plan" not in [p.name for p in report.phases]
    if mistake == "value the provider's validator refuses":  # what the schema-driven stand-in lets through
        assert check(deployment, provider="stand-in").ok


def test_created_network_needs_dns_servers_and_plans_a_router(out):
    deployment = new(REPO_ROOT / "blueprints" / "lamp",
                     resolved("lamp", {"project_slug": "own-network", "admin_ssh_keys": KEY}), out)
    tfvars = deployment / "terraform.tfvars"
    original = tfvars.read_text()
    tfvars.write_text(original + "\ncreate_network = true\n")
    report = check(deployment, provider="stand-in")
    assert not report.ok
    assert "network.create = true needs network.dns_nameservers" in " ".join(report.diagnostics.split())
    tfvars.write_text(original + '\ncreate_network  = true\ndns_nameservers = ["206.12.0.10"]\n')
    report = check(deployment, provider="stand-in")
    assert report.ok, report.diagnostics
    assert report.to_add_by_type["openstack_networking_router_v2"] == 1


@pytest.mark.parametrize(("answers", "message"), [
    ({"image": "^Debain-13"}, 'No Alliance image matches name_regex "^Debain-13"'),
    ({"flavor": "m1.medium"}, 'Flavor "m1.medium" is not an Alliance flavor'),
    ({"existing_network": "private"}, 'Network "private" is not an Alliance project network'),
    ({"external_network": "Ext-Net"}, 'External network "Ext-Net" is not an Alliance external network'),
])
def test_misspelt_cloud_names_fail_the_check(out, answers, message):
    slug = f"typo-{len(message)}"
    deployment = new(REPO_ROOT / "blueprints" / "lamp",
                     resolved("lamp", {"project_slug": slug, "admin_ssh_keys": KEY, **answers}), out)
    report = check(deployment, provider="stand-in")
    assert not report.ok
    assert message in " ".join(report.diagnostics.split())


def test_before_you_apply_items_fail_the_check_with_their_text(out):
    deployment = new(REPO_ROOT / "blueprints" / "omeka-s", {"project_slug": "unpinned", "admin_ssh_keys": KEY}, out)
    proc = castelet("check", str(deployment))
    assert proc.returncode == 1
    assert "Before you apply: the Omeka S release is not pinned" in proc.stderr.replace("\n", " ")
    assert "Before you apply" in (deployment / "README.md").read_text()


def test_cli_check_prints_the_summary(out):
    deployment = new(REPO_ROOT / "blueprints" / "omeka-s",
                     resolved("omeka-s", {"project_slug": "cli-omeka", "admin_ssh_keys": KEY}), out)
    proc = castelet("check", str(deployment))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stand-in of terraform-provider-openstack 3.0.0" in proc.stdout
    assert re.search(r"^plan: \d+ to add$", proc.stdout, re.MULTILINE)
    assert "role web:" in proc.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("flavor_name", "flavour_name"), ['Unsupported argument', 'An argument named "flavour_name"']),
        (("  name        = each.key\n  flavor_name", "  flavor_name"), ["Missing required argument",
                                                                   '"name" is required']),
    ],
)
def test_broken_rendered_terraform_fails_with_terraforms_message(out, edit, expected):
    deployment = new(REPO_ROOT / "blueprints" / "lamp", {"project_slug": f"broken-{len(edit[1])}",
                                                         "admin_ssh_keys": KEY}, out)
    module = deployment / "modules" / "openstack" / "instances.tf"
    text = module.read_text()
    assert edit[0] in text, f"the module no longer contains {edit[0]!r}: update this test"
    module.write_text(text.replace(edit[0], edit[1], 1))
    proc = castelet("check", str(deployment))
    assert proc.returncode == 1
    for fragment in expected:
        assert fragment in proc.stderr, proc.stderr


def test_lxd_deployments_are_pointed_to_lifecycle(out):
    deployment = new(REPO_ROOT / "blueprints" / "lamp", {"project_slug": "local-lamp", "cloud": "lxd"}, out)
    proc = castelet("check", str(deployment))
    assert proc.returncode == 2 and "castelet lifecycle" in proc.stderr


SSH_RULE = """resource "openstack_networking_secgroup_rule_v2" "ssh" {{
  {skip}direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 22
  port_range_max    = 22
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = "sg"
}}
"""
CLIENT_CIDRS = "10.20.0.0/16 2001:db8:42::/48"


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov once (its start-up is most of a scan) over one folder each: the default render of
    every blueprint, a render with an `exposure: clients` service, and a security group rule open
    to the internet without (`open`) and with (`reasoned`) a suppression that gives its reason."""
    from castelet.checkov import run_checkov_each
    from fixtures.clients_probe import clients_blueprint

    tree = tmp_path_factory.mktemp("checkov")
    for name in BLUEPRINTS:
        new(REPO_ROOT / "blueprints" / name, resolved(name, {**ANSWER_SETS["defaults"], "project_slug": name}), tree)
    probe = clients_blueprint(tmp_path_factory.mktemp("clients-library"))
    new(probe, resolved_for_checks(load(probe), {"admin_ssh_keys": KEY, "client_cidrs": CLIENT_CIDRS,
                                                 "project_slug": "clients-probe"}), tree)
    (tree / "open").mkdir()
    (tree / "open" / "main.tf").write_text(SSH_RULE.format(skip=""))
    (tree / "reasoned").mkdir()
    (tree / "reasoned" / "main.tf").write_text(
        SSH_RULE.format(skip="#checkov:skip=CKV_OPENSTACK_2:a bastion that must answer from anywhere\n  "))
    # A deployment's shape: the root calls one cloud's module; the other cloud's module and the
    # module's example are shipped but never called. The same open rule in each.
    modules = tree / "modules-probe" / "modules"
    for folder in ("openstack", "lxd", "openstack/examples/basic"):
        (modules / folder).mkdir(parents=True)
        (modules / folder / "main.tf").write_text(SSH_RULE.format(skip=""))
    (tree / "modules-probe" / "main.tf").write_text('module "cloud" {\n  source = "./modules/openstack"\n}\n')
    return {"tree": tree, **run_checkov_each(tree)}


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_blueprint_passes_checkov(checkov_reports, name):
    """checkov's Terraform rules on the default render (the modules it calls included): no failure
    that is not suppressed in the source with a reason."""
    report = checkov_reports[name]
    assert report.passed > 0
    assert report.ok, "\n".join(map(str, report.failed))


def test_checkov_reports_an_open_ssh_port_and_honours_a_reasoned_suppression(checkov_reports):
    """The same scan fails on a security group that opens SSH to the internet; a suppression
    next to the resource, with its reason, turns that finding into a skipped one."""
    from castelet.checkov import run_checkov

    assert [f.check_id for f in checkov_reports["open"].failed] == ["CKV_OPENSTACK_2"], checkov_reports["open"].failed
    assert checkov_reports["reasoned"].ok and checkov_reports["reasoned"].skipped == 1
    # a single deployment scanned on its own (as `castelet check` does) gives the same findings
    assert [f.check_id for f in run_checkov(checkov_reports["tree"] / "open").failed] == ["CKV_OPENSTACK_2"]


def test_checkov_scans_the_modules_a_deployment_calls_and_only_those(checkov_reports):
    """A finding in the module the root calls is reported; the same rule in the other cloud's
    module and in the module's example, which the deployment never calls, is not scanned."""
    from castelet.checkov import uncalled_module_folders

    report = checkov_reports["modules-probe"]
    expected = [("CKV_OPENSTACK_2", "/modules-probe/modules/openstack/main.tf")]
    assert [(f.check_id, f.file) for f in report.failed] == expected
    probe = (checkov_reports["tree"] / "modules-probe").resolve()
    assert uncalled_module_folders(probe) == [probe / "modules" / "lxd", probe / "modules" / "openstack" / "examples"]


def test_a_clients_service_passes_checkov(checkov_reports):
    """A render with an `exposure: clients` service (tests/fixtures/clients_probe.py; its offline
    plan is in test_offline_provider.py): its security group rules, one per client network, pass."""
    report = checkov_reports["clients-probe"]
    assert report.passed > 0
    assert report.ok, "\n".join(map(str, report.failed))
