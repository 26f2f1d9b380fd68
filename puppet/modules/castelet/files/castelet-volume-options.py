#!/usr/bin/python3
"""castelet-volume-options: the data volumes, and every bind mount of a directory on them, nodev,nosuid.

  castelet-volume-options check MOUNT...   exit 1, naming them, while a mount of these volumes lacks
                                           nodev or nosuid (or a volume is not mounted)
  castelet-volume-options apply MOUNT...   remount those that lack them, then check again

A mount "of a volume" is the volume's mount point and every other mount of the same file system
whose root lies inside the volume's root: the bind mounts castelet-volumes makes from it (the
secrets, /var/lib/mysql, a document root...). Matching on the root as well keeps the other
directories of a shared file system out: on the local cloud a custom volume and the container's
own root file system are directories of the same storage pool.

Only the per-mount flags change (`mount -o remount,bind,nodev,nosuid`): no file system option,
no superblock remount, which an unprivileged container may not do. Puppet runs `apply` before any
bind mount is made from a volume (a new bind mount inherits the flags), and
castelet-volume-options.service runs it at every boot, once the local file systems are mounted
(neither OpenStack's /etc/fstab line, written by castelet-volumes, nor LXD's own mount of a custom
volume carries the two options).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FLAGS = ("nodev", "nosuid")


class OptionsError(Exception):
    pass


@dataclass(frozen=True)
class Mount:
    device: str  # major:minor of the file system
    root: str  # the directory of that file system mounted here
    target: str
    options: tuple[str, ...]  # per-mount options

    @property
    def missing(self) -> list[str]:
        return [flag for flag in FLAGS if flag not in self.options]


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo (octal)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse(text: str) -> list[Mount]:
    """The mounts of /proc/self/mountinfo, in its order; of several mounts stacked on one target,
    only the last (the visible one)."""
    found: dict[str, Mount] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        target = _unescape(fields[4])
        found.pop(target, None)
        found[target] = Mount(fields[2], _unescape(fields[3]), target, tuple(fields[5].split(",")))
    return list(found.values())


def _inside(root: str, top: str) -> bool:
    return top == "/" or root == top or root.startswith(top.rstrip("/") + "/")


def of_volumes(mounts: list[Mount], mount_points: list[str]) -> list[Mount]:
    """Every mount of the volumes mounted at `mount_points` (raises when one is not mounted)."""
    by_target = {m.target: m for m in mounts}
    selected: dict[str, Mount] = {}
    for mount_point in mount_points:
        volume = by_target.get(os.path.realpath(mount_point))
        if volume is None:
            raise OptionsError(f"{mount_point} is not a mount point: is its volume mounted?")
        for mount in mounts:
            if mount.device == volume.device and _inside(mount.root, volume.root):
                selected[mount.target] = mount
    return sorted(selected.values(), key=lambda m: m.target)


def lacking(mountinfo: str, mount_points: list[str]) -> list[Mount]:
    return [m for m in of_volumes(parse(Path(mountinfo).read_text()), mount_points) if m.missing]


def describe(mounts: list[Mount]) -> str:
    return "; ".join(f"{m.target} (no {', '.join(m.missing)})" for m in mounts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="castelet-volume-options", description=__doc__.splitlines()[0])
    parser.add_argument("--mountinfo", default="/proc/self/mountinfo", help=argparse.SUPPRESS)
    parser.add_argument("command", choices=["check", "apply"])
    parser.add_argument("mounts", nargs="+", metavar="MOUNT")
    args = parser.parse_args(argv)
    try:
        missing = lacking(args.mountinfo, args.mounts)
        if args.command == "apply":
            for mount in missing:
                proc = subprocess.run(["mount", "-o", "remount,bind," + ",".join(FLAGS), mount.target],
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise OptionsError(f"remounting {mount.target} {','.join(FLAGS)} failed "
                                       f"({proc.returncode}): {proc.stderr.strip()}")
                print(f"castelet-volume-options: {mount.target} remounted {','.join(FLAGS)}")
            missing = lacking(args.mountinfo, args.mounts)
        if missing:
            print(f"castelet-volume-options: mounted without {' or '.join(FLAGS)}: {describe(missing)}",
                  file=sys.stderr)
            return 1
    except (OptionsError, OSError) as exc:
        print(f"castelet-volume-options: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
