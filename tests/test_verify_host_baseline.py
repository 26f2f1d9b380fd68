"""The host-baseline checks of `nox -s verify` (castelet.verify, issue 21 point 13) against what a
Debian 12 instance answers: each passes on an instance configured as castelet now configures it,
and fails, naming what is wrong, on one configured as before (or with the one thing it guards
undone). The answers are the real programs' output: `sshd -T` of Debian 12's sshd for the file
castelet writes now and the one it wrote before (tests/fixtures/host_baseline/), Debian 12's
/etc/sudoers, fail2ban-client's, nft's JSON, needrestart's batch mode, /proc's."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from castelet import verify

FIXTURES = Path(__file__).parent / "fixtures" / "host_baseline"
NOW = 1_760_000_000

SUDOERS = """\
#
# This file MUST be edited with the 'visudo' command as root.
#
Defaults\tenv_reset
Defaults\tmail_badpass
Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults\tuse_pty
#Defaults:%sudo env_keep += "EDITOR"

# User privilege specification
root\tALL=(ALL:ALL) ALL

# Allow members of group sudo to execute any command
%sudo\tALL=(ALL:ALL) ALL

# See sudoers(5) for more information on "@include" directives:

@includedir /etc/sudoers.d
"""

NEEDRESTART_DEFAULTS = """\
# Restart mode: (l)ist only, (i)nteractive or (a)utomatically.
#$nrconf{restart} = 'i';
$nrconf{blacklist} = [ qr(^/usr/bin/sudo(\\.dpkg-new)?$), ];
"""
NEEDRESTART_CASTELET = """\
# Managed by Puppet (castelet::profile::base). Perl, read by needrestart after its defaults.
$nrconf{restart} = 'a';
$nrconf{override_rc}->{qr(^cloud-)} = 0;
"""

OPENSTACK_MOUNTS = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard,errors=remount-ro
90 22 254:16 / /srv/data rw,nosuid,nodev,relatime shared:40 - ext4 /dev/vdb rw
91 22 254:16 /castelet/secrets /var/lib/castelet/secrets rw,nosuid,nodev,relatime shared:40 - ext4 /dev/vdb rw
92 22 254:16 /mariadb /var/lib/mysql rw,nosuid,nodev,relatime shared:40 - ext4 /dev/vdb rw
"""

APP_PID = 4242
SERVICE_CALLS = "_llseek accept accept4 access bind brk clone clone3 close connect epoll_wait execve futex mmap read"


class FakeHost:
    """A testinfra host answering from a table: command line (exact, or a prefix ending in '*')
    => (exit status, output) or a function of the command line returning it."""

    def __init__(self, answers: dict[str, Any], files: dict[str, str] | None = None,
                 packages: set[str] | None = None) -> None:
        self.answers = answers
        self.files = files or {}
        self.packages = packages if packages is not None else {"unattended-upgrades", "needrestart"}
        self.commands: list[str] = []

    @contextmanager
    def sudo(self) -> Iterator[None]:
        yield

    def run(self, command: str) -> Any:
        self.commands.append(command)
        for key, answer in self.answers.items():
            if command == key or (key.endswith("*") and command.startswith(key[:-1])):
                if callable(answer):
                    answer = answer(command)
                rc, out = answer
                return SimpleNamespace(rc=rc, stdout=out, stderr="" if rc == 0 else out)
        raise AssertionError(f"unexpected command: {command}")

    def file(self, path: str) -> Any:
        return SimpleNamespace(exists=path in self.files, content_string=self.files.get(path, ""))

    def package(self, name: str) -> Any:
        return SimpleNamespace(is_installed=name in self.packages)

    def service(self, name: str) -> Any:
        return SimpleNamespace(is_running=True, is_enabled=True)

    def user(self, name: str) -> Any:
        return SimpleNamespace(exists=False)

    def exists(self, command: str) -> bool:
        return False


def terraform(**overrides: Any) -> dict[str, Any]:
    data = {"admin_user": "ada", "admin_cidr": "203.0.113.0/24", "data_dir": "/srv/data",
            "volumes": {"data": {"mount": "/srv/data", "device": "/dev/disk/by-id/*0b1f9c2e-1d3a-4c5b-9*"}}}
    return {**data, **overrides}


def host(**changes: Any) -> FakeHost:
    """A Debian 12 instance as castelet configures it; `changes` replace answers."""
    answers: dict[str, Any] = {
        "python3 -c *": (0, json.dumps(changes.pop("terraform", terraform()))),
        "sshd -T": (0, (FIXTURES / "sshd-T-debian12.txt").read_text()),
        "id -nG -- ada": (0, "ada castelet-ssh\n"),
        "ls -A /etc/sudoers.d": (0, "README\ncastelet-admins\n"),
        "cat /etc/sudoers": (0, SUDOERS),
        "getent group sudo": (0, "sudo:x:27:\n"),
        "fail2ban-client status sshd": (0, "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t0\n"
                                           "`- Actions\n   |- Currently banned:\t0\n"),
        "fail2ban-client status": (0, "Status\n|- Number of jail:\t1\n`- Jail list:\tsshd\n"),
        "ls /etc/fail2ban/jail.d": (0, "00-castelet.local\n"),
        "fail2ban-client get sshd ignoreip": (0, "These IP addresses/networks are ignored:\n|- 127.0.0.0/8\n"
                                                 "|- ::1\n`- 203.0.113.0/24\n"),
        "ls /etc/needrestart/conf.d": (0, "README.needrestart\ncastelet.conf\n"),
        "cat /etc/needrestart/needrestart.conf": (0, NEEDRESTART_DEFAULTS),
        "cat /etc/needrestart/conf.d/castelet.conf": (0, NEEDRESTART_CASTELET),
        "stat -c %Y /run/reboot-required": (1, "stat: cannot statx '/run/reboot-required': No such file or directory"),
        "needrestart -b": (0, "NEEDRESTART-VER: 3.6\nNEEDRESTART-KCUR: 6.1.0-28-amd64\n"
                              "NEEDRESTART-KEXP: 6.1.0-28-amd64\nNEEDRESTART-KSTA: 1\n"),
        "date +%s": (0, f"{NOW}\n"),
        "castelet-volumes check": (0, ""),
        "findmnt -rn -o TARGET": (0, "/\n/srv/data\n/var/lib/castelet/secrets\n/var/lib/mysql\n"),
        "cat /proc/self/mountinfo": (0, OPENSTACK_MOUNTS),
    }
    answers.update(changes.pop("answers", {}))
    files = {"/etc/apt/apt.conf.d/20auto-upgrades": 'APT::Periodic::Unattended-Upgrade "1";\n',
             "/etc/puppet/code/environments/production/data/terraform.yaml": '"data_dir": "/srv/data"\n',
             **changes.pop("files", {})}
    return FakeHost(answers, files, **changes)


# --- SSH and sudo ------------------------------------------------------------------------------


def test_ssh_check_passes_on_castelet_sshd_and_sudo() -> None:
    verify.check_ssh_hardened(host())


def test_ssh_check_fails_on_the_sshd_castelet_configured_before() -> None:
    """Before: no AllowGroups, no keep-alive, Debian's default algorithms (NIST curves, SHA-1 MACs,
    ECDSA host keys)."""
    before = host(answers={"sshd -T": (0, (FIXTURES / "sshd-T-debian12-before.txt").read_text())})
    with pytest.raises(AssertionError, match="ClientAliveInterval 0"):
        verify.check_ssh_hardened(before)


@pytest.mark.parametrize(("keyword", "line", "message"), [
    ("allowgroups", None, "AllowGroups is unset"),
    ("clientaliveinterval", "clientaliveinterval 0", "ClientAliveInterval 0"),
    ("ciphers", "ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,"
                "aes192-ctr,aes256-ctr,aes256-cbc", "ciphers: aes256-cbc beyond the modern set"),
    ("ciphers", "ciphers aes256-gcm@openssh.com", "lacks aes128-ctr, aes128-gcm@openssh.com, aes192-ctr"),
    ("kexalgorithms", "kexalgorithms curve25519-sha256,ecdh-sha2-nistp256", "ecdh-sha2-nistp256 beyond"),
    ("kexalgorithms", "kexalgorithms sntrup761x25519-sha512@openssh.com", "lacks curve25519-sha256"),
    ("macs", "macs hmac-sha2-256-etm@openssh.com,hmac-sha1", "hmac-sha1 beyond"),
    ("hostkeyalgorithms", "hostkeyalgorithms ssh-ed25519,ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256 beyond"),
    ("hostkeyalgorithms", "hostkeyalgorithms rsa-sha2-512", "lacks ssh-ed25519"),
])
def test_ssh_check_names_each_setting_it_refuses(keyword: str, line: str | None, message: str) -> None:
    lines = [x for x in (FIXTURES / "sshd-T-debian12.txt").read_text().splitlines() if not x.startswith(keyword + " ")]
    effective = "\n".join([*lines, *([line] if line else [])]) + "\n"
    with pytest.raises(AssertionError, match=re.escape(message)):
        verify.check_ssh_hardened(host(answers={"sshd -T": (0, effective)}))


def test_ssh_check_fails_when_the_admin_is_not_in_the_ssh_group() -> None:
    with pytest.raises(AssertionError, match=r"the admin user ada is in none of sshd's AllowGroups \['castelet-ssh'\]"):
        verify.check_ssh_hardened(host(answers={"id -nG -- ada": (0, "ada sudo\n")}))


@pytest.mark.parametrize(("answers", "message"), [
    # before: cloud-init's grant stays, and the admin is in Debian's sudo group
    ({"ls -A /etc/sudoers.d": (0, "90-cloud-init-users\nREADME\ncastelet-admins\n")},
     "sudo is also granted by /etc/sudoers.d/90-cloud-init-users"),
    ({"getent group sudo": (0, "sudo:x:27:ada\n")}, "group sudo (granted sudo by /etc/sudoers) has members: ada"),
    ({"cat /etc/sudoers": (0, SUDOERS + "ada ALL=(ALL) NOPASSWD: ALL\n")}, "grants more than root and %sudo"),
    ({"ls -A /etc/sudoers.d": (0, "README\n")}, "/etc/sudoers.d/castelet-admins is missing"),
])
def test_sudo_check_finds_every_other_grant(answers: dict[str, Any], message: str) -> None:
    verify.check_sudo_granted_once(host())
    with pytest.raises(AssertionError, match=re.escape(message)):
        verify.check_sudo_granted_once(host(answers=answers))


# --- fail2ban ----------------------------------------------------------------------------------


def test_fail2ban_check_wants_the_admin_network_ignored() -> None:
    verify.check_fail2ban(host())
    before = {"fail2ban-client get sshd ignoreip": (0, "These IP addresses/networks are ignored:\n|- 127.0.0.0/8\n"
                                                       "`- ::1\n")}
    with pytest.raises(AssertionError, match=r"may ban the admins' network 203\.0\.113\.0/24"):
        verify.check_fail2ban(host(answers=before))
    # a wider ignored network covers it; an IPv6 admin network is compared with IPv6 ones
    wider = {"fail2ban-client get sshd ignoreip": (0, "These IP addresses/networks are ignored:\n`- 203.0.0.0/8\n")}
    verify.check_fail2ban(host(answers=wider))
    with pytest.raises(AssertionError, match="2001:db8::/32"):
        verify.check_fail2ban(host(terraform=terraform(admin_cidr="2001:db8::/32")))


def test_fail2ban_check_refuses_to_ignore_the_whole_internet() -> None:
    verify.check_fail2ban(host(terraform=terraform(admin_cidr="0.0.0.0/0")))
    ignored_all = {"fail2ban-client get sshd ignoreip": (0, "These IP addresses/networks are ignored:\n`- 0.0.0.0/0\n")}
    with pytest.raises(AssertionError, match="it would never ban anyone"):
        verify.check_fail2ban(host(terraform=terraform(admin_cidr="0.0.0.0/0"), answers=ignored_all))


# --- needrestart and a pending reboot ----------------------------------------------------------


def test_needrestart_check_wants_it_installed_and_restarting() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing pending: no warning either
        verify.check_unattended_upgrades(host())
    with pytest.raises(AssertionError, match="needrestart is not installed"):
        verify.check_unattended_upgrades(host(packages={"unattended-upgrades"}))
    listing = {"ls /etc/needrestart/conf.d": (0, "README.needrestart\n")}
    with pytest.raises(AssertionError, match=r"restart mode is its default \(i\)"):
        verify.check_unattended_upgrades(host(answers=listing))
    # a later file that sets it back to list-only wins, as in needrestart
    later = {"ls /etc/needrestart/conf.d": (0, "castelet.conf\nzz-local.conf\n"),
             "cat /etc/needrestart/conf.d/zz-local.conf": (0, "$nrconf{restart} = 'l';\n")}
    with pytest.raises(AssertionError, match="restart mode is l"):
        verify.check_unattended_upgrades(host(answers=later))


def test_a_pending_reboot_warns_then_fails_after_a_week() -> None:
    """A reboot asked for an hour ago is a warning (naming the packages and what needrestart says);
    one asked for 8 days ago fails verify."""
    pending = {"stat -c %Y /run/reboot-required": (0, f"{NOW - 3600}\n"),
               "cat /run/reboot-required.pkgs": (0, "linux-image-6.1.0-29-amd64\nlinux-base\n"),
               "needrestart -b": (0, "NEEDRESTART-VER: 3.6\nNEEDRESTART-KCUR: 6.1.0-28-amd64\n"
                                     "NEEDRESTART-KEXP: 6.1.0-29-amd64\nNEEDRESTART-KSTA: 3\n"
                                     "NEEDRESTART-SVC: dbus.service\n")}
    with pytest.warns(verify.PendingReboot) as caught:
        verify.check_pending_reboot(host(answers=pending))
    message = str(caught[0].message)
    assert "/run/reboot-required (linux-base, linux-image-6.1.0-29-amd64)" in message
    assert "not the newest installed (6.1.0-29-amd64)" in message and "dbus.service" in message
    assert "asked 0.0 days ago" in message
    old = {**pending, "stat -c %Y /run/reboot-required": (0, f"{NOW - 8 * 86400}\n")}
    with pytest.raises(AssertionError, match=r"asked 8\.0 days ago\): reboot in a maintenance window"):
        verify.check_pending_reboot(host(answers=old))
    # needrestart alone (a kernel installed by hand, a deferred service): a warning, never a failure
    kernel_only = {"needrestart -b": pending["needrestart -b"]}
    with pytest.warns(verify.PendingReboot, match="not the newest installed"):
        verify.check_pending_reboot(host(answers=kernel_only))


# --- data volumes ------------------------------------------------------------------------------


def test_volume_check_wants_every_mount_of_the_volumes_nodev_nosuid() -> None:
    verify.check_state_on_volumes(host())
    before = OPENSTACK_MOUNTS.replace("rw,nosuid,nodev,relatime", "rw,relatime")
    with pytest.raises(AssertionError, match=re.escape(
            "/srv/data (volume data: no nodev, nosuid); /var/lib/castelet/secrets (volume data: no nodev, nosuid); "
            "/var/lib/mysql (volume data: no nodev, nosuid)")):
        verify.check_state_on_volumes(host(answers={"cat /proc/self/mountinfo": (0, before)}))
    one_bind = OPENSTACK_MOUNTS.replace("/mariadb /var/lib/mysql rw,nosuid,nodev,", "/mariadb /var/lib/mysql rw,nodev,")
    with pytest.raises(AssertionError, match=re.escape("/var/lib/mysql (volume data: no nosuid)")):
        verify.check_state_on_volumes(host(answers={"cat /proc/self/mountinfo": (0, one_bind)}))


def test_volume_check_on_the_local_cloud_looks_at_the_volumes_directory_only() -> None:
    """LXD mounts a custom volume as a directory of the storage pool, which also holds the
    container's root: the root (and another volume) may lack the flags, the volume may not."""
    lxd = ("500 480 7:3 /containers/atlas-web1/rootfs / rw,relatime,idmapped shared:250 - ext4 /dev/loop3 rw\n"
           "530 500 7:3 /custom/default_atlas-data /srv/data rw,nosuid,nodev,relatime,idmapped shared:252 - ext4 "
           "/dev/loop3 rw\n"
           "531 500 7:3 /custom/default_atlas-data/castelet/secrets /var/lib/castelet/secrets rw,nosuid,nodev,"
           "relatime shared:252 - ext4 /dev/loop3 rw\n"
           "533 500 7:3 /custom/default_atlas-data2 /srv/other rw,relatime shared:253 - ext4 /dev/loop3 rw\n")
    local = {"volumes": {"data": {"mount": "/srv/data"}}}
    verify.check_volumes_nodev_nosuid(host(terraform=terraform(**local),
                                           answers={"cat /proc/self/mountinfo": (0, lxd)}))
    unflagged = lxd.replace("/srv/data rw,nosuid,nodev,relatime", "/srv/data rw,relatime")
    message = "mounted without nodev or nosuid: /srv/data (volume data: no nodev, nosuid)."
    with pytest.raises(AssertionError, match=re.escape(message)):
        verify.check_volumes_nodev_nosuid(host(terraform=terraform(**local),
                                               answers={"cat /proc/self/mountinfo": (0, unflagged)}))


# --- the metadata service ----------------------------------------------------------------------


def _firewall(rule: bool, refuses: bool) -> tuple[dict[str, Any], dict[str, int]]:
    """Answers of a host whose output chain has (or has not) the metadata rule, and whose probe as
    nobody is (or is not) refused by it."""
    state = {"packets": 3}

    def listing(command: str) -> tuple[int, str]:
        if not rule:
            return 1, "Error: No such file or directory\nlist chain inet castelet output\n"
        expr = [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                           "right": "169.254.169.254"}},
                {"match": {"op": "!=", "left": {"meta": {"key": "skuid"}}, "right": 0}},
                {"counter": {"packets": state["packets"], "bytes": 60 * state["packets"]}},
                {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]
        return 0, json.dumps({"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"chain": {"family": "inet", "table": "castelet", "name": "output", "handle": 2}},
            {"rule": {"family": "inet", "table": "castelet", "chain": "output", "handle": 4,
                      "comment": "metadata-service", "expr": expr}}]})

    def probe(command: str) -> tuple[int, str]:
        assert shlex.split(command)[:4] == ["runuser", "-u", "nobody", "--"]
        if refuses:
            state["packets"] += 1
            return 0, "OSError 113 [Errno 113] No route to host\n"
        return 0, "TimeoutError None timed out\n"

    return {"nft -j list chain inet castelet output": listing, "runuser -u nobody -- *": probe}, state


def test_metadata_check_wants_the_firewall_to_refuse_nobody() -> None:
    answers, _ = _firewall(rule=True, refuses=True)
    verify.check_metadata_service_refused(host(answers=answers))
    before, _ = _firewall(rule=False, refuses=False)
    with pytest.raises(AssertionError, match="no output chain in the castelet firewall"):
        verify.check_metadata_service_refused(host(answers=before))
    # the local cloud has no metadata service: a timeout is not the rule's doing
    elsewhere, _ = _firewall(rule=True, refuses=False)
    with pytest.raises(AssertionError, match=r"failed \(TimeoutError None timed out\), but not through the castelet"):
        verify.check_metadata_service_refused(host(answers=elsewhere))
    reached = {**answers, "runuser -u nobody -- *": (0, "connected\n")}
    with pytest.raises(AssertionError, match="user nobody reached the metadata service"):
        verify.check_metadata_service_refused(host(answers=reached))


def test_metadata_check_runs_with_the_listening_ports_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "services_of", lambda role: [])
    answers, state = _firewall(rule=True, refuses=True)
    listening = {"ss -H -l -n -t -u": (0, "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n")}
    verify.check_only_declared_ports_listen(host(answers={**answers, **listening}), "web")
    assert state["packets"] == 4


# --- the Node.js unit --------------------------------------------------------------------------


def _node_host(show: str, status: str, proc_mount: str) -> FakeHost:
    mountinfo = ("812 811 254:1 / / ro,relatime - ext4 /dev/vda1 rw\n"
                 "830 812 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n" + proc_mount)
    answers = {
        "systemctl list-units --plain --no-legend --state=active 'castelet-nodejs-app@*.service'":
            (0, "castelet-nodejs-app@blue.service loaded active running Castelet Node.js application (slot blue)\n"),
        "systemctl show -p MainPID -p ProtectProc -p RestrictNamespaces -p SystemCallFilter -- "
        "castelet-nodejs-app@blue.service": (0, show),
        f"cat /proc/{APP_PID}/status": (0, status),
        "cat /proc/1/status": (0, "Name:\tsystemd\nSeccomp:\t0\nSeccomp_filters:\t0\nCapBnd:\t000001ffffffffff\n"),
        f"cat /proc/{APP_PID}/mountinfo": (0, mountinfo),
    }
    return host(answers=answers, files={"/etc/systemd/system/castelet-nodejs-app@.service": "[Service]\n"})


CONFINED = (f"MainPID={APP_PID}\nProtectProc=invisible\nRestrictNamespaces=yes\nSystemCallFilter={SERVICE_CALLS}\n",
            "Name:\tnode\nSeccomp:\t2\nSeccomp_filters:\t9\nCapBnd:\t0000000000000000\n",
            "870 812 0:90 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw,hidepid=invisible\n")


def test_app_check_wants_the_slot_confined_and_the_kernel_to_enforce_it() -> None:
    verify.check_app_confined(_node_host(*CONFINED))
    # before: the unit had none of the three (its other seccomp-based settings gave it a filter)
    before_show = f"MainPID={APP_PID}\nProtectProc=default\nRestrictNamespaces=no\nSystemCallFilter=\n"
    with pytest.raises(AssertionError, match="ProtectProc=default"):
        verify.check_app_confined(_node_host(before_show, CONFINED[1], ""))
    # configured, but the process predates it (or the kernel did not apply it)
    with pytest.raises(AssertionError, match=r"its /proc shows every process \(ProtectProc=invisible not in effect\)"):
        verify.check_app_confined(_node_host(CONFINED[0], CONFINED[1], ""))
    with pytest.raises(AssertionError, match="no seccomp filter of its own"):
        unfiltered = CONFINED[1].replace("filters:\t9", "filters:\t0")
        verify.check_app_confined(_node_host(CONFINED[0], unfiltered, CONFINED[2]))
    loose = CONFINED[0].replace("SystemCallFilter=", "SystemCallFilter=mount reboot ")
    with pytest.raises(AssertionError, match="its system call filter allows mount, reboot"):
        verify.check_app_confined(_node_host(loose, CONFINED[1], CONFINED[2]))
    denylist = CONFINED[0].replace(f"SystemCallFilter={SERVICE_CALLS}", "SystemCallFilter=~mount")
    with pytest.raises(AssertionError, match="no system call allow-list"):
        verify.check_app_confined(_node_host(denylist, CONFINED[1], CONFINED[2]))


def test_app_check_runs_with_the_web_roots_check_and_only_where_the_unit_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "services_of", lambda role: [])
    confined = _node_host(*CONFINED)
    verify.check_web_roots_not_writable(confined, "web")
    assert any(command.startswith("systemctl show") for command in confined.commands)
    plain = host()
    verify.check_app_confined(plain)
    assert plain.commands == []
    stopped = _node_host(*CONFINED)
    stopped.answers["systemctl list-units --plain --no-legend --state=active 'castelet-nodejs-app@*.service'"] = (0, "")
    with pytest.raises(AssertionError, match=re.escape("no slot of castelet-nodejs-app@.service is running")):
        verify.check_app_confined(stopped)



# --- the nodejs-app CI's redeploy account ------------------------------------------------------

REDEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5iIhev2hhjgWspSDHE5XtW+bq8mxE3rWW070cE/9Zd ci@gitlab"
REDEPLOY_SUDOERS = ("# Managed by Puppet (castelet::profile::nodejs_app): the CI's redeploy, nothing else.\n"
                    "castelet-redeploy ALL=(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy\n")
SUDO_L = """\
Matching Defaults entries for castelet-redeploy on app-web1:
    env_reset, mail_badpass, secure_path=/usr/local/sbin\\:/usr/local/bin\\:/usr/sbin\\:/usr/bin\\:/sbin\\:/bin, use_pty

User castelet-redeploy may run the following commands on app-web1:
    (root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy
"""
KEYS_FILE = "/etc/ssh/castelet-authorized-keys-castelet-redeploy"


def redeploy_host(**answers: Any) -> FakeHost:
    """A nodejs-app instance with a redeploy key, as castelet configures it."""
    lines = (FIXTURES / "sshd-T-debian12.txt").read_text().splitlines()
    sshd = "\n".join(line for line in lines if not line.startswith(("forcecommand", "permittty", "authorizedkeysfile")))
    sshd += f"\nauthorizedkeysfile {KEYS_FILE}"
    sshd += f"\nforcecommand {verify.REDEPLOY_COMMAND}\npermittty no\n"
    table: dict[str, Any] = {
        "ls -A /etc/sudoers.d": (0, "README\ncastelet-admins\ncastelet-redeploy\n"),
        "cat /etc/sudoers.d/castelet-redeploy": (0, REDEPLOY_SUDOERS),
        "getent passwd castelet-redeploy": (0, "castelet-redeploy:x:998:998::/var/lib/castelet-node:/bin/sh\n"),
        "id -nG -- castelet-redeploy": (0, "castelet-redeploy castelet-ssh\n"),
        "getent shadow castelet-redeploy": (0, "castelet-redeploy:!:20400::::::\n"),
        f"stat -c '%U %G %a' {KEYS_FILE}": (0, "root root 644\n"),
        f"cat {KEYS_FILE}": (0, f"# Managed\nrestrict,command=\"{verify.REDEPLOY_COMMAND}\" {REDEPLOY_KEY}\n"),
        "sshd -T -C *": (0, sshd),
        "sudo -l -U castelet-redeploy": (0, SUDO_L),
        **answers,
    }
    return host(terraform=terraform(settings={"redeploy_ssh_key": REDEPLOY_KEY}), answers=table)


def test_sudo_check_accepts_the_one_redeploy_rule_and_nothing_else() -> None:
    """Decision 53: /etc/sudoers.d/castelet-redeploy is the one drop-in besides castelet-admins,
    accepted only while it holds the redeploy line alone."""
    verify.check_sudo_granted_once(redeploy_host())
    for extra in ("castelet-redeploy ALL=(ALL) NOPASSWD: ALL\n",
                  "castelet-redeploy ALL=(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy\n",
                  "castelet-redeploy ALL=(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy, /bin/sh\n",
                  "#includedir /etc/castelet\n", "ada ALL=(ALL) ALL\n"):
        for content in (REDEPLOY_SUDOERS + extra, extra):
            with pytest.raises(AssertionError, match="castelet-redeploy grants more or other"):
                verify.check_sudo_granted_once(redeploy_host(
                    **{"cat /etc/sudoers.d/castelet-redeploy": (0, content)}))


def test_redeploy_account_check_passes_as_castelet_configures_it() -> None:
    verify.check_redeploy_account(redeploy_host())
    # no key, no account
    verify.check_redeploy_account(host(answers={"getent passwd castelet-redeploy": (2, "")}))


@pytest.mark.parametrize(("answers", "message"), [
    ({"id -nG -- castelet-redeploy": (0, "castelet-redeploy\n")}, "expected castelet-ssh"),
    ({"id -nG -- castelet-redeploy": (0, "castelet-redeploy castelet-ssh sudo\n")}, "and not sudo"),
    ({"getent shadow castelet-redeploy": (0, "castelet-redeploy:$y$j9T$abc:20400::::::\n")}, "has a password"),
    ({f"stat -c '%U %G %a' {KEYS_FILE}": (0, "castelet-redeploy castelet-redeploy 644\n")}, "must be root's"),
    ({f"cat {KEYS_FILE}": (0, f"{REDEPLOY_KEY}\n")}, "restricted to the redeploy"),
    ({f"cat {KEYS_FILE}": (0, f"restrict,command=\"{verify.REDEPLOY_COMMAND}\" {REDEPLOY_KEY}\n"
                              f"{REDEPLOY_KEY.replace('ci@', 'x@')}\n")}, "the redeploy key alone"),
    ({"sudo -l -U castelet-redeploy": (0, SUDO_L + "    (ALL : ALL) ALL\n")}, "more or other than the redeploy"),
    ({"sshd -T -C *": (0, (FIXTURES / "sshd-T-debian12.txt").read_text())}, "does not force the redeploy"),
    ({"getent passwd castelet-redeploy": (2, "")}, "no account castelet-redeploy"),
])
def test_redeploy_account_check_names_what_is_wrong(answers: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        verify.check_redeploy_account(redeploy_host(**answers))


def test_redeploy_account_without_a_key_is_refused() -> None:
    with pytest.raises(AssertionError, match="no redeploy_ssh_key is set"):
        verify.check_redeploy_account(host(answers={
            "getent passwd castelet-redeploy": (0, "castelet-redeploy:x:998:998::/:/bin/sh\n")}))
