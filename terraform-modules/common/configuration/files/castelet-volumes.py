#!/usr/bin/python3
"""castelet-volumes: put this node's state on its data volumes, before Puppet compiles.

  castelet-volumes mount    mount every volume of data/terraform.yaml, then bind the secrets
                            directory from the first one (castelet-puppet-apply runs it first)
  castelet-volumes check    exit 1, naming it, while a volume or a bound directory is missing
  castelet-volumes bind TARGET SOURCE [--stop UNIT]
                            keep TARGET (e.g. /var/lib/mysql) on the volume at SOURCE: an fstab
                            bind mount; what TARGET already held is copied there first
  castelet-volumes is-bound TARGET SOURCE

A volume with a `device` (a /dev/disk/by-id glob, OpenStack) is waited for, formatted ext4 only
when `blkid -p` finds nothing on it, listed in /etc/fstab by UUID and mounted. A volume without
one is mounted by the cloud itself (LXD): it must already be a mount point. Nothing is ever
written to a mount point's directory while its volume is missing.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

HIERADATA = "/etc/puppet/code/environments/production/data/terraform.yaml"
SECRETS_DIR = "/var/lib/castelet/secrets"


class VolumeError(Exception):
    pass


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise VolumeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def mountpoints() -> set[str]:
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        found.add(field.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\"))
    return found


def is_mountpoint(path: str) -> bool:
    return os.path.realpath(path) in mountpoints()


def load(hieradata: str) -> tuple[dict[str, dict[str, str]], str | None]:
    try:
        data = yaml.safe_load(Path(hieradata).read_text()) or {}
    except OSError as exc:
        raise VolumeError(f"cannot read {hieradata}: {exc}") from None
    terraform = data.get("terraform") or {}
    return dict(terraform.get("volumes") or {}), terraform.get("data_dir")


def set_fstab_line(fstab: str, mount: str, line: str) -> bool:
    """Make `line` the one entry of `fstab` for `mount`; True when the file changed."""
    path = Path(fstab)
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [x for x in lines if x.strip().startswith("#") or len(x.split()) < 2 or x.split()[1] != mount]
    new = [*kept, line]
    if new == lines:
        return False
    tmp = path.with_name(f".{path.name}.castelet")
    tmp.write_text("\n".join(new) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def reload_systemd(fstab: str) -> None:
    """systemd generates mount units from /etc/fstab: refresh them after an edit."""
    if fstab == "/etc/fstab" and Path("/run/systemd/system").is_dir():
        run("systemctl", "daemon-reload")


def wait_for_device(pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        # the whole disk, not its partitions' links (<name>-part1, ...)
        devices = sorted({os.path.realpath(p) for p in glob.glob(pattern) if not re.search(r"-part[0-9]+$", p)})
        if len(devices) == 1:
            return devices[0]
        if len(devices) > 1:
            raise VolumeError(f"{pattern} matches several disks ({', '.join(devices)}): refusing to guess")
        if time.monotonic() > deadline:
            raise VolumeError(f"no disk matches {pattern} after {timeout:.0f} s: is the volume attached?")
        if shutil.which("udevadm"):
            run("udevadm", "settle", "--timeout=5", check=False)
        time.sleep(2)


def mount_volume(name: str, mount: str, pattern: str | None, fstab: str, timeout: float) -> None:
    if pattern is None:
        if not is_mountpoint(mount):
            raise VolumeError(f"volume {name} is not mounted at {mount} (the cloud mounts it)")
        return
    device = wait_for_device(pattern, timeout)
    probe = run("blkid", "-p", device, check=False)
    if probe.returncode == 2:  # nothing on it: a new volume
        print(f"castelet-volumes: formatting {device} (volume {name}, blank) as ext4")
        run("mkfs.ext4", "-q", "-L", "".join(c for c in name if c.isalnum() or c in "_.-")[:16], device)
    elif probe.returncode != 0:
        raise VolumeError(f"blkid -p {device} failed ({probe.returncode}): refusing to touch volume {name}")
    uuid = run("blkid", "-p", "-s", "UUID", "-o", "value", device).stdout.strip()
    fstype = run("blkid", "-p", "-s", "TYPE", "-o", "value", device).stdout.strip()
    if not uuid or not fstype:
        raise VolumeError(f"{device} (volume {name}) holds no filesystem with a UUID: refusing to mount it")
    os.makedirs(mount, exist_ok=True)
    line = f"UUID={uuid} {mount} {fstype} defaults,nofail,x-systemd.device-timeout=300 0 2"
    if set_fstab_line(fstab, mount, line):
        reload_systemd(fstab)
    if not is_mountpoint(mount):
        run("mount", "-T", fstab, mount)
        print(f"castelet-volumes: volume {name} mounted at {mount}")


def copy_into(target: str, source: str) -> None:
    """Move what `target` holds onto the volume at `source` (copy, compare, then empty target)."""
    entries = sorted(os.listdir(target))
    if not entries:
        return
    if os.listdir(source):
        # Both hold data: the volume wins; keep the other copy on the volume for a human to look at.
        aside = f"{source}.root-disk-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        run("cp", "-a", f"{target}/.", aside)
        print(f"castelet-volumes: {source} already holds data; what {target} held is kept in {aside}")
    else:
        run("cp", "-a", f"{target}/.", f"{source}/")
        missing = [e for e in entries if not os.path.lexists(os.path.join(source, e))]
        if missing:
            raise VolumeError(f"copying {target} to {source} lost {missing}: nothing removed")
    for entry in entries:
        path = os.path.join(target, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def is_bound(target: str, source: str, fstab: str) -> bool:
    if not is_mountpoint(target) or not Path(fstab).exists():
        return False
    return any(x.split()[:2] == [source, target] for x in Path(fstab).read_text().splitlines() if len(x.split()) >= 2)


def bind(target: str, source: str, fstab: str, stop: list[str], mode: int | None) -> None:
    volume = str(Path(source).parent)
    while not is_mountpoint(volume) and volume != "/":
        volume = str(Path(volume).parent)
    if volume == "/":
        raise VolumeError(f"{source} is not on a mounted data volume: refusing to bind {target} to the root disk")
    if is_bound(target, source, fstab):
        return
    os.makedirs(source, exist_ok=True)
    if mode is not None:
        os.chmod(source, mode)
    os.makedirs(target, exist_ok=True)
    if is_mountpoint(target):
        raise VolumeError(f"{target} is already a mount point of something else than {source}")
    for unit in stop:
        run("systemctl", "stop", unit, check=False)
    copy_into(target, source)
    line = f"{source} {target} none bind,x-systemd.requires-mounts-for={volume} 0 0"
    if set_fstab_line(fstab, target, line):
        reload_systemd(fstab)
    run("mount", "-T", fstab, target)
    print(f"castelet-volumes: {target} is now {source} (on the volume at {volume})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="castelet-volumes", description=__doc__.splitlines()[0])
    parser.add_argument("--hieradata", default=HIERADATA)
    parser.add_argument("--fstab", default="/etc/fstab")
    parser.add_argument("--secrets-dir", default=SECRETS_DIR)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for a volume's disk")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("mount")
    sub.add_parser("check")
    for name in ("bind", "is-bound"):
        command = sub.add_parser(name)
        command.add_argument("target")
        command.add_argument("source")
        command.add_argument("--stop", action="append", default=[], help="systemd unit to stop while copying")
        command.add_argument("--mode", type=lambda v: int(v, 8), default=None)
    args = parser.parse_args(argv)
    try:
        if args.command in ("bind", "is-bound"):
            target, source = os.path.abspath(args.target), os.path.abspath(args.source)
            if args.command == "is-bound":
                return 0 if is_bound(target, source, args.fstab) else 1
            bind(target, source, args.fstab, args.stop, args.mode)
            return 0
        volumes, data_dir = load(args.hieradata)
        secrets_source = f"{data_dir}/castelet/secrets" if data_dir else None
        if args.command == "check":
            missing = [f"volume {n} at {v['mount']}" for n, v in sorted(volumes.items())
                       if not is_mountpoint(v["mount"])]
            if secrets_source and not is_bound(args.secrets_dir, secrets_source, args.fstab):
                missing.append(f"{args.secrets_dir} bound from {secrets_source}")
            if missing:
                print(f"castelet-volumes: not mounted: {'; '.join(missing)}", file=sys.stderr)
                return 1
            return 0
        for name, volume in sorted(volumes.items()):
            mount_volume(name, volume["mount"], volume.get("device"), args.fstab, args.timeout)
        if secrets_source:
            bind(args.secrets_dir, secrets_source, args.fstab, [], 0o700)
    except VolumeError as exc:
        print(f"castelet-volumes: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
