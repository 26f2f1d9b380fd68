"""The Debian cloud images for LXD (one per supported release), built with debootstrap from the
host's own apt mirror.

The image carries cloud-init with the NoCloud data source; LXD templates write the instance's
``cloud-init.user-data`` (or ``user.user-data``) config key into the NoCloud seed at creation,
as distrobuilder's cloud images do. The recipe is hashed: the cached image is rebuilt only when
the recipe changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from castelet.releases import DEFAULT_RELEASE, RELEASES, DebianRelease

PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "cloud-init", "python3-cffi-backend", "openssh-server", "python3",
    "ca-certificates", "ifupdown", "isc-dhcp-client", "iproute2", "netbase", "sudo", "gnupg", "curl",
)
#: A cache, not a difference: what every instance installs before or in its first Puppet run,
#: installed in the local image so that each of the many e2e deployments does not install it again.
#: - the bootstrap's packages (the Terraform configuration module's `puppet_packages` default),
#:   without recommends as castelet-bootstrap installs them;
#: - packages `castelet::profile::base` declares on every node (firewall, fail2ban, unattended
#:   upgrades, time), with recommends as Puppet's apt provider installs them.
#: Puppet still declares and configures them all; tests/test_local.py keeps both lists true.
BOOTSTRAP_PACKAGES = (
    "puppet-agent", "puppet-module-puppetlabs-apache", "puppet-module-puppetlabs-mysql",
    "puppet-module-puppetlabs-stdlib", "puppet-module-puppetlabs-concat", "puppet-module-puppetlabs-inifile",
    "puppet-module-puppet-archive",
)
BASE_PACKAGES = ("nftables", "fail2ban", "python3-systemd", "unattended-upgrades", "systemd-timesyncd", "tzdata")
CLOUD_CFG = """\
# written by castelet: an image without internet metadata services
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
"""
_TEMPLATE_SEED = {
    "meta-data": "instance-id: {{ container.name }}\nlocal-hostname: {{ container.name }}\n",
    "user-data": (
        '{%- if config_get("cloud-init.user-data", "") == "" -%}'
        '{{ config_get("user.user-data", properties.default) }}'
        '{%- else -%}{{ config_get("cloud-init.user-data", properties.default) }}{%- endif %}\n'
    ),
    "vendor-data": '{{ config_get("cloud-init.vendor-data", properties.default) }}\n',
    "network-config": (
        '{%- if config_get("cloud-init.network-config", "") == "" -%}'
        "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets:\n      - type: dhcp\n"
        '{%- else -%}{{ config_get("cloud-init.network-config", "") }}{%- endif %}\n'
    ),
}
_DEFAULT_DATA = {"user-data": "#cloud-config\n{}", "vendor-data": "#cloud-config\n{}"}
#: Where apt in the local images asks whether the host's apt cache answers (apt's own hook).
APT_PROXY_DETECT = "/usr/local/lib/castelet/apt-proxy"
#: Extra CAs the host trusts (a TLS-inspecting proxy, an institutional CA): the local images trust
#: them too, so pip and npm reach their registries from an instance as they do from the host.
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")


def apt_proxy_detect_script(cache: str) -> str:
    """apt's Proxy-Auto-Detect hook: the host's cache when it answers within a second, else
    direct, so an instance never depends on the cache being up. HOST:PORT lands inside a shell
    word nested in single quotes: only a plain host name or IPv4 address and a port number are taken."""
    host, _, port = cache.rpartition(":")
    if not (re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", host) and re.fullmatch(r"[0-9]{1,5}", port)):
        raise ValueError(f"apt cache address {cache!r}: expected HOST:PORT (a host name or IPv4 address)")
    return ("#!/bin/bash\n# written by castelet local setup: the host's apt cache when it answers, else direct.\n"
            f"if timeout 1 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null; then\n"
            f"  echo http://{host}:{port}\nelse\n  echo DIRECT\nfi\n")


def host_extra_cas(directory: Path = HOST_EXTRA_CAS) -> dict[str, bytes]:
    """{file name: PEM} of the host's locally added CA certificates (``*.crt``, any depth)."""
    return {str(path.relative_to(directory)).replace("/", "_"): path.read_bytes()
            for path in sorted(directory.rglob("*.crt")) if path.is_file()}


@dataclass(frozen=True)
class ImageRecipe:
    mirror: str
    release: DebianRelease = RELEASES[DEFAULT_RELEASE]
    packages: tuple[str, ...] = PACKAGES
    preinstalled: tuple[tuple[str, ...], tuple[str, ...]] = (BOOTSTRAP_PACKAGES, BASE_PACKAGES)
    apt_cache: str | None = None  # HOST:PORT of the host's apt cache on the bridge
    extra_cas: tuple[tuple[str, bytes], ...] = ()  # (file name, PEM) the instances trust

    @property
    def suite(self) -> str:
        return self.release.codename

    @property
    def digest(self) -> str:
        cas = [[name, hashlib.sha256(pem).hexdigest()] for name, pem in self.extra_cas]
        text = json.dumps({"mirror": self.mirror, "suite": self.suite, "packages": self.packages,
                           "cloud_cfg": CLOUD_CFG, "templates": _TEMPLATE_SEED, "format": 3,
                           "preinstalled": self.preinstalled,
                           "apt_cache": self.apt_cache, "extra_cas": cas}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def host_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host itself uses (deb822 or one-line sources)."""
    candidates = [*sorted(sources_dir.glob("sources.list.d/*.sources")), sources_dir / "sources.list"]
    candidates += sorted(sources_dir.glob("sources.list.d/*.list"))
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"^URIs:\s*(\S+)", text, re.MULTILINE):
            if "security" not in match.group(1):
                return match.group(1).rstrip("/")
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.MULTILINE):
            if "security" not in match.group(1) and match.group(2) in {r.codename for r in RELEASES.values()}:
                return match.group(1).rstrip("/")
    return "http://deb.debian.org/debian"


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}); last lines of {log}:\n{tail}")


def _sources_for(text: str, suite: str) -> str:
    """The host's deb822 sources with every suite name of a known release changed to ``suite``
    (a trixie image built on a bookworm host gets trixie, trixie-updates, trixie-security)."""
    codenames = "|".join(r.codename for r in RELEASES.values())
    return re.sub(rf"\b({codenames})(?=(-updates|-security|-backports)?\b)", suite, text)


def _configure_rootfs(rootfs: Path, recipe: ImageRecipe, log: Path) -> None:
    suite = recipe.suite
    (rootfs / "etc/default/locale").write_text("LANG=C.UTF-8\n")
    if recipe.apt_cache:
        script = rootfs / APT_PROXY_DETECT.lstrip("/")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(apt_proxy_detect_script(recipe.apt_cache))
        script.chmod(0o755)
        (rootfs / "etc/apt/apt.conf.d/01castelet-local-cache").write_text(
            "// written by castelet local setup: packages through the host's apt cache (when it answers)\n"
            f'Acquire::http::Proxy-Auto-Detect "{APT_PROXY_DETECT}";\n')
    if recipe.extra_cas:
        cas = rootfs / "usr/local/share/ca-certificates/castelet-host"
        cas.mkdir(parents=True, exist_ok=True)
        for name, pem in recipe.extra_cas:
            (cas / name).write_bytes(pem)
        _run(["chroot", str(rootfs), "update-ca-certificates"], log)
    (rootfs / "etc/cloud/cloud.cfg.d/90-castelet.cfg").write_text(CLOUD_CFG)
    binfmt = rootfs / "etc/systemd/system/systemd-binfmt.service"
    binfmt.unlink(missing_ok=True)
    binfmt.symlink_to("/dev/null")
    for host_sources in Path("/etc/apt/sources.list.d").glob("debian.sources"):
        target = rootfs / "etc/apt/sources.list.d" / host_sources.name
        target.write_text(_sources_for(host_sources.read_text(), suite))
        (rootfs / "etc/apt/sources.list").write_text("# see sources.list.d/debian.sources\n")
    _preinstall(rootfs, recipe, log)
    # Per-instance identity, made at first boot: none in the image.
    (rootfs / "etc/machine-id").write_text("")
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    lists = rootfs / "var/lib/apt/lists"
    for item in lists.glob("*"):
        if item.is_file():
            item.unlink()
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def _preinstall(rootfs: Path, recipe: ImageRecipe, log: Path) -> None:
    """Install the recipe's cached packages from the image's own sources (its release, updates
    and security), services not started in the chroot."""
    bootstrap, base = recipe.preinstalled
    if not bootstrap and not base:
        return
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# castelet image build: no service starts in the chroot\nexit 101\n")
    policy.chmod(0o755)
    apt = ["chroot", str(rootfs), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y",
           "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    proc_mounted = subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")],
                                  capture_output=True, check=False).returncode == 0
    try:
        _run([*apt, "update"], log)
        if bootstrap:
            _run([*apt, "install", "--no-install-recommends", *bootstrap], log)
        if base:
            _run([*apt, "install", *base], log)
        _run([*apt, "clean"], log)
        if bootstrap:
            # As castelet-bootstrap does: masterless, no agent daemon polling a Puppet server.
            _run(["chroot", str(rootfs), "systemctl", "disable", "puppet.service"], log)
    finally:
        policy.unlink(missing_ok=True)
        if proc_mounted:
            subprocess.run(["umount", "-l", str(rootfs / "proc")], capture_output=True, check=False)


def _metadata(recipe: ImageRecipe) -> str:
    templates = {
        f"/var/lib/cloud/seed/nocloud-net/{name}": {
            "when": ["create", "copy"], "template": f"cloud-init-{name}.tpl",
            **({"properties": {"default": _DEFAULT_DATA[name]}} if name in _DEFAULT_DATA else {}),
        }
        for name in _TEMPLATE_SEED
    }
    meta = {
        "architecture": "x86_64", "creation_date": int(time.time()),
        "properties": {"description": f"Debian {recipe.release.major} ({recipe.suite}) cloud image by castelet",
                       "os": "debian", "release": recipe.suite, "castelet.recipe": recipe.digest},
        "templates": templates,
    }
    return json.dumps(meta, indent=2)  # JSON is YAML


def image_file(recipe: ImageRecipe) -> str:
    return f"debian-{recipe.release.major}-{recipe.digest}.tar"


def build(recipe: ImageRecipe, workdir: Path, log: Path) -> Path:
    """Build the unified image tarball (metadata.yaml, templates/, rootfs/); return its path."""
    tarball = workdir / image_file(recipe)
    if tarball.is_file():
        return tarball
    staging = workdir / f"build-{recipe.digest}"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "templates").mkdir(parents=True)
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}", recipe.suite,
          str(staging / "rootfs"), recipe.mirror], log)
    _configure_rootfs(staging / "rootfs", recipe, log)
    (staging / "metadata.yaml").write_text(_metadata(recipe))
    for name, body in _TEMPLATE_SEED.items():
        (staging / "templates" / f"cloud-init-{name}.tpl").write_text(body)
    partial = tarball.with_suffix(".tar.partial")
    _run(["tar", "--numeric-owner", "-C", str(staging), "-cf", str(partial), "metadata.yaml", "templates",
          "rootfs"], log)
    partial.rename(tarball)
    shutil.rmtree(staging)
    return tarball


def recipe_of_tarball(tarball: Path) -> str | None:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("metadata.yaml")
        if member is None:
            return None
        meta = json.loads(member.read())
    value = meta.get("properties", {}).get("castelet.recipe")
    return str(value) if value else None
