"""A deployment driven as its operator drives it: the deployment's own `nox` sessions, run in its
folder. Shared by the end-to-end tests (and `tests/bench.py`)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import costs
from castelet.lifecycle import leftovers

NOX = Path(sys.executable).parent / "nox"


def nox(deployment: Path, session: str, *args: str, env: dict[str, str] | None = None,
        timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """`nox -s SESSION -- ARGS` in the deployment, without a terminal (stdin closed). Never raises
    on a non-zero exit: callers assert on it with the output in the message."""
    argv = [str(NOX), "-s", session]
    if args:
        argv += ["--", *args]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=deployment, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False, timeout=timeout)
    print(f"nox -s {session} {' '.join(args)}: exit {proc.returncode} in {time.monotonic() - started:.1f} s")
    return proc


def output(proc: subprocess.CompletedProcess[str], limit: int = 4000) -> str:
    """The tail of a session's output, for assertion messages."""
    return (proc.stdout + proc.stderr)[-limit:]


def ok(deployment: Path, session: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a session that must succeed; returns its stdout."""
    proc = nox(deployment, session, *args, env=env)
    assert proc.returncode == 0, f"nox -s {session} {' '.join(args)} failed:\n{output(proc)}"
    return proc.stdout


def plan_and_apply(deployment: Path) -> None:
    """A new deployment (counted in the cost table)."""
    ok(deployment, "plan")
    with costs.deployment(costs.deployment_blueprint(deployment)):
        ok(deployment, "apply")


def rebuild(deployment: Path, host: str) -> None:
    """`nox -s rebuild -- HOST -auto-approve`: a new instance (counted in the cost table)."""
    with costs.deployment(costs.deployment_blueprint(deployment)):
        ok(deployment, "rebuild", host, "-auto-approve")


def verify(deployment: Path) -> subprocess.CompletedProcess[str]:
    """`nox -s verify` (the deployment's testinfra checks)."""
    return nox(deployment, "verify")


def secrets_by_host(deployment: Path) -> dict[str, dict[str, str]]:
    """`nox -s secrets`: {host: {name: value}} (the printed descriptions removed)."""
    found: dict[str, dict[str, str]] = {}
    host = ""
    for line in ok(deployment, "secrets").splitlines():
        if line.startswith("# "):
            host = line[2:].strip()
            found[host] = {}
        elif ": " in line and host:
            name, value = line.split(": ", 1)
            found[host][name] = value.split("   #", 1)[0].strip()
    return found


def secrets(deployment: Path) -> dict[str, str]:
    """`nox -s secrets` of a one-instance deployment (or of all instances, merged)."""
    merged: dict[str, str] = {}
    for values in secrets_by_host(deployment).values():
        merged.update(values)
    return merged


def destroy_everything(deployment: Path, name: str) -> None:
    """Instances, networking AND data volumes (`--with-data`, confirmed with the deployment's
    name): what a test must do to leave nothing behind. A deployment never applied, or already
    destroyed, is fine."""
    if not (deployment / ".terraform").is_dir():
        return
    proc = nox(deployment, "destroy", "--with-data", "--confirm", name)
    assert proc.returncode == 0, f"nox -s destroy -- --with-data --confirm {name} failed:\n{output(proc)}"
    remaining = leftovers("lxd", name)
    assert remaining == [], f"left after destroy --with-data: {remaining}"


def snapshots(deployment: Path) -> dict[str, list[dict[str, object]]]:
    """`nox -s snapshots -- --json`: {host: [{id, short_id, time, paths, tags}]}."""
    text = ok(deployment, "snapshots", "--json")
    start = text.find("{")
    assert start >= 0, f"no JSON in `nox -s snapshots -- --json`:\n{text[-2000:]}"
    found: dict[str, list[dict[str, object]]] = json.loads(text[start:])
    return found


def record_timings(path: Path, name: str, timings: dict[str, float]) -> None:
    """Merge ``{name: timings}`` into a JSON file that parallel test workers share (locked)."""
    path.parent.mkdir(exist_ok=True)
    with (path.with_suffix(".lock")).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = timings
        path.write_text(json.dumps(data, indent=2))
