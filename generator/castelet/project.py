"""Facts about the Castelet library itself that rendered deployments mention."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

_SCP_LIKE = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>[\w./~-]+?)(\.git)?$")


def _from_metadata() -> str | None:
    try:
        urls: list[str] = list(metadata.metadata("castelet").get_all("Project-URL") or [])
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "homepage" and url.strip().startswith("https://"):
            return url.strip()
    return None


def _from_git(library: Path) -> str | None:
    """The web address of the library checkout's `origin` (a fork's own home), when it has one."""
    try:
        proc = subprocess.run(["git", "-C", str(library), "remote", "get-url", "origin"], capture_output=True,
                              text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = proc.stdout.strip()
    scp = _SCP_LIKE.match(url)
    if scp:
        url = f"https://{scp.group('host')}/{scp.group('path')}"
    url = url.removesuffix(".git")
    return url if proc.returncode == 0 and re.match(r"^https://[\w.-]+/\S+$", url) else None


def project_home(library: Path | None = None) -> str | None:
    """The library's home page: ``[project.urls] Homepage`` of pyproject.toml (a fork sets its
    own), else the web address of the library checkout's git ``origin``; None when neither is
    known, and rendered READMEs then name Castelet without a link."""
    return _from_metadata() or (_from_git(library) if library is not None else None)
