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
    """The whole pytest suite (real Terraform core, real Puppet where installed), on up to 4
    workers when pytest-xdist is installed (the `test` extra brings it)."""
    import importlib.util
    import os

    workers = min(4, os.cpu_count() or 1)
    # loadgroup: the tests sharing an expensive module fixture (Puppet catalogs, the hostile
    # corpus, checkov) run on one worker, which sets it up once (tests/conftest.py); every other
    # test goes to the next free worker.
    parallel = (["-n", str(workers), "--dist", "loadgroup"]
                if importlib.util.find_spec("xdist") and workers > 1 else [])
    # The slowest tests in every log: where to look when the suite's time grows.
    session.run("pytest", *(session.posargs or ["-q", "--durations=25", *parallel]))


@nox.session(python=False)
def check(session: nox.Session) -> None:
    """Render every blueprint (OpenStack, its "Before you apply" list done with check values and a
    throwaway key) and plan it offline against the provider schema."""
    import tempfile

    import yaml

    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load

    out = Path(tempfile.mkdtemp(prefix="castelet-check-"))
    session.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nox-check", "-f", str(out / "key"),
                external=True)
    key = (out / "key.pub").read_text().strip()
    for manifest in sorted(ROOT.glob("blueprints/*/blueprint.yaml")):
        name = manifest.parent.name
        answers = resolved_for_checks(load(manifest.parent), {"admin_ssh_keys": key})
        answers_file = out / f"{name}-answers.yaml"
        answers_file.write_text(yaml.safe_dump(answers))
        session.run("castelet", "new", name, "--no-input", "--answers", str(answers_file), "-o", str(out / name))
        (deployment,) = (p for p in (out / name).iterdir() if p.is_dir())
        session.run("castelet", "check", str(deployment))


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Timings that are targets, not tests: render, offline check, and (as root, with the local
    cloud) apply-to-converged per blueprint against a bare apt-get floor. Prints a table."""
    session.run("python", "tests/bench.py", *session.posargs)


@nox.session(name="ci-budget", python=False)
def ci_budget(session: nox.Session) -> None:
    """The last e2e's cost per blueprint and the projected `.ci/run` time for a larger catalogue
    (tests/ci_budget.py); fails when over the 40-minute budget or 3 minutes per blueprint."""
    session.run("python", "tests/ci_budget.py", *session.posargs)


@nox.session(python=False)
def e2e(session: nox.Session) -> None:
    """Blueprints applied to the local LXD cloud (root): setup, lifecycle, nothing left behind."""
    # Debian 13 is the default release; one blueprint also runs on Debian 12 (tests/e2e)
    session.run("castelet", "local", "setup", "--release", "13", "--release", "12")
    # Deployments in parallel when pytest-xdist is installed: each test on the next free worker,
    # except the tests sharing one deployment (tests/e2e/test_data.py, one per blueprint), which
    # stay together and in order on one worker (tests/e2e/conftest.py: DeploymentScheduling).
    import importlib.util

    parallel = ["-n", "2", "--no-loadscope-reorder"] if importlib.util.find_spec("xdist") else []
    session.run("pytest", "-m", "e2e", "tests/e2e", "-v", "-p", "no:cacheprovider", "--durations=0", *parallel,
                *session.posargs)
