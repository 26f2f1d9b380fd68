"""castelet.terraform drives real Terraform core through python-terraform, quirks papered over."""

from __future__ import annotations

from pathlib import Path

import pytest

from castelet.runtime import terraform_env
from castelet.terraform import Terraform, TerraformError

CONFIG = """
variable "who" {
  type    = string
  default = "world"
}
resource "terraform_data" "greeting" {
  input = "hello ${var.who}"
}
output "greeting" {
  value = terraform_data.greeting.output
}
output "home" {
  value = nonsensitive(sensitive(pathexpand("~")))
}
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "main.tf").write_text(CONFIG)
    return tmp_path


def test_full_cycle_with_real_terraform(workdir):
    tf = Terraform(workdir)
    tf.init(backend=False)
    tf.validate()
    changes, _ = tf.plan()
    assert changes is True  # exit code 2 of -detailed-exitcode is success with changes
    tf.apply()
    assert tf.outputs()["greeting"] == "hello world"
    changes, _ = tf.plan()
    assert changes is False
    tf.destroy()  # python-terraform's removed -force flag is not sent
    assert tf.outputs() == {}


def test_environment_reaches_terraform_and_is_not_a_var_file(workdir):
    env = terraform_env()
    env["HOME"] = str(workdir / "elsewhere")
    tf = Terraform(workdir, env=env)
    tf.init(backend=False)
    tf.apply()
    assert tf.outputs()["home"] == str(workdir / "elsewhere")


def test_errors_carry_terraforms_own_diagnostic(workdir):
    (workdir / "main.tf").write_text('resource "terraform_data" "x" {\n  inptu = 1\n}\n')
    tf = Terraform(workdir)
    tf.init(backend=False)
    with pytest.raises(TerraformError, match="Unsupported argument"):
        tf.validate()
