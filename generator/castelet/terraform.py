"""The one place castelet drives Terraform.

python-terraform (the user's choice) predates Terraform 1.x; this module papers over its quirks:
``destroy()`` sends the removed ``-force`` flag, ``output('name')`` raises TypeError, ``plan`` adds
``-detailed-exitcode`` (exit 2 means "changes", not failure), ``terraform_bin_path`` must be a
single executable while our fallback is ``python runtime.py``, and ``cmd()`` has no environment
parameter (it copies ``os.environ``; a dict keyword silently becomes a ``-var-file``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, IsNotFlagged
from python_terraform import Terraform as _PyTerraform

from castelet.runtime import (
    DESTROY_ATTEMPTS,
    DESTROY_RETRY_PAUSE_SECONDS,
    TerraformNotFound,
    find_terraform,
    lxd_transient,
    terraform_env,
)

__all__ = ["Result", "Terraform", "TerraformError", "TerraformNotFound", "find_terraform", "run"]


class TerraformError(RuntimeError):
    """A Terraform command failed; the message carries Terraform's own diagnostic."""


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> Result:
    """Run ``terraform ARGS`` in ``cwd`` and capture its output."""
    proc = subprocess.run(
        [*find_terraform(), *args], cwd=cwd, env=env or terraform_env(),
        capture_output=True, text=True, check=False,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise TerraformError(f"terraform {' '.join(args)} failed in {cwd}:\n{result.output}")
    return result


class _Wrapped(_PyTerraform):  # type: ignore[misc]
    """python-terraform with a multi-word command instead of a single binary path."""

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        super().__init__(terraform_bin_path=command[0], **kwargs)
        self._command = command

    def generate_cmd_string(self, cmd: str, *args: Any, **kwargs: Any) -> list[str]:
        cmds: list[str] = super().generate_cmd_string(cmd, *args, **kwargs)
        return [*self._command, *cmds[1:]]


@contextmanager
def _scoped_environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Terraform:
    """Terraform in one working directory, through python-terraform."""

    def __init__(self, working_dir: Path, env: dict[str, str] | None = None) -> None:
        self.working_dir = Path(working_dir)
        self._env = env or terraform_env()
        self._tf = _Wrapped(find_terraform(), working_dir=str(self.working_dir))

    def _call(self, cmd: str, *args: Any, ok_codes: tuple[int, ...] = (0,), **kwargs: Any) -> Result:
        kwargs.setdefault("capture_output", True)
        with _scoped_environ(self._env):
            code, out, err = self._tf.cmd(cmd, *args, **kwargs)
        result = Result(int(code), out or "", err or "")
        if result.returncode not in ok_codes:
            raise TerraformError(f"terraform {cmd} failed in {self.working_dir}:\n{result.output}")
        return result

    def init(self, backend: bool = True, plugin_dir: Path | None = None) -> Result:
        kwargs: dict[str, Any] = {"input": False, "no_color": IsFlagged}
        if not backend:
            kwargs["backend"] = False
        if plugin_dir is not None:
            kwargs["plugin_dir"] = str(plugin_dir)
        return self._call("init", **kwargs)

    def validate(self) -> Result:
        return self._call("validate", no_color=IsFlagged)

    def plan(self, out: Path | None = None, var_file: Path | None = None) -> tuple[bool, Result]:
        """Plan; return (has_changes, result). Exit code 2 of ``-detailed-exitcode`` is success."""
        kwargs: dict[str, Any] = {"input": False, "no_color": IsFlagged, "detailed_exitcode": IsFlagged}
        if out is not None:
            kwargs["out"] = str(out)
        if var_file is not None:
            kwargs["var_file"] = str(var_file)
        result = self._call("plan", ok_codes=(0, 2), **kwargs)
        return result.returncode == 2, result

    def apply(self, plan: Path | None = None, var_file: Path | None = None) -> Result:
        args = [str(plan)] if plan is not None else []
        kwargs: dict[str, Any] = {"input": False, "no_color": IsFlagged}
        if plan is None:
            kwargs["auto_approve"] = IsFlagged
            if var_file is not None:
                kwargs["var_file"] = str(var_file)
        return self._call("apply", *args, **kwargs)

    def destroy(self, var_file: Path | None = None) -> Result:
        kwargs: dict[str, Any] = {
            "input": False, "no_color": IsFlagged, "force": IsNotFlagged, "auto_approve": IsFlagged,
        }
        if var_file is not None:
            kwargs["var_file"] = str(var_file)
        for attempt in range(1, DESTROY_ATTEMPTS + 1):
            try:
                return self._call("destroy", **kwargs)
            except TerraformError as error:
                if not lxd_transient(str(error)) or attempt == DESTROY_ATTEMPTS:
                    raise
                time.sleep(DESTROY_RETRY_PAUSE_SECONDS)
        raise AssertionError("unreachable")

    def outputs(self) -> dict[str, Any]:
        """All outputs as plain values (``output('name')`` is broken in python-terraform)."""
        result = self._call("output", json=IsFlagged)
        raw: dict[str, dict[str, Any]] = json.loads(result.stdout or "{}")
        return {name: item.get("value") for name, item in raw.items()}
