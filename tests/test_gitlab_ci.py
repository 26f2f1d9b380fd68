"""The GitLab CI job a nodejs-app deployment is rendered with (issue 21, point 11): its image pinned
by digest and no unpinned tool; a deploy key limited to the redeploy (the account
`castelet-redeploy`, whose forced command tests/test_puppet_host_baseline.py and the e2e checks
prove), reached with the host key the repository records; a header that asks only for what
GitLab can do (a variable described as masked can be masked, every secret protected and masked)
and describes every variable the job reads. The job itself is run here, its tools replaced by
recorders: what it sends, to whom, with which key and which known_hosts."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from castelet.render import new
from helpers import REPO_ROOT

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5iIhev2hhjgWspSDHE5XtW+bq8mxE3rWW070cE/9Zd"
# name, type, protected, masked, what (the header's table)
ROW = re.compile(r"^#   ([A-Z][A-Z0-9_]*) +(Variable|File) +(yes|no) +(yes|no) +(\S.*)$")
SECRETS = {"REDEPLOY_SSH_KEY_B64"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new(REPO_ROOT / "blueprints" / "nodejs-app", {"admin_ssh_keys": KEY, "project_slug": "atlas",
                                                          "redeploy_ssh_key": KEY.replace("admin@", "ci@")},
               tmp_path_factory.mktemp("gitlab"))


@pytest.fixture(scope="module")
def pipeline(deployment: Path) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((deployment / ".gitlab-ci.yml").read_text())
    return found


@pytest.fixture(scope="module")
def job(pipeline: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = pipeline["redeploy"]
    return found


def _shell(job: dict[str, Any]) -> list[str]:
    lines = [*job.get("before_script", []), *job.get("script", [])]
    # (an unquoted `: ` makes a YAML mapping of a command line, which GitLab refuses)
    assert all(isinstance(line, str) for line in lines), [line for line in lines if not isinstance(line, str)]
    return lines


def test_the_image_is_pinned_by_digest(job: dict[str, Any]) -> None:
    image = job["image"] if isinstance(job["image"], str) else job["image"]["name"]
    assert re.fullmatch(r"[a-z0-9./_-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), image


def test_the_only_job_is_the_redeploy_with_no_admin_power(pipeline: dict[str, Any], job: dict[str, Any],
                                                          deployment: Path) -> None:
    """One job, and it holds no admin key, no cloud credential and no Terraform state: it neither
    applies nor configures (tfvars changes are an admin's `nox -s configure`), and installs no
    Python package (nothing to pin by hash)."""
    jobs = [name for name, value in pipeline.items() if isinstance(value, dict) and "script" in value]
    assert jobs == ["redeploy"]
    shell = "\n".join(_shell(job))
    for power in ("nox", "terraform", "configure", "OS_", "CLOUDS_YAML", "TF_", "SSH_PRIVATE_KEY", "sudo", "pip"):
        assert power not in shell and power not in json.dumps(job.get("variables", {})), power
    assert not (deployment / ".gitlab-ci-requirements.txt").exists()
    ssh = [line for line in _shell(job) if line.startswith("ssh ")]
    assert len(ssh) == 1
    words = shlex.split(ssh[0].replace("$KEY_DIR", "KEY_DIR"))
    assert words[words.index("--") + 1:] == ["castelet-redeploy@$REDEPLOY_HOST", "deploy"]
    assert "StrictHostKeyChecking=yes" in words and "BatchMode=yes" in words and "IdentitiesOnly=yes" in words
    assert "UserKnownHostsFile=KEY_DIR/known_hosts" in words


def test_the_header_describes_variables_gitlab_can_protect(job: dict[str, Any], deployment: Path) -> None:
    text = (deployment / ".gitlab-ci.yml").read_text()
    header = text.split("\nstages:", 1)[0]
    rows = {m[1]: m for m in map(ROW.match, header.splitlines()) if m}
    assert rows, "no table of CI/CD variables in the header"
    for name, row in rows.items():
        kind, protected, masked = row[2], row[3] == "yes", row[4] == "yes"
        if masked:
            assert kind == "Variable", f"{name}: GitLab cannot mask a File variable"
        if kind == "File":  # credentials that cannot be masked are protected at least
            assert protected, f"{name}: a file of credentials must be protected"
    for name in SECRETS:
        assert rows[name][3] == "yes" and rows[name][4] == "yes", f"{name} is a secret: protected and masked"
    assert "(protected, masked)" not in header, "a blanket claim GitLab cannot honour for files and PEM keys"
    assert "protected branches" in header and "Masking is not access control" in header
    assert "redeploy_ssh_key" in header and "nox -s configure" in header and "host_keys.json" in header
    # every variable the job reads is described (or predefined by GitLab, or set by the job itself)
    shell = "\n".join(_shell(job))
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", shell + "\n" + "\n".join(map(str, job.get("variables",
                                                                                                {}).values()))))
    assigned = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", shell)) | set(job.get("variables", {}))
    undescribed = {name for name in used - assigned - set(rows) if not name.startswith("CI_")}
    assert undescribed == set(), f"variables the job reads but the header does not describe: {undescribed}"
    assert "REDEPLOY_SSH_KEY_B64" in shell and "base64 -d" in shell


Calls = list[list[str]]


def _run_job(job: dict[str, Any], deployment: Path, tmp_path: Path,
             host: str) -> tuple[subprocess.CompletedProcess[str], Calls]:
    """The job's shell lines, in the rendered deployment, with apt-get and ssh replaced by
    recorders (ssh also keeps the key and known_hosts files it was given)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    log = tmp_path / "calls.jsonl"
    recorder = (f"#!{os.environ.get('PYTHON', '/usr/bin/python3')}\nimport json, os, shutil, sys\n"
                f"open({str(log)!r}, 'a').write(json.dumps(sys.argv) + '\\n')\n"
                "for value in (a.split('=', 1)[-1] for a in sys.argv[1:]):\n"
                "    if os.path.basename(value) in ('known_hosts', 'id') and os.path.isfile(value):\n"
                f"        shutil.copy(value, os.path.join({str(tmp_path)!r}, 'seen-' + os.path.basename(value)))\n")
    for tool in ("apt-get", "ssh"):
        (tools / tool).write_text(recorder)
        (tools / tool).chmod(0o755)
    env = {"PATH": f"{tools}:/usr/bin:/bin", "HOME": str(tmp_path), "REDEPLOY_HOST": host,
           "REDEPLOY_SSH_KEY_B64": base64.b64encode(b"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n").decode()}
    script = "set -e\n" + "\n".join(_shell(job)) + "\n"
    proc = subprocess.run(["bash", "-c", script], cwd=deployment, env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def test_the_job_pins_the_recorded_host_key_and_sends_the_redeploy(
        job: dict[str, Any], deployment: Path, tmp_path: Path) -> None:
    records = deployment / ".castelet" / "host_keys.json"
    records.write_text(json.dumps({"atlas-web1": {"id": "0b1f9c2e", "key": HOST_KEY}}))
    try:
        proc, calls = _run_job(job, deployment, tmp_path, "203.0.113.7")
    finally:
        records.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ssh = [c for c in calls if c[0].endswith("/ssh")]
    assert len(ssh) == 1 and ssh[0][-2:] == ["castelet-redeploy@203.0.113.7", "deploy"], ssh
    assert (tmp_path / "seen-known_hosts").read_text() == f"203.0.113.7 {HOST_KEY}\n"
    assert (tmp_path / "seen-id").read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


@pytest.mark.parametrize("host", ["203.0.113.7", "-oProxyCommand=touch /tmp/x", "a b"])
def test_the_job_refuses_a_host_with_no_recorded_key_or_a_bad_address(
        job: dict[str, Any], deployment: Path, tmp_path: Path, host: str) -> None:
    """No host_keys.json (or no record for the instance), or an address that is not one: the job
    stops before ssh runs."""
    if host != "203.0.113.7":
        (deployment / ".castelet" / "host_keys.json").write_text(
            json.dumps({"atlas-web1": {"id": "0b1f9c2e", "key": HOST_KEY}}))
    try:
        proc, calls = _run_job(job, deployment, tmp_path, host)
    finally:
        (deployment / ".castelet" / "host_keys.json").unlink(missing_ok=True)
    assert proc.returncode != 0
    assert not [c for c in calls if c[0].endswith("/ssh")]
    assert "no SSH host key is recorded for atlas-web1" in proc.stderr or "is not an IP address" in proc.stderr
