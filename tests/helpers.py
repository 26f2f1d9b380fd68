"""Small helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = sorted(p.parent.name for p in (REPO_ROOT / "blueprints").glob("*/blueprint.yaml"))


def castelet(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (as a user would)."""
    env = {**os.environ, "COLUMNS": "200", "CASTELET_LIBRARY": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "castelet.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, input=stdin, check=False)
