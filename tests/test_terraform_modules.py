"""Checks of terraform-modules/: formatting, each common module's own `terraform test` suite,
and the first-boot shell scripts run for real in a sandbox with stub commands on PATH.

Everything here runs offline: the common modules use no provider at all.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from castelet.runtime import terraform_env

COMMON_MODULES = ("design", "configuration", "provision")
SCRIPT_NAMES = (
    "castelet-status.sh",
    "castelet-bootstrap.sh",
    "castelet-puppet-apply.sh",
    "castelet-install-environment.sh",
    "castelet-secrets.sh",
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def modules_dir(repo_root: Path) -> Path:
    return repo_root / "terraform-modules"


@pytest.fixture(scope="module")
def scripts_dir(modules_dir: Path) -> Path:
    return modules_dir / "common" / "configuration" / "files"


# --------------------------------------------------------------------------------------------
# Terraform: fmt and the modules' own .tftest.hcl suites
# --------------------------------------------------------------------------------------------


def test_terraform_fmt_is_clean(terraform_cmd: list[str], modules_dir: Path, tmp_path: Path) -> None:
    result = _run(
        [*terraform_cmd, "fmt", "-check", "-recursive", "-diff", str(modules_dir)], cwd=tmp_path, env=terraform_env()
    )
    assert result.returncode == 0, f"terraform fmt would change files:\n{result.stdout}{result.stderr}"


def test_every_module_follows_the_registry_layout(modules_dir: Path) -> None:
    for module in [*(f"common/{m}" for m in COMMON_MODULES), "openstack"]:
        for name in ("README.md", "main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (modules_dir / module / name).is_file(), f"{module}/{name} is missing"
        versions = (modules_dir / module / "versions.tf").read_text()
        assert 'required_version = ">= 1.5"' in versions, module
    assert (modules_dir / "openstack" / "examples" / "basic" / "main.tf").is_file()


def test_common_modules_use_no_provider(modules_dir: Path) -> None:
    """common/ must stay provider-free: only built-in resources (terraform_data)."""
    for module in COMMON_MODULES:
        for tf in (modules_dir / "common" / module).glob("*.tf"):
            text = tf.read_text()
            assert "required_providers" not in text, tf
            for rtype in re.findall(r'^\s*(?:resource|data)\s+"([^"]+)"', text, re.M):
                assert rtype == "terraform_data", f"{tf}: {rtype} needs a provider"


def _copy_common(modules_dir: Path, dest: Path) -> Path:
    """Copy common/ (siblings included: tests may reference each other's fixtures)."""
    target = dest / "common"
    shutil.copytree(
        modules_dir / "common",
        target,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"),
    )
    return target


@pytest.mark.parametrize("module", COMMON_MODULES)
def test_common_module_terraform_test(module: str, terraform_cmd: list[str], modules_dir: Path, tmp_path: Path) -> None:
    workdir = _copy_common(modules_dir, tmp_path) / module
    env = terraform_env()
    expected_runs = sum(
        len(re.findall(r'^run\s+"', f.read_text(), re.M)) for f in (workdir / "tests").glob("*.tftest.hcl")
    )
    assert expected_runs > 0, f"common/{module} has no terraform test run blocks"

    init = _run([*terraform_cmd, "init", "-backend=false", "-input=false", "-no-color"], workdir, env)
    assert init.returncode == 0, init.stdout + init.stderr

    result = _run([*terraform_cmd, "test", "-no-color"], workdir, env)
    output = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode == 0, output
    match = re.search(r"Success!\s+(\d+) passed, (\d+) failed", output)
    assert match, f"no success summary in terraform test output:\n{output}"
    passed, failed = int(match.group(1)), int(match.group(2))
    assert failed == 0
    assert passed == expected_runs > 0, output


def test_configuration_rejects_unknown_role_with_clear_message(
    terraform_cmd: list[str], modules_dir: Path, tmp_path: Path
) -> None:
    """A service naming an undeclared role fails plan with a message naming the role."""
    common = _copy_common(modules_dir, tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(
        """
module "design" {
  source     = "../common/design"
  name       = "atlas"
  image      = "Debian-12"
  roles      = { web = { count = 1, flavor = "f", public = true, min_vcpus = 1, min_ram_mb = 1, min_disk_gb = 1 } }
  services   = [{ name = "http", port = 80, protocol = "tcp", exposure = "public", role = "frontend" }]
  admin_cidr = "192.0.2.0/24"
}
output "rules" { value = module.design.firewall_rules }
"""
    )
    assert (common / "design" / "main.tf").is_file()
    env = terraform_env()
    init = _run([*terraform_cmd, "init", "-backend=false", "-input=false", "-no-color"], root, env)
    assert init.returncode == 0, init.stdout + init.stderr
    plan = _run([*terraform_cmd, "plan", "-input=false", "-no-color"], root, env)
    output = plan.stdout + plan.stderr
    assert plan.returncode != 0
    assert "services reference unknown role(s): frontend" in " ".join(output.split())


@pytest.fixture(scope="module")
def rendered_user_data(
    terraform_cmd: list[str], modules_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """User-data rendered by a real `terraform apply` of common/configuration (no provider)."""
    base = tmp_path_factory.mktemp("render")
    _copy_common(modules_dir, base)
    root = base / "root"
    root.mkdir()
    (root / "main.tf").write_text(
        """
module "configuration" {
  source    = "../common/configuration"
  name      = "atlas"
  instances = {
    "atlas-web1" = { role = "web", puppet_class = "castelet::role::lamp" }
    "atlas-db1"  = { role = "db" }
  }
  firewall_rules = {
    web = [
      { name = "ssh", port = 22, protocol = "tcp", cidr = "203.0.113.7/32", exposure = "admin" },
      { name = "https", port = 443, protocol = "tcp", cidr = "0.0.0.0/0", exposure = "public" },
    ]
  }
  admin_cidr  = "203.0.113.7/32"
  domain      = "atlas.example.org"
  admin_email = "ops@example.org"
  settings    = { greeting = "100% %%{lookup('x')}" }
  volumes = {
    "atlas-db1-data" = { instance = "atlas-db1", name = "data", mount = "/srv/data" }
  }
  volume_devices          = { "atlas-db1-data" = "/dev/disk/by-id/virtio-0123456789abcdef0123" }
  public_keys             = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin-%%{hiera('x')}@example.org"]
  puppet_environment_path = "../common/configuration/tests/fixtures/env-a"
}
output "user_data" { value = module.configuration.user_data }
"""
    )
    env = terraform_env()
    for args in (["init", "-backend=false", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        result = _run([*terraform_cmd, *args, "-no-color"], root, env)
        assert result.returncode == 0, result.stdout + result.stderr
    out = _run([*terraform_cmd, "output", "-json", "user_data"], root, env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _write_files(user_data: str) -> dict[str, dict]:
    config = yaml.safe_load(user_data)
    return {entry["path"]: entry for entry in config["write_files"]}


def test_user_data_carries_the_deployment_data_but_no_puppet_environment(
    rendered_user_data: dict[str, str], modules_dir: Path
) -> None:
    """The environment is pushed by the provision step: user-data holds the deployment's data and
    the bootstrap scripts only, a few KiB whatever the size of puppet/."""
    prefix = "/etc/puppet/code/environments/production/"
    for hostname, user_data in rendered_user_data.items():
        assert user_data.startswith("#cloud-config\n"), hostname
        assert len(user_data.encode()) < 16384, f"{hostname}: {len(user_data.encode())} bytes"
        files = _write_files(user_data)
        assert [p for p in files if p.startswith(prefix)] == [prefix + "data/terraform.yaml"]
        packed = [p for p, e in files.items() if e.get("encoding") == "gz+b64"]
        assert packed and all(p.startswith(("/usr/local/", "/etc/castelet/")) for p in packed), packed
        hiera = yaml.safe_load(files[prefix + "data/terraform.yaml"]["content"])
        assert list(hiera) == ["terraform"]
        data = hiera["terraform"]
        assert data["deployment"] == "atlas"
        assert (data["domain"], data["admin_email"], data["admin_cidr"], data["timezone"]) == (
            "atlas.example.org",
            "ops@example.org",
            "203.0.113.7/32",
            "UTC",
        )
        # Hiera would interpolate %{...}: it arrives escaped; cloud-init gets the key as written.
        assert data["admin_users"] == {
            "castelet": {
                "ssh_keys": [
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin-%{literal('%')}{hiera('x')}@example.org"
                ]
            }
        }
        assert data["settings"] == {"greeting": "100% %{literal('%')}{lookup('x')}"}
        assert yaml.safe_load(user_data)["users"][0]["ssh_authorized_keys"] == [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixtureKeyOne admin-%{hiera('x')}@example.org"
        ]
        secrets = files["/usr/local/sbin/castelet-secrets"]
        assert secrets["permissions"] == "0700"
        assert gzip.decompress(base64.b64decode(secrets["content"])).decode() == (
            modules_dir / "common/configuration/files/castelet-secrets.sh").read_text()
        assert yaml.safe_load(files["/etc/facter/facts.d/castelet.yaml"]["content"]) == {
            "castelet_role": hostname.removeprefix("atlas-").rstrip("0123456789")
        }
    web_hiera = yaml.safe_load(
        _write_files(rendered_user_data["atlas-web1"])[prefix + "data/terraform.yaml"]["content"]
    )
    assert (web_hiera["terraform"]["role"], web_hiera["terraform"]["role_class"]) == ("web", "castelet::role::lamp")
    assert web_hiera["terraform"]["firewall_rules"] == [
        {"name": "https", "port": 443, "protocol": "tcp", "source": "0.0.0.0/0"},
        {"name": "https-ipv6", "port": 443, "protocol": "tcp", "source": "::/0"},
    ]
    db_hiera = yaml.safe_load(_write_files(rendered_user_data["atlas-db1"])[prefix + "data/terraform.yaml"]["content"])
    assert (db_hiera["terraform"]["role"], db_hiera["terraform"]["role_class"]) == ("db", "castelet::role::base")
    assert db_hiera["terraform"]["firewall_rules"] == []
    # first boot knows the mount points only: devices exist once the cloud attached the volumes
    assert db_hiera["terraform"]["volumes"] == {"data": {"mount": "/srv/data"}}


def test_rendered_user_data_is_valid_cloud_config(rendered_user_data: dict[str, str], tmp_path: Path) -> None:
    """Checked with cloud-init's own schema validator when cloud-init is installed."""
    cloud_init = shutil.which("cloud-init")
    if cloud_init is None:
        pytest.skip("cloud-init is not installed (apt-get install cloud-init)")
    for hostname, user_data in rendered_user_data.items():
        path = tmp_path / f"{hostname}.yaml"
        path.write_text(user_data)
        result = _run([cloud_init, "schema", "--config-file", str(path)], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Valid cloud-config" in result.stdout


def test_materialised_user_data_bootstraps_in_a_sandbox(
    rendered_user_data: dict[str, str], tmp_path: Path, modules_dir: Path
) -> None:
    """Write the files exactly as cloud-init would (under a fake root), then run runcmd: the
    packages are installed and the bootstrap waits for the environment; once the provision step
    installed it (castelet-install-environment), the bootstrap run again applies Puppet without
    reinstalling the packages."""
    root = tmp_path / "root"
    user_data = rendered_user_data["atlas-web1"]
    for path, entry in _write_files(user_data).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.get("encoding") == "gz+b64":
            target.write_bytes(gzip.decompress(base64.b64decode(entry["content"])))
        else:
            target.write_text(entry["content"])
        target.chmod(int(entry["permissions"], 8))

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >>"{calls}"\n')
    _stub(bin_dir, "systemctl", "exit 0\n")
    _stub(bin_dir, "puppet", f'echo "puppet $*" >>"{calls}"\nexit 2\n')
    sbin = root / "usr" / "local" / "sbin"
    environment_dir = root / "etc/puppet/code/environments/production"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTELET_")}
    env.update(
        PATH=f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        CASTELET_LIB_DIR=str(root / "usr" / "local" / "lib" / "castelet"),
        CASTELET_CONFIG=str(root / "etc" / "castelet" / "bootstrap.conf"),
        CASTELET_PUPPET_APPLY=str(sbin / "castelet-puppet-apply"),
        CASTELET_ENVIRONMENT_DIR=str(environment_dir),
        CASTELET_STATE_DIR=str(root / "var/lib/castelet"),
        CASTELET_LOG_DIR=str(root / "var/log/castelet"),
        CASTELET_MOTD=str(root / "etc" / "motd"),
        CASTELET_RETRY_DELAY="0",
    )
    runcmd = yaml.safe_load(user_data)["runcmd"]
    assert runcmd == [["/usr/local/sbin/castelet-bootstrap"]]
    bootstrap = str(root / runcmd[0][0].lstrip("/"))

    first = _run([bootstrap], tmp_path, env, timeout=60)
    assert first.returncode == 0, first.stderr  # cloud-init must not report an error
    log = calls.read_text().splitlines()
    install = next(line for line in log if line.startswith("apt-get install"))
    for package in ("puppet-agent", "puppet-module-puppetlabs-apache", "puppet-module-puppet-archive"):
        assert package in install.split()
    assert not [line for line in log if line.startswith("puppet")], "no environment yet: no Puppet run"
    status = (root / "var/lib/castelet/status").read_text()
    assert "state=waiting" in status and "step=environment" in status
    assert not (root / "var/lib/castelet/bootstrap.done").exists()

    # the provision step: stage the environment and this node's hieradata, install, bootstrap again
    staging = tmp_path / "staging"
    shutil.copytree(modules_dir / "common" / "configuration" / "tests" / "fixtures" / "env-a", staging / "environment")
    (staging / "terraform.yaml").write_text("terraform: {}\n")
    installed = _run([str(sbin / "castelet-install-environment"), str(staging)], tmp_path, env, timeout=60)
    assert installed.returncode == 0, installed.stderr
    calls.write_text("")
    second = _run([bootstrap], tmp_path, env, timeout=60)
    assert second.returncode == 0, second.stderr
    log = calls.read_text().splitlines()
    assert not [line for line in log if line.startswith("apt-get")], "packages are installed once"
    puppet = next(line for line in log if line.startswith("puppet apply"))
    site_pp = environment_dir / "manifests/site.pp"
    assert puppet.endswith(str(site_pp)) and site_pp.is_file()
    assert (root / "var/lib/castelet/bootstrap.done").is_file()


# --------------------------------------------------------------------------------------------
# First-boot scripts, executed in a sandbox
# --------------------------------------------------------------------------------------------


def test_scripts_pass_bash_syntax_check(scripts_dir: Path) -> None:
    for name in SCRIPT_NAMES:
        result = _run(["bash", "-n", str(scripts_dir / name)], cwd=scripts_dir)
        assert result.returncode == 0, f"{name}: {result.stderr}"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class Sandbox:
    """Stub apt-get/puppet/systemctl on PATH and every castelet path redirected under tmp."""

    def __init__(self, root: Path, scripts_dir: Path) -> None:
        self.root = root
        self.scripts_dir = scripts_dir
        self.bin = root / "bin"
        self.state = root / "var-lib-castelet"
        self.logs = root / "var-log-castelet"
        self.motd = root / "motd"
        self.calls = root / "calls"
        self.config = root / "bootstrap.conf"
        self.environment = root / "environment"
        self.bin.mkdir()
        (self.environment / "manifests").mkdir(parents=True)
        (self.environment / "manifests" / "site.pp").write_text("node default {}\n")
        self.motd.write_text("Welcome to Debian\n")
        self.config.write_text('CASTELET_PACKAGES="puppet-agent puppet-module-puppetlabs-apache"\n')
        self.stubs()

    def stubs(self, apt_update: int = 0, apt_install: int = 0, puppet: int | None = 2) -> None:
        for leftover in self.bin.iterdir():
            leftover.unlink()
        _stub(
            self.bin,
            "apt-get",
            f"""
echo "apt-get $*" >>"{self.calls}"
case "$1" in
  update) echo "stub: update"; exit {apt_update} ;;
  install) echo "stub: install failed: E: Unable to locate package" ; exit {apt_install} ;;
esac
exit 0
""",
        )
        _stub(self.bin, "systemctl", f'echo "systemctl $*" >>"{self.calls}"\n')
        # castelet-bootstrap calls castelet-puppet-apply by path, as on an instance.
        _stub(self.bin, "castelet-puppet-apply", f'exec bash "{self.scripts_dir / "castelet-puppet-apply.sh"}" "$@"\n')
        if puppet is not None:
            _stub(self.bin, "puppet", f'echo "puppet $*" >>"{self.calls}"\necho "stub puppet run"\nexit {puppet}\n')

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASTELET_")}
        env.update(
            PATH=f"{self.bin}:/usr/local/bin:/usr/bin:/bin",
            CASTELET_LIB_DIR=str(self.scripts_dir),
            CASTELET_STATE_DIR=str(self.state),
            CASTELET_LOG_DIR=str(self.logs),
            CASTELET_MOTD=str(self.motd),
            CASTELET_CONFIG=str(self.config),
            CASTELET_PUPPET_APPLY=str(self.bin / "castelet-puppet-apply"),
            CASTELET_ENVIRONMENT_DIR=str(self.environment),
            CASTELET_RETRIES="2",
            CASTELET_RETRY_DELAY="0",
        )
        return env

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(["bash", str(self.scripts_dir / script), *args], cwd=self.root, env=self.env(), timeout=60)

    def status(self) -> dict[str, str]:
        text = (self.state / "status").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if line)

    def call_log(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []

    def castelet_motd_lines(self) -> list[str]:
        return [line for line in self.motd.read_text().splitlines() if line.startswith("castelet: ")]


@pytest.fixture()
def sandbox(tmp_path: Path, scripts_dir: Path) -> Sandbox:
    return Sandbox(tmp_path, scripts_dir)


def test_bootstrap_records_a_failing_step(sandbox: Sandbox) -> None:
    sandbox.stubs(apt_install=100)
    result = sandbox.run("castelet-bootstrap.sh")

    assert result.returncode == 100, result.stderr
    status = sandbox.status()
    assert status["state"] == "failed"
    assert status["step"] == "apt-install"
    assert status["exit_code"] == "100"
    assert status["log"] == str(sandbox.logs / "apt-install.log")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["time"])

    failures = sandbox.castelet_motd_lines()
    assert len(failures) == 1
    assert "'apt-install' FAILED with exit code 100" in failures[0]
    assert sandbox.motd.read_text().startswith("Welcome to Debian\n"), "the MOTD must be appended to"

    log = (sandbox.logs / "apt-install.log").read_text()
    assert "Unable to locate package" in log
    assert "castelet: step 'apt-install' FAILED" in result.stderr

    calls = sandbox.call_log()
    installs = [c for c in calls if c.startswith("apt-get install")]
    assert len(installs) == 2, "a failing step is retried CASTELET_RETRIES times"
    assert "puppet-agent puppet-module-puppetlabs-apache" in installs[0]
    assert not any(c.startswith("puppet ") for c in calls), "puppet must not run after a failed step"
    assert not (sandbox.state / "bootstrap.done").exists()

    history = (sandbox.state / "history").read_text()
    assert "done apt-update exit_code=0" in history
    assert "failed apt-install exit_code=100" in history


def test_bootstrap_records_a_failing_first_step(sandbox: Sandbox) -> None:
    sandbox.stubs(apt_update=1)
    result = sandbox.run("castelet-bootstrap.sh")

    assert result.returncode == 1
    assert sandbox.status()["step"] == "apt-update"
    assert not any(c.startswith("apt-get install") for c in sandbox.call_log())
    assert "'apt-update' FAILED with exit code 1" in sandbox.castelet_motd_lines()[0]


def test_bootstrap_success_runs_every_step_and_clears_old_failures(sandbox: Sandbox) -> None:
    sandbox.motd.write_text("Welcome to Debian\ncastelet: step 'apt-update' FAILED with exit code 1 at then\n")
    sandbox.stubs(puppet=2)
    result = sandbox.run("castelet-bootstrap.sh")

    assert result.returncode == 0, result.stderr
    status = sandbox.status()
    assert (status["state"], status["step"], status["exit_code"]) == ("done", "bootstrap", "0")
    assert (sandbox.state / "bootstrap.done").is_file()
    assert sandbox.castelet_motd_lines() == []
    assert sandbox.motd.read_text() == "Welcome to Debian\n"

    calls = sandbox.call_log()
    order = [c.split()[0] + " " + c.split()[1] for c in calls]
    assert order.index("apt-get update") < order.index("apt-get install") < order.index("puppet apply")
    puppet = next(c for c in calls if c.startswith("puppet apply"))
    assert "--detailed-exitcodes" in puppet
    assert puppet.endswith(f"{sandbox.environment}/manifests/site.pp")
    assert "systemctl disable --now puppet.service" in calls
    for step in ("apt-update", "apt-install", "puppet-apply"):
        assert (sandbox.logs / f"{step}.log").is_file(), step


def test_bootstrap_without_package_list_fails_clearly(sandbox: Sandbox) -> None:
    sandbox.config.write_text("# empty\n")
    result = sandbox.run("castelet-bootstrap.sh")

    assert result.returncode == 78
    assert sandbox.status()["step"] == "configuration"
    assert sandbox.call_log() == [], "nothing may be installed without a package list"


@pytest.mark.parametrize(("puppet_rc", "expected_rc"), [(0, 0), (2, 0), (4, 4), (6, 6), (1, 1)])
def test_puppet_apply_maps_detailed_exit_codes(sandbox: Sandbox, puppet_rc: int, expected_rc: int) -> None:
    sandbox.stubs(puppet=puppet_rc)
    result = sandbox.run("castelet-puppet-apply.sh")

    assert result.returncode == expected_rc, result.stderr
    status = sandbox.status()
    assert status["step"] == "puppet-apply"
    assert status["exit_code"] == str(puppet_rc)
    assert "stub puppet run" in (sandbox.logs / "puppet-apply.log").read_text()
    if expected_rc == 0:
        assert status["state"] == "done"
        assert sandbox.castelet_motd_lines() == []
    else:
        assert status["state"] == "failed"
        assert f"'puppet-apply' FAILED with exit code {puppet_rc}" in sandbox.castelet_motd_lines()[0]


def test_puppet_apply_without_puppet_installed(sandbox: Sandbox) -> None:
    sandbox.stubs(puppet=None)
    env = sandbox.env()
    env["CASTELET_PUPPET"] = "castelet-no-such-puppet"
    result = _run(["bash", str(sandbox.scripts_dir / "castelet-puppet-apply.sh")], sandbox.root, env)

    assert result.returncode == 127
    assert sandbox.status()["state"] == "failed"
    assert "run castelet-bootstrap first" in (sandbox.logs / "puppet-apply.log").read_text()


def test_install_environment_swaps_in_the_staged_copy(sandbox: Sandbox) -> None:
    staging = sandbox.root / "staging"
    (staging / "environment" / "manifests").mkdir(parents=True)
    (staging / "environment" / "manifests" / "site.pp").write_text("node default { }  # new\n")
    (staging / "terraform.yaml").write_text("terraform:\n  deployment: atlas\n")
    (sandbox.environment / "stale.pp").write_text("old\n")

    result = sandbox.run("castelet-install-environment.sh", str(staging))

    assert result.returncode == 0, result.stderr
    assert (sandbox.environment / "manifests" / "site.pp").read_text().endswith("# new\n")
    assert (sandbox.environment / "data" / "terraform.yaml").read_text() == "terraform:\n  deployment: atlas\n"
    assert not (sandbox.environment / "stale.pp").exists(), "files removed upstream must disappear"
    leftovers = [p.name for p in sandbox.root.iterdir() if p.name.startswith("environment.castelet-")]
    assert leftovers == []


def test_install_environment_refuses_incomplete_staging(sandbox: Sandbox) -> None:
    staging = sandbox.root / "staging"
    (staging / "environment").mkdir(parents=True)
    result = sandbox.run("castelet-install-environment.sh", str(staging))

    assert result.returncode == 64
    assert (sandbox.environment / "manifests" / "site.pp").is_file(), "the live environment is untouched"


def test_a_failed_puppet_run_ends_its_report_with_puppets_errors(sandbox: Sandbox) -> None:
    """Puppet keeps going after a failed resource, so the tail of its log is mostly notices:
    the failure report ends with the log's `Error:` lines, which callers that keep only the end
    of the output (Terraform's provisioner errors) then still show."""
    sandbox.stubs(puppet=6)
    notices = "".join(f'echo "Notice: /Stage[main]/Thing[{i}]/ensure: created"\n' for i in range(60))
    _stub(sandbox.bin, "puppet", 'echo "Error: /Stage[main]/Exec[castelet-deliberately-broken]/returns: failed"\n'
          f"{notices}exit 6\n")
    result = sandbox.run("castelet-bootstrap.sh")
    assert result.returncode == 6, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "Error: /Stage[main]/Exec[castelet-deliberately-broken]/returns: failed", result.stderr[-500:]
