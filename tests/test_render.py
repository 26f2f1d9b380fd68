"""Rendering: complete deployment repos, formatted Terraform, safe placement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castelet.escape import hcl
from castelet.render import new
from castelet.rerender import TargetExists
from helpers import BLUEPRINTS, REPO_ROOT

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
EVERY_DEPLOYMENT_HAS = [
    "README.md", "versions.tf", "main.tf", "variables.tf", "outputs.tf", "terraform.tfvars", "noxfile.py",
    ".gitignore", ".castelet-answers.yaml", ".castelet/runtime.py", ".castelet/blueprint.json",
    "tests/conftest.py", "tests/test_base.py", "tests/castelet_checks.py",
    "modules/common/design/main.tf", "modules/common/configuration/main.tf", "modules/common/provision/main.tf",
    "modules/openstack/main.tf", "modules/openstack/versions.tf",
    "puppet/hiera.yaml", "puppet/manifests/site.pp", "puppet/data/common.yaml",
    "puppet/data/blueprint.yaml", "puppet/modules/castelet/manifests/profile/base.pp", ".castelet/rendered.json",
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("deployments")
    return {name: new(REPO_ROOT / "blueprints" / name, {"admin_ssh_keys": KEY}, out) for name in BLUEPRINTS}


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_rendered_repo_is_complete(rendered, name):
    root = rendered[name]
    missing = [f for f in EVERY_DEPLOYMENT_HAS if not (root / f).is_file()]
    assert missing == []
    manifest = yaml.safe_load((REPO_ROOT / "blueprints" / name / "blueprint.yaml").read_text())
    assert (root / manifest["tests"]).is_file()
    # Puppet's deployment data has one writer, Terraform: the render writes none
    assert not (root / "puppet" / "data" / "deployment.yaml").exists()
    assert not (root / "puppet" / "data" / "roles").exists()
    assert not (root / "puppet" / "data" / "terraform.yaml").exists()


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_rendered_repo_is_self_contained(rendered, name):
    root = rendered[name]
    assert 'source = "./modules/openstack"' in (root / "main.tf").read_text()
    assert not list(root.rglob("*.tftest.hcl")), "library tests are not shipped to deployments"
    assert not list(root.rglob(".terraform"))
    assert "{{" not in (root / "puppet" / "data" / "blueprint.yaml").read_text()
    answers = yaml.safe_load((root / ".castelet-answers.yaml").read_text())
    assert answers["blueprint"] == name and answers["answers"]["project_slug"] == root.name


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_rendered_terraform_is_formatted(rendered, name, terraform_cmd):
    proc = subprocess.run([*terraform_cmd, "fmt", "-check", "-recursive", "-diff"], cwd=rendered[name],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_rendered_noxfile_offers_the_lifecycle(rendered, name):
    proc = subprocess.run([sys.executable, "-m", "nox", "-l"], cwd=rendered[name], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    for session in ("check", "plan", "apply", "verify", "secrets", "configure", "destroy"):
        assert f"* {session}" in proc.stdout or f"- {session}" in proc.stdout, proc.stdout


def test_answers_land_in_terraform_tfvars_only(tmp_path):
    answers = {"project_slug": "atlas", "domain": "atlas.mylab.ca", "admin_cidr": "132.203.0.0/16",
               "admin_ssh_keys": KEY, "admin_email": "pi@mylab.ca", "release_sha256": "ab" * 32}
    root = new(REPO_ROOT / "blueprints" / "omeka-s", answers, tmp_path)
    tfvars = (root / "terraform.tfvars").read_text()
    assert f'"{KEY}"' in tfvars
    lines = {" ".join(line.split()) for line in tfvars.splitlines()}  # alignment is terraform fmt's
    for line in ('name = "atlas"', 'domain = "atlas.mylab.ca"', 'admin_cidr = "132.203.0.0/16"',
                 'admin_email = "pi@mylab.ca"', f'release_sha256 = "{"ab" * 32}"',
                 'project_name = "My research project"', 'acme_server = "https://acme-v02.api.letsencrypt.org/directory"'):
        assert line in lines, line
    blueprint = (root / "puppet/data/blueprint.yaml").read_text()
    assert "atlas" not in blueprint and "%{alias('terraform.settings.release_sha256')}" in blueprint
    assert json.loads((root / ".castelet/blueprint.json").read_text())["volumes"]["data"]["mount"] == "/srv/data"


def test_existing_directory_is_never_overwritten(tmp_path):
    target = tmp_path / "lamp"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(TargetExists):
        new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd"}, tmp_path)
    with pytest.raises(TargetExists, match="not a Castelet deployment"):
        new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd"}, tmp_path, force=True)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["lamp"], "no temporary folder is left behind"


def test_openstack_needs_a_key_at_render_and_lxd_does_not(tmp_path):
    from castelet.answers import AnswersError

    with pytest.raises(AnswersError, match="admin_ssh_keys"):
        new(REPO_ROOT / "blueprints" / "lamp", {}, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd"}, tmp_path).is_dir()


def test_hcl_strings_cannot_inject_templates():
    assert hcl("a ${b} %{c}") == '"a $${b} %%{c}"'
    assert hcl({"k": [1, True, None]}) == '{ "k" = [1, true, null] }'


slugs = st.from_regex(r"[a-z][a-z0-9]{1,8}(-[a-z0-9]{1,8})?", fullmatch=True)
domains = st.builds(lambda a, b: f"{a}.{b}.ca", st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True),
                    st.from_regex(r"[a-z]{2,8}", fullmatch=True))
cidrs = st.builds(lambda a, b, p: f"{a}.{b}.0.0/{p}", st.integers(1, 223), st.integers(0, 255), st.just(16))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slug=slugs, domain=domains, cidr=cidrs, size=st.integers(1, 5000),
       name=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)
       .filter(lambda s: not s[0].isspace() and not s[-1].isspace()))
def test_varied_answers_render_formatted_terraform(tmp_path_factory, terraform_cmd, slug, domain, cidr, size, name):
    out = tmp_path_factory.mktemp("varied")
    answers = {"project_slug": slug, "domain": domain, "admin_cidr": cidr, "data_volume_gb": size,
               "project_name": name, "admin_ssh_keys": KEY}
    root = new(REPO_ROOT / "blueprints" / "lamp", answers, out)
    assert f"  data = {size}" in (root / "terraform.tfvars").read_text()
    proc = subprocess.run([*terraform_cmd, "fmt", "-check", "-recursive"], cwd=root, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_no_puppet_data_is_generated_at_render_time(rendered, name):
    """Terraform is the one writer of deployment data: every file of a deployment's puppet/ is a
    copy of the library's puppet/ or of the blueprint's template, byte for byte."""
    root = rendered[name] / "puppet"
    template = REPO_ROOT / "blueprints" / name / "{{cookiecutter.project_slug}}" / "puppet"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        sources = [src for src in (REPO_ROOT / "puppet" / rel, template / rel) if src.is_file()]
        assert sources, f"puppet/{rel} was generated at render time"
        assert path.read_bytes() == sources[-1].read_bytes(), f"puppet/{rel} differs from its source"


def test_the_generator_has_no_hieradata_writer():
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "generator" / "castelet").rglob("*.py"))
    for needle in ("deployment.yaml", "data/roles", "hiera_yaml", "_HieraDumper", "castelet::profile::base::",
                   "castelet::role_class:", "firewall::rules"):
        assert needle not in sources, f"generator/ mentions {needle!r}"


def test_the_readme_links_to_the_library_home(tmp_path):
    """A fork's home is its pyproject Homepage, else its checkout's origin (ssh or https form)."""
    from castelet.project import project_home

    repo = tmp_path / "fork"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", "git@gitlab.mylab.ca:rc/castelet.git"],
                   check=True)
    assert project_home(repo) == "https://gitlab.mylab.ca/rc/castelet"
    subprocess.run(["git", "-C", str(repo), "remote", "set-url", "origin", "/srv/mirror/castelet"], check=True)
    assert project_home(repo) is None  # a local path is no web page: no link rather than a wrong one


@pytest.mark.parametrize(("cloud", "image"), [("openstack", "^Debian-13"), ("lxd", "castelet/debian-13")])
def test_default_render_is_debian_13_and_12_is_an_answer_away(tmp_path, cloud, image):
    from castelet.releases import DEFAULT_RELEASE, RELEASES

    assert DEFAULT_RELEASE == "13" and set(RELEASES) == {"13", "12"}
    given = {"cloud": cloud, **({"admin_ssh_keys": KEY} if cloud == "openstack" else {})}
    root = new(REPO_ROOT / "blueprints" / "lamp", given, tmp_path / "13")
    assert f'= "{image}"' in (root / "terraform.tfvars").read_text()
    older = new(REPO_ROOT / "blueprints" / "lamp", {**given, "debian_release": "12"}, tmp_path / "12")
    assert f'= "{image.replace("13", "12")}"' in (older / "terraform.tfvars").read_text()
    if cloud == "lxd":
        assert "castelet local setup --release 12" in (older / "README.md").read_text()


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_backups_and_data_dir_reach_puppet_from_the_manifest(name, tmp_path, terraform_cmd):
    """The manifest's backups: reach terraform.backups on the nodes of the first volume's role (null
    elsewhere, and everywhere for a blueprint without backups); data_dir is the first volume's mount."""
    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load
    from helpers import terraform_outputs

    bp = load(REPO_ROOT / "blueprints" / name)
    answers = resolved_for_checks(bp, {"admin_ssh_keys": KEY, "cloud": "lxd"})
    deployment = new(REPO_ROOT / "blueprints" / name, answers, tmp_path / "out")
    hieradata = terraform_outputs(deployment, terraform_cmd, tmp_path)["hieradata"]
    backup_role = bp.volumes[0].role if bp.volumes else bp.roles[0].name
    expected = None if not bp.backups else {
        "paths": list(bp.backups.get("paths", [])),
        "databases": [{"engine": d["engine"], "name": d["name"]} for d in bp.backups.get("databases", [])]}
    for hostname, document in hieradata.items():
        data = yaml.safe_load(document)["terraform"]
        assert data["backups"] == (expected if data["role"] == backup_role else None), hostname
        mounts = sorted((v.name, v.mount) for v in bp.volumes if v.role == data["role"])
        assert data["data_dir"] == (mounts[0][1] if mounts else None), hostname


def test_existing_volumes_must_name_a_volume_of_the_deployment(tmp_path, terraform_cmd):
    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load
    from helpers import terraform_outputs

    answers = resolved_for_checks(load(REPO_ROOT / "blueprints" / "lamp"), {"cloud": "lxd"})
    deployment = new(REPO_ROOT / "blueprints" / "lamp", answers, tmp_path / "out")
    assert "# existing_volumes = {\n#   lamp-web1-data = " in (deployment / "terraform.tfvars").read_text()
    hieradata = terraform_outputs(deployment, terraform_cmd, tmp_path / "good",
                                  'existing_volumes = { lamp-web1-data = "lamp-old-data" }\n')["hieradata"]
    assert yaml.safe_load(hieradata["lamp-web1"])["terraform"]["volumes"] == {"data": {"mount": "/srv/data"}}
    with pytest.raises(AssertionError) as failed:
        terraform_outputs(deployment, terraform_cmd, tmp_path / "bad",
                          'existing_volumes = { lamp-web2-data = "lamp-old-data" }\n')
    assert "existing_volumes names no volume of this deployment" in str(failed.value)
    assert "lamp-web1-data" in str(failed.value)


# --- the `clients` exposure: a service opened to the client networks of `client_cidrs` ----------

@pytest.fixture(scope="module")
def clients_probe(tmp_path_factory) -> Path:
    from fixtures.clients_probe import clients_blueprint

    return clients_blueprint(tmp_path_factory.mktemp("clients"))


def test_a_clients_service_renders_client_networks_as_a_list_variable(clients_probe, tmp_path, terraform_cmd):
    answers = {"admin_ssh_keys": KEY, "client_cidrs": "10.20.0.0/16 2001:db8:42::/48"}
    root = new(clients_probe, answers, tmp_path)
    tfvars = (root / "terraform.tfvars").read_text()
    assert 'client_cidrs = [\n  "10.20.0.0/16",\n  "2001:db8:42::/48",\n]' in tfvars
    assert "client_cidrs" not in tfvars.split("settings = {", 1)[1], "client networks are no blueprint setting"
    assert 'variable "client_cidrs" {' in (root / "variables.tf").read_text()
    assert "client_cidrs            = var.client_cidrs" in (root / "main.tf").read_text()
    readme = (root / "README.md").read_text()  # Markdown-escaped as every answer in a table cell
    assert "| probe | main | 5432/tcp | client networks 10\\.20.0.0/16, 2001:db8:42::/48 |" in readme
    services = json.loads((root / ".castelet" / "blueprint.json").read_text())["services"]
    assert [s["exposure"] for s in services] == ["clients"]
    proc = subprocess.run([*terraform_cmd, "fmt", "-check", "-recursive", "-diff"], cwd=root, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_client_networks_reach_the_host_firewall_and_puppet(clients_probe, tmp_path, terraform_cmd):
    from helpers import terraform_outputs

    answers = {"cloud": "lxd", "client_cidrs": "10.20.0.0/16 2001:db8:42::/48"}
    root = new(clients_probe, answers, tmp_path / "out")
    data = yaml.safe_load(terraform_outputs(root, terraform_cmd, tmp_path)["hieradata"]["probe-main1"])["terraform"]
    assert data["client_cidrs"] == ["10.20.0.0/16", "2001:db8:42::/48"]
    assert data["firewall_rules"] == [
        {"name": "probe", "port": 5432, "protocol": "tcp", "source": "10.20.0.0/16"},
        {"name": "probe", "port": 5432, "protocol": "tcp", "source": "2001:db8:42::/48"},
    ]
    assert "client_cidrs" not in data["settings"]
    # an edit of terraform.tfvars is what reaches the instances: a network more, a network less
    edited = terraform_outputs(root, terraform_cmd, tmp_path / "edited", 'client_cidrs = ["192.168.7.0/24"]\n')
    data = yaml.safe_load(edited["hieradata"]["probe-main1"])["terraform"]
    assert data["client_cidrs"] == ["192.168.7.0/24"]
    assert [r["source"] for r in data["firewall_rules"]] == ["192.168.7.0/24"]


def test_no_client_network_leaves_the_service_closed(clients_probe, tmp_path, terraform_cmd):
    from helpers import terraform_outputs

    root = new(clients_probe, {"cloud": "lxd"}, tmp_path / "out")
    assert "client_cidrs = [\n]" in (root / "terraform.tfvars").read_text()
    assert "| probe | main | 5432/tcp | nobody yet (add client networks to `client_cidrs`) |" in (
        root / "README.md").read_text()
    data = yaml.safe_load(terraform_outputs(root, terraform_cmd, tmp_path)["hieradata"]["probe-main1"])["terraform"]
    assert data["client_cidrs"] == [] and data["firewall_rules"] == []


@pytest.mark.parametrize(("tfvars", "message"), [
    ('client_cidrs = ["0.0.0.0/0"]\n', "must not open the client services to the whole internet"),
    ('client_cidrs = ["10.0.0.0/8", "::/0"]\n', "must not open the client services to the whole internet"),
    ('client_cidrs = ["10.0.0.1"]\n', "must be a network in CIDR notation"),
])
def test_terraform_refuses_client_networks_that_are_no_networks_or_everyone(
        clients_probe, tmp_path, terraform_cmd, tfvars, message):
    from helpers import terraform_outputs

    root = new(clients_probe, {"cloud": "lxd"}, tmp_path / "out")
    with pytest.raises(AssertionError) as failed:
        terraform_outputs(root, terraform_cmd, tmp_path, tfvars)
    assert message in " ".join(str(failed.value).split())


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_blueprints_without_client_networks_render_no_client_variable(rendered, name):
    bp = yaml.safe_load((REPO_ROOT / "blueprints" / name / "blueprint.yaml").read_text())
    if any(q.get("use") == "client_cidrs" or q.get("name") == "client_cidrs" for q in bp["questions"]):
        pytest.skip(f"{name} asks client_cidrs")
    root = rendered[name]
    for file in ("variables.tf", "main.tf", "terraform.tfvars"):
        assert "client_cidrs" not in (root / file).read_text(), file
