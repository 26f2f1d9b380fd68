"""Library checks. Run inside the project venv (see README): `nox -s lint tests`.

Sessions use the tools of the current environment (python=False): `.ci/setup` installs them
once, so a run does not reinstall anything.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# Sessions run the tools of the environment nox itself runs in (.venv): put its bin/ first on
# PATH, whether or not that environment is activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff, mypy, puppet-lint and terraform fmt."""
    session.run("ruff", "check", ".")
    session.run("mypy")
    if shutil.which("puppet-lint"):
        session.run("puppet-lint", "--fail-on-warnings", "puppet/")
    else:
        session.error("puppet-lint is missing: run `sudo bash .ci/setup --system`")
    from castelet.runtime import find_terraform, terraform_env  # installed by .ci/setup

    session.run(*find_terraform(), "fmt", "-check", "-recursive", "-diff", "terraform-modules",
                external=True, env=terraform_env())


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The whole pytest suite (real Terraform core, real Puppet where installed)."""
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=False)
def check(session: nox.Session) -> None:
    """Render every blueprint (OpenStack) and plan it offline against the provider schema."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="castelet-check-"))
    for manifest in sorted(ROOT.glob("blueprints/*/blueprint.yaml")):
        name = manifest.parent.name
        session.run("castelet", "new", name, "--no-input", "-o", str(out / name))
        (deployment,) = (out / name).iterdir()
        session.run("castelet", "check", str(deployment))


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Timings that are targets, not tests: render, offline check, and (as root, with the local
    cloud) apply-to-converged per blueprint against a bare apt-get floor. Prints a table."""
    session.run("python", "tests/bench.py", *session.posargs)


@nox.session(python=False)
def e2e(session: nox.Session) -> None:
    """Blueprints applied to the local LXD cloud (root): setup, lifecycle, nothing left behind."""
    session.run("castelet", "local", "setup")
    session.run("pytest", "-m", "e2e", "tests/e2e", "-v", "-p", "no:cacheprovider", *session.posargs)
