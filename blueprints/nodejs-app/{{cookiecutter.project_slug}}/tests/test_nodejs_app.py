"""Node.js application specifics (the checks every blueprint shares are in test_base.py)."""

import json

import castelet_checks as checks

ROLES = ["web"]
STATE = "/var/lib/castelet-node/state.json"
UNIT = "castelet-nodejs-app@{}.service"


def _active(host) -> tuple[str, str]:
    with host.sudo():
        state = json.loads(host.file(STATE).content_string)
    slot = state["active"]
    return slot, state["slots"][slot]["commit"]


def test_the_application_answers_through_nginx_over_https(host):
    assert checks.site_get(host, "/") != ""
    slot, commit = _active(host)
    assert host.service(UNIT.format(slot)).is_running
    assert host.service(UNIT.format(slot)).is_enabled
    with host.sudo():
        link = host.file(f"/var/lib/castelet-node/slots/{slot}").linked_to
    assert link == f"/var/lib/castelet-node/releases/{commit}"


def test_only_the_active_slot_runs(host):
    slot, _ = _active(host)
    idle = "green" if slot == "blue" else "blue"
    assert not host.service(UNIT.format(idle)).is_running
    assert not host.service(UNIT.format(idle)).is_enabled


def test_the_application_runs_unprivileged_and_confined(host):
    slot, _ = _active(host)
    props = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show -p User -p NoNewPrivileges -p PrivateTmp -p ProtectSystem -p ProtectHome "
        "-p CapabilityBoundingSet -p ReadWritePaths -p EnvironmentFiles %s", UNIT.format(slot)).splitlines())
    assert props["User"] == "castelet-app"
    assert props["NoNewPrivileges"] == "yes"
    assert props["PrivateTmp"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["CapabilityBoundingSet"] == ""
    assert props["ReadWritePaths"] == "/srv/data/app"
    pid = host.check_output("systemctl show -p MainPID --value %s", UNIT.format(slot))
    with host.sudo():
        assert host.check_output("ps -o user= -p %s", pid) == "castelet-app"


def test_secrets_file_is_root_only(host):
    with host.sudo():
        env = host.file("/etc/castelet/nodejs-app.env")
        assert env.user == "root" and env.group == "root"
        assert env.mode == 0o600


def test_releases_belong_to_the_build_user_not_the_application(host):
    _, commit = _active(host)
    release = host.file(f"/var/lib/castelet-node/releases/{commit}")
    assert release.user == "castelet-build"
    assert not release.mode & 0o002
    with host.sudo():
        writable = host.run("runuser -u castelet-app -- test -w /var/lib/castelet-node/releases/%s", commit)
    assert writable.rc != 0


def test_data_directory_is_on_the_volume_and_the_applications(host):
    data = host.file("/srv/data/app")
    assert data.is_directory
    assert data.user == "castelet-app"
    assert data.mode == 0o750
    assert host.mount_point("/srv/data").exists


def test_the_ci_redeploy_account_can_only_redeploy(host):
    """With redeploy_ssh_key: castelet-redeploy logs in for the redeploy command alone (keys file of
    root's with restrict,command=, sshd's ForceCommand, sudo for that line only); none without it."""
    checks.check_redeploy_account(host)
