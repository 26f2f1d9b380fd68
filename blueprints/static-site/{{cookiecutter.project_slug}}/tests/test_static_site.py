"""Static-site specifics (the checks every blueprint shares are in test_base.py)."""

import json

import castelet_checks as checks

ROLES = ["web"]
SITE = "/srv/data/site"


def test_the_current_release_is_served(host):
    assert host.service("nginx").is_running
    with host.sudo():
        current = host.file(f"{SITE}/current")
        status = json.loads(host.check_output("runuser -u deploy -- castelet-site-deploy status"))
        assert current.is_symlink and current.linked_to.startswith(f"{SITE}/releases/")
        assert status["current"] == current.linked_to.rsplit("/", 1)[1]
        index = host.file(f"{SITE}/current/index.html").content_string
    assert index and index in checks.site_get(host, "/")


def test_the_site_belongs_to_deploy_not_to_the_web_server(host):
    with host.sudo():
        site = host.file(SITE)
        assert (site.user, site.group, site.mode) == ("deploy", "deploy", 0o755)
        writable = host.run(f"runuser -u www-data -- find {SITE} -xdev -writable -print -quit").stdout.strip()
    assert not writable, f"www-data can write {writable}"


def test_deploy_account_is_rsync_only(host):
    with host.sudo():
        shadow = host.check_output("getent shadow deploy").split(":")
        keys = host.file("/etc/ssh/castelet-authorized-keys-deploy")
        assert (keys.user, keys.mode) == ("root", 0o644)
        for line in keys.content_string.splitlines():
            assert line.startswith(("#", 'restrict,command="/usr/local/sbin/castelet-site-deploy rsync" ')), line
        deploy = host.check_output("sshd -T -C user=deploy,host=client.example.org,addr=192.0.2.10").lower()
        admin = host.check_output("sshd -T -C user=castelet-nobody,host=client.example.org,addr=192.0.2.10").lower()
    assert shadow[1].startswith("!"), "deploy has a usable password"
    for setting in ("forcecommand /usr/local/sbin/castelet-site-deploy rsync", "disableforwarding yes",
                    "permittty no", "authorizedkeysfile /etc/ssh/castelet-authorized-keys-deploy",
                    "allowtcpforwarding no", "permituserrc no"):
        assert setting in deploy.splitlines(), setting
    # the Match block is the deploy account's only: nobody else is restricted by it
    assert {"forcecommand none", "permittty yes", "disableforwarding no"} <= set(admin.splitlines())


def test_nginx_alone_serves_the_web_ports(host):
    with host.sudo():
        listeners = host.check_output("ss -H -l -n -t -p '( sport = :80 or sport = :443 )'")
    assert listeners and all("nginx" in line for line in listeners.splitlines()), listeners
    assert not host.package("apache2").is_installed
