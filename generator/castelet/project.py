"""Facts about the Castelet library itself that rendered deployments mention."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def project_home() -> str | None:
    """The library's home page: ``[project.urls] Homepage`` of pyproject.toml (a fork sets its
    own); None when unset, and rendered READMEs then name Castelet without a link."""
    try:
        urls: list[str] = list(metadata.metadata("castelet").get_all("Project-URL") or [])
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "homepage" and url.strip().startswith("https://"):
            return url.strip()
    return None
