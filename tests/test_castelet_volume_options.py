"""castelet-volume-options (files/castelet-volume-options.py): every mount of a data volume, and
only those, nodev,nosuid. Against /proc/self/mountinfo as OpenStack and the local cloud write it
(a fake `mount` records the remounts), then, as root, against real mounts of the test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "puppet/modules/castelet/files/castelet-volume-options.py"

# An OpenStack instance: the root disk, the data volume (ext4 on vdb) and the bind mounts
# castelet-volumes made from it (the secrets, MariaDB's files), none of them nodev,nosuid yet.
OPENSTACK = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
90 22 254:16 / /srv/data rw,relatime shared:40 - ext4 /dev/vdb rw
91 22 254:16 /castelet/secrets /var/lib/castelet/secrets rw,relatime shared:40 - ext4 /dev/vdb rw
92 22 254:16 /mariadb /var/lib/mysql rw,relatime shared:40 - ext4 /dev/vdb rw
93 22 254:32 / /srv/scratch rw,relatime shared:41 - ext4 /dev/vdc rw
"""

# A container of the local cloud: its root file system and its custom volume are directories of
# the same storage pool (one file system, 7:3), so is another deployment's volume; a directory
# with a space, escaped as mountinfo escapes it.
LXD = """\
500 480 7:3 /containers/atlas-web1/rootfs / rw,relatime,idmapped shared:250 - ext4 /dev/loop3 rw
501 500 0:80 / /dev rw,nodev,relatime shared:251 - tmpfs none rw,size=492k,mode=755
530 500 7:3 /custom/default_atlas-data /srv/data rw,relatime,idmapped shared:252 - ext4 /dev/loop3 rw
531 500 7:3 /custom/default_atlas-data/castelet/secrets /var/lib/castelet/secrets rw,relatime - ext4 /dev/loop3 rw
532 500 7:3 /custom/default_atlas-data/my\\040site /srv/my\\040site rw,relatime shared:252 - ext4 /dev/loop3 rw
533 500 7:3 /custom/default_atlas-database /srv/other rw,relatime shared:253 - ext4 /dev/loop3 rw
534 500 7:3 /custom/default_atlas-data-old /srv/old rw,relatime shared:254 - ext4 /dev/loop3 rw
"""

# A fake mount(8): records its arguments, and adds the flags to the target's line of the fake
# mountinfo when asked to (the kernel's doing).
FAKE_MOUNT = r"""#!/bin/sh
echo "$@" >> "$CALLS"
[ -n "$FAIL" ] && { echo "mount: $3: permission denied." >&2; exit 32; }
exec python3 - "$MOUNTINFO" "$3" <<'EOF'
import sys
path, target = sys.argv[1], sys.argv[2].replace(" ", "\\040")
out = []
for line in open(path).read().splitlines():
    f = line.split(" ")
    if f[4] == target:
        f[5] = ",".join(dict.fromkeys(f[5].split(",") + ["nosuid", "nodev"]))
    out.append(" ".join(f))
open(path, "w").write("\n".join(out) + "\n")
EOF
"""


def run(mountinfo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--mountinfo", str(mountinfo), *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.fixture
def fake_mount(tmp_path: Path) -> Iterator[dict[str, str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mount").write_text(FAKE_MOUNT)
    (bin_dir / "mount").chmod(0o755)
    yield {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(tmp_path / "calls"),
           "MOUNTINFO": str(tmp_path / "mountinfo")}


def test_check_names_every_mount_of_the_volumes_lacking_the_flags(tmp_path: Path) -> None:
    (tmp_path / "mountinfo").write_text(OPENSTACK)
    checked = run(tmp_path / "mountinfo", "check", "/srv/data", "/srv/scratch")
    assert checked.returncode == 1
    assert checked.stderr.strip() == (
        "castelet-volume-options: mounted without nodev or nosuid: /srv/data (no nodev, nosuid); "
        "/srv/scratch (no nodev, nosuid); /var/lib/castelet/secrets (no nodev, nosuid); "
        "/var/lib/mysql (no nodev, nosuid)")
    flagged = OPENSTACK.replace(" rw,relatime shared:4", " rw,nosuid,nodev,relatime shared:4")
    (tmp_path / "mountinfo").write_text(flagged)
    assert run(tmp_path / "mountinfo", "check", "/srv/data", "/srv/scratch").returncode == 0
    # one flag is not enough
    (tmp_path / "mountinfo").write_text(flagged.replace("92 22 254:16 /mariadb /var/lib/mysql rw,nosuid,nodev,",
                                                        "92 22 254:16 /mariadb /var/lib/mysql rw,nosuid,"))
    checked = run(tmp_path / "mountinfo", "check", "/srv/data", "/srv/scratch")
    assert checked.returncode == 1 and "/var/lib/mysql (no nodev)" in checked.stderr


def test_apply_remounts_only_the_volumes_mounts_per_mount(tmp_path: Path, fake_mount: dict[str, str]) -> None:
    """On the local cloud the container's root and other volumes share the pool's file system:
    only the volume's own directory and what is bound from inside it are remounted, each with
    `remount,bind` (per-mount flags, which an unprivileged container may set)."""
    (tmp_path / "mountinfo").write_text(LXD)
    applied = run(tmp_path / "mountinfo", "apply", "/srv/data", env=fake_mount)
    assert applied.returncode == 0, applied.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"-o remount,bind,nodev,nosuid {target}"
                     for target in ("/srv/data", "/srv/my site", "/var/lib/castelet/secrets")]
    after = (tmp_path / "mountinfo").read_text()
    for untouched in (" / rw,relatime,idmapped ", " /srv/other rw,relatime ", " /srv/old rw,relatime "):
        assert untouched in after
    assert run(tmp_path / "mountinfo", "check", "/srv/data").returncode == 0
    # already right: nothing to do
    (tmp_path / "calls").unlink()
    assert run(tmp_path / "mountinfo", "apply", "/srv/data", env=fake_mount).returncode == 0
    assert not (tmp_path / "calls").exists()


def test_a_refused_remount_or_a_missing_volume_fails_naming_it(tmp_path: Path, fake_mount: dict[str, str]) -> None:
    (tmp_path / "mountinfo").write_text(OPENSTACK)
    refused = run(tmp_path / "mountinfo", "apply", "/srv/data", env={**fake_mount, "FAIL": "1"})
    assert refused.returncode == 1
    assert "remounting /srv/data nodev,nosuid failed (32): mount: /srv/data: permission denied." in refused.stderr
    missing = run(tmp_path / "mountinfo", "check", "/srv/data", "/srv/nothing")
    assert missing.returncode == 1
    assert "/srv/nothing is not a mount point: is its volume mounted?" in missing.stderr


# --- real mounts -------------------------------------------------------------------------------


def _flags(target: Path) -> set[str]:
    options: set[str] = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(target):
            options = set(fields[5].split(","))
    return options


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="needs root and mount (tmpfs and bind mounts of the test's own)")
def test_real_remounts_of_a_shared_file_system(tmp_path: Path) -> None:
    """A tmpfs plays the local cloud's storage pool: a "container root" and two "volumes" are
    directories of it, bound to their places, and a secrets directory is bound from inside the
    first volume. `apply` makes the volume and its bind nodev,nosuid (util-linux's mount, the
    kernel's per-mount flags) and leaves the other two as they were; a bind made afterwards from
    the volume inherits the flags."""
    pool, srv, other, root, secrets, later = (tmp_path / name for name in
                                              ("pool", "srv-data", "srv-other", "root", "secrets", "later"))
    for path in (pool, srv, other, root, secrets, later):
        path.mkdir()
    mounted: list[Path] = []

    def mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=True, capture_output=True, text=True)
        mounted.append(Path(args[-1]))

    try:
        mount("-t", "tmpfs", "-o", "size=4m", "castelet-test-pool", str(pool))
        subprocess.run(["mount", "--make-private", str(pool)], check=True)
        for sub in ("custom/atlas-data/castelet/secrets", "custom/other", "containers/web1"):
            (pool / sub).mkdir(parents=True)
        mount("--bind", str(pool / "custom/atlas-data"), str(srv))
        mount("--bind", str(pool / "custom/other"), str(other))
        mount("--bind", str(pool / "containers/web1"), str(root))
        mount("--bind", str(srv / "castelet/secrets"), str(secrets))
        assert not {"nodev", "nosuid"} & _flags(srv)
        checked = subprocess.run([sys.executable, str(SCRIPT), "check", str(srv)], capture_output=True, text=True)
        assert checked.returncode == 1 and str(secrets) in checked.stderr
        applied = subprocess.run([sys.executable, str(SCRIPT), "apply", str(srv)], capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr
        assert {"nodev", "nosuid", "rw"} <= _flags(srv) and {"nodev", "nosuid"} <= _flags(secrets)
        for untouched in (pool, other, root):
            assert not {"nodev", "nosuid"} & _flags(untouched), untouched
        mount("--bind", str(srv / "castelet"), str(later))
        assert {"nodev", "nosuid"} <= _flags(later)
        assert subprocess.run([sys.executable, str(SCRIPT), "check", str(srv)]).returncode == 0
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)
