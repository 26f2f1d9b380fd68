"""The wordpress blueprint's `xmlrpc` answer (issue 21, point 5: /xmlrpc.php refused unless an
answer re-enables it) is data, never code, like every answer:

* `castelet new` accepts a yes or a no only (no by default) and refuses every string of the
  hostile corpus, naming the answer, before writing anything;
* terraform.tfvars carries it as the string `"true"`/`"false"`, which Terraform's own rule for
  `settings.xmlrpc` (castelet.tfrules, in the deployment's variables.tf) accepts, while it refuses
  every string of the corpus (a hand edit of each is refused at plan, naming `settings.xmlrpc`, by
  test_hostile_answers.py's hand-edit test, which reads every setting of the render);
* the blueprint's hiera data hands the setting to `castelet::profile::wordpress::xmlrpc`, whose
  type takes only a Boolean or its string form (test_puppet_wordpress.py compiles both values).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from castelet import tfrules
from castelet.answers import AnswersError
from castelet.escape import hcl
from castelet.manifest import load
from castelet.render import new
from helpers import REPO_ROOT
from test_hostile_answers import corpus
from test_tfvars_rules import _terraform_verdicts

BLUEPRINT = REPO_ROOT / "blueprints" / "wordpress"


def _xmlrpc_setting(deployment: Path) -> str:
    found = re.search(r"^\s*xmlrpc\s*=\s*(\S+)\s*$", (deployment / "terraform.tfvars").read_text(), re.MULTILINE)
    assert found, "terraform.tfvars has no xmlrpc setting"
    return found.group(1)


@pytest.mark.parametrize(("given", "written"), [(None, '"false"'), ("yes", '"true"'), (False, '"false"')])
def test_xmlrpc_is_off_unless_answered_yes(tmp_path: Path, given: object, written: str) -> None:
    answers = {"cloud": "lxd", "project_slug": "notes"} | ({} if given is None else {"xmlrpc": given})
    assert _xmlrpc_setting(new(BLUEPRINT, answers, tmp_path / "out")) == written


def test_xmlrpc_refuses_the_corpus_before_writing(tmp_path: Path) -> None:
    for value in corpus(tmp_path / "marker"):
        with pytest.raises(AnswersError) as refused:
            new(BLUEPRINT, {"cloud": "lxd", "project_slug": "hostile", "xmlrpc": value}, tmp_path / "out")
        assert str(refused.value).startswith("xmlrpc: "), str(refused.value)
        assert not (tmp_path / "out").exists(), "a refused answer wrote something"
    assert not (tmp_path / "marker").exists()


def test_terraform_rule_of_the_setting_refuses_the_corpus(tmp_path: Path, terraform_cmd: list[str]) -> None:
    question = load(BLUEPRINT).question("xmlrpc")
    values = ["true", "false", *corpus(tmp_path / "marker")]
    expressions = [f"try({tfrules.condition(question, hcl(value))}, false)" for value in values]
    verdicts = _terraform_verdicts(expressions, tmp_path, terraform_cmd)
    assert dict(zip(values, verdicts, strict=True)) == {value: value in ("true", "false") for value in values}
    assert not (tmp_path / "marker").exists()


def test_hiera_hands_the_setting_to_the_profile() -> None:
    hiera = BLUEPRINT / "{{cookiecutter.project_slug}}" / "puppet" / "data" / "blueprint.yaml"
    data = yaml.safe_load(hiera.read_text())
    assert data["castelet::profile::wordpress::xmlrpc"] == "%{alias('terraform.settings.xmlrpc')}"
