"""`castelet blueprint new NAME`: a new blueprint that validates, renders, plans and compiles.

It creates exactly what a blueprint is — its folder (manifest, generated cookiecutter.json,
hooks link, template with its testinfra module and blueprint hieradata, README) — and one role
class in the library's Puppet module, which includes the base profile. Everything else (tests,
`nox -s check`, `nox -s e2e`, the catalogue) discovers the blueprint from its manifest.
See docs/adding-a-blueprint.md.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from castelet.manifest import MANIFEST_NAME
from castelet.validate import TEMPLATE_DIR, write_cookiecutter_json

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")


class ScaffoldError(ValueError):
    pass


def _manifest(name: str, role: str) -> str:
    return f"""id: {name}
version: 0.1.0
title:
  en: {name} (new blueprint)
  fr: {name} (nouveau plan)
description:
  en: >-
    A hardened Debian host (admin account, key-only SSH, firewall, automatic security updates,
    a data volume) on which this blueprint's role will install its service.
  fr: >-
    Un hôte Debian durci (compte d'administration, SSH par clé, pare-feu, mises à jour de
    sécurité automatiques, un volume de données) sur lequel le rôle de ce plan installera son service.
category: web-app
maturity: draft
roles:
  - name: web
    puppet_role: {role}
    count: 1
    public: true
    flavor_question: flavor
    min: {{vcpus: 1, ram_mb: 1024, disk_gb: 10}}
# Declare the ports the role serves, e.g.
#   - {{name: http, role: web, port: 80, protocol: tcp, exposure: public, systemd_unit: apache2,
#      health: {{path: /, status: 200}}}}
services: []
volumes:
  - name: data
    role: web
    mount: /srv/data
    size_gb: question:data_volume_gb
questions:
  - use: project_slug
    default: {name}
  - use: project_name
  - use: domain
  - use: admin_email
  - use: admin_cidr
  - use: admin_cidr_open_to_all
  - use: admin_ssh_keys
  - use: cloud
  - use: debian_release
  - use: image
  - use: flavor
  - use: data_volume_gb
  - use: existing_network
  - use: external_network
  - use: timezone
tests: tests/test_{role}.py
"""


def _role_class(role: str) -> str:
    return f"""# @summary
#   Role: {role} (scaffolded by `castelet blueprint new`): a hardened Debian host. Add the
#   profiles the service needs (reuse castelet::profile::* where they fit).
#
# @example The Terraform data of such a node
#   terraform:
#     role_class: castelet::role::{role}
class castelet::role::{role} {{
  include castelet::profile::base
}}
"""


def _readme(name: str, role: str) -> str:
    return f"""# Blueprint `{name}`

Scaffolded by `castelet blueprint new {name}`: a hardened Debian host with a data volume at
`/srv/data`, ready to receive this blueprint's service. Manifest: [`blueprint.yaml`](blueprint.yaml).
Render with `castelet new {name}` or `cookiecutter blueprints/{name}`.

- Puppet role: `castelet::role::{role}` (profile base).
- Data: the volume `data` at `/srv/data`.
- Before you apply: what `castelet new` lists (placeholder domain, e-mail and admin network on
  OpenStack).

Next steps: docs/adding-a-blueprint.md.
"""


def _testinfra(role: str) -> str:
    return f'''"""{role} specifics (the checks every blueprint shares are in test_base.py)."""

ROLES = ["web"]


def test_data_volume_is_mounted(host):
    assert host.file("/srv/data").is_directory
'''


def create(library: Path, name: str) -> list[Path]:
    """Create blueprint ``name`` in ``library``; return the paths created (all or nothing)."""
    if not _NAME.match(name):
        raise ScaffoldError(f"{name!r}: a blueprint name is 2-40 lowercase letters, digits and dashes, "
                            "starting with a letter")
    role = name.replace("-", "_")
    folder = library / "blueprints" / name
    role_file = library / "puppet" / "modules" / "castelet" / "manifests" / "role" / f"{role}.pp"
    for existing in (folder, role_file):
        if existing.exists():
            raise ScaffoldError(f"{existing} already exists: nothing was written")
    with tempfile.TemporaryDirectory(prefix=".castelet-scaffold-", dir=library / "blueprints") as tmp:
        staged = Path(tmp) / name
        template = staged / TEMPLATE_DIR
        (template / "tests").mkdir(parents=True)
        (template / "puppet" / "data").mkdir(parents=True)
        (staged / MANIFEST_NAME).write_text(_manifest(name, role), encoding="utf-8")
        (staged / "README.md").write_text(_readme(name, role), encoding="utf-8")
        (template / "tests" / f"test_{role}.py").write_text(_testinfra(role), encoding="utf-8")
        (template / "puppet" / "data" / "blueprint.yaml").write_text(
            f"# Constants of blueprint {name}: Puppet data that is the same for every deployment.\n"
            "# Deployment values come from Terraform (terraform.<key>, terraform.settings.<name>).\n{}\n",
            encoding="utf-8")
        os.symlink(os.path.join("..", "..", "generator", "castelet", "cookiecutter_hooks"), staged / "hooks")
        write_cookiecutter_json(staged)
        shutil.move(str(staged), folder)
    try:
        role_file.write_text(_role_class(role), encoding="utf-8")
    except OSError:
        shutil.rmtree(folder)
        raise
    return [folder, role_file]
