"""Checks of the Puppet environment in `puppet/`, with the real Puppet 7 of Debian 12.

Nothing here touches the machine's Puppet or system state: every run gets its own confdir,
vardir, codedir, environmentpath and secrets directory under pytest's tmp_path.

* every manifest passes `puppet parser validate`, every template `puppet epp validate`,
  the whole tree `puppet-lint --fail-on-warnings`;
* each role's catalog is compiled for a Debian 12 node from hiera data laid out as the
  generator and Terraform write it (Puppet's compiler, the one `puppet apply` runs first, on a
  compile server that stays up between catalogs; one test checks that it gives what
  `puppet catalog find --terminus compiler` gives), and the catalog is searched for the
  resources that matter;
* the firewall file of a compiled catalog passes `nft -c`;
* `castelet::secret` is run for real (`puppet apply`) twice.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from castelet.render import new
from helpers import BLUEPRINTS, terraform_outputs
from puppet_compile_server import compile_catalog

pytestmark = pytest.mark.puppet

DEBIAN_MODULES = Path("/usr/share/puppet/modules")
NODE = "atlas-web1"
FAKE_SHA256 = "0123456789abcdef" * 4
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwR+hKUn7Klulpni+X1YDzebFtzXygTEGAaXvlU7I1x ada@laptop"

# What facter reports on a Debian 12 OpenStack VM (structured and the legacy facts the
# puppetlabs modules still read), plus the external fact cloud-init writes.
DEBIAN12_FACTS: dict[str, Any] = {
    "castelet_role": "web",
    "os": {
        "architecture": "amd64",
        "distro": {
            "codename": "bookworm",
            "description": "Debian GNU/Linux 12 (bookworm)",
            "id": "Debian",
            "release": {"full": "12.8", "major": "12", "minor": "8"},
        },
        "family": "Debian",
        "hardware": "x86_64",
        "name": "Debian",
        "release": {"full": "12.8", "major": "12", "minor": "8"},
        "selinux": {"enabled": False},
    },
    "networking": {
        "fqdn": f"{NODE}.novalocal",
        "hostname": NODE,
        "domain": "novalocal",
        "ip": "10.0.0.12",
        "ip6": "fe80::f816:3eff:fe12:3456",
        "primary": "ens3",
    },
    "processors": {"count": 2, "physicalcount": 1},
    "memory": {"system": {"total_bytes": 4294967296}},
    "identity": {"gid": 0, "group": "root", "privileged": True, "uid": 0, "user": "root"},
    "kernel": "Linux",
    "kernelversion": "6.1.0",
    "kernelrelease": "6.1.0-27-amd64",
    "kernelmajversion": "6.1",
    "virtual": "kvm",
    "is_virtual": True,
    "timezone": "UTC",
    "path": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "puppetversion": "7.23.0",
    "facterversion": "4.3.0",
    "root_home": "/root",
    "service_provider": "systemd",
    "package_provider": "apt",
    # legacy facts
    "osfamily": "Debian",
    "operatingsystem": "Debian",
    "operatingsystemrelease": "12.8",
    "operatingsystemmajrelease": "12",
    "lsbdistcodename": "bookworm",
    "lsbdistrelease": "12.8",
    "lsbdistid": "Debian",
    "architecture": "amd64",
    "hardwaremodel": "x86_64",
    "fqdn": f"{NODE}.novalocal",
    "hostname": NODE,
    "domain": "novalocal",
    "ipaddress": "10.0.0.12",
    "processorcount": 2,
    # added by the agent (puppet apply) to the facts it sends to the compiler
    "clientcert": NODE,
    "clientversion": "7.23.0",
    "clientnoop": False,
}

def debian_facts(major: str) -> dict[str, Any]:
    """The facts of a Debian <major> node (the fixture above, release fields changed)."""
    codename = {"12": "bookworm", "13": "trixie"}[major]
    full = {"12": "12.8", "13": "13.8"}[major]
    release = {"full": full, "major": major, "minor": full.split(".")[1]}
    facts = json.loads(json.dumps(DEBIAN12_FACTS))
    facts["os"]["release"] = release
    facts["os"]["distro"].update({"codename": codename, "release": release,
                                  "description": f"Debian GNU/Linux {major} ({codename})"})
    facts.update({"operatingsystemrelease": full, "operatingsystemmajrelease": major,
                  "lsbdistcodename": codename, "lsbdistrelease": full})
    return facts


ROLE_RULES = [
    {"name": "http", "port": 80, "protocol": "tcp", "source": "0.0.0.0/0"},
    {"name": "http-ipv6", "port": 80, "protocol": "tcp", "source": "::/0"},
    {"name": "stats", "port": 8080, "protocol": "tcp", "source": "203.0.113.0/24"},
]


TLS_SETTINGS = {"acme_server": "https://acme-v02.api.letsencrypt.org/directory", "acme_ca_certificate": ""}
#: A private ACME CA's certificate (the omeka_s scenario's): its content does not matter to Puppet.
PRIVATE_ACME_CA = "-----BEGIN CERTIFICATE-----\nMIIBcastelettestca\n-----END CERTIFICATE-----"


def terraform_data(role_class: str | None, **overrides: Any) -> dict[str, Any]:
    """data/terraform.yaml as Terraform's common/configuration writes it (one `terraform` hash)."""
    data: dict[str, Any] = {
        "deployment": "atlas",
        "domain": "atlas.example.org",
        "admin_email": "ada@example.org",
        "admin_user": "ada",
        "admin_users": {"ada": {"ssh_keys": [ADMIN_KEY]}},
        "admin_cidr": "203.0.113.0/24",
        "timezone": "America/Toronto",
        "settings": {"project_name": "Atlas of things", **TLS_SETTINGS},
        "nodes": {NODE: {"role": "web"}},
        "role": "web",
        "role_class": role_class,
        "firewall_rules": ROLE_RULES,
        "volumes": {
            "data": {"mount": "/srv/data", "device": "/dev/disk/by-id/*0b1f9c2e-1d3a-4c5b-9*"},
            "scratch": {"mount": "/srv/scratch"},
        },
    }
    data.update(overrides)
    # Terraform always writes these two, null on a node without a volume or backups.
    nullable = {"data_dir": None, "backups": None}
    return {"terraform": {**nullable, **{k: v for k, v in data.items() if v is not None}}}


# --------------------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------------------


def dump_hiera(data: dict[str, Any]) -> str:
    """YAML as Terraform's yamlencode writes it: every string quoted (Ruby's YAML must not read
    ``::/0`` as a Symbol)."""
    return json.dumps(data, indent=2)


@dataclass
class Compiled:
    returncode: int
    stdout: str
    stderr: str
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)

    def sensitive(self, type_: str, title: str) -> list[str]:
        return list(self.resources[(type_, title)].get("sensitive_parameters", []))

    def resource(self, type_: str, title: str) -> dict[str, Any]:
        key = (type_, title)
        assert key in self.resources, f"{type_}[{title}] is not in the catalog"
        return self.resources[key].get("parameters", {})

    def titles(self, type_: str) -> set[str]:
        return {title for (t, title) in self.resources if t == type_}


@dataclass
class Environment:
    """A throwaway copy of `puppet/` with the generated hiera data of one node."""

    root: Path
    puppet_bin: str

    @property
    def env_dir(self) -> Path:
        return self.root / "code" / "environments" / "production"

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    def write_data(self, relpath: str, data: dict[str, Any]) -> None:
        path = self.env_dir / "data" / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_hiera(data))

    def settings(self) -> list[str]:
        return [
            "--confdir", str(self.root / "conf"),
            "--vardir", str(self.root / "var"),
            "--logdir", str(self.root / "log"),
            "--rundir", str(self.root / "run"),
            # Debian's defaults for these two do not follow vardir
            "--ssldir", str(self.root / "ssl"),
            "--publicdir", str(self.root / "public"),
            "--codedir", str(self.root / "code"),
            "--environmentpath", str(self.root / "code" / "environments"),
            "--environment", "production",
            "--basemodulepath", str(DEBIAN_MODULES),
            "--hiera_config", str(self.root / "conf" / "hiera.yaml"),
        ]  # fmt: skip

    def run_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTER_")}
        env["CASTELET_SECRETS_DIR"] = str(self.secrets_dir)
        env["HOME"] = str(self.root / "home")
        return env

    def compile(self, facts: dict[str, Any] | None = None, node: str = NODE) -> Compiled:
        """Compile the node's catalog with the compiler `puppet apply` uses, apply nothing: on a
        running compile server (`puppet_compile_server.py`; same Puppet, same catalog as
        `find_catalog`, without starting Ruby each time)."""
        answer = compile_catalog(self.puppet_bin, DEBIAN_MODULES, {
            "root": str(self.root), "node": node,
            "facts": facts if facts is not None else DEBIAN12_FACTS,
            "env": {"CASTELET_SECRETS_DIR": str(self.secrets_dir), "HOME": str(self.root / "home")},
        })  # fmt: skip
        catalog = answer["catalog"]
        return parsed(answer["returncode"], json.dumps(catalog) if catalog is not None else "", answer["log"])

    def find_catalog(self, facts: dict[str, Any] | None = None, node: str = NODE) -> Compiled:
        """The same compile by `puppet catalog find --terminus compiler` in a new process."""
        canned_facts(self.root / "var", node, facts)  # its options: the yaml terminus, below
        proc = subprocess.run(
            [self.puppet_bin, "catalog", "find", node, "--terminus", "compiler",
             "--facts_terminus", "yaml", "--render-as", "json", "--color", "false",
             *self.settings()],
            capture_output=True, text=True, env=self.run_env(), timeout=240,
        )  # fmt: skip
        return parsed(proc.returncode, proc.stdout, proc.stderr)

    def apply(self, manifest: str) -> subprocess.CompletedProcess[str]:
        """Really apply a small manifest, as node NODE with DEBIAN12_FACTS (`canned_facts`)."""
        return subprocess.run(
            [self.puppet_bin, "apply", "--detailed-exitcodes", "--color", "false",
             *self.settings(), *canned_facts(self.root / "var"), "-e", manifest],
            capture_output=True, text=True, env=self.run_env(), timeout=240,
        )  # fmt: skip


def canned_facts(vardir: Path, node: str = NODE, facts: dict[str, Any] | None = None) -> list[str]:
    """Write the node's facts where Puppet's `yaml` facts terminus reads them, and return the
    options that make Puppet use them: Facter does not load every Debian module's custom facts to
    resolve them all (a `puppet apply` takes 3.5 s instead of 7.5 s), and no setting's default asks
    it for the host's domain. Providers still ask Facter for what they need."""
    facts_doc = "--- !ruby/object:Puppet::Node::Facts\n" + yaml.safe_dump(
        {"name": node, "values": facts if facts is not None else DEBIAN12_FACTS}
    )
    for sub in ("client_yaml", "yaml"):
        facts_dir = vardir / sub / "facts"
        facts_dir.mkdir(parents=True, exist_ok=True)
        (facts_dir / f"{node}.yaml").write_text(facts_doc)
    return ["--facts_terminus", "yaml", "--certname", node, "--srv_domain", "example.org"]


def parsed(returncode: int, stdout: str, stderr: str) -> Compiled:
    """A compile's result, its catalog's resources and classes indexed when it succeeded."""
    result = Compiled(returncode, stdout, stderr)
    start = stdout.find("{")
    if returncode == 0 and start >= 0:
        catalog = json.loads(stdout[start:])
        for res in catalog["resources"]:
            result.resources[(res["type"], res["title"])] = res
            if res["type"] == "Class":
                result.classes.add(res["title"])
    return result


def scratch_environment(root: Path, puppet_bin: str, source: Path) -> Environment:
    """A copy of the Puppet environment at ``source`` with its own Puppet directories."""
    env = Environment(root, puppet_bin)
    shutil.copytree(source, env.env_dir)
    for sub in ("conf", "var", "log", "run", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # Debian's global hiera.yaml has an empty hierarchy: only the environment's data counts.
    (root / "conf" / "hiera.yaml").write_text("---\nversion: 5\nhierarchy: []\n")
    return env


def make_environment(
    root: Path,
    puppet_bin: str,
    repo_root: Path,
    role_class: str | None,
    blueprint: dict[str, Any] | None = None,
    **terraform: Any,
) -> Environment:
    env = scratch_environment(root, puppet_bin, repo_root / "puppet")
    env.write_data("terraform.yaml", terraform_data(role_class, **terraform))
    env.write_data("blueprint.yaml", blueprint or {})
    return env


def errors_of(result: Compiled) -> str:
    return result.stdout + result.stderr


# --------------------------------------------------------------------------------------
# static checks
# --------------------------------------------------------------------------------------


def pp_files(repo_root: Path) -> list[Path]:
    files = sorted((repo_root / "puppet").rglob("*.pp"))
    assert len(files) >= 15, files
    return files


def test_parser_validate_every_manifest(repo_root: Path, puppet_bin: str, tmp_path: Path) -> None:
    files = pp_files(repo_root)
    proc = subprocess.run(
        [puppet_bin, "parser", "validate", "--color", "false",
         "--confdir", str(tmp_path / "conf"), "--vardir", str(tmp_path / "var"),
         "--modulepath", f"{repo_root / 'puppet' / 'modules'}:{DEBIAN_MODULES}",
         *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_parser_validate_rejects_a_broken_manifest(puppet_bin: str, tmp_path: Path) -> None:
    """The validation above can fail: a syntax error is reported."""
    bad = tmp_path / "bad.pp"
    bad.write_text("class broken {\n  file { '/tmp/x': ensure => file\n}\n")
    proc = subprocess.run(
        [puppet_bin, "parser", "validate", "--color", "false",
         "--confdir", str(tmp_path / "conf"), "--vardir", str(tmp_path / "var"), str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0


def test_epp_templates_validate(repo_root: Path, puppet_bin: str, tmp_path: Path) -> None:
    templates = sorted((repo_root / "puppet").rglob("*.epp"))
    assert templates
    proc = subprocess.run(
        [puppet_bin, "epp", "validate", "--color", "false",
         "--confdir", str(tmp_path / "conf"), "--vardir", str(tmp_path / "var"),
         *map(str, templates)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_puppet_lint(repo_root: Path) -> None:
    lint = shutil.which("puppet-lint")
    assert lint is not None, "puppet-lint is missing: apt-get install puppet-lint"
    proc = subprocess.run(
        [lint, "--fail-on-warnings", "--relative", "."],
        cwd=repo_root / "puppet", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hiera_and_module_metadata(repo_root: Path) -> None:
    hiera = yaml.safe_load((repo_root / "puppet" / "hiera.yaml").read_text())
    assert hiera["version"] == 5
    assert [level["path"] for level in hiera["hierarchy"]] == [
        "terraform.yaml", "blueprint.yaml", "os/%{facts.os.release.major}.yaml", "common.yaml"]
    # every supported Debian release has its data, and nothing else has
    from castelet.releases import RELEASES

    os_data = repo_root / "puppet" / "data" / "os"
    assert sorted(p.stem for p in os_data.glob("*.yaml")) == sorted(RELEASES)
    for major in RELEASES:
        assert "castelet::profile::apache_php::php_version" in yaml.safe_load((os_data / f"{major}.yaml").read_text())
    common = yaml.safe_load((repo_root / "puppet" / "data" / "common.yaml").read_text())
    # deployment data has one writer (Terraform): the library only aliases it
    assert common["castelet::domain"] == "%{alias('terraform.domain')}"
    assert common["castelet::profile::base::admin_users"] == "%{alias('terraform.admin_users')}"
    metadata = json.loads((repo_root / "puppet" / "modules" / "castelet" / "metadata.json").read_text())
    assert metadata["name"] == "castelet-castelet"
    assert {d["name"] for d in metadata["dependencies"]} >= {"puppetlabs/apache", "puppetlabs/mysql"}


def test_readme_documents_every_class_and_hiera_key(repo_root: Path) -> None:
    module = repo_root / "puppet" / "modules" / "castelet"
    readme = (module / "README.md").read_text()
    for pp in (module / "manifests").rglob("*.pp"):
        first = next(line for line in pp.read_text().splitlines() if line.startswith(("class ", "define ")))
        name = first.split()[1].rstrip("(").strip()
        assert f"`{name}`" in readme, f"{name} is not documented in the module README"
    common = yaml.safe_load((repo_root / "puppet" / "data" / "common.yaml").read_text())
    for key in [*common, *(f"terraform.{k}" for k in terraform_data("x")["terraform"])]:
        assert f"`{key}`" in readme, f"hiera key {key} is not documented in the module README"


# --------------------------------------------------------------------------------------
# catalogs
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogs(
    repo_root: Path, puppet_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Compiled]]:
    """Compile the scenarios once, two at a time (one per core)."""
    base = tmp_path_factory.mktemp("catalogs")
    omeka_settings = {**TLS_SETTINGS, "acme_server": "https://acme.ca.example.org/directory",
                      "acme_ca_certificate": PRIVATE_ACME_CA, "project_name": "Atlas of things",
                      "release_version": "4.1.1",
                      "release_sha256": FAKE_SHA256,
                      "release_url": "https://github.com/omeka/omeka-s/releases/download/v4.1.1/omeka-s-4.1.1.zip"}
    omeka_blueprint = yaml.safe_load(
        (repo_root / "blueprints/omeka-s/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml").read_text())
    scenarios = {
        "lamp": make_environment(base / "lamp", puppet_bin, repo_root, "castelet::role::lamp"),
        "omeka_s": make_environment(
            base / "omeka_s", puppet_bin, repo_root, "castelet::role::omeka_s",
            blueprint={**omeka_blueprint, "castelet::profile::omeka_s::servername": "omeka.atlas.example.org"},
            settings=omeka_settings,
        ),
        "omeka_s_unpinned": make_environment(
            base / "omeka_s_unpinned", puppet_bin, repo_root, "castelet::role::omeka_s", blueprint=omeka_blueprint,
            settings={**omeka_settings, "release_sha256": ""},
        ),
        "no_role_file": make_environment(base / "no_role_file", puppet_bin, repo_root, None),
        "lamp_on_volume": make_environment(
            base / "lamp_on_volume", puppet_bin, repo_root, "castelet::role::lamp",
            blueprint={"castelet::profile::backup::stop_units": ["apache2"]},
            data_dir="/srv/data", backups={"paths": ["/srv/data"], "databases": [{"engine": "mariadb", "name": "app"}]},
            settings={"project_name": "Atlas of things", **TLS_SETTINGS,
                      "backup_repository": "rest:http://10.166.0.1:8000/atlas", "backup_append_only": "true"},
        ),
        "bad_rule": make_environment(
            base / "bad_rule", puppet_bin, repo_root, "castelet::role::lamp",
            firewall_rules=[{"name": "web", "port": 70000, "protocol": "tcp", "source": "0.0.0.0/0"}],
        ),
    }  # fmt: skip
    facts_without_role = {k: v for k, v in DEBIAN12_FACTS.items() if k != "castelet_role"}
    jobs = {name: (env, None) for name, env in scenarios.items()}
    jobs["no_role_fact"] = (scenarios["lamp"], facts_without_role)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(env.compile, facts) for name, (env, facts) in jobs.items()}
        results = {name: future.result() for name, future in futures.items()}
    results_envs = {f"{name}:env": env for name, env in scenarios.items()}
    yield {**results, **results_envs}  # type: ignore[dict-item]


def test_compile_server_gives_the_catalog_puppet_catalog_find_gives(catalogs: dict[str, Any]) -> None:
    """The compile server (`puppet_compiler.rb`) against Puppet's own command, on the lamp node
    with a data volume: same resources, same parameters, same sensitive parameters."""
    env: Environment = catalogs["lamp_on_volume:env"]
    served, found = catalogs["lamp_on_volume"], env.find_catalog()
    assert served.returncode == found.returncode == 0, errors_of(found)

    def comparable(resource: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in resource.items() if key not in ("file", "line")}

    assert served.resources.keys() == found.resources.keys()
    differing = [key for key in served.resources
                 if comparable(served.resources[key]) != comparable(found.resources[key])]
    assert not differing, differing[:5]
    assert served.classes == found.classes
    # Errors need no second compile: the tests of failing compiles (test_invalid_firewall_rule_is_
    # rejected, ...) look for the messages `puppet catalog find` printed when they were written.

def test_lamp_role_compiles(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["lamp"]
    assert cat.returncode == 0, errors_of(cat)
    assert {
        "Castelet::Role::Lamp",
        "Castelet::Profile::Base",
        "Castelet::Profile::Firewall",
        "Castelet::Profile::Volumes",
        "Castelet::Profile::Apache_php",
        "Castelet::Profile::Mariadb",
        "Castelet::Profile::Lamp_app",
    } <= cat.classes
    assert "Castelet::Profile::Omeka_s" not in cat.classes


def test_omeka_s_role_compiles(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["omeka_s"]
    assert cat.returncode == 0, errors_of(cat)
    assert {"Castelet::Role::Omeka_s", "Castelet::Profile::Omeka_s", "Castelet::Profile::Base"} <= cat.classes
    assert "Castelet::Profile::Lamp_app" not in cat.classes


@pytest.mark.parametrize("scenario", ["lamp", "omeka_s"])
def test_base_profile_resources(catalogs: dict[str, Any], scenario: str) -> None:
    cat: Compiled = catalogs[scenario]
    assert cat.returncode == 0, errors_of(cat)
    user = cat.resource("User", "ada")
    # sudo is granted by castelet-admins alone: the admin is in the SSH group only, not in `sudo`
    assert user["groups"] == ["castelet-ssh"] and user["membership"] == "inclusive" and user["home"] == "/home/ada"
    keys = cat.resource("File", "/home/ada/.ssh/authorized_keys")
    assert ADMIN_KEY in keys["content"] and keys["mode"] == "0600"
    sudoers = cat.resource("File", "/etc/sudoers.d/castelet-admins")
    assert "ada ALL=(ALL:ALL) NOPASSWD: ALL" in sudoers["content"]
    assert sudoers["validate_cmd"].startswith("/usr/sbin/visudo -c")
    sshd = cat.resource("File", "/etc/ssh/sshd_config.d/00-castelet.conf")
    for line in ("PermitRootLogin no", "PasswordAuthentication no", "KbdInteractiveAuthentication no"):
        assert line in sshd["content"].splitlines()
    assert sshd["validate_cmd"] == "/usr/sbin/sshd -t -f %"
    assert cat.resource("Exec", "castelet-sshd-config-test")["command"] == "/usr/sbin/sshd -t"
    assert cat.resource("Service", "ssh")["ensure"] == "running"
    auto = cat.resource("File", "/etc/apt/apt.conf.d/20auto-upgrades")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in auto["content"]
    cat.resource("Package", "unattended-upgrades")
    cat.resource("Package", "systemd-timesyncd")
    assert cat.resource("Service", "systemd-timesyncd")["ensure"] == "running"  # a VM
    assert cat.resource("File", "/etc/localtime")["target"] == "/usr/share/zoneinfo/America/Toronto"


def test_firewall_resources(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["lamp"]
    assert cat.returncode == 0, errors_of(cat)
    conf = cat.resource("File", "/etc/nftables.conf")
    assert conf["validate_cmd"] == "/usr/sbin/nft -c -f %"
    content = conf["content"]
    assert "policy drop;" in content
    assert 'ip saddr 203.0.113.0/24 tcp dport 22 accept comment "ssh-admin"' in content
    assert 'ip saddr 203.0.113.0/24 tcp dport 8080 accept comment "stats"' in content
    assert 'include "/etc/nftables.castelet.d/*.nft"' in content
    # public ports are not in the closed ruleset: they open once the applications installed themselves
    assert "dport 80 " not in content and "dport 3306" not in content
    public = cat.resource("File", "/etc/nftables.castelet.d/public.nft")
    assert 'add rule inet castelet input meta nfproto ipv4 tcp dport 80 accept comment "http"' in public["content"]
    assert 'add rule inet castelet input meta nfproto ipv6 tcp dport 80 accept comment "http-ipv6"' in public["content"]
    assert "Class[Castelet::Installed]" in public["require"]
    service = cat.resource("Service", "nftables")
    assert service["ensure"] == "running" and service["enable"] is True
    cat.resource("Package", "nftables")


def test_nftables_file_passes_nft_check(catalogs: dict[str, Any], tmp_path: Path) -> None:
    """The rendered ruleset is valid nftables syntax (`nft -c` parses and checks it)."""
    nft = shutil.which("nft") or "/usr/sbin/nft"
    assert Path(nft).exists(), "nft is missing: apt-get install nftables"
    cat: Compiled = catalogs["lamp"]
    assert cat.returncode == 0, errors_of(cat)
    good = tmp_path / "nftables.conf"
    good.write_text(cat.resource("File", "/etc/nftables.conf")["content"])
    proc = subprocess.run([nft, "-c", "-f", str(good)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(good.read_text().replace("policy drop;", "policy dropp;"))
    proc = subprocess.run([nft, "-c", "-f", str(broken)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0


def test_volumes_resources(catalogs: dict[str, Any]) -> None:
    """castelet-volumes mounts the volumes before Puppet; Puppet only checks them (and fails
    naming the missing one)."""
    cat: Compiled = catalogs["lamp"]
    assert cat.returncode == 0, errors_of(cat)
    check = cat.resource("Exec", "castelet-volumes-check")
    assert check["command"] == check["unless"] == "castelet-volumes check"
    assert not {t for t in cat.titles("Exec") if t.startswith("castelet-volume-mkfs")}


def test_state_on_the_data_volume(catalogs: dict[str, Any]) -> None:
    """With a data volume, MariaDB's datadir is bound from it before the package is installed,
    and mariadb.service requires that mount; without one, nothing is bound."""
    cat: Compiled = catalogs["lamp_on_volume"]
    assert cat.returncode == 0, errors_of(cat)
    bind = cat.resource("Exec", "castelet-persistent-dir-/var/lib/mysql")
    assert bind["command"] == "castelet-volumes bind --stop 'mariadb' '/var/lib/mysql' '/srv/data/mariadb'"
    assert bind["unless"] == "castelet-volumes is-bound '/var/lib/mysql' '/srv/data/mariadb'"
    persistent = cat.resources[("Castelet::Persistent_dir", "/var/lib/mysql")]
    assert "Class[Mysql::Server::Install]" in str(persistent["parameters"]["before"])
    dropin = cat.resource("File", "/etc/systemd/system/mariadb.service.d/castelet-volume-var-lib-mysql.conf")
    assert "RequiresMountsFor=/var/lib/mysql" in dropin["content"].splitlines()
    assert not {t for t in catalogs["lamp"].titles("Exec") if t.startswith("castelet-persistent-dir")}


def test_lamp_document_root_lives_on_the_data_volume(catalogs: dict[str, Any]) -> None:
    """Issue 21 point 6: with a data volume, the LAMP document root is bound from it (so the
    application's code survives a rebuild and is in the volume's backups) before Puppet writes the
    placeholder pages into it, and Apache requires that mount."""
    cat: Compiled = catalogs["lamp_on_volume"]
    assert cat.returncode == 0, errors_of(cat)
    bind = cat.resource("Exec", "castelet-persistent-dir-/var/www/atlas")
    assert bind["command"] == "castelet-volumes bind  '/var/www/atlas' '/srv/data/www'"
    assert bind["unless"] == "castelet-volumes is-bound '/var/www/atlas' '/srv/data/www'"
    # the pages Puppet writes into it autorequire the directory, which waits for the bind
    assert "Castelet::Persistent_dir[/var/www/atlas]" in str(cat.resource("File", "/var/www/atlas")["require"])
    dropin = cat.resource("File", "/etc/systemd/system/apache2.service.d/castelet-volume-var-www-atlas.conf")
    assert "RequiresMountsFor=/var/www/atlas" in dropin["content"].splitlines()


def test_backup_profile(catalogs: dict[str, Any]) -> None:
    """A repository and the manifest's backups give a timer, a root-only JSON configuration and
    the restic password generated on the node; no repository, no timer."""
    cat: Compiled = catalogs["lamp_on_volume"]
    env: Environment = catalogs["lamp_on_volume:env"]
    assert cat.returncode == 0, errors_of(cat)
    config_file = cat.resource("File", "/etc/castelet/backup.json")
    assert config_file["mode"] == "0600" and config_file["owner"] == "root"
    config = json.loads(config_file["content"])
    assert config["repository"] == "rest:http://10.166.0.1:8000/atlas"
    assert config["paths"] == ["/srv/data"]
    assert config["databases"] == [{"engine": "mariadb", "name": "app"}]
    assert config["password_file"] == f"{env.secrets_dir}/restic-repository"
    assert config["restore_dir"] == "/srv/data/.castelet-restore"
    assert config["status_file"] == "/srv/data/castelet/backup-status.json"  # survives a rebuild
    assert config["stop_units"] == ["apache2"]
    assert len((env.secrets_dir / "restic-repository").read_text().strip()) >= 32
    service = cat.resource("File", "/etc/systemd/system/castelet-backup.service")["content"]
    assert "RequiresMountsFor=/srv/data" in service and "SuccessExitStatus=75" in service
    timer = cat.resource("File", "/etc/systemd/system/castelet-backup.timer")["content"]
    assert "OnCalendar=*-*-* 03:15:00" in timer and "Persistent=true" in timer
    assert cat.resource("Service", "castelet-backup.timer")["ensure"] == "running"
    plain: Compiled = catalogs["lamp"]
    assert ("Service", "castelet-backup.timer") not in plain.resources
    assert plain.resource("File", "/etc/systemd/system/castelet-backup.timer")["ensure"] == "absent"
    assert plain.resource("File", "/etc/systemd/system/castelet-backup-check.timer")["ensure"] == "absent"


def test_backup_profile_append_only_and_weekly_check(catalogs: dict[str, Any]) -> None:
    """Issue 21 point 3: the setting `backup_append_only` (a string, as Terraform writes every
    setting) reaches castelet-backup's configuration as a boolean, and a weekly timer starts
    `castelet-backup check` (restic check --read-data-subset), waiting for a running backup."""
    cat: Compiled = catalogs["lamp_on_volume"]
    assert cat.returncode == 0, errors_of(cat)
    config = json.loads(cat.resource("File", "/etc/castelet/backup.json")["content"])
    assert config["append_only"] is True and config["check_parts"] == 10
    service = cat.resource("File", "/etc/systemd/system/castelet-backup-check.service")["content"]
    assert "ExecStart=/usr/local/sbin/castelet-backup --wait 21600 check" in service.splitlines()
    assert "RequiresMountsFor=/srv/data" in service and "SuccessExitStatus=75" in service
    timer = cat.resource("File", "/etc/systemd/system/castelet-backup-check.timer")["content"]
    assert "OnCalendar=Sun *-*-* 05:15:00" in timer.splitlines() and "Persistent=true" in timer
    check = cat.resource("Service", "castelet-backup-check.timer")
    assert (check["ensure"], check["enable"]) == ("running", True)


def test_secrets_refused_off_the_data_volume(repo_root: Path, puppet_bin: str, tmp_path: Path) -> None:
    """A node with a data volume whose secrets directory is not bound from it gets no secret:
    the compilation fails before anything is written (here: the host's default directory, not a
    mount point, with no CASTELET_SECRETS_DIR)."""
    env = make_environment(tmp_path, puppet_bin, repo_root, "castelet::role::lamp", data_dir="/srv/data")
    environ = env.run_env()
    del environ["CASTELET_SECRETS_DIR"]
    before = Path("/var/lib/castelet/secrets").exists()
    proc = subprocess.run(
        [puppet_bin, "apply", "--noop", "--color", "false", *env.settings(), *canned_facts(tmp_path / "var"),
         "-e", "notice(castelet::secret('x'))"],
        capture_output=True, text=True, env=environ, timeout=240)
    assert proc.returncode != 0
    assert "is not bound from the data volume (/srv/data/castelet/secrets)" in proc.stdout + proc.stderr
    assert Path("/var/lib/castelet/secrets").exists() == before


@pytest.mark.parametrize("scenario", ["lamp", "omeka_s"])
def test_apache_php_resources(catalogs: dict[str, Any], scenario: str) -> None:
    cat: Compiled = catalogs[scenario]
    assert cat.returncode == 0, errors_of(cat)
    cat.resource("Package", "libapache2-mod-php8.2")
    load = cat.resource("File", "php8.2.load")
    assert "LoadModule php_module /usr/lib/apache2/modules/libphp8.2.so" in load["content"]
    assert "php8_module" not in load["content"]
    assert cat.resource("File", "php8.2.conf symlink")["ensure"] == "link"
    assert "Apache::Mod::Prefork" in cat.classes
    assert "Apache::Mod::Rewrite" in cat.classes
    apache = cat.resource("Class", "Apache")
    assert apache["default_vhost"] is False and apache["mpm_module"] == "prefork"
    # the module's default vhost is declared absent: removed if a package put it there
    assert cat.resource("Apache::Vhost", "default")["ensure"] == "absent"
    for ext in ("mysql", "gd", "intl", "xml", "mbstring", "curl", "zip"):
        cat.resource("Package", f"php8.2-{ext}")
    ini = cat.resource("File", "/etc/php/8.2/apache2/conf.d/90-castelet.ini")["content"]
    for line in ("upload_max_filesize = 64M", "post_max_size = 64M", "memory_limit = 256M"):
        assert line in ini.splitlines()


def _mysql_password_hash(password: str) -> str:
    import hashlib

    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def test_mariadb_resources(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["omeka_s"]
    env: Environment = catalogs["omeka_s:env"]
    assert cat.returncode == 0, errors_of(cat)
    server = cat.resource("Class", "Mysql::Server")
    assert server["package_name"] == "mariadb-server"
    mysqld = server["override_options"]["mysqld"]
    assert mysqld["bind-address"] == "127.0.0.1"
    assert mysqld["character-set-server"] == "utf8mb4"
    db = cat.resource("Mysql::Db", "omeka")
    assert (db["charset"], db["collate"], db["user"]) == ("utf8mb4", "utf8mb4_unicode_ci", "omeka")
    # The password was generated on the "node" (here: the test's secrets dir) at compile time
    # and only its hash reaches the catalog.
    secret_file = env.secrets_dir / "mariadb-omeka"
    password = secret_file.read_text().strip()
    assert len(password) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env.secrets_dir.stat().st_mode) == 0o700
    assert db["password"] == _mysql_password_hash(password)
    cnf_title = f"{env.secrets_dir}/mariadb-omeka.cnf"
    cnf = cat.resource("File", cnf_title)
    assert cnf["mode"] == "0600" and cnf["owner"] == "root"
    assert f"password={password}" in cnf["content"].splitlines()
    assert "user=omeka" in cnf["content"].splitlines()
    # Sensitive: redacted in logs, reports and diffs (the catalog itself, root-only on the
    # node, carries the value, as every Puppet catalog does)
    assert cat.sensitive("File", cnf_title) == ["content"]


def test_omeka_s_resources(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["omeka_s"]
    env: Environment = catalogs["omeka_s:env"]
    assert cat.returncode == 0, errors_of(cat)
    zip_path = "/var/cache/castelet/omeka-s-4.1.1.zip"
    archive = cat.resource("Archive", zip_path)
    assert archive["source"] == "https://github.com/omeka/omeka-s/releases/download/v4.1.1/omeka-s-4.1.1.zip"
    assert archive["checksum"] == FAKE_SHA256 and archive["checksum_type"] == "sha256"
    assert archive["checksum_verify"] is True and archive["extract"] is True
    assert archive["extract_path"] == "/var/www/omeka-s-4.1.1"
    release = "/var/www/omeka-s-4.1.1/omeka-s"
    dbini = cat.resource("File", f"{release}/config/database.ini")
    assert (dbini["mode"], dbini["owner"], dbini["group"]) == ("0640", "root", "www-data")
    password = (env.secrets_dir / "mariadb-omeka").read_text().strip()
    assert f'password = "{password}"' in dbini["content"].splitlines()
    assert 'dbname   = "omeka"' in dbini["content"].splitlines()
    assert cat.sensitive("File", f"{release}/config/database.ini") == ["content"]
    link = cat.resource("File", "/var/www/omeka-s")
    assert link["ensure"] == "link" and link["target"] == release
    # the symlink moves only after the verified archive and the config are in place
    requires = json.dumps(link["require"])
    assert f"Archive[{zip_path}]" in requires and "config/database.ini" in requires
    files = cat.resource("File", f"{release}/files")
    assert files["target"] == "/srv/data/omeka-files"
    assert cat.resource("File", "/srv/data/omeka-files")["owner"] == "www-data"
    vhost = cat.resource("Apache::Vhost", "omeka.atlas.example.org-https")
    assert vhost["port"] == 443 and vhost["docroot"] == "/var/www/omeka-s" and vhost["ssl"] is True
    assert vhost["directories"][0]["allow_override"] == ["All"]
    # failed logins (the form again, HTTP 200) feed a fail2ban jail on the HTTPS access log
    site_filter = cat.resource("File", "/etc/fail2ban/filter.d/castelet-omeka.atlas.example.org.conf")["content"]
    assert '"POST /login(?:\\?\\S*)? HTTP/[0-9.]+" 200' in site_filter
    jail = cat.resource("File", "/etc/fail2ban/jail.d/castelet-omeka.atlas.example.org.local")["content"]
    assert "logpath  = /var/log/apache2/castelet-omeka.atlas.example.org-https.log" in jail
    # the installer talks HTTPS to the loopback address (port 80 only redirects)
    assert "OMEKA_BASE_URL=https://127.0.0.1" in cat.resource("Exec", "castelet-omeka-install")["environment"]
    for pkg in ("imagemagick", "php8.2-imagick", "unzip", "php8.2-mysql"):
        cat.resource("Package", pkg)
    cat.resource("Mysql::Db", "omeka")
    assert (env.secrets_dir / "mariadb-omeka").exists()


def test_omeka_s_refuses_an_unpinned_release(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["omeka_s_unpinned"]
    assert cat.returncode != 0
    assert "castelet::profile::omeka_s::release_sha256" in errors_of(cat)
    assert "does not install unverified code" in errors_of(cat)


def test_lamp_app_resources(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["lamp"]
    env: Environment = catalogs["lamp:env"]
    assert cat.returncode == 0, errors_of(cat)
    # the web server cannot rewrite the application
    assert cat.resource("File", "/var/www/atlas")["owner"] == "root"
    health = cat.resource("File", "/var/www/atlas/health.php")["content"]
    assert "castelet-lamp: ok" in health and "castelet-lamp: database unreachable" in health
    assert "http_response_code(500)" in health and "/etc/castelet/lamp-app.ini" in health
    index = cat.resource("File", "/var/www/atlas/index.php")
    assert index["replace"] is False and "'atlas'" in index["content"]
    config = cat.resource("File", "/etc/castelet/lamp-app.ini")
    assert (config["mode"], config["owner"], config["group"]) == ("0640", "root", "www-data")
    password = (env.secrets_dir / "mariadb-app").read_text().strip()
    assert f'password = "{password}"' in config["content"].splitlines()
    assert cat.sensitive("File", "/etc/castelet/lamp-app.ini") == ["content"]
    vhost = cat.resource("Apache::Vhost", "atlas.example.org-https")
    assert vhost["docroot"] == "/var/www/atlas" and vhost["port"] == 443
    db = cat.resource("Mysql::Db", "app")
    assert db["charset"] == "utf8mb4"


def test_https_site_resources(catalogs: dict[str, Any]) -> None:
    """Port 80 only answers ACME challenges and redirects; 443 serves with the node's certificate,
    HSTS and security headers; the certificate exists before Apache starts, issuance waits for the
    public ports; Mozilla's intermediate TLS profile."""
    cat: Compiled = catalogs["lamp"]
    assert cat.returncode == 0, errors_of(cat)
    http = cat.resource("Apache::Vhost", "atlas.example.org-http")
    assert http["port"] == 80 and http["docroot"] == "/var/lib/castelet/acme"
    (rewrite,) = http["rewrites"]
    assert rewrite["rewrite_cond"] == ["%{REQUEST_URI} !^/\\.well-known/acme-challenge/"]
    assert rewrite["rewrite_rule"] == ["^ https://atlas.example.org%{REQUEST_URI} [R=301,L]"]
    https = cat.resource("Apache::Vhost", "atlas.example.org-https")
    assert https["ssl_cert"] == "/etc/castelet/tls/current/fullchain.pem"
    assert https["ssl_key"] == "/etc/castelet/tls/current/privkey.pem"
    headers = " | ".join(https["headers"])
    for expected in ('Strict-Transport-Security "max-age=63072000"', 'X-Content-Type-Options "nosniff"',
                     "Referrer-Policy", "Content-Security-Policy \"frame-ancestors 'self'"):
        assert expected in headers, expected
    assert "includeSubDomains" not in headers  # other services of the lab's domain are not ours
    ssl = cat.resource("Class", "Apache::Mod::Ssl")
    assert ssl["ssl_protocol"] == ["-all", "+TLSv1.2", "+TLSv1.3"] and ssl["ssl_honorcipherorder"] is False
    assert ssl["ssl_sessiontickets"] is False and "ECDHE-ECDSA-AES128-GCM-SHA256" in ssl["ssl_cipher"]
    assert "RSA-AES128-SHA:" not in ssl["ssl_cipher"] + ":"
    config = json.loads(cat.resource("File", "/etc/castelet/tls.json")["content"])
    assert config == {"domain": "atlas.example.org", "email": "ada@example.org",
                      "acme_server": "https://acme-v02.api.letsencrypt.org/directory", "dir": "/etc/castelet/tls",
                      "webroot": "/var/lib/castelet/acme", "reload_unit": "apache2", "ca_bundle": ""}
    issue = cat.resource("Exec", "castelet-tls-issue")
    assert issue["returns"] == [0, 75]
    needs = json.dumps(issue["require"])
    assert "castelet-nftables-open-public" in needs and "Castelet::Installed" in needs
    timer = cat.resource("Service", "castelet-tls-issue.timer")
    assert timer["ensure"] == "running" and timer["enable"] is True
    cat.resource("Package", "certbot")
    # no private CA given: no bundle for certbot, and nothing in the system trust store
    assert cat.resource("File", "/usr/local/share/ca-certificates/castelet-acme-ca.crt")["ensure"] == "absent"
    assert cat.resource("File", "/etc/castelet/acme-ca.pem")["ensure"] == "absent"
    sshd = cat.resource("File", "/etc/ssh/sshd_config.d/00-castelet.conf")["content"]
    assert "MaxAuthTries 3" in sshd.splitlines()
    jail = cat.resource("File", "/etc/fail2ban/jail.d/00-castelet.local")["content"]
    assert "[sshd]\nenabled = true\nbackend = systemd" in jail
    php = cat.resource("File", "/etc/php/8.2/apache2/conf.d/90-castelet.ini")["content"]
    assert "expose_php = Off" in php or "expose_php = 'Off'" in php or 'expose_php = "Off"' in php


def test_a_private_acme_ca_is_trusted_by_certbot_only(catalogs: dict[str, Any]) -> None:
    """Issue 21 point 10: the private ACME CA's certificate is given to certbot (castelet-tls's
    first issue reads `ca_bundle`; Debian's certbot.service renewals get REQUESTS_CA_BUNDLE), and
    never reaches the system trust store that apt, pip, npm, git and restic use; where an earlier
    version put it there, it is taken out and the bundle rebuilt."""
    cat: Compiled = catalogs["omeka_s"]
    bundle = cat.resource("File", "/etc/castelet/acme-ca.pem")
    assert (bundle["ensure"], bundle["mode"], bundle["content"]) == ("file", "0644", PRIVATE_ACME_CA + "\n")
    dropin = cat.resource("File", "/etc/systemd/system/certbot.service.d/castelet-acme-ca.conf")
    assert "[Service]\nEnvironment=REQUESTS_CA_BUNDLE=/etc/castelet/acme-ca.pem\n" in dropin["content"]
    assert "Exec[castelet-tls-systemd-reload]" in json.dumps(dropin["notify"])
    assert json.loads(cat.resource("File", "/etc/castelet/tls.json")["content"])["ca_bundle"] == \
        "/etc/castelet/acme-ca.pem"
    trusted = [title for title in cat.titles("File") if title.startswith("/usr/local/share/ca-certificates")
               and cat.resource("File", title).get("ensure") != "absent"]
    assert trusted == [], f"the private ACME CA reaches the system trust store: {trusted}"
    assert cat.resource("File", "/usr/local/share/ca-certificates/castelet-acme-ca.crt")["ensure"] == "absent"
    untrust = cat.resource("Exec", "castelet-tls-untrust-ca")
    assert untrust["command"] == "/usr/sbin/update-ca-certificates --fresh" and untrust["refreshonly"] is True
    commands = [cat.resource("Exec", title).get("command", title) for title in cat.titles("Exec")]
    assert [c for c in commands if "update-ca-certificates" in c] == ["/usr/sbin/update-ca-certificates --fresh"]
    lamp: Compiled = catalogs["lamp"]  # no private CA: no bundle, no drop-in
    assert lamp.resource("File", "/etc/systemd/system/certbot.service.d/castelet-acme-ca.conf")["ensure"] == "absent"


def test_invalid_firewall_rule_is_rejected(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["bad_rule"]
    assert cat.returncode != 0
    out = errors_of(cat)
    assert "Castelet::Profile::Firewall" in out and "'port' expects an Integer[1, 65535] value" in out


def test_missing_role_fact_fails_clearly(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["no_role_fact"]
    assert cat.returncode != 0
    assert "the fact 'castelet_role' is not set" in errors_of(cat)


def test_image_cached_packages_are_declared_on_every_node(repo_root: Path, catalogs: dict[str, Any]) -> None:
    """The local image pre-installs BASE_PACKAGES as a cache: each is a Package that
    castelet::profile::base declares, and every role includes that profile."""
    from castelet.local.image import BASE_PACKAGES

    cat: Compiled = catalogs["lamp"]
    assert cat.returncode == 0, errors_of(cat)
    assert set(BASE_PACKAGES) <= cat.titles("Package"), set(BASE_PACKAGES) - cat.titles("Package")
    for role in (repo_root / "puppet/modules/castelet/manifests/role").glob("*.pp"):
        assert "include castelet::profile::base" in role.read_text(), role.name


def test_missing_role_class_fails_clearly(catalogs: dict[str, Any]) -> None:
    cat: Compiled = catalogs["no_role_file"]
    assert cat.returncode != 0
    out = errors_of(cat)
    assert "castelet::role_class" in out and "terraform.role_class" in out


# --------------------------------------------------------------------------------------
# castelet::secret, applied for real
# --------------------------------------------------------------------------------------


def test_secret_function_is_stable_and_private(repo_root: Path, puppet_bin: str, tmp_path: Path) -> None:
    env = make_environment(tmp_path, puppet_bin, repo_root, "castelet::role::lamp")
    out = tmp_path / "out"
    out.mkdir()
    manifest = (
        "$s = castelet::secret('unit-test')\n"
        f"file {{ '{out}/copy': ensure => file, mode => '0600', content => $s }}\n"
        f"file {{ '{out}/dir': ensure => file, content => castelet::secrets_dir() }}\n"
    )
    first = env.apply(manifest)
    assert first.returncode == 2, first.stdout + first.stderr  # 2: changes applied
    secret_file = env.secrets_dir / "unit-test"
    value = secret_file.read_text().strip()
    assert len(value) >= 32 and value.isalnum()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env.secrets_dir.stat().st_mode) == 0o700
    assert secret_file.stat().st_uid == os.getuid()
    assert (out / "copy").read_text() == value
    assert (out / "dir").read_text() == str(env.secrets_dir)
    assert value not in first.stdout + first.stderr

    second = env.apply(manifest)
    assert second.returncode == 0, second.stdout + second.stderr  # 0: nothing changed
    assert secret_file.read_text().strip() == value
    assert (out / "copy").read_text() == value

    # another name gives another secret
    other = env.apply(f"file {{ '{out}/other': ensure => file, content => castelet::secret('other') }}")
    assert other.returncode == 2, other.stdout + other.stderr
    assert (out / "other").read_text() != value

    # a truncated secret file is an error, never silently replaced
    secret_file.write_text("short\n")
    broken = env.apply(manifest)
    assert broken.returncode not in (0, 2)
    assert "fewer than 32 characters" in broken.stdout + broken.stderr
    assert secret_file.read_text() == "short\n"


PHP = {"13": "8.4", "12": "8.2"}


@pytest.mark.parametrize(("cloud", "release"), [("openstack", "13"), ("lxd", "13"), ("openstack", "12")])
@pytest.mark.parametrize("blueprint", BLUEPRINTS)
def test_default_render_compiles_every_role(repo_root: Path, puppet_bin: str, terraform_cmd: list[str],
                                            tmp_path: Path, blueprint: str, cloud: str, release: str) -> None:
    """`castelet new X --no-input` with only the required answers, its "Before you apply" list done,
    gives Terraform data on which every role's catalogue compiles (Terraform's own output), for
    each supported Debian release (its facts select data/os/<major>.yaml)."""
    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load

    bp = load(repo_root / "blueprints" / blueprint)
    given = {"cloud": cloud, "debian_release": release,
             **({"admin_ssh_keys": ADMIN_KEY} if cloud == "openstack" else {})}
    deployment = new(bp.path, resolved_for_checks(bp, given), tmp_path / "out")
    outputs = terraform_outputs(deployment, terraform_cmd, tmp_path)
    hosts = outputs["hieradata"]
    assert {yaml.safe_load(data)["terraform"]["role"] for data in hosts.values()} == {r.name for r in bp.roles}
    for hostname, data in sorted(hosts.items()):
        role = yaml.safe_load(data)["terraform"]["role"]
        env = scratch_environment(tmp_path / "puppet" / hostname, puppet_bin, deployment / "puppet")
        (env.env_dir / "data" / "terraform.yaml").write_text(data)
        result = env.compile({**debian_facts(release), "castelet_role": role}, node=hostname)
        assert result.returncode == 0, errors_of(result)
        expected = next(r.puppet_class for r in bp.roles if r.name == role)
        assert expected.lower() in {c.lower() for c in result.classes}
        if cloud == "openstack":
            keys = result.resource("File", "/home/castelet/.ssh/authorized_keys")["content"]
            assert ADMIN_KEY in keys
        if ("Package", "libapache2-mod-php8.4") in result.resources or ("Package", "libapache2-mod-php8.2") in \
                result.resources:
            assert ("Package", f"libapache2-mod-php{PHP[release]}") in result.resources
