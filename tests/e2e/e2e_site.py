"""What a blueprint's own end-to-end checks get: the deployment the generic lifecycle made.

A verified blueprint may add checks of its own in `tests/e2e/checks_<id with _>.py`, run inside
the one lifecycle deployment (one deployment per blueprint keeps CI short):

    def answers(site: Site) -> dict[str, str]: ...   # optional: answers for the render
    def check_deployed(site: Site) -> None: ...       # after verify passed, before the tfvars edit

`answers()` is also used by the data tests (tests/e2e/test_data.py), so the same answers deploy there.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from acme import Pebble
from castelet.local.cloud import lxc
from castelet.manifest import Blueprint


@dataclass
class Site:
    blueprint: Blueprint
    container: str
    domain: str
    acme: Pebble | None  # None in the data tests (tests/e2e/test_data.py), which use no CA
    bridge_address: str
    base_url: str
    served: dict[str, bytes]
    tmp_path: Path
    deployment: Path | None = None
    notes: dict[str, object] = field(default_factory=dict)  # what answers() wants check_deployed() to know

    def address(self) -> str:
        """The container's IPv4 address on the bridge."""
        state = json.loads(lxc("list", self.container, "--format=json").stdout)[0]["state"]
        return next(a["address"] for a in state["network"]["eth0"]["addresses"] if a["family"] == "inet")


def checks_module(blueprint_id: str) -> ModuleType | None:
    """`checks_<id>` of this folder, or None when the blueprint has no checks of its own."""
    name = "checks_" + blueprint_id.replace("-", "_")
    if not (Path(__file__).parent / f"{name}.py").is_file():
        return None
    return importlib.import_module(name)
