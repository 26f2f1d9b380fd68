"""The real terraform-provider-openstack, built here from its Go module, for ``castelet check``.

The registry that serves the provider's release binaries cannot be reached from the machines
Castelet is tested on; the Go module proxy can. ``go install MODULE@VERSION`` fetches the
provider's source at that exact version (the go command checks every module it downloads
against the module's go.sum and the Go checksum database, so a changed release is refused) and
builds it with ``-trimpath``. The binary goes into a filesystem mirror under castelet's cache,
laid out as Terraform expects, and a CLI configuration takes the OpenStack provider from there
and every other provider as usual. Built once per machine (a few seconds when reused).

Why ``validate`` only: a plan with the real provider configures it, which needs a cloud. The
real provider's own validators (argument names, types, removed resources, allowed values) run
in ``validate``; ``plan`` stays with the stand-in (decision 54).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from castelet.offline.install import EXECUTABLE, PROVIDER_ADDRESS, REGISTRY_HOSTS, cli_config_text, terraform_platform
from castelet.offline.schema import cache_root

GO_MODULE = "github.com/terraform-provider-openstack/terraform-provider-openstack/v3"
VERSION = "3.4.0"
#: How long a cold build may take (downloading ~250 MB of modules, compiling on two cores).
BUILD_TIMEOUT = 1800


class RealProviderUnavailable(RuntimeError):
    """The real provider could not be built here; the message says why and what to do."""


@dataclass(frozen=True)
class RealProvider:
    mirror: Path
    cli_config: Path
    version: str = VERSION

    @property
    def description(self) -> str:
        return f"terraform-provider-openstack {self.version} (built from its Go module)"


def binary_path(mirror: Path, host: str = REGISTRY_HOSTS[0], version: str = VERSION) -> Path:
    return mirror / host / PROVIDER_ADDRESS / version / terraform_platform() / f"{EXECUTABLE}_v{version}"


def go_install_command(gobin: Path, version: str = VERSION) -> tuple[list[str], dict[str, str]]:
    """The build: ``go install`` of the pinned module version into ``gobin``. The checksum
    database stays on (GONOSUMDB, GONOSUMCHECK and GOFLAGS=-insecure are dropped), and the
    module's own go.sum is used as published (GOFLAGS=-mod=mod is never set)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GONOSUMDB", "GONOSUMCHECK", "GOINSECURE", "GOFLAGS")}
    env.update({"GOBIN": str(gobin), "GOFLAGS": "-trimpath -buildvcs=false", "CGO_ENABLED": "0"})
    env.setdefault("GOSUMDB", "sum.golang.org")
    return [find_go() or "go", "install", f"{GO_MODULE}@v{version}"], env


def find_go() -> str | None:
    """The go command: on the PATH, else where Go's own archive installs it. An older go (1.21
    or later) fetches the toolchain the module asks for from the module proxy by itself."""
    found = shutil.which("go")
    if found is None and Path("/usr/local/go/bin/go").is_file():
        found = "/usr/local/go/bin/go"
    return found


def ensure_real_provider(directory: Path | None = None,
                         progress: Callable[[str], None] | None = None) -> RealProvider:
    """The mirror with the real provider (built when missing) and its CLI configuration."""
    say = progress or (lambda _line: None)
    base = (directory or cache_root() / "real-provider").resolve()
    mirror = base / "mirror"
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (parallel test workers, two shells)
        if not binary_path(mirror).is_file():
            _build(base, mirror, say)
        cli_config = base / "terraform.tfrc"
        partial = base / ".terraform.tfrc.partial"
        partial.write_text(cli_config_text(mirror, f"terraform-provider-openstack {VERSION}, built from its Go module"))
        partial.rename(cli_config)
    return RealProvider(mirror, cli_config)


def _build(base: Path, mirror: Path, say: Callable[[str], None]) -> None:
    """go install into a temporary GOBIN, then each registry host's place in the mirror."""
    if find_go() is None:
        raise RealProviderUnavailable(
            "building terraform-provider-openstack needs Go (1.24, or 1.21+ that fetches it): "
            "apt-get install golang-go, or use --provider stand-in")
    say(f"building terraform-provider-openstack {VERSION} from its Go module (once per machine; "
        "a few minutes the first time)")
    with tempfile.TemporaryDirectory(prefix="gobin-", dir=base) as gobin:
        argv, env = go_install_command(Path(gobin))
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise RealProviderUnavailable(f"go install {GO_MODULE}@v{VERSION} took over {BUILD_TIMEOUT} s") \
                from None
        output = Path(gobin) / EXECUTABLE
        if proc.returncode != 0 or not output.is_file():
            raise RealProviderUnavailable(
                f"go install {GO_MODULE}@v{VERSION} failed (exit {proc.returncode}):\n"
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        for host in REGISTRY_HOSTS:
            target = binary_path(mirror, host)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(output, partial)
            partial.chmod(0o755)
            partial.rename(target)  # the mirror never holds half a binary
