"""What each blueprint costs the end-to-end suite: deployments made, seconds of apply, seconds of
everything else (checks, backups, destroys), from a ledger the test workers append to.

`nox -s e2e` prints the table at the end (tests/e2e/conftest.py); `nox -s ci-budget` reads the
same ledger to project CI time for a larger catalogue (tests/ci_budget.py).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
LEDGER = REPO_ROOT / ".nox" / "e2e-costs.jsonl"
PREVIOUS = LEDGER.with_suffix(".previous.jsonl")  # the run before (conftest moves it there)
#: A measured run's ledger, kept in the repository: the test order of a fresh clone (longest first).
BASELINE = Path(__file__).with_name("costs-baseline.jsonl")
#: The pseudo-blueprint of tests that deploy nothing of a blueprint's own (catalogue checks).
SHARED = "(shared)"
T = TypeVar("T")


def record(blueprint: str, kind: str, seconds: float, deployments: int = 0, test: str = "",
           ledger: Path = LEDGER) -> None:
    """Append one entry (``kind``: `test` for a whole test, `apply` for an instance being created
    and converged) to the ledger; safe from parallel workers."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"blueprint": blueprint, "kind": kind, "seconds": round(seconds, 1),
                       "deployments": deployments, "test": test})
    with ledger.open("a") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(line + "\n")


@contextmanager
def deployment(blueprint: str, ledger: Path = LEDGER) -> Iterator[None]:
    """Times one deployment's apply (a new instance converging), counted even when it fails."""
    started = time.monotonic()
    try:
        yield
    finally:
        record(blueprint, "apply", time.monotonic() - started, deployments=1, ledger=ledger)


def timed_deployment(blueprint: str, action: Callable[[], T]) -> T:
    with deployment(blueprint):
        return action()


def deployment_blueprint(path: Path) -> str:
    """The blueprint a rendered deployment came from (its `.castelet/blueprint.json`)."""
    try:
        return str(json.loads((path / ".castelet" / "blueprint.json").read_text())["id"])
    except (OSError, ValueError, KeyError):
        return SHARED


def seconds_per_test() -> dict[str, float]:
    """{test id: seconds} from the previous run on this machine, else from the baseline."""
    for ledger in (PREVIOUS, BASELINE):
        entries = [e for e in read(ledger) if e["kind"] == "test"]
        if entries:
            return {str(e["test"]): float(str(e["seconds"])) for e in entries}
    return {}


@dataclass
class Cost:
    blueprint: str
    deployments: int = 0
    apply: float = 0.0
    total: float = 0.0  # every test of the blueprint, set-up and tear-down included

    @property
    def other(self) -> float:
        """Checks, backups, restores, destroys: the tests' time outside applies."""
        return max(0.0, self.total - self.apply)


def read(ledger: Path = LEDGER) -> list[dict[str, object]]:
    if not ledger.is_file():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]


def costs(entries: Iterable[dict[str, object]]) -> list[Cost]:
    by_blueprint: dict[str, Cost] = {}
    for entry in entries:
        name = str(entry["blueprint"])
        cost = by_blueprint.setdefault(name, Cost(name))
        seconds = float(str(entry["seconds"]))
        if entry["kind"] == "apply":
            cost.apply += seconds
            cost.deployments += int(str(entry.get("deployments", 0)))
        elif entry["kind"] == "test":
            cost.total += seconds
    return sorted(by_blueprint.values(), key=lambda c: (c.blueprint == SHARED, c.blueprint))


def table(rows: list[Cost], workers: int) -> str:
    """The cost table: per blueprint, and the CI time it takes on ``workers`` parallel workers."""
    lines = [f"{'blueprint':<14} {'deployments':>11} {'apply s':>8} {'checks s':>9} {'total s':>8} "
             f"{'CI min':>7}  (CI = total / {workers} workers)"]
    for c in rows:
        lines.append(f"{c.blueprint:<14} {c.deployments:>11} {c.apply:>8.0f} {c.other:>9.0f} {c.total:>8.0f} "
                     f"{c.total / workers / 60:>7.1f}")
    total = sum(c.total for c in rows)
    lines.append(f"{'all':<14} {sum(c.deployments for c in rows):>11} {sum(c.apply for c in rows):>8.0f} "
                 f"{sum(c.other for c in rows):>9.0f} {total:>8.0f} {total / workers / 60:>7.1f}")
    return "\n".join(lines)
