"""Issue 21 point 13, the host baseline, in the catalogs of the real Puppet (the harness of
test_puppet.py): data volumes nodev,nosuid; needrestart; fail2ban never bans the admins' network;
sshd's AllowGroups, keep-alive and algorithms; one place grants sudo; the Node.js unit's sandbox;
no route to the cloud's metadata service but for root.

Where a rendered file can be checked by the program that reads it on the instance, it is: `nft`
(and, as root, the rule at work in a network namespace of its own), Perl for needrestart's
configuration, `systemd-analyze verify` for the unit, `ssh -Q` for the algorithm names."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_puppet import TLS_SETTINGS, Compiled, debian_facts, errors_of, make_environment

pytestmark = pytest.mark.puppet

REPO = Path(__file__).resolve().parents[1]
NODEJS_DATA = REPO / "blueprints/nodejs-app/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml"
STATIC_DATA = REPO / "blueprints/static-site/{{cookiecutter.project_slug}}/puppet/data/blueprint.yaml"
SSHD_FILE = "/etc/ssh/sshd_config.d/00-castelet.conf"
NODE_UNIT = "/etc/systemd/system/castelet-nodejs-app@.service"
SSH_GROUP = "castelet-ssh"
ON_VOLUME: dict[str, Any] = {"data_dir": "/srv/data", "backups": None}
# The nodejs-app scenario carries the GitLab CI's redeploy key (one compile for both).
REDEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5iIhev2hhjgWspSDHE5XtW+bq8mxE3rWW070cE/9Zd ci@gitlab"
REDEPLOY_COMMAND = "sudo -n /usr/local/sbin/castelet-node-deploy deploy"
# What OpenSSH's default client on Debian 12 (9.2) and 13 (10.0) offers first, and Terraform's.
CLIENT_CIPHERS = {"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                  "aes128-ctr", "aes192-ctr", "aes256-ctr"}


@pytest.fixture(scope="module")
def catalogs(repo_root: Path, puppet_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("host_baseline")
    nodejs = yaml.safe_load(NODEJS_DATA.read_text())
    static = yaml.safe_load(STATIC_DATA.read_text())
    static_settings = {"project_name": "Atlas", **TLS_SETTINGS, "backup_repository": "", "deploy_ssh_keys": "",
                       "site_git_url": "", "site_git_ref": "main"}
    envs = {
        "lamp": make_environment(base / "lamp", puppet_bin, repo_root, "castelet::role::lamp", **ON_VOLUME),
        "open_admin": make_environment(base / "open_admin", puppet_bin, repo_root, "castelet::role::lamp",
                                       admin_cidr="0.0.0.0/0"),
        "no_volume": make_environment(base / "no_volume", puppet_bin, repo_root, "castelet::role::lamp", volumes={}),
        "static_site": make_environment(base / "static_site", puppet_bin, repo_root, "castelet::role::static_site",
                                        blueprint=static, settings=static_settings, **ON_VOLUME),
        "nodejs": make_environment(
            base / "nodejs", puppet_bin, repo_root, "castelet::role::nodejs_app", blueprint=nodejs,
            settings={**TLS_SETTINGS, "app_git_url": "https://git.example.org/lab/app.git", "app_git_ref": "main",
                      "postgresql": "false", "redeploy_ssh_key": REDEPLOY_KEY}, **ON_VOLUME),
    }  # fmt: skip
    jobs = {name: (env, debian_facts("12")) for name, env in envs.items()}
    jobs["lamp13"] = (envs["lamp"], debian_facts("13"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(env.compile, facts) for name, (env, facts) in jobs.items()}
        results: dict[str, Any] = {name: future.result() for name, future in futures.items()}
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {errors_of(result)}"
    yield results


def _sshd(cat: Compiled) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in cat.resource("File", SSHD_FILE)["content"].splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, _, value = line.partition(" ")
            settings.setdefault(keyword, []).append(value.strip())
    return settings


# --- SSH ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["lamp", "lamp13"])
def test_sshd_lets_one_group_in_with_keepalive_and_modern_algorithms(catalogs: dict[str, Any], scenario: str) -> None:
    cat: Compiled = catalogs[scenario]
    sshd = _sshd(cat)
    assert sshd["AllowGroups"] == [SSH_GROUP]
    assert sshd["ClientAliveInterval"] == ["300"] and sshd["ClientAliveCountMax"] == ["2"]
    ciphers = set(sshd["Ciphers"][0].split(","))
    assert ciphers == CLIENT_CIPHERS, ciphers
    kex = sshd["KexAlgorithms"][0].split(",")
    assert {"curve25519-sha256", "sntrup761x25519-sha512@openssh.com"} <= set(kex)
    assert not [k for k in kex if "sha1" in k or "nistp" in k or k == "diffie-hellman-group14-sha256"], kex
    # ML-KEM only where OpenSSH knows it (9.9+: Debian 13); an unknown name fails `sshd -t`
    assert (kex[0] == "mlkem768x25519-sha256") == (scenario == "lamp13"), kex
    macs = sshd["MACs"][0].split(",")
    assert macs[0].endswith("-etm@openssh.com") and not [m for m in macs if "sha1" in m or "md5" in m or "64" in m]
    assert sshd["HostKeyAlgorithms"][0].split(",")[0] == "ssh-ed25519"
    assert "ssh-rsa" not in sshd["HostKeyAlgorithms"][0].split(",")


def test_sshd_algorithm_names_are_known_to_debian_12s_openssh(catalogs: dict[str, Any]) -> None:
    """Every name of the Debian 12 file is one `ssh -Q` of the OpenSSH here (9.2, Debian 12's) knows:
    `sshd -t` would refuse the file otherwise, and Puppet would keep the old one. Debian 13's file
    adds ML-KEM only."""
    if shutil.which("ssh") is None:
        pytest.fail("ssh (openssh-client) is missing: apt-get install openssh-client")
    known = {query: set(subprocess.run(["ssh", "-Q", query], capture_output=True, text=True, check=True).stdout.split())
             for query in ("cipher", "mac", "kex", "key-sig")}
    sshd = _sshd(catalogs["lamp"])
    for keyword, query in (("Ciphers", "cipher"), ("MACs", "mac"), ("KexAlgorithms", "kex"),
                           ("HostKeyAlgorithms", "key-sig")):
        unknown = set(sshd[keyword][0].split(",")) - known[query]
        assert not unknown, f"{keyword}: {unknown}"
    on13 = _sshd(catalogs["lamp13"])
    assert set(on13["KexAlgorithms"][0].split(",")) - set(sshd["KexAlgorithms"][0].split(",")) == {
        "mlkem768x25519-sha256"}
    assert {k: v for k, v in on13.items() if k != "KexAlgorithms"} == {
        k: v for k, v in sshd.items() if k != "KexAlgorithms"}


def test_admins_are_in_the_ssh_group_before_sshd_requires_it(catalogs: dict[str, Any]) -> None:
    """AllowGroups locks out whoever is not in the group: the admin (created by cloud-init) joins it
    before the file that names it is written, and a failure to add them keeps the old file."""
    cat: Compiled = catalogs["lamp"]
    assert cat.resource("Group", SSH_GROUP)["system"] is True
    user = cat.resource("User", "ada")
    assert user["groups"] == [SSH_GROUP] and user["membership"] == "inclusive"
    required = str(cat.resource("File", SSHD_FILE)["require"])
    assert "User[ada]" in required and f"Group[{SSH_GROUP}]" in required


def test_static_site_deploy_account_may_still_log_in(catalogs: dict[str, Any]) -> None:
    """The static site's deploy account logs in over SSH (rsync uploads): it is in the SSH group."""
    cat: Compiled = catalogs["static_site"]
    deploy = cat.resource("User", "deploy")
    assert deploy["groups"] == [SSH_GROUP], deploy
    assert f"Group[{SSH_GROUP}]" in str(deploy["require"])
    assert _sshd(cat)["AllowGroups"] == [SSH_GROUP]


def test_nodejs_redeploy_account_runs_one_forced_command(catalogs: dict[str, Any]) -> None:
    """The CI's redeploy key opens `castelet-redeploy`, in the SSH group, without password, for one
    command: its key line in a keys file of root's says `restrict,command=...`, and an sshd
    `Match User` drop-in forces the same command, no terminal, no forwarding (issue 21 point 11)."""
    cat: Compiled = catalogs["nodejs"]
    user = cat.resource("User", "castelet-redeploy")
    assert user["groups"] == [SSH_GROUP] and user["membership"] == "inclusive", user
    assert user["password"] == "!" and user["home"] == "/var/lib/castelet-node" and user["system"] is True
    assert f"Group[{SSH_GROUP}]" in str(user["require"])
    keys_file = "/etc/ssh/castelet-authorized-keys-castelet-redeploy"
    keys = cat.resource("File", keys_file)
    assert (keys["owner"], keys["group"], keys["mode"]) == ("root", "root", "0644")
    lines = [line for line in keys["content"].splitlines() if not line.startswith("#")]
    assert lines == [f'restrict,command="{REDEPLOY_COMMAND}" {REDEPLOY_KEY}']
    dropin = cat.resource("File", "/etc/ssh/sshd_config.d/50-castelet-redeploy.conf")
    assert dropin["validate_cmd"] == "/usr/sbin/sshd -t -f %"
    assert "Exec[castelet-sshd-config-test]" in str(dropin["notify"])
    settings = [line.split(None, 1) for line in dropin["content"].splitlines() if line.strip()
                and not line.startswith("#")]
    assert settings[0] == ["Match", "User castelet-redeploy"]
    body = {k: v for k, v in settings[1:]}
    assert body["AuthorizedKeysFile"] == keys_file and body["ForceCommand"] == REDEPLOY_COMMAND
    assert body["PermitTTY"] == "no" and body["DisableForwarding"] == "yes"
    assert body["AuthenticationMethods"] == "publickey"


def test_nodejs_redeploy_sudo_is_the_one_command_line(catalogs: dict[str, Any]) -> None:
    """One sudoers file for the redeploy account: the deploy command with its argument, nothing
    else (sudo matches the arguments given in a rule exactly); checked by visudo before it is
    in place. Without a key (the static site, another blueprint) there is no such file."""
    cat: Compiled = catalogs["nodejs"]
    sudoers = cat.resource("File", "/etc/sudoers.d/castelet-redeploy")
    assert (sudoers["owner"], sudoers["group"], sudoers["mode"]) == ("root", "root", "0440")
    assert sudoers["validate_cmd"] == "/usr/sbin/visudo -c -f %"
    rules = [line for line in sudoers["content"].splitlines() if not line.startswith("#")]
    assert rules == ["castelet-redeploy ALL=(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy"]
    assert ("File", "/etc/sudoers.d/castelet-redeploy") not in catalogs["lamp"].resources


# --- sudo --------------------------------------------------------------------------------------


def test_sudo_is_granted_in_one_place(catalogs: dict[str, Any]) -> None:
    """castelet-admins grants sudo; the admins are not in Debian's `sudo` group (inclusive
    membership takes them out of it), and cloud-init's 90-cloud-init-users goes once
    castelet-admins is in place."""
    cat: Compiled = catalogs["lamp"]
    admins = cat.resource("File", "/etc/sudoers.d/castelet-admins")
    assert admins["content"].splitlines()[-1] == "ada ALL=(ALL:ALL) NOPASSWD: ALL"
    cloud_init = cat.resource("File", "/etc/sudoers.d/90-cloud-init-users")
    assert cloud_init["ensure"] == "absent"
    assert "File[/etc/sudoers.d/castelet-admins]" in str(cloud_init["require"])
    for title in cat.titles("User"):
        user = cat.resource("User", title)
        assert "sudo" not in user.get("groups", []), title


# --- fail2ban ----------------------------------------------------------------------------------


def _ignoreip(cat: Compiled) -> list[str]:
    jail = str(cat.resource("File", "/etc/fail2ban/jail.d/00-castelet.local")["content"])
    return next(line for line in jail.splitlines() if line.startswith("ignoreip = ")).split()[2:]


def test_fail2ban_never_bans_the_admin_network(catalogs: dict[str, Any]) -> None:
    assert _ignoreip(catalogs["lamp"]) == ["127.0.0.1/8", "::1", "203.0.113.0/24"]


def test_fail2ban_still_bans_when_the_admin_network_is_the_internet(catalogs: dict[str, Any]) -> None:
    """admin_cidr 0.0.0.0/0 (admin_cidr_open_to_all): ignoring it would turn every ban off."""
    assert _ignoreip(catalogs["open_admin"]) == ["127.0.0.1/8", "::1"]


# --- needrestart -------------------------------------------------------------------------------


def _needrestart_decisions(conf: str, tmp_path: Path, units: list[str]) -> tuple[str, dict[str, int]]:
    """needrestart's restart mode and, per unit, whether its default selection keeps it (1) or
    defers it (0): the file evaluated by Perl as needrestart evaluates it (after its defaults,
    here a subset of Debian's), and its override_rc matched as needrestart.pl matches it."""
    (tmp_path / "castelet.conf").write_text(conf)
    script = r"""
        our %nrconf = (restart => 'i', override_rc => { qr(^dbus) => 0, qr(^systemd-logind) => 0 });
        my $fn = shift @ARGV;
        eval do { local(@ARGV, $/) = $fn; <> };
        die "Error parsing $fn: $@" if $@;
        print "$nrconf{restart}\n";
        for my $rc (@ARGV) {
            my $restart = 1;
            foreach my $re (keys %{$nrconf{override_rc}}) {
                next unless($rc =~ /$re/);
                $restart = $nrconf{override_rc}->{$re};
                last;
            }
            print "$rc $restart\n";
        }
    """
    proc = subprocess.run(["perl", "-e", script, str(tmp_path / "castelet.conf"), *units],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    mode, *lines = proc.stdout.splitlines()
    return mode, {line.split()[0]: int(line.split()[1]) for line in lines}


def test_needrestart_restarts_services_but_never_a_one_shot_job(catalogs: dict[str, Any], tmp_path: Path) -> None:
    cat: Compiled = catalogs["lamp"]
    assert cat.resource("Package", "needrestart")["ensure"] == "installed"
    conf = cat.resource("File", "/etc/needrestart/conf.d/castelet.conf")
    assert "Package[needrestart]" in str(conf["require"])
    units = ["apache2.service", "mariadb.service", "ssh.service", "castelet-nodejs-app@blue.service",
             "cloud-final.service", "cloud-init.service", "castelet-backup.service", "castelet-tls-issue.service",
             "run-u42.service", "dbus.service"]
    mode, decisions = _needrestart_decisions(conf["content"], tmp_path, units)
    assert mode == "a"
    restarted = {unit for unit, keep in decisions.items() if keep}
    assert restarted == {"apache2.service", "mariadb.service", "ssh.service", "castelet-nodejs-app@blue.service"}


# --- data volumes ------------------------------------------------------------------------------


def test_volumes_and_their_bind_mounts_are_remounted_nodev_nosuid(catalogs: dict[str, Any]) -> None:
    """Puppet remounts every mount of the volumes that lacks nodev or nosuid, after checking they
    are mounted and before any castelet::persistent_dir binds from them; a boot unit does it again
    once the local file systems are mounted."""
    cat: Compiled = catalogs["lamp"]
    remount = cat.resource("Exec", "castelet-volume-options")
    assert remount["command"] == "castelet-volume-options apply /srv/data /srv/scratch"
    assert remount["unless"] == "castelet-volume-options check /srv/data /srv/scratch"
    assert "Exec[castelet-volumes-check]" in str(remount["require"])
    tool = cat.resource("File", "/usr/local/sbin/castelet-volume-options")
    assert tool["mode"] == "0755"
    assert tool["content"] == (REPO / "puppet/modules/castelet/files/castelet-volume-options.py").read_text()
    unit = cat.resource("File", "/etc/systemd/system/castelet-volume-options.service")["content"].splitlines()
    for line in ("DefaultDependencies=no", "After=local-fs.target", "RequiresMountsFor=/srv/data /srv/scratch",
                 "Before=sysinit.target shutdown.target", "Type=oneshot",
                 "ExecStart=/usr/local/sbin/castelet-volume-options apply /srv/data /srv/scratch",
                 "WantedBy=sysinit.target"):
        assert line in unit, line
    assert cat.resource("Service", "castelet-volume-options.service")["enable"] is True
    # bind mounts made later inherit the flags: they wait for the class that remounts
    assert "Class[Castelet::Profile::Volumes]" in str(
        cat.resource("Exec", "castelet-persistent-dir-/var/lib/mysql")["require"])
    plain: Compiled = catalogs["no_volume"]
    assert ("Exec", "castelet-volume-options") not in plain.resources
    assert plain.resource("File", "/etc/systemd/system/castelet-volume-options.service")["ensure"] == "absent"


def test_volume_options_unit_passes_systemd_analyze(catalogs: dict[str, Any], tmp_path: Path) -> None:
    _analyze(catalogs["lamp"].resource("File", "/etc/systemd/system/castelet-volume-options.service")["content"],
             tmp_path / "castelet-volume-options.service")


# --- the metadata service ----------------------------------------------------------------------


def test_metadata_service_is_refused_to_every_user_but_root(catalogs: dict[str, Any], tmp_path: Path) -> None:
    content = catalogs["lamp"].resource("File", "/etc/nftables.conf")["content"]
    chain = content[content.index("chain output {"):]
    assert "type filter hook output priority filter; policy accept;" in chain
    assert ('ip daddr 169.254.169.254 meta skuid != 0 counter reject with icmpx type admin-prohibited '
            'comment "metadata-service"') in chain
    assert ('ip6 daddr fe80::a9fe:a9fe meta skuid != 0 counter reject with icmpx type admin-prohibited '
            'comment "metadata-service-ipv6"') in chain
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(content)
    nft = shutil.which("nft") or "/usr/sbin/nft"
    proc = subprocess.run([nft, "-c", "-f", str(ruleset)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


PROBE = """import socket, sys
try:
    socket.create_connection(("169.254.169.254", 80), timeout=5).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("runuser") is None,
                    reason="needs root, unshare and runuser (a network namespace of the test's own)")
def test_metadata_rule_at_work_in_a_network_namespace(catalogs: dict[str, Any], tmp_path: Path) -> None:
    """The rendered ruleset loaded in a network namespace of the test's own, where 169.254.169.254
    is a local address that answers with a reset: user nobody gets "no route to host" from the
    rule, root (cloud-init) reaches the address (the reset: "connection refused")."""
    (tmp_path / "nftables.conf").write_text(catalogs["lamp"].resource("File", "/etc/nftables.conf")["content"])
    probe = shlex.quote(PROBE)
    script = f"""set -e
ip link set lo up
ip route add local 169.254.169.254/32 dev lo
nft -f {tmp_path}/nftables.conf
printf 'nobody %s\\n' "$(runuser -u nobody -- python3 -c {probe})"
printf 'root %s\\n' "$(python3 -c {probe})"
nft list chain inet castelet output | grep -c 'counter packets 1 '
"""
    proc = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["nobody OSError", "root ConnectionRefusedError"], proc.stdout
    assert lines[2] == "1", proc.stdout  # the IPv4 rule counted nobody's packet, and only it


# --- the Node.js unit --------------------------------------------------------------------------


def _analyze(content: str, path: Path) -> None:
    """`systemd-analyze verify` knows every directive of the unit (systemd 252, Debian 12's; the
    directives are older than it, so Debian 13's 257 knows them too)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    # the programs it names do not exist here: only the directives are checked
    path.write_text(content.replace("/usr/local/sbin/castelet-volume-options", "/bin/true")
                    .replace("/usr/bin/node ${CASTELET_ENTRY}", "/bin/true"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "Unknown key" in line or "Failed to parse" in line or "Invalid" in line or "Unknown section" in line]
    assert not problems, problems


def test_nodejs_unit_is_sandboxed(catalogs: dict[str, Any], tmp_path: Path) -> None:
    unit = catalogs["nodejs"].resource("File", NODE_UNIT)["content"]
    lines = unit.splitlines()
    for line in ("ProtectProc=invisible", "RestrictNamespaces=yes", "SystemCallFilter=@system-service",
                 "SystemCallErrorNumber=EPERM", "SystemCallArchitectures=native",
                 # kept from before
                 "User=castelet-app", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="):
        assert line in lines, line
    assert not [line for line in lines if line.startswith("SystemCallFilter=~")]
    _analyze(unit, tmp_path / "castelet-nodejs-app@blue.service")
