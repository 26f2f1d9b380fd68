"""The local cloud's storage pool lives on an ext4 file system of its own, in a sparse file.

LXD's `dir` driver unpacks the whole image for every container and deletes the whole tree with
it. On a host file system without a journal (some cloud VMs' root disks), ext4 will not reuse an
inode deleted in the last seconds and scans past each such inode for every file it creates: the
image's 27,000 files took 11 to 31 s of kernel time to unpack, growing with each container made
and deleted, against 2 s on a journaled ext4 (decision 46). The pool's own file system, mounted
from a loop device, is the same on every host and is what an OpenStack instance's disk is.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The sparse file's size: a bound, not a reservation (it takes the space its contents use).
SIZE_GIB = 40
LABEL = "castelet-pool"


class PoolError(RuntimeError):
    """The pool's file system could not be created or mounted; the message says why."""


@dataclass(frozen=True)
class PoolFilesystem:
    image: Path  # the sparse file holding the file system
    source: Path  # where it is mounted: the LXD pool's `source`

    def exists(self) -> bool:
        return self.image.is_file()

    def mounted(self) -> bool:
        """True when this file system (not just any) is mounted at ``source``."""
        return _backing_file(mount_source(self.source)) == self.image.resolve()

    def create(self, size_gib: int = SIZE_GIB) -> None:
        """Make the file system, in a file renamed into place only once complete."""
        self.image.parent.mkdir(parents=True, exist_ok=True)
        partial = self.image.with_name(self.image.name + ".partial")
        partial.unlink(missing_ok=True)
        with partial.open("wb") as handle:
            handle.truncate(size_gib << 30)
        _run(["mkfs.ext4", "-q", "-F", "-L", LABEL, "-m", "0", str(partial)], "mkfs.ext4")
        partial.rename(self.image)

    def mount(self) -> None:
        if self.mounted():
            return
        if not self.exists():
            raise PoolError(f"{self.image} does not exist")
        self.source.mkdir(parents=True, exist_ok=True)
        if mount_source(self.source) is not None:
            raise PoolError(f"{self.source} is already a mount point of something else: unmount it first")
        _run(["mount", "-o", "loop", str(self.image), str(self.source)], "mount")
        # A new file system has lost+found; LXD wants an empty source for a new pool.
        lost = self.source / "lost+found"
        if lost.is_dir() and not any(lost.iterdir()):
            lost.rmdir()

    def unmount(self) -> None:
        if self.mounted():
            _run(["umount", str(self.source)], "umount")

    def usage(self) -> tuple[float, float] | None:
        """(GiB used, GiB in all) of the mounted file system."""
        if not self.mounted():
            return None
        stats = os.statvfs(self.source)
        total = stats.f_blocks * stats.f_frsize
        return (total - stats.f_bfree * stats.f_frsize) / 2**30, total / 2**30


def has_journal(image: Path) -> bool:
    """Whether the ext4 file system in ``image`` has a journal (what makes inode reuse cheap)."""
    proc = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PoolError(f"dumpe2fs {image} failed: {proc.stderr.strip()[-500:]}")
    features = next((line for line in proc.stdout.splitlines() if line.startswith("Filesystem features:")), "")
    return "has_journal" in features.split()


def mount_source(mount_point: Path) -> str | None:
    """The device mounted at ``mount_point`` (the topmost mount), or None."""
    target = os.path.realpath(mount_point)
    found = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and _unescape(fields[4]) == target and " - " in line:
            found = line.split(" - ", 1)[1].split()[1]
    return found


def same_file_system(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _backing_file(device: str | None) -> Path | None:
    if not device or not device.startswith("/dev/loop"):
        return None
    backing = Path("/sys/block") / Path(device).name / "loop" / "backing_file"
    try:
        return Path(backing.read_text().strip())
    except OSError:
        return None


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PoolError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
