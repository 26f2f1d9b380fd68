"""The Debian releases Castelet deploys: the one place that says which are supported.

Debian 13 "trixie" (stable since August 2025) is the default; Debian 12 "bookworm"
(oldstable, LTS until June 2028) stays selectable with the answer ``debian_release: "12"``.
Everything release-specific derives from this table: the answer's validation, the OpenStack
image name regex a render proposes, the local LXD image, the debootstrap suite. Inside Puppet,
version-specific data (PHP version, ...) lives in hiera under ``data/os/<major>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DebianRelease:
    major: str
    codename: str
    supported_until: str  # end of Debian's (LTS) security support

    @property
    def openstack_image(self) -> str:
        """The image name regex a render proposes: Alliance clouds name images by distribution,
        version, architecture and date (Debian-13-x64-2026-03); the most recent match is used."""
        return f"^Debian-{self.major}"

    @property
    def local_image(self) -> str:
        """The alias of the LXD image `castelet local setup` builds for this release."""
        return f"castelet/debian-{self.major}"


RELEASES: dict[str, DebianRelease] = {
    "13": DebianRelease("13", "trixie", "2030-06"),
    "12": DebianRelease("12", "bookworm", "2028-06"),
}
DEFAULT_RELEASE = "13"


def release(major: str) -> DebianRelease:
    try:
        return RELEASES[major]
    except KeyError:
        raise ValueError(f"Debian {major} is not supported (supported: {', '.join(RELEASES)})") from None
