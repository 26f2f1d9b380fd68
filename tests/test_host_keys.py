"""SSH host keys: trust on first use after the first apply, then pinned (castelet.hostkeys, copied
into every deployment as .castelet/hostkeys.py), and the deployment's wiring into Terraform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castelet import hostkeys
from castelet.blockers import resolved_for_checks
from castelet.manifest import load
from castelet.offline.check import check
from castelet.render import new
from helpers import REPO_ROOT

WEB1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0aGlzIGlzIHRoZSB3ZWIxIGtleQ=="
WEB1_NEW = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGFub3RoZXIga2V5IGZvciB3ZWIx"
DB1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRiMSBrZXkgb2YgdGhlIGRhdGFiYXNl"


def keyscan_output(address: str, key: str) -> str:
    """What `ssh-keyscan -t ed25519 <address>` prints: a comment on stderr-like lines, then the key."""
    return f"# {address}:22 SSH-2.0-OpenSSH_10.0p2 Debian-7\n{address} {key}\n"


def test_parse_keyscan_reads_the_ed25519_key_and_nothing_else() -> None:
    output = keyscan_output("198.51.100.10", WEB1) + "198.51.100.10 ssh-rsa AAAAB3NzaC1yc2E=\n"
    assert hostkeys.parse_keyscan(output) == WEB1
    assert hostkeys.parse_keyscan("# 198.51.100.10:22 SSH-2.0-OpenSSH_10.0p2\n") is None
    assert hostkeys.parse_keyscan("") is None
    assert hostkeys.parse_keyscan("198.51.100.10 ssh-ed25519 not/base64!\n") is None


def test_first_contact_learns_every_scanned_host() -> None:
    ids = {"atlas-web1": "id-web1", "atlas-db1": "id-db1"}
    scanned = {"atlas-web1": hostkeys.parse_keyscan(keyscan_output("198.51.100.10", WEB1)),
               "atlas-db1": hostkeys.parse_keyscan(keyscan_output("10.20.0.12", DB1))}
    assert hostkeys.to_learn({}, ids) == ["atlas-db1", "atlas-web1"]
    assert hostkeys.merge({}, ids, scanned) == {
        "atlas-db1": {"id": "id-db1", "key": DB1},
        "atlas-web1": {"id": "id-web1", "key": WEB1},
    }


def test_same_instance_same_key_keeps_the_record() -> None:
    records: dict[str, hostkeys.HostKey] = {"atlas-web1": {"id": "id-web1", "key": WEB1}}
    ids = {"atlas-web1": "id-web1"}
    assert hostkeys.to_learn(records, ids) == []
    assert hostkeys.merge(records, ids, {"atlas-web1": WEB1}) == records
    assert hostkeys.merge(records, ids, {}) == records  # unreachable now: the pin stays


def test_replaced_instance_is_learned_again_not_refused() -> None:
    records: dict[str, hostkeys.HostKey] = {"atlas-web1": {"id": "id-web1", "key": WEB1}}
    ids = {"atlas-web1": "id-web1-rebuilt"}
    assert hostkeys.pinned(records, "atlas-web1", "id-web1-rebuilt") is None
    assert hostkeys.to_learn(records, ids) == ["atlas-web1"]
    assert hostkeys.merge(records, ids, {"atlas-web1": WEB1_NEW}) == {
        "atlas-web1": {"id": "id-web1-rebuilt", "key": WEB1_NEW}}
    # a replaced instance that could not be scanned loses its stale pin instead of keeping it
    assert hostkeys.merge(records, ids, {"atlas-web1": None}) == {}


def test_changed_key_on_the_same_instance_is_refused_and_says_how_to_accept_it() -> None:
    records: dict[str, hostkeys.HostKey] = {"atlas-web1": {"id": "id-web1", "key": WEB1}}
    with pytest.raises(hostkeys.HostKeyChanged) as caught:
        hostkeys.merge(records, {"atlas-web1": "id-web1"}, {"atlas-web1": WEB1_NEW}, ".castelet/host_keys.json")
    message = str(caught.value)
    assert caught.value.hostname == "atlas-web1"
    assert "atlas-web1" in message and "delete" in message and ".castelet/host_keys.json" in message


def test_removed_hosts_are_forgotten_and_malformed_scans_refused() -> None:
    records: dict[str, hostkeys.HostKey] = {"atlas-web1": {"id": "id-web1", "key": WEB1},
                                            "atlas-web2": {"id": "id-web2", "key": WEB1_NEW}}
    assert hostkeys.merge(records, {"atlas-web1": "id-web1"}, {}) == {"atlas-web1": records["atlas-web1"]}
    with pytest.raises(hostkeys.HostKeyError):
        hostkeys.merge({}, {"atlas-web1": "id-web1"}, {"atlas-web1": "198.51.100.10 " + WEB1})


def test_records_round_trip_atomically_and_reject_anything_but_public_keys(tmp_path: Path) -> None:
    path = tmp_path / ".castelet" / "host_keys.json"
    assert hostkeys.load(path) == {}
    records: dict[str, hostkeys.HostKey] = {"atlas-web1": {"id": "id-web1", "key": WEB1}}
    hostkeys.save(path, records)
    assert hostkeys.load(path) == records
    assert [p.name for p in path.parent.iterdir()] == ["host_keys.json"]  # no temporary file left
    path.write_text(json.dumps({"atlas-web1": {"id": "id-web1", "key": "-----BEGIN OPENSSH PRIVATE KEY-----"}}))
    with pytest.raises(hostkeys.HostKeyError, match="atlas-web1"):
        hostkeys.load(path)
    path.write_text(json.dumps({"atlas-web1": {"key": WEB1}}))
    with pytest.raises(hostkeys.HostKeyError):
        hostkeys.load(path)


def test_known_hosts_lines_use_the_inventory_addresses() -> None:
    records: dict[str, hostkeys.HostKey] = {"atlas-web1": {"id": "id-web1", "key": WEB1},
                                            "atlas-db1": {"id": "id-db1", "key": DB1}}
    text = hostkeys.known_hosts(records, {"atlas-web1": "198.51.100.10", "atlas-db1": "10.20.0.12"})
    assert text == f"10.20.0.12 {DB1}\n198.51.100.10 {WEB1}\n"
    assert hostkeys.known_hosts(records, {"atlas-web1": "198.51.100.10"}) == f"198.51.100.10 {WEB1}\n"


def test_instance_ids_are_read_from_terraform_show_json() -> None:
    state = {"values": {"root_module": {"child_modules": [{
        "address": "module.cloud",
        "resources": [
            {"mode": "managed", "type": "openstack_compute_instance_v2", "name": "instance",
             "index": "atlas-web1", "values": {"id": "id-web1"}},
            {"mode": "data", "type": "openstack_compute_instance_v2", "name": "instance",
             "index": "atlas-db1", "values": {"id": "not-this"}},
            {"mode": "managed", "type": "terraform_data", "name": "puppet", "index": "atlas-web1",
             "values": {"id": "not-this-either"}},
        ],
        "child_modules": [{"address": "module.cloud.module.other", "resources": [
            {"mode": "managed", "type": "openstack_compute_instance_v2", "name": "instance",
             "index": "atlas-db1", "values": {"id": "id-db1"}}]}],
    }]}}}
    assert hostkeys.instance_ids(state) == {"atlas-web1": "id-web1", "atlas-db1": "id-db1"}
    assert hostkeys.instance_ids({}) == {}


# --- the deployment: .castelet/host_keys.json reaches the provisioner's connection -----------

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    answers = resolved_for_checks(load(REPO_ROOT / "blueprints" / "lamp"), {"admin_ssh_keys": KEY})
    return new(REPO_ROOT / "blueprints" / "lamp", answers, tmp_path_factory.mktemp("hostkeys") / "lamp")


def test_deployment_carries_the_helper_and_reads_the_records(deployment: Path) -> None:
    assert (deployment / ".castelet" / "hostkeys.py").read_text() == Path(hostkeys.__file__).read_text()
    main_tf = (deployment / "main.tf").read_text()
    assert '"${path.root}/.castelet/host_keys.json"' in main_tf
    assert "host_keys               = local.host_keys" in main_tf


def test_recorded_keys_plan_and_a_malformed_one_fails_the_plan(deployment: Path) -> None:
    records = deployment / ".castelet" / "host_keys.json"
    try:
        hostkeys.save(records, {"lamp-web1": {"id": "0b6f5c1e-0000-4000-8000-000000000001", "key": WEB1}})
        report = check(deployment, provider="stand-in")
        assert report.ok, report.diagnostics
        records.write_text(json.dumps({"lamp-web1": {"id": "x", "key": f"198.51.100.10 {WEB1}"}}))
        report = check(deployment, provider="stand-in")
        assert not report.ok
        assert "host_keys: every key must be one public key line" in " ".join(report.diagnostics.split())
    finally:
        records.unlink(missing_ok=True)
