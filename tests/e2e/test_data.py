"""Data that survives (issue 10): for every verified blueprint whose manifest has a `backups:`
section, one deployment on the local cloud, backing up to a real restic REST server on the host,
goes through, in this order:

- lifecycle: verify, a second Puppet run changes nothing, a second plan is empty, HTTPS from the
  test CA, the blueprint's own checks (tests/e2e/checks_<id>.py), settings edited in
  terraform.tfvars reach the instance (the generic lifecycle test covers blueprints without data);
- rebuild: data written (rows with the application's credentials, files on the data volume), the
  instance replaced (`nox -s rebuild`): data, generated credentials and health check intact;
- failed backup: the repository unreachable → `nox -s backup` fails, the unit is failed, verify
  fails naming the backup; the repository back → the next backup succeeds, verify passes;
- append-only (one blueprint, APPEND_ONLY_BLUEPRINT, whose repository is served `--append-only`):
  root on the instance, with its credentials, cannot delete a snapshot (neither `restic forget`
  nor a plain HTTP DELETE); the weekly `castelet-backup check` passes; `nox -s prune` from the
  host, against a full-access server of the same repositories, removes what the policy drops;
- leak: no generated secret (nor the repository credentials) in the deployment folder, its git
  history, the Terraform state, the user-data, the hieradata or the instance's journal;
- restore: back up, destroy instance AND volume (`--with-data`), apply fresh, restore with the
  repository password saved earlier: same files, same rows, same credentials, healthy.

Blueprints come from the manifests: a later blueprint with data is tested without a line here
(unless it installs an upstream release, which needs a stand-in: STANDIN_RELEASES).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import data_set
import nox_sessions as ops
from acme import unverified_context
from castelet.library import load_all
from castelet.lifecycle import check_idempotent, terraform_environment
from castelet.local.cloud import POOL, lxc
from castelet.manifest import Blueprint
from castelet.pin import pin
from castelet.render import ANSWERS_FILE, new
from castelet.runtime import find_terraform, terraform_env
from castelet.terraform import Terraform
from e2e_site import (
    Site,
    acme_answers,
    check_https_and_own_checks,
    check_tfvars_edits_reach_the_instance,
    checks_module,
    https_health_paths,
)
from e2e_site import (
    container_address as _address,
)
from omeka_standin import fetch, install_form_offered, login, standin_archive
from restic_rest import ResticRest

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_BLUEPRINTS = [bp for bp in load_all(REPO_ROOT)[0] if bp.maturity == "verified" and bp.backups]
# Blueprints that install an upstream release: the stand-in archive served to them (tests/e2e).
STANDIN_RELEASES: dict[str, Callable[[str], bytes]] = {"omeka-s": standin_archive}
TIMINGS = REPO_ROOT / ".nox" / "e2e-timings.json"
# An operator (and the timer's unit) learns of an unreachable repository within this many seconds.
FAILED_BACKUP_WITHIN = 180
# The blueprint whose deployment backs up to an append-only server (issue 21 point 3): one cheap
# one, so that the proof costs no deployment of its own.
APPEND_ONLY_BLUEPRINT = "database"


@dataclass
class Deployed:
    blueprint: Blueprint
    path: Path
    name: str
    repository: ResticRest
    site: Site
    # the full-access server of the same repositories, where `repository` is append-only
    full_access: ResticRest | None = None
    # every generated value seen (for the leak test)
    seen_secrets: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, label: str, action: Callable[[], object]) -> None:
        started = time.monotonic()
        try:
            action()
        finally:
            self.timings[label] = round(time.monotonic() - started, 1)

    @property
    def host(self) -> str:
        """The instance that holds the data (first instance of the backups' role)."""
        return f"{self.name}-{data_set.backup_role(self.blueprint)}1"

    def remember(self, values: dict[str, str]) -> dict[str, str]:
        """Keeps every value seen (named, never shown: assertion messages print the names)."""
        for key, value in values.items():
            if value not in self.seen_secrets.values():
                self.seen_secrets[f"{key} (value #{len(self.seen_secrets) + 1})"] = value
        return values


def test_every_data_blueprint_is_covered():
    """The data tests find the blueprints with data from their manifests; one that installs an
    upstream release needs a stand-in of it here."""
    assert {"lamp", "omeka-s"} <= {bp.id for bp in DATA_BLUEPRINTS}
    missing = [bp.id for bp in DATA_BLUEPRINTS if bp.release and bp.id not in STANDIN_RELEASES]
    assert missing == [], f"blueprints with data and a release but no stand-in: {missing}"
    for bp in DATA_BLUEPRINTS:
        assert data_set.volume_paths(bp), f"{bp.id}: no backed-up path lives on a data volume"
        data_set.databases(bp)  # every engine has a client


@pytest.fixture(scope="session")
def restic_rest(bridge_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResticRest]:
    """restic's REST protocol served by rclone on the bridge: the deployments' backup repository."""
    server = ResticRest(tmp_path_factory.mktemp("restic-rest"), bridge_address)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def restic_rest_append_only(restic_rest: ResticRest, tmp_path_factory: pytest.TempPathFactory
                            ) -> Iterator[ResticRest]:
    """The same repositories served `--append-only` on another port, with the same credentials:
    what an instance gets when its backups must survive its compromise."""
    server = ResticRest(tmp_path_factory.mktemp("restic-rest-append-only"), restic_rest.address,
                        username=restic_rest.username, password=restic_rest.password, append_only=True,
                        root=restic_rest.data)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Module scope, one xdist group per blueprint (tests/e2e/conftest.py): under pytest-xdist
# (`--dist loadgroup`, nox -s e2e) the tests of one blueprint's deployment run in order on one
# worker, while other blueprints' data tests and the lifecycles run on the other workers.
@pytest.fixture(scope="module", params=DATA_BLUEPRINTS, ids=lambda bp: bp.id)
def deployed(request, local_cloud, admin_key, tmp_path_factory, restic_rest, archive_server,
             bridge_address, acme) -> Iterator[Deployed]:
    """One deployment per blueprint with data, applied with `nox -s plan apply`, its repository
    credentials pushed, and destroyed with its data at the end."""
    blueprint: Blueprint = request.param
    name = f"e2e-data-{blueprint.id}"[:24].rstrip("-")
    out = tmp_path_factory.mktemp(f"data-{blueprint.id}")
    container = f"{name}-{data_set.backup_role(blueprint)}1"
    # The instance's own DNS name: the test CA (pebble) validates it as soon as the site answers.
    site = Site(blueprint, container, f"{container}.lxd", acme, bridge_address, archive_server[0],
                archive_server[1], out)
    server, full_access = restic_rest, None
    if blueprint.id == APPEND_ONLY_BLUEPRINT:
        server, full_access = request.getfixturevalue("restic_rest_append_only"), restic_rest
    answers = {"project_slug": name, "cloud": "lxd", "admin_ssh_keys": admin_key,
               "backup_repository": server.url(name), "backup_append_only": full_access is not None}
    if https_health_paths(blueprint):
        answers.update(acme_answers(acme, site.domain))
    checks = checks_module(blueprint.id)  # answers the blueprint needs to deploy (a git URL...)
    if checks is not None and hasattr(checks, "answers"):
        answers.update(checks.answers(site))
    deployment = new(blueprint.path, answers, out)
    site.deployment = deployment
    if blueprint.release:
        base_url, served = archive_server
        archive = f"/{name}/{blueprint.id}-1.0.0-test.zip"
        served[archive] = STANDIN_RELEASES[blueprint.id]("1.0.0-test")
        pinned = pin(deployment, print, url=f"{base_url}{archive}", version="1.0.0-test")
        assert pinned.sha256 == hashlib.sha256(served[archive]).hexdigest()
    found = Deployed(blueprint, deployment, name, server, site, full_access)
    try:
        found.timed("plan + apply", lambda: ops.plan_and_apply(deployment))
        ops.ok(deployment, "backup-credentials", env=server.environment)
        yield found
    finally:
        found.timed("destroy --with-data", lambda: ops.destroy_everything(deployment, name))
        ops.record_timings(TIMINGS, f"data {blueprint.id}", found.timings)


def _created(container: str) -> str:
    return str(json.loads(lxc("list", container, "--format=json").stdout)[0]["created_at"])


def _volumes(name: str) -> list[str]:
    volumes = json.loads(lxc("storage", "volume", "list", POOL, "--format=json").stdout)
    return sorted(v["name"] for v in volumes if v.get("type") == "custom" and v["name"].startswith(f"{name}-"))


def _healthy(d: Deployed) -> None:
    proc = ops.verify(d.path)
    assert proc.returncode == 0, f"verify failed:\n{ops.output(proc, 6000)}"
    check = APPLICATION_CHECKS.get(d.blueprint.id)
    if check:
        check(d)


def _omeka_admin_logs_in(d: Deployed) -> None:
    """The generated administrator password opens the dashboard, and /install offers nothing."""
    answers = yaml.safe_load((d.path / ANSWERS_FILE).read_text())["answers"]
    domain, email = answers.get("domain", "example.org"), answers.get("admin_email", "admin@example.org")
    site = f"https://{_address(d.host)}"
    context = unverified_context()  # the local cloud's default: self-signed (verify checked it)
    assert not install_form_offered(fetch(site, domain, "/install", follow=True, context=context).body)
    assert "Admin dashboard" in login(site, domain, email, ops.secrets(d.path)["omeka-admin"], context=context)


# deployment name => the token its e2e page prints (written at the first check, read at the others)
LAMP_PAGES: dict[str, str] = {}
LAMP_PAGE = "castelet-e2e-app.php"


def _lamp_application_code_stays(d: Deployed) -> None:
    """Issue 21 point 6: a PHP page deployed into the document root as the README says (by root)
    runs, and still runs after `nox -s rebuild` and after a restore onto a fresh volume: the
    document root lives on the data volume and is in its backups."""
    answers = yaml.safe_load((d.path / ANSWERS_FILE).read_text())["answers"]
    docroot = f"/var/www/{d.name}"
    if d.name not in LAMP_PAGES:
        token = secrets.token_hex(8)
        data_set.sh(d.host, f"umask 022; cat > {docroot}/{LAMP_PAGE}", stdin=f"<?php echo 'e2e-', strrev('{token}');\n")
        LAMP_PAGES[d.name] = token
    page = fetch(f"https://{_address(d.host)}", answers.get("domain", "example.org"), f"/{LAMP_PAGE}",
                 context=unverified_context())
    expected = f"e2e-{LAMP_PAGES[d.name][::-1]}"
    assert (page.status, page.body.strip()) == (200, expected), \
        f"the application's page in {docroot} is gone or does not run: HTTP {page.status} {page.body[:200]!r}"


APPLICATION_CHECKS: dict[str, Callable[[Deployed], None]] = {"omeka-s": _omeka_admin_logs_in,
                                                             "lamp": _lamp_application_code_stays}


def _unit_state(d: Deployed) -> str:
    return data_set.sh(d.host, "systemctl is-failed castelet-backup.service || true").strip()


def test_lifecycle_idempotence_own_checks_and_settings(deployed: Deployed, admin_key: str):
    """The lifecycle proof of a verified blueprint with data, on this same deployment (one
    deployment per blueprint keeps CI short): verify passes, a second Puppet run changes nothing,
    a second plan is empty, HTTPS comes from the CA, the blueprint's own checks pass, and settings
    edited in terraform.tfvars reach the instance without replacing it."""
    d = deployed
    tf = Terraform(d.path, env=terraform_environment("lxd"))
    inventory = tf.outputs().get("inventory") or {}
    _healthy(d)
    d.timed("idempotence", lambda: check_idempotent(inventory))
    changes, result = tf.plan()
    assert not changes, f"the second plan is not empty:\n{result.stdout[-4000:]}"
    check_https_and_own_checks(d.site, lambda name, timings: ops.record_timings(TIMINGS, name, timings))
    d.timed("settings edited in terraform.tfvars",
            lambda: check_tfvars_edits_reach_the_instance(d.path, d.host, admin_key, tf))


def test_first_backup_after_apply(deployed: Deployed):
    """Backups work from the first apply: a snapshot, and a password for the repository among
    the generated secrets."""
    d = deployed
    values = d.remember(ops.secrets(d.path))
    assert len(values.get("restic-repository", "")) >= 16, sorted(values)
    d.timed("first backup", lambda: ops.ok(d.path, "backup"))
    assert _unit_state(d) != "failed"
    assert ops.snapshots(d.path).get(d.host), "no snapshot after `nox -s backup`"


def test_rebuild_keeps_data_credentials_and_health(deployed: Deployed):
    d = deployed
    data_set.write(d.host, d.blueprint, "before-rebuild")
    before_state = data_set.state(d.host, d.blueprint)
    before_files = data_set.marked_files(d.host, d.blueprint)
    assert before_files and all(before_state.marked.values()), before_state
    credentials = d.remember(ops.secrets(d.path))
    created = _created(d.host)
    volumes = _volumes(d.name)

    d.timed("rebuild", lambda: ops.rebuild(d.path, d.host))

    assert _created(d.host) != created, "nox -s rebuild did not replace the instance"
    assert _volumes(d.name) == volumes, "the rebuild changed the data volumes"
    assert data_set.marked_files(d.host, d.blueprint) == before_files
    after_state = data_set.state(d.host, d.blueprint)
    assert after_state.marked == before_state.marked
    assert after_state.rows == before_state.rows
    on_volume = tuple(p.rstrip("/") + "/" for p in data_set.volume_paths(d.blueprint))
    assert {p: s for p, s in after_state.files.items() if p.startswith(on_volume)} == \
           {p: s for p, s in before_state.files.items() if p.startswith(on_volume)}
    assert d.remember(ops.secrets(d.path)) == credentials, "the rebuilt instance generated new secrets"
    _healthy(d)


def test_failed_backup_is_visible_and_the_next_one_succeeds(deployed: Deployed):
    d = deployed
    good = ops.snapshots(d.path)[d.host]
    assert good, "no earlier snapshot"
    d.repository.stop()
    try:
        started = time.monotonic()
        try:
            failed = ops.nox(d.path, "backup", timeout=FAILED_BACKUP_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"nox -s backup did not fail within {FAILED_BACKUP_WITHIN} s of the repository going down "
                        "(restic >= 0.16 retries a refused connection for up to 15 minutes: castelet-backup must "
                        "find an unreachable repository out quickly)")
        d.timings["failed backup"] = round(time.monotonic() - started, 1)
        assert failed.returncode != 0, f"nox -s backup succeeded without a repository:\n{ops.output(failed)}"
        assert _unit_state(d) == "failed"
        verify = ops.verify(d.path)
        assert verify.returncode != 0, "verify passed while the last backup failed"
        failures = [line for line in verify.stdout.splitlines() if line.startswith("FAILED")]
        assert failures and all("backup" in line.lower() for line in failures), ops.output(verify, 6000)
        assert "snapshot" in verify.stdout.lower(), f"verify does not report the last good snapshot:\n{verify.stdout}"
    finally:
        d.repository.start()
    ops.ok(d.path, "backup")
    assert _unit_state(d) != "failed"
    after = ops.snapshots(d.path)[d.host]
    assert {s["id"] for s in good} < {s["id"] for s in after}, "nothing lost, one snapshot more"
    _healthy(d)


# As root on the instance: its own repository credentials and password, as an intruder finds them.
_AS_THE_INSTANCE = """set -eu
set -a; . /var/lib/castelet/secrets/backup-credentials.env; set +a
RESTIC_REPOSITORY=$(python3 -c 'import json; print(json.load(open("/etc/castelet/backup.json"))["repository"])')
export RESTIC_REPOSITORY RESTIC_PASSWORD_FILE=/var/lib/castelet/secrets/restic-repository
"""
# A plain DELETE of a snapshot's file through the REST API, with those credentials: its HTTP status.
_DELETE_SNAPSHOT = ("python3 -c 'import base64, os, sys, urllib.error, urllib.request as r\n"
                    "e = os.environ\n"
                    "url = e[\"RESTIC_REPOSITORY\"].removeprefix(\"rest:\").rstrip(\"/\")"
                    " + \"/snapshots/\" + sys.argv[1]\n"
                    "auth = base64.b64encode((e[\"RESTIC_REST_USERNAME\"] + \":\""
                    " + e[\"RESTIC_REST_PASSWORD\"]).encode())\n"
                    "q = r.Request(url, method=\"DELETE\", headers={\"Authorization\": \"Basic \" + auth.decode()})\n"
                    "try:\n    print(r.urlopen(q, timeout=30).status)\n"
                    "except urllib.error.HTTPError as error:\n    print(error.code)\n' ")


# On one blueprint's deployment only (the same deployment as its other tests, not a new one).
@pytest.mark.parametrize("deployed", [bp for bp in DATA_BLUEPRINTS if bp.id == APPEND_ONLY_BLUEPRINT],
                         ids=lambda bp: bp.id, indirect=True)
def test_append_only_root_cannot_delete_and_prune_from_the_host_works(deployed: Deployed):
    """Issue 21 point 3, on the local REST server: with the repository served append-only, root on
    the instance (its credentials, its password) cannot delete a snapshot, by restic or by hand;
    the weekly check passes there; `nox -s prune` from the host, with full-access credentials,
    removes exactly what the retention policy drops and nothing else."""
    d = deployed
    full = d.full_access
    assert full is not None, f"the {APPEND_ONLY_BLUEPRINT} deployment is not served append-only"
    started = time.monotonic()
    before = {str(s["id"]): s for s in ops.snapshots(d.path)[d.host]}
    victim = min(before, key=lambda i: str(before[i]["time"]))
    # (restic 0.18 reports the refusal and still exits 0: what counts is that the snapshot stays)
    forget = data_set.sh(d.host, _AS_THE_INSTANCE + f"timeout 60 restic --no-cache forget {victim} 2>&1; "
                         "echo exit=$?", check=False)
    assert "403" in forget, f"restic forget as root on the instance was not refused:\n{forget}"
    answer = data_set.sh(d.host, _AS_THE_INSTANCE + _DELETE_SNAPSHOT + victim).strip().splitlines()
    assert answer[-1:] == ["403"], f"a DELETE of snapshot {victim} with the instance's credentials: {answer}"
    assert victim in {str(s["id"]) for s in ops.snapshots(d.path)[d.host]}, "root on the instance deleted a snapshot"
    d.timings["append-only: root cannot delete"] = round(time.monotonic() - started, 1)

    # The weekly check works on the append-only repository (restic may remove its own lock there).
    started = time.monotonic()
    data_set.sh(d.host, "systemctl start castelet-backup-check.service")
    checked = json.loads(data_set.sh(d.host, "castelet-backup status", reading=True))
    assert checked["last_check_result"] == "success" and checked["append_only"] is True, checked
    assert "never forgets nor prunes" in checked["retention"]
    d.timings["append-only: weekly check"] = round(time.monotonic() - started, 1)

    # Snapshots of another path a month apart, as the instance may add them: the policy (7 daily,
    # 4 weekly, 6 monthly, and every snapshot of the 7 days before the newest) drops the oldest.
    started = time.monotonic()
    recorded_as = checked["host"]  # the host name castelet-backup's snapshots carry (the certname)
    data_set.sh(d.host, _AS_THE_INSTANCE + "for month in 1 2 3 4 5 6 7 8; do restic --no-cache backup --quiet "
                f"--host {recorded_as} --tag castelet --time \"2019-0$month-15 03:15:00\" /etc/hostname; done")
    env = {**full.environment, "CASTELET_PRUNE_REPOSITORY": full.url(d.name)}
    refused = ops.nox(d.path, "prune", env=env)
    assert refused.returncode != 0 and "nothing was removed" in refused.stderr, ops.output(refused)
    pruned = ops.nox(d.path, "prune", "--confirm", d.name, env=env)
    assert pruned.returncode == 0, ops.output(pruned)
    removed = [line.split() for line in pruned.stdout.splitlines() if line.strip().startswith("remove ")]
    assert [fields[2][:10] for fields in removed] == ["2019-01-15"], pruned.stdout
    after = {str(s["id"]): s for s in ops.snapshots(d.path)[d.host]}
    assert set(before) <= set(after), "prune removed a snapshot the policy keeps"
    assert sorted(str(s["time"])[:7] for i, s in after.items() if i not in before) == \
        [f"2019-0{month}" for month in range(2, 9)]
    assert full.password not in pruned.stdout + pruned.stderr
    d.timings["append-only: prune from the host"] = round(time.monotonic() - started, 1)


def test_no_secret_leaks(deployed: Deployed):
    _assert_no_secret_leaks(deployed)


def test_restore_onto_a_fresh_volume(deployed: Deployed, tmp_path: Path):
    d = deployed
    data_set.write(d.host, d.blueprint, "before-restore")
    before = data_set.state(d.host, d.blueprint)
    credentials = d.remember(ops.secrets(d.path))
    ops.ok(d.path, "backup")
    # Kept by the administrator, outside the deployment: the volume that holds it is destroyed.
    password_file = tmp_path / "restic-password"
    password_file.write_text(credentials["restic-repository"] + "\n")
    password_file.chmod(0o600)
    volumes = _volumes(d.name)
    assert volumes

    d.timed("destroy --with-data (restore test)", lambda: ops.destroy_everything(d.path, d.name))
    for volume in volumes:
        assert lxc("storage", "volume", "show", POOL, volume, check=False).returncode != 0, f"{volume} survived"

    d.timed("fresh plan + apply", lambda: ops.plan_and_apply(d.path))
    assert data_set.marked_files(d.host, d.blueprint) == {}, "the fresh volume is not blank"
    ops.ok(d.path, "backup-credentials", env=d.repository.environment)
    refused = ops.nox(d.path, "restore", "--password-file", str(password_file))
    assert refused.returncode != 0, "restore replaced the data without a confirmation"
    d.timed("restore", lambda: ops.ok(d.path, "restore", "--password-file", str(password_file), "--confirm", d.name))

    after = data_set.state(d.host, d.blueprint)
    assert after.marked == before.marked
    assert after.rows == before.rows
    assert after.files == before.files
    assert d.remember(ops.secrets(d.path)) == credentials, "the restored credentials differ"
    _healthy(d)  # the application works with the restored data and credentials
    tags = [tag for s in ops.snapshots(d.path)[d.host] for tag in (s.get("tags") or [])]
    assert "pre-restore" in tags, "no safety snapshot before the restore"
    _assert_no_secret_leaks(d)


# --- leak search ------------------------------------------------------------------------------


def _user_data_expanded(text: str) -> bytes:
    """The user-data and the decoded content of its `write_files` (base64, gzip+base64)."""
    parts = [text.encode()]
    try:
        config = yaml.safe_load(text.split("\n", 1)[1] if text.startswith("#cloud-config") else text) or {}
    except yaml.YAMLError:
        return parts[0]
    for entry in config.get("write_files", []) if isinstance(config, dict) else []:
        content, encoding = str(entry.get("content", "")), str(entry.get("encoding", ""))
        if encoding in ("b64", "base64"):
            parts.append(base64.b64decode(content))
        elif encoding in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            parts.append(gzip.decompress(base64.b64decode(content)))
    return b"\n".join(parts)


def _places(d: Deployed) -> Iterator[tuple[str, bytes]]:
    for path in sorted(d.path.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield str(path.relative_to(d.path)), path.read_bytes()
    history = subprocess.run(["git", "log", "-p", "--all"], cwd=d.path, capture_output=True, check=False)
    yield "git history of the deployment", history.stdout
    state = subprocess.run([*find_terraform(), "state", "pull"], cwd=d.path, env=terraform_env(cloud="lxd"),
                           capture_output=True, check=True)
    yield "terraform state", state.stdout
    user_data = lxc("config", "get", d.host, "cloud-init.user-data").stdout
    yield "user-data (lxc config)", _user_data_expanded(user_data)
    yield "user-data (instance)", data_set.sh(d.host, "cat /var/lib/cloud/instance/user-data.txt").encode()
    yield "hieradata", data_set.sh(
        d.host, "cat /etc/puppet/code/environments/production/data/*.yaml").encode()
    yield "journal", data_set.sh(d.host, "journalctl --no-pager -o verbose").encode()


def _assert_no_secret_leaks(d: Deployed) -> None:
    values = {**d.seen_secrets, **d.remember(ops.secrets(d.path)),
              "REST username": d.repository.username, "REST password": d.repository.password}
    short = [key for key, value in values.items() if len(value) < 12]
    assert not short, f"secrets too short to search for without false positives: {short}"
    leaks = [(key, place) for place, content in _places(d) for key, value in values.items()
             if value.encode() in content]
    assert leaks == [], f"secret values found: {leaks}"
