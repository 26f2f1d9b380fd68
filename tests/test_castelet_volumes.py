"""castelet-volumes (run on the instance before Puppet) against real block devices: loop devices
named through a by-id directory of the test, a real ext4, real mounts, an fstab of the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "terraform-modules/common/configuration/files/castelet-volumes.py"
VOLUME_ID = "0b1f9c2e-1d3a-4c5b-9e8f-0123456789ab"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("losetup") is None or shutil.which("mkfs.ext4") is None,
    reason="needs root, losetup and mkfs.ext4 (loop devices, mounts); CI runs as root",
)


@dataclass
class Node:
    root: Path
    loop: str

    @property
    def fstab(self) -> Path:
        return self.root / "fstab"

    @property
    def mount(self) -> Path:
        return self.root / "srv" / "data"

    @property
    def secrets(self) -> Path:
        return self.root / "var" / "lib" / "castelet" / "secrets"

    def hieradata(self, device: str | None, data_dir: bool = True) -> Path:
        volume: dict[str, str] = {"mount": str(self.mount)}
        if device is not None:
            volume["device"] = device
        path = self.root / "terraform.yaml"
        path.write_text(json.dumps({"terraform": {"volumes": {"data": volume},
                                                  "data_dir": str(self.mount) if data_dir else None}}))
        return path

    def run(self, *args: str, device: str | None = None, timeout: str = "3") -> subprocess.CompletedProcess[str]:
        pattern = device if device is not None else f"{self.root}/by-id/*{VOLUME_ID[:20]}*"
        return subprocess.run(
            [sys.executable, str(SCRIPT), "--hieradata", str(self.hieradata(pattern)), "--fstab", str(self.fstab),
             "--secrets-dir", str(self.secrets), "--timeout", timeout, *args],
            capture_output=True, text=True, timeout=120, check=False)


def _umount_all(root: Path) -> None:
    for _ in range(3):
        mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                   if line.split()[4].startswith(str(root))]
        for point in sorted(mounted, key=len, reverse=True):
            subprocess.run(["umount", point], check=False, capture_output=True)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    losetup = ["losetup", "-f", "--show", str(image)]
    loop = subprocess.run(losetup, capture_output=True, text=True, check=True).stdout.strip()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    # virtio-blk's name for a Cinder volume: the first 20 characters of its id
    (by_id / f"virtio-{VOLUME_ID[:20]}").symlink_to(loop)
    try:
        yield Node(tmp_path, loop)
    finally:
        _umount_all(tmp_path)
        subprocess.run(["losetup", "-d", loop], check=False)


def blkid(device: str, tag: str) -> str:
    probe = ["blkid", "-p", "-s", tag, "-o", "value", device]
    return subprocess.run(probe, capture_output=True, text=True).stdout.strip()


def is_mountpoint(path: Path) -> bool:
    return str(path) in {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def test_blank_volume_is_formatted_mounted_and_holds_the_secrets(node: Node) -> None:
    first = node.run("mount")
    assert first.returncode == 0, first.stderr
    assert blkid(node.loop, "TYPE") == "ext4"
    uuid = blkid(node.loop, "UUID")
    assert f"UUID={uuid} {node.mount} ext4 defaults,nofail,x-systemd.device-timeout=300 0 2" in node.fstab.read_text()
    assert is_mountpoint(node.mount)
    # the secrets directory is a bind mount of <data_dir>/castelet/secrets, root-only
    assert is_mountpoint(node.secrets)
    assert f"{node.mount}/castelet/secrets {node.secrets} none bind,x-systemd.requires-mounts-for={node.mount} 0 0" \
        in node.fstab.read_text().splitlines()
    assert oct(node.secrets.stat().st_mode & 0o777) == "0o700"
    (node.secrets / "mariadb-app").write_text("s3cret\n")
    assert (node.mount / "castelet" / "secrets" / "mariadb-app").read_text() == "s3cret\n"
    assert node.run("check").returncode == 0

    # a rebuilt instance: the same volume, nothing mounted yet; it is not formatted again
    _umount_all(node.root)
    assert node.run("check").returncode == 1
    again = node.run("mount")
    assert again.returncode == 0, again.stderr
    assert "formatting" not in again.stdout
    assert blkid(node.loop, "UUID") == uuid
    assert (node.secrets / "mariadb-app").read_text() == "s3cret\n"
    mount_fields = [line.split()[1] for line in node.fstab.read_text().splitlines()]
    assert sorted(mount_fields) == sorted([str(node.mount), str(node.secrets)])


def test_existing_secrets_on_the_root_disk_move_onto_the_volume(node: Node) -> None:
    node.secrets.mkdir(parents=True)
    (node.secrets / "omeka-admin").write_text("kept\n")
    result = node.run("mount")
    assert result.returncode == 0, result.stderr
    assert (node.mount / "castelet" / "secrets" / "omeka-admin").read_text() == "kept\n"
    _umount_all(node.root)
    # what the root disk held was moved, not left behind under the mount
    assert not list(node.secrets.iterdir())


def test_a_missing_disk_is_waited_for_then_named(node: Node) -> None:
    result = node.run("mount", device=f"{node.root}/by-id/*ffffffffffffffffffff*", timeout="1")
    assert result.returncode == 1
    assert "no disk matches" in result.stderr and "is the volume attached?" in result.stderr
    assert not node.secrets.exists()


def test_a_disk_that_is_not_blank_is_never_formatted(node: Node) -> None:
    subprocess.run(["mkfs.ext4", "-q", "-L", "other", node.loop], check=True)
    uuid = blkid(node.loop, "UUID")
    assert node.run("mount").returncode == 0
    assert blkid(node.loop, "UUID") == uuid and blkid(node.loop, "LABEL") == "other"


def test_a_volume_the_cloud_mounts_must_be_mounted(node: Node) -> None:
    """LXD: no device, the volume is mounted by the cloud; missing, nothing is written."""
    path = node.hieradata(None)
    result = subprocess.run([sys.executable, str(SCRIPT), "--hieradata", str(path), "--fstab", str(node.fstab),
                             "--secrets-dir", str(node.secrets), "mount"], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"volume data is not mounted at {node.mount}" in result.stderr
    assert not node.secrets.exists()


def test_bind_refuses_a_source_off_the_volume_and_copies_existing_content(node: Node) -> None:
    target = node.root / "var" / "lib" / "mysql"
    target.mkdir(parents=True)
    (target / "ibdata1").write_text("rows")
    off = node.run("bind", str(target), str(node.root / "srv" / "nowhere" / "mariadb"))
    assert off.returncode == 1 and "not on a mounted data volume" in off.stderr
    assert node.run("mount").returncode == 0
    source = node.mount / "mariadb"
    assert node.run("is-bound", str(target), str(source)).returncode == 1
    bound = node.run("bind", str(target), str(source))
    assert bound.returncode == 0, bound.stderr
    assert (source / "ibdata1").read_text() == "rows"
    assert is_mountpoint(target) and (target / "ibdata1").read_text() == "rows"
    assert node.run("is-bound", str(target), str(source)).returncode == 0
