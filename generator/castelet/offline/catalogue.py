"""What castelet's offline stand-in answers when a deployment looks an image, a flavor or a network up.

A real cloud refuses a name it does not have; the stand-in has no cloud, so without a catalogue
it would invent a successful lookup for any name, placeholders and typos included. This is a
small catalogue of the Alliance clouds (Arbutus first), from their documentation
(docs.alliancecan.ca, "Virtual machine flavors", "Cloud quick start"), checked by naming rule
rather than by exhaustive list, since each project sees its own images and network:

* images are named ``<Distribution>-<version>[-<codename>]-x64-<year>-<month>``, e.g.
  ``Debian-13-x64-2026-03``; a ``name_regex`` must match one of :data:`IMAGE_EXAMPLES`, an
  exact ``name`` must have that shape;
* flavors are ``p<vCPU>-<RAM>gb`` ("persistent": no root disk, boot from a volume) and
  ``c<vCPU>-<RAM>gb-<ephemeral GB>`` ("compute": a 20 GB root disk on local storage plus a
  secondary ephemeral disk of the last number's size);
* the external network is ``Public-Network``; a project's network is ``<prefix>-<project>-network``
  (``def-`` for default/RAS projects, ``rrg-``/``rpp-`` for RAC allocations), its subnet
  ``<prefix>-<project>-subnet``.

Anything else fails ``castelet check`` with a message saying what the catalogue knows; the real
names of a project are what `openstack image list`, `openstack flavor list` and
`openstack network list` print (and what `castelet preflight` checks against the cloud).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IMAGE_NAME = re.compile(r"(?:Debian|Ubuntu|AlmaLinux|Rocky|CentOS|Fedora)-\d+(?:\.\d+)*(?:-[A-Za-z]+)?-x64-\d{4}-\d{2}")
#: One current name per family a deployment may ask for (most recent first).
IMAGE_EXAMPLES = (
    "Debian-13-x64-2026-03",
    "Debian-12-x64-2025-09",
    "Ubuntu-24.04-Noble-x64-2025-05",
    "Ubuntu-22.04-Jammy-x64-2024-11",
    "AlmaLinux-9-x64-2025-06",
    "Rocky-9-x64-2025-06",
)

FLAVOR_NAME = re.compile(r"(?P<kind>[pc])(?P<vcpus>\d+)-(?P<ram>\d+(?:\.\d+)?)gb(?:-(?P<ephemeral>\d+))?")
#: Root disk of the "c" flavors (GB), per the Alliance documentation ("typically 20GB").
C_FLAVOR_ROOT_DISK_GB = 20

EXTERNAL_NETWORKS = ("Public-Network",)
PROJECT_NETWORK = re.compile(r"(?:def|rrg|rpp|ctb)-[a-z0-9_.-]+-network")


@dataclass(frozen=True)
class Flavor:
    vcpus: int
    ram_mb: int
    disk_gb: int  # root disk; 0 = boot from a volume
    ephemeral_gb: int


class NotInCatalogue(LookupError):
    """A name the Alliance clouds would not have: ``summary`` and ``detail`` for Terraform."""

    def __init__(self, summary: str, detail: str) -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail


_WHERE = "castelet check knows the Alliance clouds' naming only (castelet/offline/catalogue.py)"


def flavor(name: str) -> Flavor:
    match = FLAVOR_NAME.fullmatch(name)
    if match is None:
        raise NotInCatalogue(
            f'Flavor "{name}" is not an Alliance flavor',
            f"Alliance flavors are p<vCPU>-<RAM>gb (no root disk: boots from a volume, e.g. p2-3gb) or "
            f"c<vCPU>-<RAM>gb-<ephemeral GB> (20 GB root disk, e.g. c4-15gb-83); `openstack flavor list` shows "
            f"your project's. {_WHERE}.")
    ram_mb = round(float(match["ram"]) * 1024)
    if match["kind"] == "p":
        if match["ephemeral"]:
            raise NotInCatalogue(f'Flavor "{name}" is not an Alliance flavor',
                                 f"p flavors have no ephemeral disk (p<vCPU>-<RAM>gb). {_WHERE}.")
        return Flavor(int(match["vcpus"]), ram_mb, 0, 0)
    if not match["ephemeral"]:
        raise NotInCatalogue(f'Flavor "{name}" is not an Alliance flavor',
                             f"c flavors name their ephemeral disk (c<vCPU>-<RAM>gb-<GB>). {_WHERE}.")
    return Flavor(int(match["vcpus"]), ram_mb, C_FLAVOR_ROOT_DISK_GB, int(match["ephemeral"]))


def image(name: str | None, name_regex: str | None) -> str | None:
    """The image name a lookup finds, or None when it gives neither name nor regex."""
    if name is not None:
        if IMAGE_NAME.fullmatch(name):
            return name
        raise NotInCatalogue(
            f'Image "{name}" is not an Alliance image name',
            f"Alliance images are named like {IMAGE_EXAMPLES[0]} (distribution, version, x64, date), which "
            f'changes with every refresh: look images up by name_regex (e.g. "^Debian-13") instead. {_WHERE}.')
    if name_regex is not None:
        try:
            regex = re.compile(name_regex)
        except re.error as exc:
            raise NotInCatalogue(f'Invalid image name_regex "{name_regex}"', str(exc)) from exc
        found = [example for example in IMAGE_EXAMPLES if regex.search(example)]
        if found:
            return found[0]
        raise NotInCatalogue(
            f'No Alliance image matches name_regex "{name_regex}"',
            f"Images of the Alliance clouds are named like {', '.join(IMAGE_EXAMPLES)}; "
            f"`openstack image list` shows your project's. {_WHERE}.")
    return None


def network(name: str | None, external: bool | None) -> str | None:
    """The network name a lookup finds (None: a lookup by other filters, answered with placeholders)."""
    if external:
        if name is None:
            return EXTERNAL_NETWORKS[0]
        if name in EXTERNAL_NETWORKS:
            return name
        raise NotInCatalogue(
            f'External network "{name}" is not an Alliance external network',
            f"The Alliance clouds' external network is {' or '.join(EXTERNAL_NETWORKS)}; leave external_network "
            f"empty to detect it. {_WHERE}.")
    if name is None or name in EXTERNAL_NETWORKS or PROJECT_NETWORK.fullmatch(name):
        return name
    raise NotInCatalogue(
        f'Network "{name}" is not an Alliance project network',
        "Alliance projects come with a network named <prefix>-<project>-network (def-, rrg-, rpp-, ctb-); leave "
        f"existing_network empty to find it by its subnet, or `openstack network list`. {_WHERE}.")
