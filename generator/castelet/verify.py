"""Checks shared by every blueprint's testinfra module.

A rendered deployment carries a copy of this file as ``tests/castelet_checks.py``; it reads the
resolved manifest (``.castelet/blueprint.json``) so blueprints declare services once and never
copy tests. Keep it free of castelet imports: only testinfra's ``host`` and the standard library.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import socket
import warnings
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parents[1] / ".castelet" / "blueprint.json"
HIERADATA = "/etc/puppet/code/environments/production/data/terraform.yaml"


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def services_of(role: str) -> list[dict[str, Any]]:
    return [s for s in manifest()["services"] if s["role"] == role]


def terraform_data(host: Any) -> dict[str, Any]:
    """The node's deployment data: the `terraform` hash of its hiera data (read on the node, with
    the python3-yaml castelet-volumes uses)."""
    script = ("import json, sys, yaml; data = yaml.safe_load(open(sys.argv[1])) or {}; "
              "print(json.dumps(data.get('terraform') or {}))")
    read = host.run(shlex.join(["python3", "-c", script, HIERADATA]))
    assert read.rc == 0, f"cannot read {HIERADATA}: {read.stderr.strip()}"
    data: dict[str, Any] = json.loads(read.stdout)
    return data


def check_bootstrap_succeeded(host: Any) -> None:
    """cloud-init finished without errors and castelet's bootstrap recorded success."""
    status = host.run("cloud-init status --long")
    assert "status: done" in status.stdout, f"cloud-init is not done:\n{status.stdout}{status.stderr}"
    record = host.file("/var/lib/castelet/status")
    assert record.exists, "castelet bootstrap left no status file"
    assert "state=done" in record.content_string, f"bootstrap did not finish:\n{record.content_string}"


#: The group sshd lets in (the `ssh_group` parameter of the Puppet class castelet::profile::base).
SSH_GROUP = "castelet-ssh"
#: What sshd may offer: AEAD ciphers and AES-CTR; hybrid post-quantum, curve25519 and >= 4096-bit
#: finite-field key exchanges; SHA-2 MACs; Ed25519 and RSA-SHA2 host keys.
MODERN_SSH = {
    "ciphers": {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                "aes256-ctr", "aes192-ctr", "aes128-ctr"},
    "kexalgorithms": {"mlkem768x25519-sha256", "sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512",
                      "curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
                      "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256"},
    "macs": {"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com",
             "hmac-sha2-256", "hmac-sha2-512"},
    "hostkeyalgorithms": {"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-512", "rsa-sha2-256"},
}
#: What OpenSSH's default client on Debian 12 and 13 needs (and what Terraform's SSH picks).
SSH_CLIENT_NEEDS = {
    "ciphers": {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                "aes256-ctr", "aes192-ctr", "aes128-ctr"},
    "kexalgorithms": {"curve25519-sha256"},
    "hostkeyalgorithms": {"ssh-ed25519"},
}


def _sshd_settings(effective: str) -> dict[str, list[str]]:
    """`sshd -T` as keyword => values (a keyword given several times, e.g. allowgroups, keeps each)."""
    settings: dict[str, list[str]] = {}
    for line in effective.lower().splitlines():
        keyword, _, value = line.strip().partition(" ")
        if keyword:
            settings.setdefault(keyword, []).extend(value.split())
    return settings


def check_ssh_hardened(host: Any) -> None:
    """Keys only, no root, few tries; only the SSH group logs in (the admin user is in it); silent
    clients are dropped; only modern algorithms, those OpenSSH's client uses among them. Then
    sudo: one place grants it (check_sudo_granted_once)."""
    with host.sudo():
        effective = host.run("sshd -T").stdout.lower()
    assert "permitrootlogin no" in effective
    assert "passwordauthentication no" in effective
    tries = [int(line.split()[1]) for line in effective.splitlines() if line.startswith("maxauthtries ")]
    assert tries and tries[0] <= 4, f"sshd MaxAuthTries is {tries or 'unset'}, expected at most 4"
    settings = _sshd_settings(effective)
    interval = int((settings.get("clientaliveinterval") or ["0"])[0])
    count = int((settings.get("clientalivecountmax") or ["0"])[0])
    assert 0 < interval <= 900 and count > 0 and interval * count <= 1800, (
        f"sshd ClientAliveInterval {interval} x ClientAliveCountMax {count}: a vanished client's session "
        "should end within 30 minutes")
    groups = settings.get("allowgroups") or []
    assert SSH_GROUP in groups, f"sshd AllowGroups is {groups or 'unset'}, expected {SSH_GROUP}"
    admin = str(terraform_data(host).get("admin_user") or "")
    member_of = host.run(shlex.join(["id", "-nG", "--", admin])).stdout.split() if admin else []
    assert set(member_of) & set(groups), (
        f"the admin user {admin or '(unknown)'} is in none of sshd's AllowGroups {groups} (its groups: "
        f"{member_of}): it could not log in")
    for keyword, modern in MODERN_SSH.items():
        offered = ",".join(settings.get(keyword) or []).split(",")
        weak = [name for name in offered if name not in modern]
        assert offered != [""] and not weak, f"sshd {keyword}: {', '.join(weak) or 'unset'} beyond the modern set"
        missing = SSH_CLIENT_NEEDS.get(keyword, set()) - set(offered)
        assert not missing, f"sshd {keyword} lacks {', '.join(sorted(missing))}, which OpenSSH's client uses"
    check_sudo_granted_once(host)


#: Debian's own /etc/sudoers grants root and the `sudo` group, nothing else.
SUDOERS_GRANTEES = ("root", "%sudo")
#: /etc/sudoers.d: castelet's file, and the README of Debian's package.
SUDOERS_DROPINS = {"castelet-admins", "README"}
#: The nodejs-app CI's redeploy account (decision 53): its forced command, and the one sudo rule
#: of /etc/sudoers.d/castelet-redeploy, the only other drop-in accepted, holding that line alone.
REDEPLOY_USER = "castelet-redeploy"
REDEPLOY_COMMAND = "sudo -n /usr/local/sbin/castelet-node-deploy deploy"
REDEPLOY_SUDOERS = "castelet-redeploy ALL=(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy"


def _sudoers_rules(text: str) -> list[str]:
    """The lines of a sudoers file that are not blank or comments (`#include` is a directive)."""
    return [line.strip() for line in text.splitlines() if line.strip() and (
        not line.strip().startswith("#") or line.strip().startswith(("#include", "#includedir")))]


def check_sudo_granted_once(host: Any) -> None:
    """One place grants sudo, /etc/sudoers.d/castelet-admins: no other drop-in (cloud-init's
    90-cloud-init-users is removed) but the CI's redeploy rule, alone in castelet-redeploy; nobody
    in Debian's `sudo` group, and /etc/sudoers itself grants root and that group only."""
    with host.sudo():
        dropins = set(host.run("ls -A /etc/sudoers.d").stdout.split())
        sudoers = host.run("cat /etc/sudoers").stdout
        group = host.run("getent group sudo").stdout.strip()
        redeploy = host.run("cat /etc/sudoers.d/castelet-redeploy").stdout if "castelet-redeploy" in dropins else ""
    assert "castelet-admins" in dropins, "/etc/sudoers.d/castelet-admins is missing"
    if "castelet-redeploy" in dropins:
        rules = _sudoers_rules(redeploy)
        assert rules == [REDEPLOY_SUDOERS], (
            f"/etc/sudoers.d/castelet-redeploy grants more or other than the redeploy command: {rules}")
    others = sorted(dropins - SUDOERS_DROPINS - {"castelet-redeploy"})
    assert not others, f"sudo is also granted by /etc/sudoers.d/{', /etc/sudoers.d/'.join(others)}"
    members = [m for m in group.split(":")[3].split(",") if m] if group.count(":") >= 3 else []
    assert not members, f"group sudo (granted sudo by /etc/sudoers) has members: {', '.join(members)}"
    rules = []
    for line in sudoers.splitlines():
        line = line.strip()
        if not line or line.startswith(("Defaults", "@include", "#include")) or re.match(r"\w+_Alias\b", line):
            continue
        if line.startswith("#"):
            continue
        if line.split()[0] not in SUDOERS_GRANTEES:
            rules.append(line)
    assert not rules, f"/etc/sudoers grants more than root and %sudo: {rules}"


def check_redeploy_account(host: Any) -> None:
    """nodejs-app with a `redeploy_ssh_key`: the account `castelet-redeploy` logs in (it is in the
    SSH group), has no password, and can do one thing, whatever its client asks: its keys file
    (root's) holds that key alone, behind `restrict,command=` with the redeploy; sshd forces the same
    command for it, without terminal; sudo lets it run that command line and nothing else. Without
    a key, no such account."""
    key = str((terraform_data(host).get("settings") or {}).get("redeploy_ssh_key") or "")
    account = host.run(shlex.join(["getent", "passwd", REDEPLOY_USER]))
    if not key:
        assert account.rc != 0, f"{REDEPLOY_USER} exists but no redeploy_ssh_key is set: {account.stdout.strip()}"
        return
    assert account.rc == 0, f"redeploy_ssh_key is set but there is no account {REDEPLOY_USER}"
    groups = host.run(shlex.join(["id", "-nG", "--", REDEPLOY_USER])).stdout.split()
    assert SSH_GROUP in groups and "sudo" not in groups, (
        f"{REDEPLOY_USER} is in {groups}: expected {SSH_GROUP} (to log in) and not sudo")
    keys_file = f"/etc/ssh/castelet-authorized-keys-{REDEPLOY_USER}"
    with host.sudo():
        shadow = host.run(shlex.join(["getent", "shadow", REDEPLOY_USER])).stdout.split(":")
        keys = host.run(shlex.join(["stat", "-c", "%U %G %a", keys_file])).stdout.split()
        lines = [line for line in host.run(shlex.join(["cat", keys_file])).stdout.splitlines()
                 if line.strip() and not line.startswith("#")]
        effective = _sshd_settings(host.run(shlex.join(
            ["sshd", "-T", "-C", f"user={REDEPLOY_USER},host=ci.invalid,addr=192.0.2.1"])).stdout)
        allowed = host.run(shlex.join(["sudo", "-l", "-U", REDEPLOY_USER])).stdout
    assert len(shadow) > 1 and shadow[1] in ("!", "*", "!*"), f"{REDEPLOY_USER} has a password"
    assert keys[:2] == ["root", "root"] and keys[2:] and int(keys[2], 8) & 0o022 == 0, (
        f"{keys_file} must be root's and writable by root only: {keys}")
    assert lines == [f'restrict,command="{REDEPLOY_COMMAND}" {key}'], (
        f"{keys_file} should hold the redeploy key alone, restricted to the redeploy: {lines}")
    assert " ".join(effective.get("forcecommand") or []) == REDEPLOY_COMMAND, (
        f"sshd does not force the redeploy for {REDEPLOY_USER}: {effective.get('forcecommand')}")
    assert (effective.get("permittty") or [""])[0] == "no", f"sshd gives {REDEPLOY_USER} a terminal"
    assert (effective.get("authorizedkeysfile") or [""]) == [keys_file], (
        f"sshd reads {REDEPLOY_USER}'s keys from {effective.get('authorizedkeysfile')}, not {keys_file}")
    _, _, commands = allowed.partition("may run the following commands")
    granted = [line.strip() for line in commands.splitlines()[1:] if line.strip()]
    assert granted == ["(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy"], (
        f"sudo lets {REDEPLOY_USER} run more or other than the redeploy: {granted}")


def _ignored_networks(listing: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of `fail2ban-client get <jail> ignoreip` (`|- 127.0.0.0/8` ... `` `- ::1``)."""
    networks = []
    for match in re.finditer(r"^\s*[|`]-\s*(\S+)\s*$", listing, re.MULTILINE):
        try:
            networks.append(ipaddress.ip_network(match.group(1), strict=False))
        except ValueError:
            continue  # a host name: fail2ban accepts them too
    return networks


def check_fail2ban(host: Any) -> None:
    """fail2ban runs and watches SSH (and every web login jail it was given), and never bans the
    admins' network (`admin_cidr`), unless that is the whole internet (then it must not be ignored:
    ignoring it would turn every ban off)."""
    unit = host.service("fail2ban")
    assert unit.is_running and unit.is_enabled, "fail2ban is not running/enabled"
    with host.sudo():
        status = host.run("fail2ban-client status sshd")
        jails = host.run("fail2ban-client status").stdout
        configured = host.run("ls /etc/fail2ban/jail.d").stdout.split()
        ignored = host.run("fail2ban-client get sshd ignoreip").stdout
    assert status.rc == 0 and "Currently banned" in status.stdout, f"no sshd jail:\n{status.stdout}{status.stderr}"
    for name in configured:
        if name.startswith("castelet-") and name.endswith(".local"):
            assert name.removesuffix(".local") in jails, f"fail2ban jail {name} is not running:\n{jails}"
    admin = ipaddress.ip_network(str(terraform_data(host)["admin_cidr"]), strict=False)
    networks = _ignored_networks(ignored)
    if admin.prefixlen == 0:
        assert admin not in networks, f"fail2ban ignores {admin}: it would never ban anyone"
    else:
        assert any(admin.version == n.version and admin.subnet_of(n) for n in networks), (  # type: ignore[arg-type]
            f"fail2ban's sshd jail may ban the admins' network {admin} (ignoreip: "
            f"{', '.join(map(str, networks)) or 'nothing'})")


def check_only_declared_ports_listen(host: Any, role: str) -> None:
    """Nothing listens on a non-loopback address but SSH and the role's declared ports (and
    the DHCP client's UDP 68, which only receives answers to its own requests)."""
    allowed = {("tcp", 22), ("udp", 68)} | {(s["protocol"], int(s["port"])) for s in services_of(role)}
    with host.sudo():
        listing = host.run("ss -H -l -n -t -u").stdout
    unexpected = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        protocol, local = fields[0], fields[4]
        address, _, port = local.rpartition(":")
        address = address.strip("[]").split("%")[0]
        if address.startswith("127.") or address == "::1":
            continue
        if (protocol, int(port)) not in allowed:
            unexpected.append(f"{protocol} {local}")
    assert not unexpected, f"listening beyond the manifest's ports: {', '.join(unexpected)}"
    check_metadata_service_refused(host)


METADATA_SERVICE = "169.254.169.254"
#: A connection attempt to port 80 of an address, printing what became of it.
_CONNECT = ("import socket, sys\n"
            "try:\n"
            "    socket.create_connection((sys.argv[1], 80), timeout=5).close()\n"
            "    print('connected')\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__, exc.errno, exc)\n")


def _metadata_refusals(host: Any) -> int:
    """Packets the castelet firewall refused on their way to the metadata service (its rule's counter)."""
    with host.sudo():
        listing = host.run("nft -j list chain inet castelet output")
    assert listing.rc == 0, f"no output chain in the castelet firewall: {listing.stderr.strip()}"
    for item in json.loads(listing.stdout).get("nftables", []):
        rule = item.get("rule") or {}
        if rule.get("comment") == "metadata-service":
            for expression in rule.get("expr", []):
                if "counter" in expression:
                    return int(expression["counter"]["packets"])
    raise AssertionError("the castelet firewall has no counted rule refusing the metadata service "
                         f"({METADATA_SERVICE}) to users other than root")


def check_metadata_service_refused(host: Any) -> None:
    """No user but root reaches the cloud's metadata service (169.254.169.254): a connection as
    `nobody` fails, and the castelet firewall is what refused it (its rule counted the packet), on
    OpenStack, where the service answers, as on the local cloud, where nothing does. Root (cloud-init)
    keeps it: the rule names uid 0 as the exception."""
    before = _metadata_refusals(host)
    with host.sudo():
        probe = host.run(shlex.join(["runuser", "-u", "nobody", "--", "python3", "-c", _CONNECT, METADATA_SERVICE]))
    after = _metadata_refusals(host)
    outcome = probe.stdout.strip() or probe.stderr.strip()
    assert not outcome.startswith("connected"), f"user nobody reached the metadata service {METADATA_SERVICE}"
    assert after > before, (f"user nobody's connection to {METADATA_SERVICE} failed ({outcome}), but not through "
                            "the castelet firewall's rule (its counter did not move)")


def web_roles(role: str) -> list[dict[str, Any]]:
    return [s for s in services_of(role) if s.get("tls")]


def tls_config(host: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(host.file("/etc/castelet/tls.json").content_string)
    return data


def _curl(host: Any, domain: str, url_path: str, *options: str) -> Any:
    argv = ["curl", "-sk", "--max-time", "20", "--resolve", f"{domain}:443:127.0.0.1",
            "--resolve", f"{domain}:80:127.0.0.1", *options, url_path]
    return host.run(shlex.join(argv))


def site_get(host: Any, path: str) -> str:
    """The body of GET https://<domain><path>, fetched on the instance itself (for blueprint tests)."""
    domain = tls_config(host)["domain"]
    return str(_curl(host, domain, f"https://{domain}{path}").stdout)


def check_https(host: Any, role: str) -> None:
    """Port 80 redirects to https://<domain>/..., HTTPS sends HSTS and the security headers, and
    neither the web server nor PHP advertises its version."""
    if not web_roles(role):
        return
    domain = tls_config(host)["domain"]
    redirect = _curl(host, domain, f"http://{domain}/castelet-check?x=1", "-o", "/dev/null",
                     "-w", "%{http_code} %{redirect_url}")
    assert redirect.stdout.strip() == f"301 https://{domain}/castelet-check?x=1", \
        f"http:// does not redirect to https://: {redirect.stdout!r}"
    head = _curl(host, domain, f"https://{domain}/", "-D", "-", "-o", "/dev/null")
    headers = {}
    for line in head.stdout.splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get("strict-transport-security", "").startswith("max-age="), f"no HSTS: {headers}"
    assert headers.get("x-content-type-options") == "nosniff", "no X-Content-Type-Options: nosniff"
    assert "referrer-policy" in headers, "no Referrer-Policy"
    server = headers.get("server", "")
    assert not any(ch.isdigit() for ch in server), f"the server advertises its version: {server!r}"
    assert "x-powered-by" not in headers, f"X-Powered-By is sent: {headers['x-powered-by']!r}"


def check_web_roots_not_writable(host: Any, role: str) -> None:
    """The web server's user cannot modify what it serves under /var/www (data the application
    writes lives on the data volume); a Node.js application runs confined (check_app_confined)."""
    check_app_confined(host)
    if not web_roles(role) or not host.user("www-data").exists:
        return
    with host.sudo():
        found = host.run("runuser -u www-data -- find /var/www -xdev -writable -not -type l -print")
    writable = [line for line in found.stdout.splitlines() if line.strip()]
    assert not writable, f"writable by www-data under /var/www: {', '.join(writable[:10])}"


NODEJS_UNIT = "castelet-nodejs-app@"
#: System calls @system-service leaves out (and a Node.js application never needs).
NOT_A_SERVICE_CALL = ("mount", "umount2", "swapon", "reboot", "kexec_load", "init_module", "settimeofday")


def check_app_confined(host: Any) -> None:
    """Where castelet runs a Node.js application (castelet-nodejs-app@.service), the running slot is
    confined as its unit says, and the kernel enforces it: other users' processes invisible in its
    /proc (a hidepid=invisible instance), a seccomp filter (SystemCallFilter=@system-service, with
    RestrictNamespaces: no namespace), no capability."""
    if not host.file(f"/etc/systemd/system/{NODEJS_UNIT}.service").exists:
        return
    with host.sudo():
        running = host.run(f"systemctl list-units --plain --no-legend --state=active '{NODEJS_UNIT}*.service'")
    units = [line.split()[0] for line in running.stdout.splitlines() if line.strip()]
    assert units, f"no slot of {NODEJS_UNIT}.service is running"
    for unit in units:
        with host.sudo():
            shown = host.run(shlex.join(["systemctl", "show", "-p", "MainPID", "-p", "ProtectProc", "-p",
                                         "RestrictNamespaces", "-p", "SystemCallFilter", "--", unit])).stdout
        props = dict(line.partition("=")[::2] for line in shown.splitlines() if "=" in line)
        assert props.get("ProtectProc") == "invisible", f"{unit}: ProtectProc={props.get('ProtectProc')}"
        assert props.get("RestrictNamespaces") == "yes", f"{unit}: RestrictNamespaces={props.get('RestrictNamespaces')}"
        calls = props.get("SystemCallFilter", "").split()
        assert calls and not calls[0].startswith("~"), f"{unit}: no system call allow-list ({calls[:3]})"
        allowed = [call for call in NOT_A_SERVICE_CALL if call in calls]
        assert not allowed, f"{unit}: its system call filter allows {', '.join(allowed)}"
        pid = props.get("MainPID", "0")
        assert pid.isdigit() and int(pid) > 0, f"{unit} has no main process"
        with host.sudo():
            status = host.run(f"cat /proc/{pid}/status").stdout
            init = host.run("cat /proc/1/status").stdout
            mountinfo = host.run(f"cat /proc/{pid}/mountinfo").stdout
        fields = {k: v.strip() for k, _, v in (line.partition(":") for line in status.splitlines())}
        inherited = {k: v.strip() for k, _, v in (line.partition(":") for line in init.splitlines())}
        # In a container every process has the container manager's filter: count the unit's own.
        filters, theirs = fields.get("Seccomp_filters", ""), inherited.get("Seccomp_filters", "0")
        assert fields.get("Seccomp") == "2" and (not filters.isdigit() or int(filters) > int(theirs or 0)), (
            f"{unit}: no seccomp filter of its own on its process (Seccomp {fields.get('Seccomp')}, "
            f"{filters or '?'} filters, PID 1 has {theirs})")
        assert fields.get("CapBnd", "").strip("0") == "", f"{unit}: capabilities {fields.get('CapBnd')}"
        proc = [line for line in mountinfo.splitlines() if len(line.split()) > 4 and line.split()[4] == "/proc"]
        assert proc and re.search(r"hidepid=(invisible|2)\b", proc[-1]), (
            f"{unit}: its /proc shows every process (ProtectProc=invisible not in effect): {proc[-1:] or 'no /proc'}")


def check_tls_certificate(host: Any, role: str, address: str) -> None:
    """The served certificate is the one castelet-tls says it is. While an ACME certificate is
    awaited, fail with what to do (point DNS at the instance), not with a TLS error."""
    if not web_roles(role):
        return
    config = tls_config(host)
    domain = config["domain"]
    read = host.run("cat /var/lib/castelet/tls-status.json")
    assert read.rc == 0 and read.stdout.strip(), (
        f"castelet-tls left no status in /var/lib/castelet/tls-status.json (exit {read.rc}): {read.stderr.strip()}")
    status = json.loads(read.stdout)
    served = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(domain)} </dev/null 2>/dev/null"
        " | openssl x509 -noout -issuer -subject -ext subjectAltName")
    assert served.rc == 0, f"no certificate served on 443: {served.stderr}"
    assert f"DNS:{domain}" in served.stdout, f"the served certificate is not for {domain}:\n{served.stdout}"
    self_signed = "Castelet self-signed" in served.stdout.split("subject=")[0]
    if config["acme_server"] == "self-signed":
        assert self_signed, f"expected the self-signed certificate:\n{served.stdout}"
        return
    if status.get("state") != "issued" or self_signed:
        try:
            resolved = sorted({str(info[4][0]) for info in socket.getaddrinfo(domain, 443, proto=socket.IPPROTO_TCP)})
        except socket.gaierror:
            resolved = []
        reason = status.get("reason") or "none recorded"
        raise AssertionError(
            f"TLS: waiting for DNS {domain} → {address} (it resolves to {', '.join(resolved) or 'nothing'}); "
            f"the site serves a self-signed certificate until the CA can reach it, and retries every few "
            f"minutes. The CA said: {reason}")


def check_unattended_upgrades(host: Any) -> None:
    """Security updates install themselves daily; needrestart then restarts the services that still
    run the replaced libraries; a pending reboot is reported (check_pending_reboot)."""
    assert host.package("unattended-upgrades").is_installed
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Unattended-Upgrade "1"' in periodic
    check_needrestart(host)
    check_pending_reboot(host)


def check_needrestart(host: Any) -> None:
    """needrestart is installed and restarts services automatically: the last `$nrconf{restart}`
    of its configuration (needrestart.conf, then conf.d/*.conf in order, as needrestart reads them)
    is 'a'."""
    assert host.package("needrestart").is_installed, "needrestart is not installed: services keep running " \
        "replaced libraries after an update"
    with host.sudo():
        files = host.run("ls /etc/needrestart/conf.d").stdout.split()
        texts = [host.run("cat /etc/needrestart/needrestart.conf").stdout]
        texts += [host.run(shlex.join(["cat", f"/etc/needrestart/conf.d/{name}"])).stdout
                  for name in sorted(files) if name.endswith(".conf")]
    modes = re.findall(r"^\s*\$nrconf\{restart\}\s*=\s*['\"](\w)['\"]", "\n".join(texts), re.MULTILINE)
    assert modes and modes[-1] == "a", (f"needrestart's restart mode is {modes[-1] if modes else 'its default (i)'}: "
                                        "services are not restarted after a library update")


#: A reboot pending for this long fails verify (before: a warning).
REBOOT_PENDING_DAYS = 7


class PendingReboot(UserWarning):
    """An update waits for a reboot (a new kernel, or a service needrestart does not restart)."""


def check_pending_reboot(host: Any) -> None:
    """Warn while a reboot is pending (/run/reboot-required, which Debian's kernel and
    unattended-upgrades write; needrestart's kernel check; services still running replaced
    libraries that needrestart leaves alone, such as dbus); fail once /run/reboot-required is
    REBOOT_PENDING_DAYS days old: the update has not protected anything for a week."""
    with host.sudo():
        flag = host.run("stat -c %Y /run/reboot-required")
        packages = host.run("cat /run/reboot-required.pkgs").stdout.split() if flag.rc == 0 else []
        batch = host.run("needrestart -b").stdout
    now = float(host.run("date +%s").stdout.strip())
    reasons = []
    if flag.rc == 0:
        reasons.append(f"/run/reboot-required ({', '.join(sorted(set(packages))) or 'no package named'})")
    kernel = re.search(r"^NEEDRESTART-KSTA:\s*(\d)", batch, re.MULTILINE)
    if kernel and kernel.group(1) in ("2", "3"):
        expected = re.search(r"^NEEDRESTART-KEXP:\s*(\S+)", batch, re.MULTILINE)
        reasons.append(f"the running kernel is not the newest installed ({expected.group(1) if expected else '?'})")
    services = re.findall(r"^NEEDRESTART-SVC:\s*(\S+)", batch, re.MULTILINE)
    if services:
        reasons.append(f"services still running replaced libraries: {', '.join(services)}")
    if not reasons:
        return
    message = f"reboot pending: {'; '.join(reasons)}"
    if flag.rc == 0:
        days = (now - float(flag.stdout.strip())) / 86400
        message += f" (asked {days:.1f} days ago)"
        assert days < REBOOT_PENDING_DAYS, (
            f"{message}: reboot in a maintenance window (`sudo reboot`), or let unattended-upgrades do it "
            "(the `reboot_time` parameter of the Puppet class castelet::profile::base)")
    warnings.warn(PendingReboot(message), stacklevel=2)


def check_services_listening(host: Any, role: str) -> None:
    for service in services_of(role):
        spec = f"{service['protocol']}://0.0.0.0:{service['port']}"
        assert host.socket(spec).is_listening or host.socket(
            f"{service['protocol']}://:::{service['port']}").is_listening, f"{service['name']} not listening"
        if service.get("systemd_unit"):
            unit = host.service(service["systemd_unit"])
            assert unit.is_running and unit.is_enabled, f"{service['systemd_unit']} not running/enabled"


def check_health(host: Any, role: str) -> None:
    """Every declared health check answers through the real service on the instance."""
    for service in services_of(role):
        health = service.get("health")
        if not health:
            continue
        if service.get("tls"):
            domain = tls_config(host)["domain"]
            url = f"https://{domain}:{service['port']}{health['path']}"
            result = _curl(host, domain, url, "-o", "/tmp/castelet-health", "-w", "%{http_code}")
        else:
            url = f"http://127.0.0.1:{service['port']}{health['path']}"
            result = host.run(shlex.join(["curl", "-s", "-o", "/tmp/castelet-health", "-w", "%{http_code}", url]))
        assert result.stdout.strip() == str(health["status"]), f"{url}: HTTP {result.stdout.strip()}"
        if health.get("text"):
            body = host.file("/tmp/castelet-health").content_string
            assert health["text"] in body, f"{url}: {health['text']!r} not in the response"


#: A good snapshot older than this fails verify (the timer runs daily, with up to 30 min of delay).
BACKUP_MAX_AGE_HOURS = 26


def check_state_on_volumes(host: Any) -> None:
    """Every volume of the node is mounted, nodev,nosuid (check_volumes_nodev_nosuid), and on a
    node with a data volume the secrets (and MariaDB's files, where MariaDB runs) are bind mounts
    from it: a rebuilt instance finds them."""
    hieradata = host.file("/etc/puppet/code/environments/production/data/terraform.yaml")
    with host.sudo():
        check = host.run("castelet-volumes check")
        mounts = host.run("findmnt -rn -o TARGET").stdout.split()
    assert check.rc == 0, f"volumes: {check.stderr.strip() or check.stdout.strip()}"
    check_volumes_nodev_nosuid(host)
    data_dir = re.search(r'^\s*"?data_dir"?:\s*"?(/[^"\s]*)"?\s*$', hieradata.content_string, re.MULTILINE)
    if data_dir is None:  # null, or no volume
        return
    assert "/var/lib/castelet/secrets" in mounts, "the secrets are not on the data volume"
    if host.exists("mariadbd") or host.package("mariadb-server").is_installed:
        assert "/var/lib/mysql" in mounts, "MariaDB's files (/var/lib/mysql) are not on the data volume"


#: The per-mount flags every mount of a data volume carries.
VOLUME_FLAGS = ("nodev", "nosuid")


def _mountinfo(text: str) -> list[tuple[str, str, str, list[str]]]:
    """(major:minor, root, target, per-mount options) of each visible mount of /proc/self/mountinfo."""
    def unescape(field: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

    found: dict[str, tuple[str, str, str, list[str]]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6:
            target = unescape(fields[4])
            found.pop(target, None)
            found[target] = (fields[2], unescape(fields[3]), target, fields[5].split(","))
    return list(found.values())


def check_volumes_nodev_nosuid(host: Any) -> None:
    """Every mount of a data volume is nodev,nosuid: the volume's own mount and every bind mount of a
    directory on it (secrets, databases, document roots), on OpenStack as on the local cloud (where
    LXD mounts the volume and castelet-volume-options remounts it): nothing on the data runs
    setuid or opens a device."""
    volumes = terraform_data(host).get("volumes") or {}
    mounts = _mountinfo(host.run("cat /proc/self/mountinfo").stdout)
    by_target = {mount[2]: mount for mount in mounts}
    lacking = []
    for name, volume in sorted(volumes.items()):
        top = by_target.get(str(volume["mount"]))
        assert top is not None, f"volume {name} is not mounted at {volume['mount']}"
        for device, root, target, options in mounts:
            inside = top[1] == "/" or root == top[1] or root.startswith(top[1].rstrip("/") + "/")
            missing = [flag for flag in VOLUME_FLAGS if flag not in options]
            if device == top[0] and inside and missing:
                lacking.append(f"{target} (volume {name}: no {', '.join(missing)})")
    assert not lacking, (f"mounted without nodev or nosuid: {'; '.join(lacking)}. castelet-volume-options "
                         "remounts them (Puppet, and castelet-volume-options.service at boot): "
                         "`sudo journalctl -u castelet-volume-options`")


def backup_status(host: Any) -> dict[str, Any] | None:
    """castelet-backup's status on the node, or None where backups are off."""
    with host.sudo():
        if not host.file("/etc/castelet/backup.json").exists:
            return None
        status = host.run("castelet-backup status")
    assert status.rc == 0, f"castelet-backup status failed: {status.stderr.strip()}"
    data: dict[str, Any] = json.loads(status.stdout)
    return data


def check_backups(host: Any) -> None:
    """Where backups are on: the last run did not fail, and the last good snapshot is younger than
    BACKUP_MAX_AGE_HOURS (a node that never backed up yet passes until its first day is over)."""
    status = backup_status(host)
    if status is None:
        return
    with host.sudo():
        failed = host.run("systemctl is-failed castelet-backup.service").stdout.strip() == "failed"
        journal = host.run("journalctl -u castelet-backup.service -n 8 --no-pager -o cat").stdout if failed else ""
        since = host.run("stat -c %Y /var/lib/castelet/bootstrap.done").stdout.strip()
    now = float(host.run("date +%s").stdout.strip())
    last = status.get("last_success")
    age = None
    if last:
        age = (now - _epoch(str(last))) / 3600
    described = f"last good snapshot {age:.1f} h ago" if age is not None else "no good snapshot yet"
    assert not failed, (f"backup: the last run of castelet-backup.service failed ({described}; "
                        f"last error: {status.get('last_error') or 'see below'}):\n{journal}")
    if age is None:
        first_boot_hours = (now - float(since)) / 3600 if since.isdigit() else 0.0
        assert first_boot_hours < BACKUP_MAX_AGE_HOURS, f"backup: {described} after {first_boot_hours:.0f} h"
        return
    assert age < BACKUP_MAX_AGE_HOURS, f"backup: {described} (more than {BACKUP_MAX_AGE_HOURS} h)"


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


#: The weekly `restic check --read-data-subset` (castelet-backup-check.timer, Sundays plus up to an
#: hour) must have succeeded within this many days: a week, a late start, a long check.
BACKUP_CHECK_MAX_AGE_DAYS = 9
BACKUP_CHECK_TIMER = "/etc/systemd/system/castelet-backup-check.timer"


def check_backup_repository_checked(host: Any) -> None:
    """Where backups are on: the last weekly repository check (castelet-backup check: restic check
    --read-data-subset) did not fail, and one succeeded within BACKUP_CHECK_MAX_AGE_DAYS (counted
    from when Puppet installed the check's timer while none has run yet)."""
    status = backup_status(host)
    if status is None:
        return
    with host.sudo():
        failed = host.run("systemctl is-failed castelet-backup-check.service").stdout.strip() == "failed"
        journal = host.run("journalctl -u castelet-backup-check.service -n 8 --no-pager -o cat").stdout \
            if failed else ""
        since = host.run(f"stat -c %Y {BACKUP_CHECK_TIMER}").stdout.strip()
    assert not failed and status.get("last_check_result") != "failure", (
        f"backup check: the last `restic check --read-data-subset={status.get('last_check_subset')}` of the "
        f"repository failed ({status.get('last_check_error') or 'see below'}): the backups may not restore. "
        f"`sudo castelet-backup check --subset 1/1` reads everything; `restic repair` may help:\n{journal}")
    now = float(host.run("date +%s").stdout.strip())
    last = status.get("last_check_success")
    if last:
        days = (now - _epoch(str(last))) / 86400
        assert days < BACKUP_CHECK_MAX_AGE_DAYS, (
            f"backup check: the repository was last checked {days:.1f} days ago (more than "
            f"{BACKUP_CHECK_MAX_AGE_DAYS}): `systemctl status castelet-backup-check.timer`")
        return
    assert since.isdigit(), f"backup check: no weekly check scheduled ({BACKUP_CHECK_TIMER} is missing)"
    days = (now - float(since)) / 86400
    assert days < BACKUP_CHECK_MAX_AGE_DAYS, (
        f"backup check: the repository has never been checked in {days:.0f} days "
        f"(last result: {status.get('last_check_result') or 'none'}): `systemctl status castelet-backup-check.timer`")
