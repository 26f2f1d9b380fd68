"""`castelet pin DIR`: record the SHA-256 of a deployment's upstream release in terraform.tfvars.

The release URL is read from the deployment's own settings (``settings.release_url`` in
terraform.tfvars); the archive is downloaded (or read from ``--file``), hashed while it streams,
and ``settings.release_sha256`` is rewritten in place. The user is shown where upstream
publishes the release to compare the checksum with: a checksum is trust, not a formality.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TFVARS = "terraform.tfvars"
_CHUNK = 1 << 20


class PinError(RuntimeError):
    pass


@dataclass(frozen=True)
class Pinned:
    url: str
    version: str
    sha256: str
    size: int
    checksums: str


#: The rules of the settings `castelet pin` writes; Terraform checks hand edits with the same
#: (castelet.tfrules). http is allowed: the archive is checked against its SHA-256.
RELEASE_URL = r"^(https?|file)://\S+$"
RELEASE_VERSION = r"^[0-9A-Za-z][0-9A-Za-z.+~-]*$"

def _setting_line(name: str) -> re.Pattern[str]:
    return re.compile(rf'^(?P<lead>\s*{name}\s*=\s*)(?P<value>"(?:[^"\\]|\\.)*")(?P<tail>\s*)$', re.MULTILINE)


def read_setting(text: str, name: str) -> str | None:
    """The value of ``name = "..."`` in terraform.tfvars (an HCL string as Castelet writes it)."""
    found = _setting_line(name).search(text)
    if found is None:
        return None
    value: str = json.loads(found.group("value"))
    return value.replace("$${", "${").replace("%%{", "%{")


def write_setting(text: str, name: str, value: str) -> str:
    pattern = _setting_line(name)
    if pattern.search(text) is None:
        raise PinError(f"{TFVARS} has no `{name} = \"...\"` line in its settings: add it by hand "
                       f"(settings = {{ {name} = \"{value}\" }})")
    literal = json.dumps(value)
    return pattern.sub(lambda m: f"{m.group('lead')}{literal}{m.group('tail')}", text, count=1)


def _sha256_of_url(url: str, progress: Callable[[str], None]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0)
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if total:
                    progress(f"{size * 100 // total}% of {total // 1024} KiB")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PinError(
            f"cannot download {url} ({reason}). Offline? Download it where the internet is reachable, "
            f"compare `sha256sum` of it with upstream's, then run `castelet pin . --file ARCHIVE` or set "
            "settings.release_sha256 in terraform.tfvars") from exc
    return digest.hexdigest(), size


def pin(deployment: Path, progress: Callable[[str], None], url: str | None = None, version: str | None = None,
        file: Path | None = None) -> Pinned:
    tfvars = deployment / TFVARS
    try:
        text = tfvars.read_text(encoding="utf-8")
        rendered = json.loads((deployment / ".castelet" / "blueprint.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PinError(f"{deployment} is not a rendered Castelet deployment ({exc})") from exc
    release = rendered.get("release") or {}
    if not release:
        raise PinError(f"blueprint {rendered.get('id')} installs no pinned upstream release: nothing to pin")
    url = url or read_setting(text, "release_url") or release["url"]
    version = version or read_setting(text, "release_version") or release["version"]
    if not re.match(RELEASE_URL, url):
        raise PinError(f"release URL {url!r} must be an http(s) or file:// URL (matching {RELEASE_URL})")
    if not re.match(RELEASE_VERSION, version):
        raise PinError(f"release version {version!r} must match {RELEASE_VERSION}")
    if file is not None:
        data = file.read_bytes()
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    else:
        progress(f"downloading {url}")
        sha256, size = _sha256_of_url(url, progress)
    for name, value in (("release_url", url), ("release_version", version), ("release_sha256", sha256)):
        text = write_setting(text, name, value)
    tfvars.write_text(text, encoding="utf-8")
    return Pinned(url=url, version=version, sha256=sha256, size=size, checksums=str(release.get("checksums", "")))
