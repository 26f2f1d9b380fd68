"""SSH host keys of a deployment: learned when an instance is created, then pinned (standard
library only).

A rendered OpenStack deployment carries a copy of this file (``.castelet/hostkeys.py``). After a
successful ``nox -s apply`` or ``rebuild`` its noxfile scans every host's public key
(``ssh-keyscan``) and records the key of each instance not recorded yet in
``.castelet/host_keys.json``, hostname => {"id": instance id, "key": "ssh-ed25519 AAAA..."}: when
the instance's console log (``openstack console log show``, where cloud-init prints the host keys)
confirms it, or, when the log shows none, only if that very run created the instance (trust on
first use at creation, never later); a key the console log contradicts is refused (see admit()).
Terraform's day-2 provisioner then refuses any other key for that instance, and the sessions that
reach an instance over SSH (``verify``, ``secrets``, ``backup-credentials``, ``restore``...)
connect with a known_hosts file built from the same records, and refuse a host that has none
(unpinned()).

Only public keys are handled here: the records are safe to commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

KEY_TYPE = "ssh-ed25519"
KEY_PATTERN = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/=]+$")


class HostKey(TypedDict):
    id: str
    key: str


class HostKeyError(ValueError):
    """A host key record or scan that cannot be trusted."""


class HostKeyChanged(HostKeyError):
    """A host presents another key while its instance id is unchanged."""

    def __init__(self, hostname: str, recorded: str, found: str, records_file: str) -> None:
        self.hostname = hostname
        super().__init__(
            f"{hostname}: its SSH host key changed but its instance did not (same id): recorded "
            f"{recorded!r}, presented {found!r}. This may be an attack on the connection. If the host "
            f"was legitimately rebuilt (e.g. reinstalled in place), delete the {hostname!r} entry "
            f"from {records_file} and run the apply again: its new key is recorded if its console log "
            f"(`openstack console log show`) confirms it; otherwise rebuild it (`nox -s rebuild -- {hostname}`)."
        )


def parse_keyscan(output: str, key_type: str = KEY_TYPE) -> str | None:
    """The ``<type> <base64>`` key of ``key_type`` in ``ssh-keyscan`` output, or None if absent."""
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[1] == key_type:
            key = f"{fields[1]} {fields[2]}"
            if KEY_PATTERN.match(key):
                return key
    return None


def validate(records: Mapping[str, Any], source: str) -> dict[str, HostKey]:
    """Records loaded from JSON, checked: hostname => {id, key} with a well-formed public key."""
    if not isinstance(records, Mapping):
        raise HostKeyError(f"{source}: expected an object hostname => {{id, key}}")
    checked: dict[str, HostKey] = {}
    for hostname, record in records.items():
        if not isinstance(record, Mapping) or set(record) != {"id", "key"}:
            raise HostKeyError(f"{source}: {hostname}: expected exactly {{\"id\", \"key\"}}")
        host_id, key = record["id"], record["key"]
        if not isinstance(host_id, str) or not host_id:
            raise HostKeyError(f"{source}: {hostname}: id must be a non-empty string")
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise HostKeyError(f"{source}: {hostname}: key must be one public key line \"<type> <base64>\"")
        checked[str(hostname)] = {"id": host_id, "key": key}
    return checked


def load(path: Path) -> dict[str, HostKey]:
    """The recorded host keys ({} when the file does not exist yet)."""
    if not path.exists():
        return {}
    return validate(json.loads(path.read_text(encoding="utf-8")), str(path))


def save(path: Path, records: Mapping[str, HostKey]) -> None:
    """Write the records atomically (a temporary file in the same directory, then a rename)."""
    text = json.dumps(dict(sorted(records.items())), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pinned(records: Mapping[str, HostKey], hostname: str, instance_id: str) -> str | None:
    """The key pinned for this host, or None when it is unknown or its instance was replaced."""
    record = records.get(hostname)
    return record["key"] if record is not None and record["id"] == instance_id else None


def to_learn(records: Mapping[str, HostKey], ids: Mapping[str, str]) -> list[str]:
    """Hosts with no record, or whose instance was replaced (a new id means new host keys)."""
    return sorted(hostname for hostname, host_id in ids.items() if pinned(records, hostname, host_id) is None)


def unpinned(records: Mapping[str, HostKey], ids: Mapping[str, str], hostnames: Iterable[str]) -> list[str]:
    """The hosts among ``hostnames`` that no SSH connection may reach: no key is pinned for their
    current instance (never recorded, replaced since, or no instance id known for them)."""
    return sorted(hostname for hostname in set(hostnames)
                  if hostname not in ids or pinned(records, hostname, ids[hostname]) is None)


def fingerprint(key: str) -> str:
    """The SHA256 fingerprint of a public key line, as ``ssh-keygen -l`` prints it."""
    try:
        blob = base64.b64decode(key.split()[1], validate=True)
    except (IndexError, binascii.Error) as exc:
        raise HostKeyError(f"not a public key line: {key!r}") from exc
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


# cloud-init's keys_to_console (write-ssh-key-fingerprints) prints, through `logger -t ec2`, so with
# a syslog prefix on each line, the fingerprints of the host keys and then the public keys.
CONSOLE_FINGERPRINTS = ("-----BEGIN SSH HOST KEY FINGERPRINTS-----", "-----END SSH HOST KEY FINGERPRINTS-----")
CONSOLE_KEYS = ("-----BEGIN SSH HOST KEY KEYS-----", "-----END SSH HOST KEY KEYS-----")
_CONSOLE_FINGERPRINT = re.compile(r"\b\d+ (SHA256:[A-Za-z0-9+/]+) .*\(([A-Z0-9-]+)\)\s*$")


def console_host_keys(log: str, key_type: str = KEY_TYPE) -> tuple[set[str], set[str]]:
    """(public keys, SHA256 fingerprints) of ``key_type`` that cloud-init printed in a console log
    (``openstack console log show``); both empty when the log shows no host key block."""
    keys: set[str] = set()
    fingerprints: set[str] = set()
    label = key_type.removeprefix("ssh-").split("-")[0].upper()  # ssh-ed25519 -> ED25519 (ssh-keygen -l)
    key_pattern = re.compile(rf"(?<![\w-]){re.escape(key_type)} ([A-Za-z0-9+/]+={{0,2}})(?![A-Za-z0-9+/=])")
    block: str | None = None
    for line in log.splitlines():
        if CONSOLE_FINGERPRINTS[0] in line or CONSOLE_KEYS[0] in line:
            block = "fingerprints" if CONSOLE_FINGERPRINTS[0] in line else "keys"
        elif CONSOLE_FINGERPRINTS[1] in line or CONSOLE_KEYS[1] in line:
            block = None
        elif block == "fingerprints":
            found = _CONSOLE_FINGERPRINT.search(line)
            if found and found.group(2) == label:
                fingerprints.add(found.group(1))
        elif block == "keys":
            found = key_pattern.search(line)
            if found:
                keys.add(f"{key_type} {found.group(1)}")
    return keys, fingerprints


def console_verdict(log: str | None, key: str, key_type: str = KEY_TYPE) -> bool | None:
    """Does the console log confirm ``key``? True: it shows this key (or its fingerprint); False:
    it shows host keys of this type and this one is not among them; None: no log, or no key in it."""
    if log is None:
        return None
    keys, fingerprints = console_host_keys(log, key_type)
    if not keys and not fingerprints:
        return None
    return key in keys or fingerprint(key) in fingerprints


@dataclass
class Admission:
    """What a scan after an apply or a rebuild may add to the records (see admit())."""

    keys: dict[str, str] = field(default_factory=dict)  # hostname => key to record
    how: dict[str, str] = field(default_factory=dict)  # hostname => why it is trusted
    skipped: dict[str, str] = field(default_factory=dict)  # hostname => why it stays unpinned
    refused: dict[str, str] = field(default_factory=dict)  # hostname => why its key is refused


def admit(records: Mapping[str, HostKey], ids: Mapping[str, str], created: Collection[str],
          scanned: Mapping[str, str | None], confirmed: Mapping[str, bool | None]) -> Admission:
    """Which scanned keys of hosts not pinned yet may be recorded.

    ``created``: the hosts whose instance the current apply or rebuild created (their id was not
    in the state before it). ``confirmed``: hostname => console_verdict() of its scanned key. A
    key the console log confirms is recorded; one it contradicts is refused (someone may stand
    between us and the instance); with no key in the log (or no log), the scan alone is trusted
    only for an instance created by this very run: trust on first use at creation, never at a
    later contact."""
    admission = Admission()
    for hostname in to_learn(records, ids):
        key = scanned.get(hostname)
        if key is None:
            admission.skipped[hostname] = "no ed25519 host key could be read"
            continue
        verdict = confirmed.get(hostname)
        if verdict is False:
            admission.refused[hostname] = (
                f"the host key it presents ({fingerprint(key)}) is not the one its console log shows: "
                "someone may be intercepting the connection")
        elif verdict:
            admission.keys[hostname], admission.how[hostname] = key, "confirmed by its console log"
        elif hostname in created:
            admission.keys[hostname], admission.how[hostname] = key, "scanned right after its creation"
        else:
            admission.skipped[hostname] = ("its instance was not created by this run and its console log "
                                           "does not confirm the key it presents")
    return admission


def merge(records: Mapping[str, HostKey], ids: Mapping[str, str], scanned: Mapping[str, str | None],
          records_file: str = ".castelet/host_keys.json") -> dict[str, HostKey]:
    """The new records after a scan.

    ``ids``: hostname => current instance id of every host of the deployment (hosts not listed
    are gone: their records are dropped). ``scanned``: hostname => key presented now (None or
    absent when not scanned or unreachable). A host keeps its record while its id is unchanged; a
    different key on the same id raises HostKeyChanged; a new or replaced host learns the scanned
    key (or stays unrecorded when there is none).
    """
    result: dict[str, HostKey] = {}
    for hostname, host_id in sorted(ids.items()):
        found = scanned.get(hostname)
        if found is not None and not KEY_PATTERN.match(found):
            raise HostKeyError(f"{hostname}: scanned key is not one public key line: {found!r}")
        known = pinned(records, hostname, host_id)
        if known is not None:
            if found is not None and found != known:
                raise HostKeyChanged(hostname, known, found, records_file)
            result[hostname] = {"id": host_id, "key": known}
        elif found is not None:
            result[hostname] = {"id": host_id, "key": found}
    return result


def known_hosts(records: Mapping[str, HostKey], addresses: Mapping[str, str]) -> str:
    """known_hosts lines (``<address> <key>``) for the recorded hosts that have an address."""
    lines: Iterable[str] = (
        f"{addresses[hostname]} {record['key']}" for hostname, record in sorted(records.items())
        if hostname in addresses
    )
    return "".join(f"{line}\n" for line in lines)


def state_resources(state: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every resource of ``terraform show -json``, in the root module and all child modules."""
    pending: list[Mapping[str, Any]] = [state.get("values", {}).get("root_module", {})]
    while pending:
        module = pending.pop()
        yield from module.get("resources", [])
        pending.extend(module.get("child_modules", []))


def instance_ids(state: Mapping[str, Any], resource_type: str = "openstack_compute_instance_v2",
                 name: str = "instance") -> dict[str, str]:
    """hostname => instance id, from ``terraform show -json`` (the instances are keyed by hostname)."""
    return {resource["index"]: str(resource["values"]["id"]) for resource in state_resources(state)
            if resource.get("mode") == "managed" and resource.get("type") == resource_type
            and resource.get("name") == name and isinstance(resource.get("index"), str)}


# --- the deployment's CI: a known_hosts line without the noxfile ---------------------------------

#: An address or a DNS name a CI job is told to reach (never an option: no leading dash).
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")


def known_host_line(records: Mapping[str, HostKey], hostname: str, address: str, records_file: str) -> str:
    """The known_hosts line pinning ``hostname``'s recorded key at ``address``; HostKeyError when
    no key is recorded for it (a job must then refuse to connect) or the address is not one."""
    if not _ADDRESS.fullmatch(address):
        raise HostKeyError(f"{address!r} is not an IP address or a DNS name")
    if hostname not in records:
        raise HostKeyError(f"no SSH host key is recorded for {hostname} in {records_file}: run `nox -s apply` "
                           "(or `nox -s rebuild`), which records it, and commit that file; nothing was sent")
    return known_hosts({hostname: records[hostname]}, {hostname: address})


def main(argv: list[str] | None = None) -> int:
    """``python3 .castelet/hostkeys.py known-hosts HOSTNAME ADDRESS``: print the known_hosts line
    pinning the key this repository records for HOSTNAME at ADDRESS (the GitLab CI's redeploy
    connects with it and StrictHostKeyChecking=yes); exit 1 naming the problem otherwise."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "known-hosts":
        print("usage: hostkeys.py known-hosts HOSTNAME ADDRESS", file=sys.stderr)
        return 2
    records_file = Path(__file__).resolve().parent / "host_keys.json"
    try:
        sys.stdout.write(known_host_line(load(records_file), args[1], args[2], ".castelet/host_keys.json"))
    except (HostKeyError, ValueError) as exc:
        print(f"hostkeys: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
