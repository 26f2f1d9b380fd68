"""Where each answer goes in a deployment: ``terraform.tfvars`` is the one editable source.

Deployment-wide answers become Terraform variables of their own; a blueprint's other answers
(and its pinned release) become entries of ``settings``, which Terraform hands to Puppet as
``terraform.settings.<name>``. Nothing here writes Puppet data.
"""

from __future__ import annotations

from typing import Any

from castelet.manifest import Blueprint
from castelet.releases import DEFAULT_RELEASE, release

# answer -> Terraform variable of the same meaning (the skeleton's variables.tf declares them)
DEPLOYMENT_VARIABLES = {
    "project_slug": "name",
    "domain": "domain",
    "admin_email": "admin_email",
    "admin_cidr": "admin_cidr",
    "admin_cidr_open_to_all": "admin_cidr_open_to_all",
    "timezone": "timezone",
    "image": "image",
    "existing_network": "existing_network",
    "external_network": "external_network",
}
# answers consumed by the render itself (cloud picks the module; keys, client networks, flavors
# and volume sizes become the lists and maps of terraform.tfvars)
RENDER_ONLY = {"cloud", "admin_ssh_keys", "client_cidrs", "debian_release"}
OPENSTACK_ONLY = {"image", "existing_network", "external_network"}
#: `acme_server: auto` resolves per cloud: a public CA where instances have a public name, a
#: self-signed certificate on the local cloud (no CA could reach it).
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"


def acme_server_for(value: str, cloud: str) -> str:
    if value != "auto":
        return value
    return LETS_ENCRYPT_DIRECTORY if cloud == "openstack" else "self-signed"


def _structural(bp: Blueprint) -> set[str]:
    sizes = {v.size_gb.removeprefix("question:") for v in bp.volumes if isinstance(v.size_gb, str)}
    return RENDER_ONLY | {r.flavor_question for r in bp.roles} | sizes


def tfvars_of(bp: Blueprint, answers: dict[str, Any]) -> dict[str, Any]:
    """The scalar variables of terraform.tfvars, in the order the manifest asks them."""
    cloud = answers["cloud"]
    values: dict[str, Any] = {}
    for q in bp.questions:
        variable = DEPLOYMENT_VARIABLES.get(q.name)
        if variable is None or (cloud != "openstack" and q.name in OPENSTACK_ONLY):
            continue
        value = answers[q.name]
        if q.name in ("existing_network", "external_network") and value == "":
            value = None
        values[variable] = value
    values.setdefault("admin_cidr_open_to_all", False)
    debian = release(str(answers.get("debian_release", DEFAULT_RELEASE)))
    if cloud != "openstack":
        values["image"] = debian.local_image
    elif not values.get("image"):
        values["image"] = debian.openstack_image
    return values


def settings_of(bp: Blueprint, answers: dict[str, Any]) -> dict[str, str]:
    """The blueprint's own answers and release pin, as Puppet reads them (strings)."""
    settings: dict[str, str] = {}
    if bp.release:
        settings["release_version"] = str(bp.release["version"])
        settings["release_url"] = str(bp.release["url"])
    skip = _structural(bp) | set(DEPLOYMENT_VARIABLES)
    for q in bp.questions:
        if q.name in skip:
            continue
        value = answers[q.name]
        if q.name == "acme_server":
            value = acme_server_for(str(value), str(answers["cloud"]))
        settings[q.name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return settings
