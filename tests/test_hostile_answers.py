"""Answers are data, never code: hostile strings that pass validation reach every file intact.

Each string of the corpus is rendered as a project name through `castelet new` and through
plain `cookiecutter`. It must come out verbatim in the recorded answers, as the same HCL
string in terraform.tfvars, as text (not markup) in the README once a Markdown renderer
(markdown-it, CommonMark) has turned it into HTML, and — through real Terraform core and a real
Puppet run reading hiera — as the same string in Puppet. Payloads that would create a marker
file if any layer evaluated them must leave no marker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from castelet.render import new
from helpers import REPO_ROOT, terraform_outputs

MARKER = "pwned"


def corpus(marker_dir: Path) -> list[str]:
    touch = f"touch {marker_dir}/{MARKER}"
    return [
        "{{ 7*7 }}",
        "{% if true %}yes{% endif %}",
        "{{ broken",
        "{% endif %}",
        "{# not a comment",
        "{% raw %}{{ x }}{% endraw %}",
        f"{{{{ lipsum.__globals__['os'].popen('{touch}').read() }}}}",
        f"{{{{ cycler.__init__.__globals__.os.system('{touch}') }}}}",
        "${var.name} ${file(\"/etc/passwd\")}",
        "$${x} %%{y} %{ if true }x%{ endif }",
        "%{lookup('terraform.domain')} %{alias('x')} %{literal('%')}",
        "%{hiera('castelet::domain')}",
        f"`{touch}` $({touch})",
        "'; DROP TABLE users; --",
        "\"quoted\" and 'single' \\ backslash",
        "a | b | c",
        "<script>alert(1)</script> & <b>bold</b>",
        "[link](javascript:alert(1)) ![img](x) *em* _u_ ~s~",
        "# heading",
        "- item",
        "1. numbered",
        "\u202eRTL override \u200f",
        "e\u0301 combining and \u0627\u0644\u0639\u0631\u0628\u064a\u0629 Arabic",
        "emoji 🏛️ and tab-free spaces",
        "ends with a percent %",
    ]


def _tfvars_setting(tfvars: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s*=\s*(\".*\")\s*$", tfvars, re.MULTILINE)
    assert match, f"{name} not found in terraform.tfvars"
    return match.group(1)


def _html_text(value: str) -> str:
    """How markdown-it writes text into HTML."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _readme_text(readme: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(readme)


def _render_with_cookiecutter(out: Path, value: str) -> Path:
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(REPO_ROOT / "blueprints" / "lamp"), "--no-input", "-o", str(out),
         f"project_name={value}", "cloud=lxd", "project_slug=hostile"],
        capture_output=True, text=True, check=False, cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "hostile"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("hostile")
    # payloads must fit the 120 characters of a project name: a short marker directory
    marker_dir = Path(tempfile.mkdtemp(prefix="cx", dir="/tmp"))
    values = corpus(marker_dir)
    for index in range(len(values)):
        (base / f"v{index}").mkdir()
    # Plain cookiecutter runs in processes of its own: those renders go on in parallel (one per
    # core) while castelet renders in this process (cookiecutter's in-process rendering changes
    # the working directory, so those stay one at a time).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        via_cookiecutter = [pool.submit(_render_with_cookiecutter, base / f"v{i}" / "cookiecutter", value)
                            for i, value in enumerate(values)]
        via_castelet = [new(REPO_ROOT / "blueprints" / "lamp",
                            {"project_name": value, "cloud": "lxd", "project_slug": "hostile"},
                            base / f"v{i}" / "castelet") for i, value in enumerate(values)]
        results = [(value, castelet_render, future.result())
                   for value, castelet_render, future in zip(values, via_castelet, via_cookiecutter, strict=True)]
    yield {"base": base, "marker_dir": marker_dir, "results": results}
    shutil.rmtree(marker_dir)  # outside pytest's temporary directories: nothing else removes it


def test_no_payload_was_executed(rendered: dict[str, Any]) -> None:
    assert Path(rendered["marker_dir"]).is_dir() and not list(Path(rendered["marker_dir"]).iterdir())
    assert not list(Path(rendered["base"]).rglob(MARKER))
    assert not (Path.cwd() / MARKER).exists()


def test_values_are_intact_in_every_file_and_both_renderers_agree(rendered: dict[str, Any]) -> None:
    for value, via_castelet, via_cookiecutter in rendered["results"]:
        for deployment in (via_castelet, via_cookiecutter):
            answers = yaml.safe_load((deployment / ".castelet-answers.yaml").read_text())["answers"]
            assert answers["project_name"] == value
            literal = _tfvars_setting((deployment / "terraform.tfvars").read_text(), "project_name")
            assert json.loads(literal).replace("$${", "${").replace("%%{", "%{") == value
            page = _readme_text((deployment / "README.md").read_text())
            assert f"<h1>{_html_text(value)} — " in page, (value, page[:300])
            assert "<script>" not in page and "<b>" not in page
        assert (via_castelet / "terraform.tfvars").read_text() == (via_cookiecutter / "terraform.tfvars").read_text()


def test_values_reach_puppet_verbatim_through_terraform_and_hiera(
        rendered: dict[str, Any], terraform_cmd: list[str], puppet_bin: str, tmp_path: Path) -> None:
    """One deployment carries every value as a setting (the HCL castelet wrote for it) and SSH keys
    whose comments are hostile; Terraform writes the hieradata, a real `puppet apply` reads it back."""
    from test_puppet import scratch_environment

    results = rendered["results"]
    lines = [f"  v{i} = {_tfvars_setting((d / 'terraform.tfvars').read_text(), 'project_name')}"
             for i, (_, d, _) in enumerate(results)]
    keygen = tmp_path / "key"
    comments = ["%{lookup('terraform.domain')} {{ 7*7 }}", "${path.root} `id` <b>x</b>", "ünï %{literal('%')}"]
    keys = []
    for index, comment in enumerate(comments):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", f"{keygen}{index}"],
                       check=True)
        keys.append(Path(f"{keygen}{index}.pub").read_text().strip())
    with_keys = new(REPO_ROOT / "blueprints" / "lamp",
                    {"cloud": "lxd", "project_slug": "keys", "admin_ssh_keys": ",".join(keys)}, tmp_path / "k")
    tfvars = (with_keys / "terraform.tfvars").read_text()
    keys_block = tfvars[tfvars.index("public_keys = ["):tfvars.index("]", tfvars.index("public_keys = [")) + 1]
    # the blueprint's own settings stay (plan refuses a settings map that lost one)
    own = tfvars[tfvars.index("settings = {") + len("settings = {\n"):tfvars.rindex("}")].rstrip("\n").splitlines()
    var_file = "settings = {\n" + "\n".join([*own, *lines]) + "\n}\n" + keys_block + "\n"
    outputs = terraform_outputs(with_keys, terraform_cmd, tmp_path, var_file)
    (_hostname, data), = outputs["hieradata"].items()

    env = scratch_environment(tmp_path / "puppet", puppet_bin, with_keys / "puppet")
    (env.env_dir / "data" / "terraform.yaml").write_text(data)
    probe = tmp_path / "probe.json"
    applied = env.apply(
        f"file {{ '{probe}': content => to_json({{'settings' => lookup('terraform.settings'), "
        "'users' => lookup('castelet::profile::base::admin_users')}) }")
    assert applied.returncode == 2, applied.stdout + applied.stderr
    seen = json.loads(probe.read_text())
    # HCL normalises every string to Unicode NFC (e + U+0301 arrives as é): canonically the same
    # text, and the only change any layer makes.
    hostile = {f"v{i}": unicodedata.normalize("NFC", value) for i, (value, _, _) in enumerate(results)}
    assert {k: v for k, v in seen["settings"].items() if k.startswith("v")} == hostile
    assert seen["users"] == {"castelet": {"ssh_keys": keys}}
    assert not list(tmp_path.rglob(MARKER)) and not list(Path(rendered["marker_dir"]).iterdir())


@pytest.mark.parametrize("question", ["packages", "open_ports"])
def test_list_answers_refuse_every_hostile_string_before_writing(tmp_path: Path, question: str) -> None:
    """The sandbox blueprint's lists (Debian package names, PORT/PROTOCOL) refuse the corpus, naming
    the question and writing nothing; the only strings they accept are made of characters no layer
    interprets (``1. numbered`` is two well-formed package names)."""
    from castelet.answers import AnswersError

    accepted = []
    for value in corpus(tmp_path / "marker"):
        try:
            new(REPO_ROOT / "blueprints" / "sandbox", {"cloud": "lxd", question: value, "project_slug": "hostile"},
                tmp_path / "out")
        except AnswersError as exc:
            assert str(exc).startswith(f"{question}: "), str(exc)
            assert not (tmp_path / "out").exists(), "a refused answer wrote something"
            continue
        accepted.append(value)
        shutil.rmtree(tmp_path / "out")
    assert all(re.fullmatch(r"[a-z0-9+. /-]+", value) for value in accepted), accepted
    assert len(accepted) <= 1 and not (tmp_path / "marker").exists()


PEM = """-----BEGIN CERTIFICATE-----
MIIBfTCCASOgAwIBAgIUJ8bX4Wn4m0sS2wqkVq3A6q4cV6swCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJY2FzdGVsZXQwHhcNMjYxMTI1MDAwMDAwWhcNMjYxMTI2MDAw
MDAwWjAUMRIwEAYDVQQDDAljYXN0ZWxldDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABJz0F5dA0q0cJzZ4l6hN7b2m3Nw3e0p1bC2o7gq7nqA1x4bqQx1m6n0a0Xb4
n8n3W5b2V4r4c8G6u9s0nB2Rk2ajUzBRMB0GA1UdDgQWBBT7y9A2l8a1J3c0bq2m
-----END CERTIFICATE-----"""


@pytest.mark.parametrize("question", ["acme_server", "acme_ca_certificate", "backup_repository"])
def test_url_and_pem_answers_refuse_every_hostile_string_before_writing(tmp_path: Path, question: str) -> None:
    """Where the certificate comes from is an https URL (or auto/self-signed), the CA to trust
    PEM blocks, the backup repository a restic location without credentials: every string of the
    corpus is refused, naming the question, and nothing is written; well-formed values reach
    terraform.tfvars as data."""
    from castelet.answers import AnswersError

    for value in corpus(tmp_path / "marker"):
        with pytest.raises(AnswersError) as refused:
            new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", question: value, "project_slug": "hostile"},
                tmp_path / "out")
        assert str(refused.value).startswith(f"{question}: "), str(refused.value)
        assert not (tmp_path / "out").exists(), "a refused answer wrote something"
    empty_pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"
    for bad in ("http://ca.example.org/dir", "https://ca.example.org/dir?x=${y}", "https://user:pw@ca/dir",
                f"{PEM}\n<script>", PEM.replace("MIIB", "MI$B"), empty_pem, "rest:http://user:pw@h:8000/x",
                "s3:https://h/b?x=1", "rest:http://h/x;rm -rf /", "sftp:h:relative", "b2:bucket:path with space"):
        with pytest.raises(AnswersError):
            new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", question: bad, "project_slug": "hostile"},
                tmp_path / "out")
    good = {"acme_server": "https://acme.ca.example.org:8443/_acme_/v2~dir", "acme_ca_certificate": PEM,
            "backup_repository": "s3:https://object-arbutus.cloud.computecanada.ca/lab-backups/atlas"}[question]
    deployment = new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", question: good, "project_slug": "ok"},
                     tmp_path / "good")
    assert f"{question} = {json.dumps(good)}" in re.sub(" +", " ", (deployment / "terraform.tfvars").read_text())
    if question == "acme_server":  # the README names it: as text, not markup
        assert _html_text(good) in _readme_text((deployment / "README.md").read_text())
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("blueprint", ["database", "lamp"])
def test_backup_append_only_refuses_every_hostile_string_before_writing(tmp_path: Path, blueprint: str) -> None:
    """backup_append_only (issue 21 point 3) is a yes/no answer: no string of the corpus is one,
    each is refused naming it and nothing is written; true reaches the settings as "true"."""
    from castelet.answers import AnswersError

    for value in corpus(tmp_path / "marker"):
        with pytest.raises(AnswersError) as refused:
            new(REPO_ROOT / "blueprints" / blueprint, {"cloud": "lxd", "backup_append_only": value,
                                                       "project_slug": "hostile"}, tmp_path / "out")
        assert str(refused.value).startswith("backup_append_only: "), str(refused.value)
        assert not (tmp_path / "out").exists(), "a refused answer wrote something"
    deployment = new(REPO_ROOT / "blueprints" / blueprint, {"cloud": "lxd", "backup_append_only": True,
                                                            "project_slug": "ok"}, tmp_path / "good")
    assert 'backup_append_only = "true"' in re.sub(" +", " ", (deployment / "terraform.tfvars").read_text())
    assert not (tmp_path / "marker").exists()


# and the one key of an account (nodejs-app's redeploy_ssh_key: it lands in an authorized_keys line)
WAVE_ONE_TYPES = ("git_url", "git_ref", "cidrs", "databases", "ssh_public_key")


def _questions_of_types(types: tuple[str, ...]) -> list[tuple[str, str]]:
    from castelet.library import load_all

    return [(bp.id, q.name) for bp in load_all(REPO_ROOT)[0] for q in bp.questions if q.type in types]


def test_every_typed_text_answer_refuses_the_corpus_at_the_type_level(tmp_path: Path) -> None:
    """Git URLs and refs, network and database lists: no string of the corpus is a value of these
    types (whatever blueprint asks them), so none can reach a command line, pg_hba or HCL."""
    from castelet.answers import InvalidAnswer, coerce
    from castelet.manifest import Question

    for kind in WAVE_ONE_TYPES:
        question = Question(name=kind, type=kind, default="", help={"en": ""})
        for value in corpus(tmp_path / "marker"):
            with pytest.raises(InvalidAnswer):
                coerce(question, value)
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("blueprint_question", _questions_of_types(WAVE_ONE_TYPES), ids="/".join)
def test_blueprint_git_and_list_answers_refuse_the_corpus_before_writing(
        tmp_path: Path, blueprint_question: tuple[str, str]) -> None:
    """Every blueprint question of those types, found from the manifests: the corpus is refused
    through `castelet new`, naming the question, and nothing is written."""
    from castelet.answers import AnswersError

    blueprint, question = blueprint_question
    for value in corpus(tmp_path / "marker"):
        with pytest.raises(AnswersError) as refused:
            new(REPO_ROOT / "blueprints" / blueprint, {"cloud": "lxd", question: value, "project_slug": "hostile"},
                tmp_path / "out")
        assert str(refused.value).startswith(f"{question}: "), str(refused.value)
        assert not (tmp_path / "out").exists(), "a refused answer wrote something"
    assert not (tmp_path / "marker").exists()


# --- hand edits of terraform.tfvars ---------------------------------------------------------

ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5iIhev2hhjgWspSDHE5XtW+bq8mxE3rWW070cE/9Zd ada@lab"
# Answers that leave no "Before you apply" item, so that a plan fails for the hand edit only.
RESOLVED = {"domain": "portal.mylab.ca", "admin_email": "ada@mylab.ca", "admin_cidr": "132.203.0.0/16",
            "admin_ssh_keys": ADMIN_KEY, "release_sha256": "0" * 64,
            "app_git_url": "https://gitlab.example.org/lab/app.git"}
# static-site on OpenStack has every deployment-wide setting and most blueprint settings: the whole
# corpus there; the other blueprints' own settings get a sample of it (a plan is ~0.3 s of CPU).
HAND_EDITED = [("static-site", "openstack")] + [(bp, "lxd") for bp in ("database", "nodejs-app", "omeka-s", "sandbox",
                                                                        "wordpress")]
SAMPLE = (0, 8, 12, 13, 21)


def _generator_refuses(bp: Any, setting: str, value: str) -> bool:
    """Whether `castelet new` would refuse ``value`` as the answer behind ``setting``."""
    from castelet.answers import admin_user_problem, coerce

    question = {"name": "project_slug", "public_keys": "admin_ssh_keys", "client_cidrs": "admin_cidr"}.get(
        setting, "flavor" if setting.startswith("flavors.") else setting.removeprefix("settings."))
    if setting == "admin_user":
        return admin_user_problem(value) is not None
    try:
        coerce(bp.question(question), value)
    except ValueError:
        return True
    return setting in ("admin_cidr", "client_cidrs") and value.endswith("/0")


def _hostile_tfvars(deployment: Path, value: str) -> tuple[str, list[str]]:
    """terraform.tfvars edits setting ``value`` everywhere a string goes, and the settings named."""
    from castelet.escape import hcl

    tfvars = (deployment / "terraform.tfvars").read_text()
    names = ["name", "domain", "admin_email", "admin_cidr", "timezone", "admin_user"]
    if '\nexisting_network ' in tfvars:
        names += ["image", "existing_network", "external_network"]
    lines = [f"{name} = {hcl(value)}" for name in names]
    roles = re.findall(r"^  (\w+) *= .*$", tfvars[tfvars.index("flavors = {"):tfvars.index("}")], re.MULTILINE)
    lines.append("flavors = {" + ", ".join(f"{role} = {hcl(value)}" for role in roles) + "}")
    lines.append(f"public_keys = [{hcl(value)}]")
    named = [*names, *(f"flavors.{role}" for role in roles), "public_keys"]
    if "\nclient_cidrs = [" in tfvars:
        lines.append(f"client_cidrs = [{hcl(value)}]")
        named.append("client_cidrs")
    block = tfvars[tfvars.index("settings = {"):]
    keys = re.findall(r"^  (\w+) *= .*$", block, re.MULTILINE)
    lines.append("settings = {\n" + "\n".join(f"  {key} = {hcl(value)}" for key in keys) + "\n}")
    named += [f"settings.{key}" for key in keys if not key.startswith("release_")]
    return "\n".join(lines) + "\n", named


@pytest.mark.parametrize(("blueprint", "cloud"), HAND_EDITED, ids=[f"{b}-{c}" for b, c in HAND_EDITED])
def test_hand_edits_of_tfvars_fail_at_plan_naming_the_setting(
        tmp_path: Path, terraform_cmd: list[str], blueprint: str, cloud: str) -> None:
    """Every string setting of terraform.tfvars hand-edited to each value of the corpus: `terraform
    plan` (what `nox -s plan` runs) refuses exactly the settings `castelet new` would have refused,
    each error naming its setting, before anything reaches an instance."""
    from castelet.manifest import load
    from castelet.runtime import terraform_env

    bp = load(REPO_ROOT / "blueprints" / blueprint)
    answers = {k: v for k, v in RESOLVED.items() if k in bp.question_names}
    deployment = new(REPO_ROOT / "blueprints" / blueprint, {**answers, "cloud": cloud, "project_slug": "edited"},
                     tmp_path / "deployment")
    work = tmp_path / "plan"
    work.mkdir()
    for name in ("variables.tf", "terraform.tfvars"):
        shutil.copy2(deployment / name, work / name)
    clean = subprocess.run([*terraform_cmd, "plan", "-input=false", "-no-color"], cwd=work, env=terraform_env(),
                           capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    values = corpus(tmp_path / "marker")
    for value in values if cloud == "openstack" else [values[i] for i in SAMPLE]:
        edits, named = _hostile_tfvars(deployment, value)
        (work / "edit.tfvars").write_text(edits)
        proc = subprocess.run([*terraform_cmd, "plan", "-input=false", "-no-color", "-var-file=edit.tfvars"],
                              cwd=work, env=terraform_env(), capture_output=True, text=True, check=False)
        output = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0, value
        for setting in named:
            refused = _generator_refuses(bp, setting, value)
            said = f"{setting} item must" if setting == "client_cidrs" else f"{setting} must"
            assert (said in output) == refused, (setting, value, refused, output[-2000:])
    assert not (tmp_path / "marker").exists()
