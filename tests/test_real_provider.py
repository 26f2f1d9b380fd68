"""The real terraform-provider-openstack for `castelet check --provider real`: built from the
pinned Go module with the checksum database on, laid out as Terraform's filesystem mirror wants,
and a clear refusal where no Go can build it. The build itself runs in
tests/test_check_blueprints.py (every blueprint is validated with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from castelet.offline import real_provider
from castelet.offline.install import terraform_platform


def test_the_build_is_the_pinned_module_with_checksums_verified(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    for name, value in {"GONOSUMDB": "*", "GONOSUMCHECK": "1", "GOINSECURE": "*", "GOFLAGS": "-insecure"}.items():
        monkeypatch.setenv(name, value)  # a user's environment must not weaken the download checks
    argv, env = real_provider.go_install_command(tmp_path)
    assert argv[1:] == ["install", "github.com/terraform-provider-openstack/terraform-provider-openstack/v3@v3.4.0"]
    assert not {"GONOSUMDB", "GONOSUMCHECK", "GOINSECURE"} & set(env)
    assert env["GOFLAGS"] == "-trimpath -buildvcs=false" and env["GOBIN"] == str(tmp_path)
    assert env["GOSUMDB"] != "off"


def test_the_mirror_holds_the_provider_where_terraform_looks(tmp_path: Path) -> None:
    path = real_provider.binary_path(tmp_path)
    assert path.relative_to(tmp_path).parts == (
        "registry.terraform.io", "terraform-provider-openstack", "openstack", "3.4.0", terraform_platform(),
        "terraform-provider-openstack_v3.4.0")


def test_without_go_the_check_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(real_provider, "find_go", lambda: None)
    with pytest.raises(real_provider.RealProviderUnavailable, match="needs Go"):
        real_provider.ensure_real_provider(tmp_path)
    assert not real_provider.binary_path(tmp_path / "mirror").exists()
