"""docs/adding-a-blueprint.md, followed literally in a scratch copy of the library."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT, terraform_outputs

GUIDE = REPO_ROOT / "docs" / "adding-a-blueprint.md"
_COPIED = shutil.ignore_patterns(".git", ".venv*", ".nox", "__pycache__", ".pytest_cache", ".mypy_cache",
                                 ".ruff_cache", "*.egg-info", ".hypothesis")


def _digests(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _first_sh_block(text: str) -> str:
    match = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert match, "the guide has no sh block"
    return match.group(1)


@pytest.fixture
def scratch_library(tmp_path: Path) -> Path:
    library = tmp_path / "library"
    shutil.copytree(REPO_ROOT, library, ignore=_COPIED, symlinks=True)
    return library


def test_the_guide_works_as_printed_and_touches_one_folder_and_one_role(
        scratch_library: Path, tmp_path: Path, terraform_cmd: list[str], puppet_bin: str) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "you@laptop",
                    "-f", str(home / ".ssh" / "id_ed25519")], check=True)
    before = _digests(scratch_library)
    env = {**os.environ, "HOME": str(home), "CASTELET_LIBRARY": str(scratch_library), "COLUMNS": "200",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + _first_sh_block(GUIDE.read_text())
    proc = subprocess.run(["bash", "-c", script], cwd=scratch_library, env=env, capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| `demo` |" in proc.stdout  # the catalogue lists it

    after = _digests(scratch_library)
    changed = {rel for rel in after.keys() | before.keys() if before.get(rel) != after.get(rel)}
    outside = {rel for rel in changed if not rel.startswith("blueprints/demo/")}
    assert outside == {"puppet/modules/castelet/manifests/role/demo.pp"}
    assert (scratch_library / "blueprints" / "demo" / "hooks").is_symlink()

    # and the rendered deployment's role compiles on the data Terraform writes for it
    from test_puppet import DEBIAN12_FACTS, errors_of, scratch_environment

    deployment = home / "deployments" / "demo"
    outputs = terraform_outputs(deployment, terraform_cmd, tmp_path)
    (hostname, data), = outputs["hieradata"].items()
    puppet = scratch_environment(tmp_path / "puppet", puppet_bin, deployment / "puppet")
    (puppet.env_dir / "data" / "terraform.yaml").write_text(data)
    result = puppet.compile({**DEBIAN12_FACTS, "castelet_role": "web"}, node=hostname)
    assert result.returncode == 0, errors_of(result)
    assert "Castelet::Role::Demo" in result.classes


def test_a_second_scaffold_of_the_same_name_writes_nothing(scratch_library: Path) -> None:
    from castelet.scaffold import ScaffoldError, create

    create(scratch_library, "demo")
    before = _digests(scratch_library)
    with pytest.raises(ScaffoldError, match="already exists"):
        create(scratch_library, "demo")
    with pytest.raises(ScaffoldError, match="lowercase"):
        create(scratch_library, "Demo_1")
    assert _digests(scratch_library) == before
