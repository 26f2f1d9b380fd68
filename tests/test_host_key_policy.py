"""When an SSH host key may be trusted (issue 21, point 8): only when an instance is created
(`nox -s apply`, `nox -s rebuild`), preferably confirmed by the instance's console log (cloud-init
prints its host keys there; `openstack console log show`), and never at a later first contact:
the sessions that send secrets, data or configuration to a host (`secrets`, `backup-credentials`,
`restore`, `configure`...) refuse one whose key is not pinned, naming it, before any connection.

The deployment's real sessions run (nox in a rendered OpenStack deployment) against stand-ins on
PATH for `terraform` (CASTELET_TERRAFORM), `ssh-keyscan`, `ssh` (which checks the known_hosts file
it is given, as StrictHostKeyChecking=yes does) and `openstack`; each logs its calls. The rules
themselves (castelet.hostkeys.admit, unpinned, the console log parser) are tested directly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from castelet import hostkeys
from castelet.render import new
from helpers import FAKE_TERRAFORM_PREAMBLE, REPO_ROOT

# Real ed25519 public keys and their fingerprints as `ssh-keygen -l` printed them.
WEB1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA9lFzl81XtXzpNzQgSnveBFC3PE6QXlbSQcQgz2Sgv7"
WEB1_FP = "SHA256:oSebl1vKGvbUwspBP0zy2yf/zeZE9GtEg3HcYySdw5g"
DB1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO9hzuvKBAQOIkXeF/NGHJdv1WI1aLTRjLjcGzdOtImB"
DB1_FP = "SHA256:8hekxSgWL+1djtu4xKn8OTbqCRB3LIM4co2ZVkcDDqY"
ECDSA = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPdXnGD4AqmkKx3kcpz0Xv/NhYTuoXRjR"
         "TBpFHmZpS8nL/6YXqkxZt29ozO7Yvnb+4cW+XXBmQ4p6LJtM3v0Ixc=")


def console_log(key: str, *, fingerprints: bool = True, keys: bool = True) -> str:
    """An instance's console log as `openstack console log show` returns it: kernel and
    cloud-init lines, and keys_to_console's blocks through `logger -t ec2` (a syslog prefix)."""
    fp = hostkeys.fingerprint(key)
    lines = ["[    0.000000] Linux version 6.12.0-1-cloud-amd64",
             "[   12.3] cloud-init[512]: Cloud-init v. 25.1 running", "<14>Jun  3 09:12:41 ec2: ",
             "<14>Jun  3 09:12:41 ec2: #############################################################"]
    if fingerprints:
        lines += ["<14>Jun  3 09:12:41 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
                  f"<14>Jun  3 09:12:41 ec2: 256 {hostkeys.fingerprint(ECDSA)} root@hk-web1 (ECDSA)",
                  f"<14>Jun  3 09:12:41 ec2: 256 {fp} root@hk-web1 (ED25519)\r",
                  "<14>Jun  3 09:12:41 ec2: -----END SSH HOST KEY FINGERPRINTS-----"]
    if keys:
        lines += ["<14>Jun  3 09:12:41 ec2: -----BEGIN SSH HOST KEY KEYS-----",
                  f"<14>Jun  3 09:12:41 ec2: {ECDSA} root@hk-web1",
                  f"<14>Jun  3 09:12:41 ec2: {key} root@hk-web1",
                  "<14>Jun  3 09:12:41 ec2: -----END SSH HOST KEY KEYS-----"]
    return "\n".join([*lines, "[   14.1] cloud-init[601]: Cloud-init v. 25.1 finished", ""])


# --- the rules ---------------------------------------------------------------------------------------


def test_fingerprints_are_the_ones_ssh_keygen_prints() -> None:
    assert hostkeys.fingerprint(WEB1) == WEB1_FP and hostkeys.fingerprint(DB1) == DB1_FP
    with pytest.raises(hostkeys.HostKeyError):
        hostkeys.fingerprint("ssh-ed25519 not/base64!")


def test_the_console_log_gives_the_keys_cloud_init_printed() -> None:
    assert hostkeys.console_host_keys(console_log(WEB1)) == ({WEB1}, {WEB1_FP})
    assert hostkeys.console_host_keys(console_log(WEB1, keys=False)) == (set(), {WEB1_FP})
    assert hostkeys.console_host_keys(console_log(WEB1, fingerprints=False)) == ({WEB1}, set())
    # a key line outside the blocks (a user's key, a message) is not a host key
    assert hostkeys.console_host_keys(f"ci-info: authorized key {DB1} debian\n") == (set(), set())
    assert hostkeys.console_verdict(console_log(WEB1), WEB1) is True
    assert hostkeys.console_verdict(console_log(WEB1, keys=False), WEB1) is True  # by its fingerprint
    assert hostkeys.console_verdict(console_log(WEB1), DB1) is False
    assert hostkeys.console_verdict(console_log(WEB1, keys=False), DB1) is False
    assert hostkeys.console_verdict("[    0.0] Linux version 6.12\n", WEB1) is None  # no block: no verdict
    assert hostkeys.console_verdict(None, WEB1) is None  # no log


def test_only_a_confirmed_key_or_one_scanned_at_creation_is_admitted() -> None:
    records: dict[str, hostkeys.HostKey] = {"hk-app1": {"id": "id-app1", "key": DB1}}
    ids = {"hk-app1": "id-app1", "hk-web1": "id-web1", "hk-db1": "id-db1", "hk-old1": "id-old1",
           "hk-down1": "id-down1"}
    scanned: dict[str, str | None] = {"hk-app1": DB1, "hk-web1": WEB1, "hk-db1": DB1, "hk-old1": WEB1,
                                      "hk-down1": None}
    confirmed: dict[str, bool | None] = {"hk-web1": True, "hk-db1": False, "hk-old1": None}
    admission = hostkeys.admit(records, ids, {"hk-db1", "hk-down1"}, scanned, confirmed)
    # confirmed by the console log: learned, even for an instance this run did not create
    assert admission.keys == {"hk-web1": WEB1}
    assert admission.how == {"hk-web1": "confirmed by its console log"}
    # contradicted by the console log: refused, even for a new instance
    assert list(admission.refused) == ["hk-db1"] and DB1_FP in admission.refused["hk-db1"]
    # no console verdict, not created now: a later first contact is never trusted
    assert "not created by this run" in admission.skipped["hk-old1"]
    assert "no ed25519 host key" in admission.skipped["hk-down1"]
    # no console verdict, created now: trust on first use, at creation
    created = hostkeys.admit({}, {"hk-old1": "id-old1"}, {"hk-old1"}, scanned, confirmed)
    assert created.keys == {"hk-old1": WEB1} and created.how == {"hk-old1": "scanned right after its creation"}


def test_a_host_is_unpinned_with_no_record_a_replaced_instance_or_no_id() -> None:
    records: dict[str, hostkeys.HostKey] = {"hk-web1": {"id": "id-web1", "key": WEB1},
                                            "hk-db1": {"id": "id-db1-before-rebuild", "key": DB1}}
    ids = {"hk-web1": "id-web1", "hk-db1": "id-db1", "hk-app1": "id-app1"}
    assert hostkeys.unpinned(records, ids, ["hk-web1", "hk-db1", "hk-app1", "hk-gone1"]) == [
        "hk-app1", "hk-db1", "hk-gone1"]
    assert hostkeys.unpinned(records, ids, ["hk-web1"]) == []


# --- the deployment's sessions -------------------------------------------------------------------------

WEB1_ADDRESS, DB1_ADDRESS = "198.51.100.10", "10.20.0.12"
INVENTORY = {
    "hk-web1": {"role": "web", "address": WEB1_ADDRESS, "ssh_user": "castelet", "bastion": None,
                "testinfra_url": f"ssh://castelet@{WEB1_ADDRESS}"},
    "hk-db1": {"role": "db", "address": DB1_ADDRESS, "ssh_user": "castelet", "bastion": WEB1_ADDRESS,
               "testinfra_url": f"ssh://castelet@{DB1_ADDRESS}"},
}
INSTANCE = 'module.cloud.openstack_compute_instance_v2.instance["{}"]'
PROVISION = 'module.cloud.module.provision.terraform_data.puppet["{}"]'

# The state holds FAKE_TF_IDS (hostname => instance id) until an apply, FAKE_TF_AFTER after it.
FAKE_TERRAFORM = FAKE_TERRAFORM_PREAMBLE + r'''
ids_file = state_file + ".ids"
ids = json.load(open(ids_file)) if os.path.exists(ids_file) else json.loads(os.environ["FAKE_TF_IDS"])


def show(ids):
    return {"values": {"root_module": {"child_modules": [{"resources": [
        {"address": f'module.cloud.openstack_compute_instance_v2.instance["{h}"]', "mode": "managed",
         "type": "openstack_compute_instance_v2", "name": "instance", "index": h, "values": {"id": i}}
        for h, i in ids.items()]}]}}}


if args[:3] == ["output", "-json", "inventory"]:
    print(os.environ["FAKE_TF_INVENTORY"])
elif args == ["show", "-json"]:
    print(json.dumps(show(ids)))
elif args[:2] == ["show", "-json"]:
    print(json.dumps({"format_version": "1.2", "prior_state": show(ids), "resource_changes": []}))
elif args[0] == "plan":
    open(next(a.split("=", 1)[1] for a in args if a.startswith("-out=")), "w").write("plan")
elif args[:2] == ["apply", "-input=false"]:
    json.dump(json.loads(os.environ["FAKE_TF_AFTER"]), open(ids_file, "w"))
    print("Apply complete!")
else:
    sys.exit(f"fake terraform: unexpected {args}")
'''
# The network: FAKE_HOST_KEYS (address => the key that answers there). ssh checks it against the
# known_hosts file given (StrictHostKeyChecking=yes), runs ssh-keyscan there for a jump, and
# answers castelet-secrets; every call is logged.
FAKE_NETWORK = r'''
import json, os, sys

name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.environ["FAKE_NET_LOG"], "a") as log:
    log.write(json.dumps([name, *args]) + "\n")
keys = json.loads(os.environ["FAKE_HOST_KEYS"])


def keyscan(argv):
    address = argv[-1]
    if address in keys:
        print(f"# {address}:22 SSH-2.0-OpenSSH_10.0p2 Debian-7")
        print(f"{address} {keys[address]}")


if name == "ssh-keyscan":
    keyscan(args)
elif name == "ssh":
    options = dict(args[i + 1].split("=", 1) for i, a in enumerate(args[:args.index("--")]) if a == "-o")
    target, command = args[args.index("--") + 1], " ".join(args[args.index("--") + 2:])
    address = target.split("@", 1)[1]
    known = open(options["UserKnownHostsFile"]).read().splitlines() if "UserKnownHostsFile" in options else []
    if options.get("StrictHostKeyChecking") != "yes" or f"{address} {keys.get(address)}" not in known:
        sys.exit(f"Host key verification failed ({address}).")
    if command.startswith("ssh-keyscan"):
        keyscan(command.split())
    elif "castelet-secrets" in command:
        print("mariadb-root: s3cret")
elif name == "openstack":
    consoles = json.loads(os.environ["FAKE_CONSOLES"])
    if args[-4:-1] != ["console", "log", "show"] or args[-1] not in consoles:
        sys.exit(f"No server with a name or ID of '{args[-1]}' exists.")
    print(consoles[args[-1]])
'''

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "lamp", {"admin_ssh_keys": KEY, "project_slug": "hk"},
               tmp_path_factory.mktemp("host-key-policy"))


class Deployment:
    """A copy of the rendered OpenStack deployment, its stand-ins and their logs."""

    def __init__(self, rendered: Path, tmp_path: Path) -> None:
        self.root, self.tmp = tmp_path / "deployment", tmp_path
        shutil.copytree(rendered, self.root, ignore=shutil.ignore_patterns(".git", ".terraform"))
        self.records_file = self.root / ".castelet" / "host_keys.json"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (tmp_path / "fake_terraform.py").write_text(FAKE_TERRAFORM)
        for name in ("ssh", "ssh-keyscan", "openstack"):
            (bin_dir / name).write_text(f"#!{sys.executable}\n{FAKE_NETWORK}")
            (bin_dir / name).chmod(0o755)
        (tmp_path / "state.json").write_text("[]")
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "CASTELET_TERRAFORM": f"{sys.executable} {tmp_path / 'fake_terraform.py'}",
                    "FAKE_TF_STATE": str(tmp_path / "state.json"), "FAKE_TF_LOG": str(tmp_path / "terraform.log"),
                    "FAKE_NET_LOG": str(tmp_path / "network.log"), "FAKE_TF_INVENTORY": json.dumps(INVENTORY),
                    "FAKE_HOST_KEYS": json.dumps({WEB1_ADDRESS: WEB1, DB1_ADDRESS: DB1}), "FAKE_CONSOLES": "{}",
                    "FAKE_TF_IDS": json.dumps({"hk-web1": "id-web1", "hk-db1": "id-db1"}), "FAKE_TF_AFTER": "{}"}
        for name in ("terraform.log", "network.log"):
            (tmp_path / name).write_text("")

    def records(self) -> dict[str, hostkeys.HostKey]:
        return hostkeys.load(self.records_file)

    def calls(self, program: str) -> list[list[str]]:
        log = "terraform.log" if program == "terraform" else "network.log"
        found = [json.loads(line) for line in (self.tmp / log).read_text().splitlines()]
        return found if program == "terraform" else [call[1:] for call in found if call[0] == program]

    def nox(self, session: str, *args: str, **env: Any) -> subprocess.CompletedProcess[str]:
        given = {name: value if isinstance(value, str) else json.dumps(value) for name, value in env.items()}
        return subprocess.run([sys.executable, "-m", "nox", "-s", session, "--", *args], cwd=self.root,
                              env={**self.env, **given}, capture_output=True, text=True, timeout=300, check=False)


REFUSING = [("secrets", (), {}),
            ("backup-credentials", (), {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"}),
            ("restore", ("--host", "hk-db1", "--confirm", "hk"), {}),
            # it reads the repository password from the instance (restic is needed here first)
            *([("prune", ("--host", "hk-db1", "--confirm", "hk"), {})] if shutil.which("restic") else [])]


@pytest.mark.parametrize("records", ["none", "replaced"])
@pytest.mark.parametrize(("session", "args", "env"), REFUSING, ids=[r[0] for r in REFUSING])
def test_a_session_that_sends_secrets_refuses_a_host_whose_key_is_not_pinned(
        rendered: Path, tmp_path: Path, session: str, args: tuple[str, ...], env: dict[str, str],
        records: str) -> None:
    """The acceptance case: hk-db1's key was never learned ("none"), or was learned for the
    instance it replaced ("replaced"). Before, the session scanned it and trusted whatever key
    answered (trust on first use at any contact); now it refuses, names the host, says to apply,
    and neither scans nor connects to anything."""
    deployment = Deployment(rendered, tmp_path)
    pinned: dict[str, hostkeys.HostKey] = {"hk-web1": {"id": "id-web1", "key": WEB1}}
    if records == "replaced":
        pinned["hk-db1"] = {"id": "id-db1-before-its-rebuild", "key": DB1}
    hostkeys.save(deployment.records_file, pinned)
    done = deployment.nox(session, *args, **env)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text
    assert f"nox -s {session} refused: no SSH host key is pinned for hk-db1" in text, text
    assert "nox -s plan apply" in text and "nox -s rebuild -- hk-db1" in text, text
    assert deployment.calls("ssh-keyscan") == [] and deployment.calls("ssh") == [], "a host was contacted"
    assert deployment.records() == pinned, "a key was learned outside apply and rebuild"


def test_a_session_reaches_pinned_hosts_with_their_keys_only(rendered: Path, tmp_path: Path) -> None:
    deployment = Deployment(rendered, tmp_path)
    pinned: dict[str, hostkeys.HostKey] = {"hk-web1": {"id": "id-web1", "key": WEB1},
                                           "hk-db1": {"id": "id-db1", "key": DB1}}
    hostkeys.save(deployment.records_file, pinned)
    done = deployment.nox("secrets")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# hk-db1\nmariadb-root: s3cret" in done.stdout
    assert deployment.calls("ssh-keyscan") == [] and len(deployment.calls("ssh")) == 2
    # a different key answering for a pinned host is refused by ssh itself (StrictHostKeyChecking)
    done = deployment.nox("secrets", FAKE_HOST_KEYS={WEB1_ADDRESS: WEB1, DB1_ADDRESS: WEB1})
    assert done.returncode != 0 and "Host key verification failed (10.20.0.12)" in done.stderr, done.stderr
    assert deployment.records() == pinned


def test_configure_refuses_an_instance_whose_key_is_not_pinned(rendered: Path, tmp_path: Path) -> None:
    """configure pushes the Puppet environment and hieradata: Terraform would connect to an
    instance with no pinned key accepting any key, so nothing is planned."""
    deployment = Deployment(rendered, tmp_path)
    (tmp_path / "state.json").write_text(json.dumps([INSTANCE.format("hk-web1"), PROVISION.format("hk-web1"),
                                                     INSTANCE.format("hk-db1"), PROVISION.format("hk-db1")]))
    hostkeys.save(deployment.records_file, {"hk-web1": {"id": "id-web1", "key": WEB1}})
    done = deployment.nox("configure", "-auto-approve")
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "nox -s configure refused: no SSH host key is pinned for hk-db1" in text, text
    assert not [call for call in deployment.calls("terraform") if call[0] in ("plan", "apply")]


def apply(deployment: Deployment, after: dict[str, str], **env: Any) -> subprocess.CompletedProcess[str]:
    (deployment.root / "tfplan").write_text("a reviewed plan")
    return deployment.nox("apply", FAKE_TF_AFTER=after, **env)


def test_apply_learns_only_the_instances_it_created(rendered: Path, tmp_path: Path) -> None:
    """hk-db1 existed before the apply with no key recorded (its scan had failed): a scan now
    would be a later first contact, and is not trusted; hk-web1 is created by this apply, its key
    is learned (its console log cannot be read here, which the session says)."""
    deployment = Deployment(rendered, tmp_path)
    done = apply(deployment, {"hk-web1": "id-web1-new", "hk-db1": "id-db1"}, FAKE_TF_IDS={"hk-db1": "id-db1"})
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert deployment.records() == {"hk-web1": {"id": "id-web1-new", "key": WEB1}}
    assert "hk-db1: its instance was not created by this run" in text and "nox -s rebuild -- hk-db1" in text, text
    assert "hk-web1: its console log could not confirm its host key" in text, text
    assert "No server with a name or ID of 'id-web1-new'" in text, text
    # hk-db1 (behind hk-web1) was scanned from hk-web1, reached with the key just learned
    assert deployment.calls("ssh-keyscan") == [["-T", "10", "-t", "ed25519", "--", WEB1_ADDRESS]]
    assert [call[-1] for call in deployment.calls("ssh")] == [f"ssh-keyscan -T 10 -t ed25519 -- {DB1_ADDRESS}"]


def test_apply_learns_what_the_console_log_confirms_and_refuses_what_it_contradicts(
        rendered: Path, tmp_path: Path) -> None:
    deployment = Deployment(rendered, tmp_path)
    # hk-web1 existed unpinned: its console log confirms its key, so it is learned (no first-use trust)
    # hk-db1 is new, but the key answering is not the one its console log shows: refused
    consoles = {"id-web1": console_log(WEB1), "id-db1-new": console_log(WEB1, keys=False)}
    done = apply(deployment, {"hk-web1": "id-web1", "hk-db1": "id-db1-new"}, FAKE_TF_IDS={"hk-web1": "id-web1"},
                 FAKE_CONSOLES=consoles)
    text = done.stdout + done.stderr
    assert done.returncode != 0, text
    assert f"hk-db1: the host key it presents ({DB1_FP}) is not the one its console log shows" in text, text
    assert "its key was NOT recorded" in text and "openstack console log show id-db1-new" in text, text
    assert deployment.records() == {"hk-web1": {"id": "id-web1", "key": WEB1}}
    assert "hk-web1: confirmed by its console log" in text, text
    # the console logs were read with the instance ids, once each
    assert sorted(call[-1] for call in deployment.calls("openstack")) == ["id-db1-new", "id-web1"]


def test_rebuild_learns_the_new_instance_and_keeps_the_others(rendered: Path, tmp_path: Path) -> None:
    deployment = Deployment(rendered, tmp_path)
    hostkeys.save(deployment.records_file, {"hk-web1": {"id": "id-web1", "key": WEB1},
                                            "hk-db1": {"id": "id-db1", "key": WEB1}})
    (tmp_path / "state.json").write_text(json.dumps([INSTANCE.format("hk-web1"), INSTANCE.format("hk-db1")]))
    done = deployment.nox("rebuild", "hk-db1", "-auto-approve",
                          FAKE_TF_AFTER={"hk-web1": "id-web1", "hk-db1": "id-db1-2"},
                          FAKE_CONSOLES={"id-db1-2": console_log(DB1)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert deployment.records() == {"hk-web1": {"id": "id-web1", "key": WEB1},
                                    "hk-db1": {"id": "id-db1-2", "key": DB1}}
    assert deployment.calls("openstack") and all(call[-1] == "id-db1-2" for call in deployment.calls("openstack"))


def test_the_console_log_is_read_from_the_cloud_of_the_settings(rendered: Path, tmp_path: Path) -> None:
    deployment = Deployment(rendered, tmp_path)
    tfvars = deployment.root / "terraform.tfvars"
    tfvars.write_text(tfvars.read_text() + '\nos_cloud = "arbutus"  # clouds.yaml\n')
    done = apply(deployment, {"hk-web1": "id-web1"}, FAKE_TF_IDS={},
                 FAKE_CONSOLES={"id-web1": console_log(WEB1)}, FAKE_TF_INVENTORY={"hk-web1": INVENTORY["hk-web1"]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert deployment.calls("openstack") == [["--os-cloud", "arbutus", "console", "log", "show", "id-web1"]]
    assert deployment.records() == {"hk-web1": {"id": "id-web1", "key": WEB1}}
