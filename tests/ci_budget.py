"""`nox -s ci-budget`: what CI costs now and what a larger catalogue would cost.

Reads the stage times `.ci/run` left in `.nox/ci-stages.json` and the e2e cost ledger
(`.nox/e2e-costs.jsonl`, tests/e2e/costs.py) of the last run, then prints:

- each blueprint's end-to-end cost (deployments, apply and other seconds, CI minutes on the
  suite's parallel workers);
- the marginal CI cost of one more single-instance blueprint with data (the worst of today's);
- the projected `.ci/run` time for N blueprints: the fixed part (set-up, lint, unit tests, the
  local cloud's set-up, tests no blueprint owns) plus N times that marginal cost.

Exits 1 when the last run is over the budget (40 minutes) or the marginal cost over 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "tests" / "e2e"), str(REPO_ROOT / "generator")]

import costs  # noqa: E402
from castelet.library import load_all  # noqa: E402

STAGES = REPO_ROOT / ".nox" / "ci-stages.json"
BUDGET_MINUTES = 40.0
MARGINAL_MINUTES = 3.0
WORKERS = 2  # nox -s e2e runs 2 pytest-xdist workers (2 cores)


def single_instance_data_blueprints() -> set[str]:
    return {bp.id for bp in load_all(REPO_ROOT)[0] if bp.backups and sum(r.count for r in bp.roles) == 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", type=Path, default=costs.LEDGER)
    parser.add_argument("--stages", type=Path, default=STAGES)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--blueprints", type=int, nargs="*", default=[13, 15],
                        help="catalogue sizes to project (today's is always shown)")
    args = parser.parse_args(argv)

    rows = costs.costs(costs.read(args.ledger))
    if not rows:
        print(f"no e2e cost ledger at {args.ledger}: run `nox -s e2e` (or `.ci/run`) first")
        return 2
    print("End-to-end cost per blueprint (last nox -s e2e)")
    print(costs.table(rows, args.workers))

    shares = {c.blueprint: c.total / args.workers / 60 for c in rows}
    candidates = single_instance_data_blueprints() & set(shares)
    marginal = max((shares[b] for b in candidates), default=0.0)
    print()
    if candidates:
        worst = max(candidates, key=lambda b: shares[b])
        print(f"marginal CI cost of one more single-instance blueprint with data: {marginal:.1f} min "
              f"(worst of {len(candidates)}: {worst}; median {statistics.median(shares[b] for b in candidates):.1f})")

    stages = json.loads(args.stages.read_text()) if args.stages.is_file() else None
    blueprint_minutes = sum(v for k, v in shares.items() if k != costs.SHARED)
    today = len([k for k in shares if k != costs.SHARED])
    if stages:
        total = float(stages["total"]) / 60
        busy = stages.get("cpu_busy_percent", {})
        print("last .ci/run: " + ", ".join(f"{k} {v / 60:.1f} min" + (f" (CPU {busy[k]} %)" if k in busy else "")
                                           for k, v in stages["stages"].items())
              + f", total {total:.1f} min (exit {stages.get('exit')})")
        fixed = total - blueprint_minutes
    else:
        total = None
        fixed = shares.get(costs.SHARED, 0.0)
        print(f"no {args.stages.relative_to(REPO_ROOT)} (written by .ci/run): the fixed part counts the e2e only")
    print(f"fixed part (no blueprint's): {fixed:.1f} min")
    for n in sorted({today, *args.blueprints}):
        # today's blueprints at their measured cost, each further one at the marginal cost
        projected = fixed + blueprint_minutes + max(0, n - today) * marginal
        print(f"projected .ci/run for {n:>2} blueprints: {projected:5.1f} min")

    over = []
    if total is not None and total > BUDGET_MINUTES:
        over.append(f"the last .ci/run took {total:.1f} min (budget {BUDGET_MINUTES:.0f})")
    if marginal > MARGINAL_MINUTES:
        over.append(f"one more blueprint costs {marginal:.1f} min (budget {MARGINAL_MINUTES:.0f})")
    for line in over:
        print(f"OVER BUDGET: {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
