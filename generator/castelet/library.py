"""Where the blueprint library lives: blueprints/, terraform-modules/ and puppet/ side by side."""

from __future__ import annotations

import os
from pathlib import Path

from castelet.manifest import MANIFEST_NAME, Blueprint, ManifestError, load

LIBRARY_ENV = "CASTELET_LIBRARY"
_PARTS = ("blueprints", "terraform-modules", "puppet")


class LibraryNotFound(RuntimeError):
    pass


def _is_library(path: Path) -> bool:
    return all((path / part).is_dir() for part in _PARTS)


def library_root(start: Path | None = None) -> Path:
    """``$CASTELET_LIBRARY``, else the nearest parent of ``start`` (cwd) holding a library, else
    the checkout this package was installed from (editable installs)."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        root = Path(env).expanduser().resolve()
        if not _is_library(root):
            raise LibraryNotFound(f"{LIBRARY_ENV}={env} does not hold {', '.join(_PARTS)}")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if _is_library(candidate):
            return candidate
    source = Path(__file__).resolve().parents[2]
    if _is_library(source):
        return source
    raise LibraryNotFound(
        f"no blueprint library found: run inside a checkout of the library or set {LIBRARY_ENV}"
    )


def blueprint_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "blueprints").glob(f"*/{MANIFEST_NAME}"))


def find_blueprint(root: Path, name: str) -> Path:
    """A blueprint folder by id, or an explicit path to one."""
    as_path = Path(name)
    if (as_path / MANIFEST_NAME).is_file():
        return as_path.resolve()
    candidate = root / "blueprints" / name
    if (candidate / MANIFEST_NAME).is_file():
        return candidate
    known = ", ".join(p.name for p in blueprint_dirs(root))
    raise LookupError(f"unknown blueprint {name!r}; known: {known}")


def load_all(root: Path) -> tuple[list[Blueprint], list[ManifestError]]:
    blueprints, errors = [], []
    for path in blueprint_dirs(root):
        try:
            blueprints.append(load(path))
        except ManifestError as exc:
            errors.append(exc)
    return blueprints, errors
