"""Sandbox specifics (the checks every blueprint shares are in test_base.py): the packages and
ports of terraform.tfvars (settings.packages, settings.open_ports) are on the instance."""

import re
from pathlib import Path

ROLES = ["main"]
TFVARS = (Path(__file__).resolve().parents[1] / "terraform.tfvars").read_text()


def _setting(name):
    found = re.search(rf'^\s*{name}\s*=\s*"([^"]*)"\s*$', TFVARS, re.MULTILINE)
    assert found, f"settings.{name} not in terraform.tfvars"
    return found.group(1).split()


def test_data_volume_is_mounted(host):
    assert host.file("/srv/data").is_directory


def test_the_listed_packages_are_installed(host):
    for package in _setting("packages"):
        assert host.package(package).is_installed, package


def test_the_listed_ports_are_open_to_the_admin_network_only(host):
    with host.sudo():
        ruleset = host.run("nft list table inet castelet").stdout
    for port in _setting("open_ports"):
        number, protocol = port.split("/")
        rule = [line for line in ruleset.splitlines() if f"{protocol} dport {number} accept" in line]
        assert rule, f"{port} is not open:\n{ruleset}"
        assert all("saddr" in line for line in rule), f"{port} is open beyond admin_cidr: {rule}"
