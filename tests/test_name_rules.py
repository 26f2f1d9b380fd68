"""One definition per rule: the same good and bad names go to the manifest/answers validation, the
Terraform design module and the Puppet types, and all three agree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from castelet.answers import coerce
from castelet.manifest import load, schema
from castelet.runtime import terraform_env
from helpers import REPO_ROOT

DEPLOYMENT_NAMES = {
    "ab": True, "atlas": True, "atlas-2": True, "a" * 30: True, "lab-omeka-2026": True,
    "a": False, "a" * 31: False, "Atlas": False, "atlas_2": False, "2atlas": False, "atlas-": False,
    "-atlas": False, "at las": False, "atlas.": False,
}
SERVICE_NAMES = {
    "http": True, "https": True, "node-exporter": True, "x": True, "a" * 24: True, "h2": True,
    "ssh": False, "http-ipv6": False, "http_alt": False, "Http": False, "http-": False, "a" * 25: False,
    "9p": False, "": False,
}


def _python_accepts_deployment(name: str) -> bool:
    question = load(REPO_ROOT / "blueprints" / "lamp").question("project_slug")
    try:
        coerce(question, name)
    except ValueError:
        return False
    return True


def _schema_accepts_service(name: str) -> bool:
    service_schema = schema()["properties"]["services"]["items"]["properties"]["name"]
    try:
        jsonschema.validate(name, service_schema)
    except jsonschema.ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def design_root(tmp_path_factory: pytest.TempPathFactory, terraform_cmd: list[str]) -> Path:
    root = tmp_path_factory.mktemp("design")
    (root / "main.tf").write_text(f'''
variable "name" {{ type = string }}
variable "service" {{ type = string }}
module "design" {{
  source     = "{REPO_ROOT / "terraform-modules" / "common" / "design"}"
  name       = var.name
  image      = "debian"
  admin_cidr = "203.0.113.0/24"
  roles      = {{ web = {{ count = 1, flavor = "f", public = true, min_vcpus = 1, min_ram_mb = 1, min_disk_gb = 1 }} }}
  services   = [{{ name = var.service, port = 80, protocol = "tcp", exposure = "public", role = "web" }}]
}}
''')
    subprocess.run([*terraform_cmd, "init", "-input=false", "-backend=false"], cwd=root, env=terraform_env(),
                   capture_output=True, check=True)
    return root


def _terraform_accepts(root: Path, terraform_cmd: list[str], name: str, service: str) -> bool:
    variables = ["-var", f"name={name}", "-var", f"service={service}"]
    proc = subprocess.run([*terraform_cmd, "plan", "-input=false", *variables],
                          cwd=root, env=terraform_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        assert "Invalid value for variable" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.returncode == 0


MODULEPATH = f"{REPO_ROOT / 'puppet' / 'modules'}:/usr/share/puppet/modules"


def _puppet_literal(value: object) -> str:
    """A JSON-like value as Puppet source (strings JSON-quoted, hashes with =>)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} => {_puppet_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_puppet_literal(v) for v in value) + "]"
    return json.dumps(value)


def _puppet_apply(puppet_bin: str, tmp_path: Path, manifest: str) -> subprocess.CompletedProcess[str]:
    from test_puppet import canned_facts

    return subprocess.run([puppet_bin, "apply", "--modulepath", MODULEPATH, "--vardir", str(tmp_path / "var"),
                           "--confdir", str(tmp_path / "conf"), *canned_facts(tmp_path / "var"), "-e", manifest],
                          capture_output=True, text=True, check=False)


def _puppet_accepts(puppet_bin: str, tmp_path: Path, type_name: str, values: list[str]) -> dict[str, bool]:
    manifest = (f"$r = {_puppet_literal(values)}.map |$v| {{ [$v, $v =~ {type_name}] }}\n"
                f"file {{ '{tmp_path}/out.json': content => to_json(Hash($r)) }}\n")
    proc = _puppet_apply(puppet_bin, tmp_path, manifest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, bool] = json.loads((tmp_path / "out.json").read_text())
    return result


def test_deployment_names_agree_everywhere(design_root: Path, terraform_cmd: list[str], puppet_bin: str,
                                           tmp_path: Path) -> None:
    puppet = _puppet_accepts(puppet_bin, tmp_path, "Castelet::Deployment", list(DEPLOYMENT_NAMES))
    for name, expected in DEPLOYMENT_NAMES.items():
        assert _python_accepts_deployment(name) is expected, name
        assert puppet[name] is expected, name
        assert _terraform_accepts(design_root, terraform_cmd, name, "http") is expected, name


def test_service_names_agree_between_manifest_and_terraform_and_fit_puppet(
        design_root: Path, terraform_cmd: list[str], puppet_bin: str, tmp_path: Path) -> None:
    good = [name for name, ok in SERVICE_NAMES.items() if ok]
    rule_names = good + [f"{name}-ipv6" for name in good]  # what Terraform derives for Puppet
    rules = [{"name": n, "port": 80, "protocol": "tcp", "source": "0.0.0.0/0"} for n in rule_names]
    manifest = (f"$ok = {_puppet_literal(rules)}.all |$r| {{ $r =~ Castelet::Firewallrule }}\n"
                f"file {{ '{tmp_path}/ok': content => String($ok) }}\n")
    proc = _puppet_apply(puppet_bin, tmp_path, manifest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "ok").read_text() == "true"
    for name, expected in SERVICE_NAMES.items():
        if name == "":
            continue  # Terraform cannot take an empty -var value cleanly; the schema refuses it
        assert _schema_accepts_service(name) is expected, name
        assert _terraform_accepts(design_root, terraform_cmd, "atlas", name) is expected, name
    assert _schema_accepts_service("") is False
