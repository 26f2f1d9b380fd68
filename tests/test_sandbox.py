"""Sandboxes: durations, the marks `castelet new --sandbox` writes, and list / extend / gc on real
Terraform state (deployments whose only resources are Terraform's built-in `terraform_data`, plus
instances written into the state as the cloud providers write them where gc must leave them alone)."""

from __future__ import annotations

import fcntl
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from castelet import sandbox
from castelet.answers_file import read_answers_file
from castelet.runtime import terraform_env
from helpers import castelet, terraform_outputs

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "minutes"), [
    ("1m", 1), ("30m", 30), ("4h", 240), ("8h", 480), ("2d", 2880), ("1d12h", 2160), ("1d2h3m", 1563),
    ("14d", 14 * 1440), ("336h", 14 * 1440), ("90m", 90),
])
def test_ttl_accepted(text, minutes):
    assert sandbox.parse_ttl(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", [
    "", "0m", "0h", "4", "h", "4 h", " 4h", "4h ", "4H", "-4h", "+4h", "4.5h", "04h", "2h1d", "1m2h", "4h4h",
    "15d", "337h", "20161m", "1w", "4hours", "\uff14h", "4h\n", "4h\x00", "1e3m", "99999d", "${var.x}", "1d 2h",
])
def test_ttl_refused_with_a_clear_reason(text):
    with pytest.raises(sandbox.SandboxError, match=r"not a duration|longer than the maximum"):
        sandbox.parse_ttl(text)


@pytest.mark.parametrize(("left", "text"), [
    (timedelta(hours=3, minutes=12, seconds=5), "3h 12m left"), (timedelta(seconds=50), "0m left"),
    (timedelta(minutes=-5), "expired 5m ago"), (timedelta(days=2, minutes=1), "2d 1m left"),
])
def test_time_left_is_readable(left, text):
    assert sandbox.describe_left(left) == text


# --- a fake deployment: the real files the sandbox code reads, real Terraform, no cloud ----------

MAIN_TF = """
variable "sandbox_expires" {
  type = string
}

variable "settings" {
  type    = map(string)
  default = {}
}

resource "terraform_data" "instance" {
  count = 2
  input = var.sandbox_expires
}

# As the LXD module records a sandbox's expiry for each instance: the state's proof of a sandbox.
resource "terraform_data" "expiry" {
  count            = 2
  triggers_replace = [var.sandbox_expires, terraform_data.instance[count.index].id]
}
"""


def _fake(root: Path, name: str, expires: datetime | None, created: datetime = NOW - timedelta(hours=1),
          main_tf: str = MAIN_TF) -> Path:
    """A deployment folder: answers record (with the sandbox marker when ``expires``), tfvars, main.tf."""
    path = root / name
    path.mkdir(parents=True)
    recorded = {"blueprint": "sandbox", "answers": {"project_slug": name, "cloud": "openstack"}}
    text = yaml.safe_dump(recorded)
    tfvars = 'settings = {}\n'
    if expires is not None:
        text += (f'sandbox: true\nsandbox_created: "{sandbox.format_time(created)}"\n'
                 'sandbox_owner: "ada@lab.example"\nsandbox_ttl: "60m"\n')
        tfvars += f'sandbox_expires = "{sandbox.format_time(expires)}"\n'
    else:  # not a sandbox, although its tfvars carries the variable: gc must look at the marker
        tfvars += 'sandbox_expires = "2000-01-01T00:00:00Z"\n'
    (path / ".castelet-answers.yaml").write_text(text)
    (path / "terraform.tfvars").write_text(tfvars)
    (path / "main.tf").write_text(main_tf)
    return path


def _tf(path: Path, terraform_cmd: list[str], *args: str) -> str:
    proc = subprocess.run([*terraform_cmd, *args], cwd=path, env=terraform_env(), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _apply(path: Path, terraform_cmd: list[str]) -> None:
    _tf(path, terraform_cmd, "init", "-input=false")
    _tf(path, terraform_cmd, "apply", "-input=false", "-auto-approve")


def _state(path: Path, terraform_cmd: list[str]) -> list[str]:
    return _tf(path, terraform_cmd, "state", "list").split()


def test_gc_destroys_only_expired_sandboxes_and_a_second_run_is_a_no_op(tmp_path, terraform_cmd):
    expired = _fake(tmp_path / "lab", "expired", NOW - timedelta(minutes=1))
    alive = _fake(tmp_path / "lab", "alive", NOW + timedelta(hours=2))
    plain = _fake(tmp_path / "lab", "plain", None)
    never = _fake(tmp_path / "lab" / "deeper", "never-applied", NOW - timedelta(days=1))
    for path in (expired, alive, plain):
        _apply(path, terraform_cmd)

    lines: list[str] = []
    report = sandbox.gc([tmp_path], lines.append, now=NOW)
    assert report.ok and report.destroyed == [expired]
    assert _state(expired, terraform_cmd) == []
    assert len(_state(alive, terraform_cmd)) == 4 and len(_state(plain, terraform_cmd)) == 4
    assert not any("plain" in line for line in lines), "a non-sandbox deployment is not even mentioned"
    assert any(line.startswith(f"{expired}: destroyed 4 resources") for line in lines), lines
    assert any(line.startswith(f"{alive}: kept, 2h 0m left") for line in lines), lines
    assert any(line.startswith(f"{never}: already destroyed") for line in lines), lines
    assert (expired / "main.tf").is_file(), "gc destroys cloud resources, never the deployment's files"

    again: list[str] = []
    assert sandbox.gc([tmp_path], again.append, now=NOW).destroyed == []
    assert any(line.startswith(f"{expired}: already destroyed") for line in again), again


def test_gc_dry_run_destroys_nothing_and_a_held_lock_is_skipped(tmp_path, terraform_cmd):
    expired = _fake(tmp_path, "expired", NOW - timedelta(minutes=5))
    _apply(expired, terraform_cmd)
    lines: list[str] = []
    assert sandbox.gc([tmp_path], lines.append, dry_run=True, now=NOW).destroyed == []
    assert lines == [f"{expired}: would destroy 4 resources (expired 5m ago, owner ada@lab.example)"]
    with (expired / ".castelet-answers.yaml").open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        lines.clear()
        report = sandbox.gc([tmp_path], lines.append, now=NOW)
    assert report.ok and report.destroyed == []
    assert lines == [f"{expired}: skipped, another gc or extend holds its lock"]
    assert len(_state(expired, terraform_cmd)) == 4


def test_gc_reports_a_broken_record_as_a_failure_and_goes_on(tmp_path, terraform_cmd):
    broken = _fake(tmp_path, "broken", NOW - timedelta(minutes=5))
    (broken / "terraform.tfvars").write_text('sandbox_expires = "tomorrow"\n')
    expired = _fake(tmp_path, "expired", NOW - timedelta(minutes=5))
    _apply(expired, terraform_cmd)
    lines: list[str] = []
    report = sandbox.gc([tmp_path], lines.append, now=NOW)
    assert report.failed == [broken] and report.destroyed == [expired]
    assert any("not a UTC time" in line for line in lines), lines


def test_cli_gc_exit_codes_and_one_log_line_per_sandbox(tmp_path, terraform_cmd):
    expired = _fake(tmp_path, "expired", datetime.now(UTC) - timedelta(minutes=1))
    _fake(tmp_path, "plain", None)
    _apply(expired, terraform_cmd)
    listed = castelet("sandbox", "list", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert "expired" in listed.stdout and "ada@lab.example" in listed.stdout and "plain" not in listed.stdout
    first = castelet("sandbox", "gc", str(tmp_path))
    assert first.returncode == 0, first.stdout + first.stderr
    assert [line.split(" ", 4)[-1] for line in first.stdout.splitlines()] == [f"{expired}: destroyed 4 resources "
                                                                              "(sandbox on openstack, owner "
                                                                              "ada@lab.example, expired 1m ago)"]
    second = castelet("sandbox", "gc", str(tmp_path))
    assert second.returncode == 0 and "already destroyed" in second.stdout
    (expired / "main.tf").write_text(MAIN_TF.replace('resource "terraform_data"', 'resource "nonsense_x"'))
    (expired / "terraform.tfstate").write_text("{ not json")
    failed = castelet("sandbox", "gc", str(tmp_path))
    assert failed.returncode == 1 and "FAILED" in failed.stdout


def _instances_shown(path: Path, terraform_cmd: list[str]) -> list[dict[str, object]]:
    """The fake's instances in `terraform show -json` (its expiry records are replaced on extend,
    as the LXD module's are)."""
    shown = json.loads(_tf(path, terraform_cmd, "show", "-json"))["values"]["root_module"]["resources"]
    return [r for r in shown if r["name"] == "instance"]


def test_extend_moves_the_expiry_in_place_within_fourteen_days_of_creation(tmp_path, terraform_cmd):
    now = datetime.now(UTC).replace(microsecond=0)
    path = _fake(tmp_path, "box", now + timedelta(minutes=30), created=now - timedelta(days=13, hours=22))
    _apply(path, terraform_cmd)
    ids = _instances_shown(path, terraform_cmd)
    lines: list[str] = []
    moved = sandbox.extend(path, "1h", lines.append, now=now)
    assert moved.expires == now + timedelta(minutes=90)
    assert "applied in place: no instance was replaced" in lines
    after = _instances_shown(path, terraform_cmd)
    assert [r["values"]["id"] for r in after] == [r["values"]["id"] for r in ids]
    assert {r["values"]["output"] for r in after} == {sandbox.format_time(moved.expires)}
    with pytest.raises(sandbox.SandboxError, match="past the latest expiry"):
        sandbox.extend(path, "1h", lines.append, now=now)
    assert sandbox.expiry_in_tfvars(path) == sandbox.format_time(moved.expires)
    with pytest.raises(sandbox.SandboxError, match="not a sandbox"):
        sandbox.extend(_fake(tmp_path, "plain", None), "1h", lines.append)


def test_extend_never_applies_a_plan_that_replaces_something(tmp_path, terraform_cmd):
    replacing = MAIN_TF.replace("input = var.sandbox_expires", "triggers_replace = var.sandbox_expires")
    path = _fake(tmp_path, "box", datetime.now(UTC) + timedelta(hours=1), main_tf=replacing)
    _apply(path, terraform_cmd)
    before = _state(path, terraform_cmd)
    ids = _tf(path, terraform_cmd, "show", "-json")
    lines: list[str] = []
    sandbox.extend(path, "1h", lines.append)
    assert any("other pending changes" in line for line in lines), lines
    assert _state(path, terraform_cmd) == before and _tf(path, terraform_cmd, "show", "-json") == ids


# --- gc destroys only what is provably a sandbox ---------------------------------------------------

OPENSTACK = 'provider["registry.terraform.io/terraform-provider-openstack/openstack"]'
LXD = 'provider["registry.terraform.io/terraform-lxd/lxd"]'


def _add_instance(path: Path, kind: str, provider: str, attributes: dict[str, object]) -> None:
    """Write an instance of a real deployment into the fake's state, as its provider writes it
    (gc reads the raw state: no provider is needed, and none is installed)."""
    state_file = path / "terraform.tfstate"
    state = json.loads(state_file.read_text())
    state["resources"].append({"mode": "managed", "type": kind, "name": "instance", "provider": provider,
                               "instances": [{"index_key": "lab-main1", "schema_version": 0,
                                              "attributes": {"id": "lab-main1", **attributes}}]})
    state["serial"] += 1
    state_file.write_text(json.dumps(state))


def _untouched(path: Path, terraform_cmd: list[str], count: int, lines: list[str], line: str,
               report: sandbox.GcReport) -> None:
    assert report.ok and report.skipped == [path] and report.destroyed == [], lines
    assert lines == [f"{path}: skipped, not provably a sandbox: {line}"]
    assert len(_state(path, terraform_cmd)) == count, "nothing was destroyed"


@pytest.mark.parametrize(("kind", "provider", "attributes", "where"), [
    ("openstack_compute_instance_v2", OPENSTACK, {"metadata": {"castelet_deployment": "lab",
                                                               "castelet_role": "main"}}, "metadata"),
    ("lxd_container", LXD, {"config": {"user.castelet.role": "main"}}, "config"),
])
def test_gc_skips_a_marked_deployment_whose_instance_lacks_the_expiry(tmp_path, terraform_cmd, kind, provider,
                                                                     attributes, where):
    """An answers file edited (or copied) to claim `sandbox: true` next to a real deployment's
    state: its instance carries no sandbox expiry, so neither gc nor its dry run destroys it."""
    path = _fake(tmp_path, "lab", NOW - timedelta(minutes=5))
    _apply(path, terraform_cmd)
    _add_instance(path, kind, provider, attributes)
    why = f'instance {kind}.instance["lab-main1"] has no sandbox expiry in its {where}'
    for dry_run in (True, False):
        lines: list[str] = []
        _untouched(path, terraform_cmd, 5, lines, why, sandbox.gc([tmp_path], lines.append, dry_run, now=NOW))


def test_gc_skips_a_marked_deployment_whose_state_holds_no_expiry(tmp_path, terraform_cmd):
    path = _fake(tmp_path, "lab", NOW - timedelta(minutes=5), main_tf=MAIN_TF.split("# As the LXD")[0])
    _apply(path, terraform_cmd)
    lines: list[str] = []
    report = sandbox.gc([tmp_path], lines.append, now=NOW)
    _untouched(path, terraform_cmd, 2, lines, "no instance in the state carries a sandbox expiry", report)


def test_gc_skips_a_sandbox_whose_state_expiry_differs_from_tfvars(tmp_path, terraform_cmd):
    moved = _fake(tmp_path / "a", "moved", NOW - timedelta(minutes=5))
    _apply(moved, terraform_cmd)
    tfvars = moved / "terraform.tfvars"  # moved by hand and never applied
    tfvars.write_text(tfvars.read_text().replace("2026-11-25T11:55:00Z", "2026-11-25T11:58:00Z"))
    lines: list[str] = []
    report = sandbox.gc([tmp_path / "a"], lines.append, now=NOW)
    _untouched(moved, terraform_cmd, 4, lines, "the expiry of terraform_data.expiry[0] in the state, "
               "2026-11-25T11:55:00Z, differs from terraform.tfvars's 2026-11-25T11:58:00Z", report)

    other = _fake(tmp_path / "b", "other", NOW - timedelta(minutes=5))  # its own records agree, not its instance
    _apply(other, terraform_cmd)
    _add_instance(other, "openstack_compute_instance_v2", OPENSTACK,
                  {"metadata": {"castelet_expires": "2026-11-25T11:00:00Z"}})
    lines.clear()
    report = sandbox.gc([tmp_path / "b"], lines.append, now=NOW)
    _untouched(other, terraform_cmd, 5, lines, 'the expiry of openstack_compute_instance_v2.instance["lab-main1"] '
               "in the state, 2026-11-25T11:00:00Z, differs from terraform.tfvars's 2026-11-25T11:55:00Z", report)


def test_gc_skips_a_sandbox_with_a_remote_backend(tmp_path, terraform_cmd):
    path = _fake(tmp_path, "lab", NOW - timedelta(minutes=5))
    _apply(path, terraform_cmd)
    (path / "backend.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    lines: list[str] = []
    report = sandbox.gc([tmp_path], lines.append, now=NOW)
    assert report.ok and report.skipped == [path] and report.destroyed == [], lines
    assert lines == [f"{path}: skipped, not provably a sandbox: remote backend (s3), gc handles only local state"]
    assert len(json.loads((path / "terraform.tfstate").read_text())["resources"]) == 2, "nothing was destroyed"
    proc = castelet("sandbox", "gc", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # skipped is not a failure, and it is shown
    assert proc.stdout.count("skipped, not provably a sandbox: remote backend (s3)") == 1, proc.stdout


def test_gc_finishes_a_destroy_interrupted_after_the_last_expiry_went(tmp_path, terraform_cmd, monkeypatch):
    """The state's proof goes first in a destroy; the next gc still finishes what gc itself began
    (same state lineage and expiry), and only that."""
    path = _fake(tmp_path, "lab", NOW - timedelta(minutes=5))
    _apply(path, terraform_cmd)

    def interrupted(box, stream):
        _tf(box.path, terraform_cmd, "destroy", "-auto-approve", "-target=terraform_data.expiry")
        raise sandbox.SandboxError("terraform destroy failed (exit 1): killed")

    with monkeypatch.context() as patched:
        patched.setattr(sandbox, "_destroy_once", interrupted)
        assert sandbox.gc([tmp_path], print, now=NOW).failed == [path]
    assert _state(path, terraform_cmd) == ["terraform_data.instance[0]", "terraform_data.instance[1]"]
    record = path / sandbox.DESTROYING_FILE
    aside = record.rename(tmp_path / "record")
    lines: list[str] = []
    report = sandbox.gc([tmp_path], lines.append, now=NOW)
    _untouched(path, terraform_cmd, 2, lines, "no instance in the state carries a sandbox expiry", report)
    aside.rename(record)
    lines.clear()
    report = sandbox.gc([tmp_path], lines.append, now=NOW)
    assert report.destroyed == [path] and _state(path, terraform_cmd) == [], lines
    assert not record.exists()


E1, E2 = "2026-11-25T11:00:00Z", "2026-11-25T11:30:00Z"
DYNAMIC = ["tuple", ["string", "string"]]


def _raw(*resources: tuple[str, str, object, dict[str, object]]) -> dict[str, object]:
    return {"version": 4, "lineage": "l", "resources": [
        {"module": "module.cloud", "mode": "managed", "type": kind, "name": name,
         "instances": [{"index_key": key, "attributes": attributes}]} for kind, name, key, attributes in resources]}


def _container(expires: str | None) -> tuple[str, str, object, dict[str, object]]:
    config = {"user.castelet.role": "main"} | ({"user.castelet.expires": expires} if expires else {})
    return "lxd_container", "instance", "box-main1", {"id": "box-main1", "config": config}


def _expiry(expires: str) -> tuple[str, str, object, dict[str, object]]:
    return "terraform_data", "expiry", "box-main1", {"triggers_replace": {"value": [expires, "box-main1"],
                                                                         "type": DYNAMIC}}


VOLUME = ("lxd_volume", "volume", "box-main1-data", {"name": "box-main1-data"})


@pytest.mark.parametrize(("state", "why"), [
    # LXD: created (the container's config was read before `lxc config set`), then extended (the
    # config in the state holds the expiry of the last refresh), then a destroy stopped half-way
    (_raw(_container(None), _expiry(E2), VOLUME), None),
    (_raw(_container(E1), _expiry(E2), VOLUME), None),
    (_raw(_container(E2), VOLUME), None),
    (_raw(("openstack_compute_instance_v2", "instance", "box-main1", {"metadata": {"castelet_expires": E2}})), None),
    (_raw(_container(E1), VOLUME), 'lxd_container.instance["box-main1"] in the state, 2026-11-25T11:00:00Z, differs'),
    (_raw(_container(None), VOLUME), 'instance module.cloud.lxd_container.instance["box-main1"] has no sandbox expiry'),
    (_raw(_container(E2), _expiry(E1)), 'terraform_data.expiry["box-main1"] in the state, 2026-11-25T11:00:00Z'),
    (_raw(("openstack_compute_instance_v2", "instance", "box-main1", {"metadata": {"castelet_expires": 7}})),
     "in the state, 7, differs"),
    (_raw(VOLUME), "no instance in the state carries a sandbox expiry"),
    ({"resources": "nonsense"}, "no instance in the state carries a sandbox expiry"),
])
def test_what_the_state_must_hold(state, why):
    found = sandbox.unproven(state, E2)
    assert found is None if why is None else why in (found or ""), found


# --- castelet new --sandbox -------------------------------------------------------------------------


def test_new_sandbox_records_its_marks_and_terraform_takes_them(tmp_path, terraform_cmd):
    answers = tmp_path / "answers.yaml"
    answers.write_text("project_slug: sbx-unit\ncloud: lxd\n")
    out = tmp_path / "out"
    proc = castelet("new", "lamp", "--no-input", "--answers", str(answers), "-o", str(out), "--sandbox",
                    "--ttl", "4h")
    assert proc.returncode == 0, proc.stderr
    deployment = out / "sbx-unit"
    box = sandbox.read(deployment)
    assert box is not None and box.cloud == "lxd" and box.blueprint == "lamp"
    assert timedelta(hours=4) - timedelta(minutes=1) < box.left(datetime.now(UTC)) <= timedelta(hours=4)
    assert box.latest == box.created + timedelta(days=14)
    git = subprocess.run(["git", "status", "--porcelain"], cwd=deployment, capture_output=True, text=True, check=True)
    assert git.stdout == "", "the sandbox marks are committed"
    # the record still reads as an answers file (re-rendering, or a copy for a colleague)
    assert read_answers_file(deployment / ".castelet-answers.yaml")["project_slug"] == "sbx-unit"
    # real Terraform core takes the variable and hands the expiry to the cloud module
    outputs = terraform_outputs(deployment, terraform_cmd, tmp_path)
    assert outputs["hieradata"], "the deployment still plans"
    bad = terraform_outputs_error(deployment, terraform_cmd, tmp_path, 'sandbox_expires = "soon"\n')
    assert "sandbox_expires must be empty or a UTC time" in bad


def terraform_outputs_error(deployment: Path, terraform_cmd: list[str], tmp_path: Path, var_file: str) -> str:
    work = tmp_path / "bad"
    work.mkdir()
    with pytest.raises(AssertionError) as failed:
        terraform_outputs(deployment, terraform_cmd, work, var_file)
    return str(failed.value)


@pytest.mark.parametrize("flags", [["--ttl", "4h"], ["--sandbox", "--ttl", "0m"], ["--sandbox", "--ttl", "15d"],
                                   ["--sandbox", "--force"], ["--sandbox", "--ttl", "4h;rm -rf /"]])
def test_new_refuses_a_bad_sandbox_request_before_writing(tmp_path, flags):
    proc = castelet("new", "lamp", "--no-input", "-o", str(tmp_path), *flags)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing was written" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_plain_render_is_not_a_sandbox(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("project_slug: plain\ncloud: lxd\n")
    assert castelet("new", "lamp", "--no-input", "--answers", str(answers), "-o", str(tmp_path)).returncode == 0
    assert sandbox.read(tmp_path / "plain") is None
    assert "sandbox_expires" not in (tmp_path / "plain" / "terraform.tfvars").read_text()
    assert sandbox.listing([tmp_path]) == []


# --- the sandbox blueprint: its answers, and what Puppet makes of them ----------------------------


def _sandbox_answers(**given: str) -> dict[str, object]:
    from castelet.answers import validate
    from castelet.manifest import load
    from helpers import REPO_ROOT

    return validate(load(REPO_ROOT / "blueprints" / "sandbox"), {"cloud": "lxd", **given})


@pytest.mark.parametrize("packages", ["", "jq", "jq htop", "g++ libc6-dev python3.11 r-base-core 0ad", "xz-utils"])
def test_packages_accepted(packages):
    assert _sandbox_answers(packages=packages)["packages"] == packages


@pytest.mark.parametrize("packages", [
    "j", "Jq", "jq  htop", " jq", "jq ", "jq,htop", "jq\thtop", "jq\nhtop", "-jq", ".jq", "+jq", "jq_x", "jq:amd64",
    "jq=1.6", "jq/bookworm", "jq jq", "\uff4aq", "jq;rm", "$(id)", "a" * 101, " ".join(f"p{i}" for i in range(101)),
])
def test_packages_refused(packages):
    from castelet.answers import AnswersError

    with pytest.raises(AnswersError, match=r"packages: .* is not valid"):
        _sandbox_answers(packages=packages)


@pytest.mark.parametrize("ports", ["", "8080/tcp", "8080/tcp 8080/udp 5353/udp", "1/tcp", "65535/udp", "22/udp"])
def test_ports_accepted(ports):
    assert _sandbox_answers(open_ports=ports)["open_ports"] == ports


@pytest.mark.parametrize("ports", [
    "8080", "0/tcp", "65536/tcp", "99999/tcp", "080/tcp", "8080/TCP", "8080/sctp", "8080/tcp,8081/tcp",
    "8080/tcp  8081/tcp", "8080/tcp 8080/tcp", "22/tcp", "-1/tcp", "8080-8090/tcp", "\uff18\uff10/tcp", "8080/tcp\n",
])
def test_ports_refused(ports):
    from castelet.answers import AnswersError

    with pytest.raises(AnswersError, match=r"open_ports: .* is not valid"):
        _sandbox_answers(open_ports=ports)


def test_packages_and_ports_reach_puppet_through_terraform(tmp_path, terraform_cmd, puppet_bin):
    from castelet.render import new
    from helpers import REPO_ROOT
    from test_puppet import debian_facts, errors_of, scratch_environment

    deployment = new(REPO_ROOT / "blueprints" / "sandbox",
                     {"cloud": "lxd", "project_slug": "sbx-puppet", "packages": "jq htop sudo",
                      "open_ports": "8080/tcp 5353/udp"}, tmp_path / "out")
    (hostname, data), = terraform_outputs(deployment, terraform_cmd, tmp_path)["hieradata"].items()
    env = scratch_environment(tmp_path / "puppet", puppet_bin, deployment / "puppet")
    (env.env_dir / "data" / "terraform.yaml").write_text(data)
    result = env.compile({**debian_facts("13"), "castelet_role": "main"}, node=hostname)
    assert result.returncode == 0, errors_of(result)
    assert {"jq", "htop", "sudo"} <= result.titles("Package")
    assert result.resource("Package", "jq")["before"] == "Class[Castelet::Installed]"
    rules = result.resource("File", "/etc/nftables.castelet.d/open-ports.nft")["content"]
    assert 'ip saddr 192.0.2.0/24 tcp dport 8080 accept comment "open-8080-tcp"' in rules
    assert 'ip saddr 192.0.2.0/24 udp dport 5353 accept comment "open-5353-udp"' in rules


def test_gc_destroy_retries_while_the_cloud_is_busy_and_not_otherwise(monkeypatch):
    """LXD answers 'is busy running a "stop" operation' after an interrupted destroy: retried;
    any other failure is raised at once."""
    calls: list[str] = []
    answers = [sandbox.SandboxError('Error: Instance is busy running a "stop" operation'), None]

    def once(sb, stream):
        calls.append("destroy")
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    monkeypatch.setattr(sandbox, "_destroy_once", once)
    monkeypatch.setattr(sandbox, "BUSY_PAUSE_SECONDS", 0.0)
    sandbox._destroy(None, None)  # type: ignore[arg-type]
    assert calls == ["destroy", "destroy"]

    calls.clear()
    answers[:] = [sandbox.SandboxError("terraform destroy failed: quota"), None]
    with pytest.raises(sandbox.SandboxError, match="quota"):
        sandbox._destroy(None, None)  # type: ignore[arg-type]
    assert calls == ["destroy"]
