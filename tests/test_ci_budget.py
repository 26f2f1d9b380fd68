"""The e2e cost ledger and `nox -s ci-budget`: the numbers the CI budget is checked with."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))
import costs

sys.path.insert(0, str(REPO_ROOT / "tests"))
import ci_budget


def _ledger(path: Path) -> Path:
    costs.record("lamp", "apply", 120.0, deployments=1, ledger=path)
    costs.record("lamp", "apply", 100.0, deployments=1, ledger=path)
    costs.record("lamp", "test", 300.0, test="tests/e2e/test_data.py::a[lamp]", ledger=path)
    costs.record("lamp", "test", 60.0, test="tests/e2e/test_data.py::b[lamp]", ledger=path)
    costs.record("database", "apply", 80.0, deployments=1, ledger=path)
    costs.record("database", "test", 240.0, test="tests/e2e/test_data.py::a[database]", ledger=path)
    costs.record(costs.SHARED, "test", 30.0, test="tests/e2e/test_lifecycle.py::catalogue", ledger=path)
    return path


def test_costs_add_up_per_blueprint(tmp_path: Path) -> None:
    rows = {c.blueprint: c for c in costs.costs(costs.read(_ledger(tmp_path / "ledger.jsonl")))}
    assert (rows["lamp"].deployments, rows["lamp"].apply, rows["lamp"].total, rows["lamp"].other) == \
        (2, 220.0, 360.0, 140.0)
    assert (rows["database"].deployments, rows["database"].other) == (1, 160.0)
    assert rows[costs.SHARED].deployments == 0
    table = costs.table(list(rows.values()), workers=2)
    assert table.splitlines()[-1].split()[:5] == ["all", "3", "300", "330", "630"]
    assert "3.0" in next(line for line in table.splitlines() if line.startswith("lamp"))  # 360 s / 2 / 60


def test_ci_budget_projects_and_fails_over_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = _ledger(tmp_path / "ledger.jsonl")
    stages = tmp_path / "stages.json"
    stages.write_text(json.dumps({"stages": {"setup": 120, "unit": 300, "e2e": 1200},
                                  "cpu_busy_percent": {"setup": 40, "unit": 97, "e2e": 88}, "total": 1620, "exit": 0}))
    assert ci_budget.main(["--ledger", str(ledger), "--stages", str(stages), "--blueprints", "4"]) == 0
    out = capsys.readouterr().out
    assert "unit 5.0 min (CPU 97 %), e2e 20.0 min (CPU 88 %)" in out
    # lamp and database are single-instance blueprints with data: the worse costs 360 s / 2 = 3.0 min
    assert "marginal CI cost of one more single-instance blueprint with data: 3.0 min (worst of 2: lamp" in out
    # fixed = 27 min - (3 + 2) blueprint minutes = 22; two more blueprints at 3 min: 22 + 5 + 6
    assert "projected .ci/run for  4 blueprints:  33.0 min" in out

    stages.write_text(json.dumps({"stages": {"e2e": 2500}, "total": 2500, "exit": 0}))
    assert ci_budget.main(["--ledger", str(ledger), "--stages", str(stages)]) == 1
    assert "OVER BUDGET: the last .ci/run took 41.7 min" in capsys.readouterr().out


def test_ci_budget_without_a_ledger_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci_budget.main(["--ledger", str(tmp_path / "none.jsonl")]) == 2
    assert "run `nox -s e2e`" in capsys.readouterr().out


def test_seconds_per_test_prefers_the_previous_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous, baseline = tmp_path / "previous.jsonl", tmp_path / "baseline.jsonl"
    costs.record("lamp", "test", 10.0, test="t1", ledger=baseline)
    monkeypatch.setattr(costs, "PREVIOUS", previous)
    monkeypatch.setattr(costs, "BASELINE", baseline)
    assert costs.seconds_per_test() == {"t1": 10.0}
    costs.record("lamp", "test", 99.0, test="t1", ledger=previous)
    assert costs.seconds_per_test() == {"t1": 99.0}


def test_shared_fixture_groups_name_tests_that_exist() -> None:
    """The unit suite's scheduler (tests/conftest.py) groups tests by node id prefix: a renamed
    test must not silently leave its group (its fixture would then be set up on both workers)."""
    import ast
    import importlib.util

    # tests/e2e/conftest.py is a "conftest" too: load the unit suite's own by path.
    spec = importlib.util.spec_from_file_location("unit_conftest", REPO_ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)

    for name, prefixes in conftest.SHARED_FIXTURE_GROUPS.items():
        for prefix in prefixes:
            path, _, function = prefix.partition("::")
            tree = ast.parse((REPO_ROOT / path).read_text())
            tests = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
            assert any(test.startswith(function) for test in tests), f"{name}: nothing matches {prefix}"
    scheduler = conftest.SharedFixtureScheduling.__new__(conftest.SharedFixtureScheduling)
    scheduler.catalog_tests = frozenset({"test_lamp_role_compiles"})
    scopes = {scheduler._split_scope(nodeid) for nodeid in (
        "tests/test_hostile_answers.py::test_no_payload_was_executed",
        "tests/test_hostile_answers.py::test_values_reach_puppet_verbatim_through_terraform_and_hiera")}
    assert scopes == {"hostile corpus"}
    assert scheduler._split_scope("tests/test_puppet.py::test_lamp_role_compiles") == "tests/test_puppet.py::catalogs"
    assert scheduler._split_scope("tests/test_puppet.py::test_puppet_lint") == "tests/test_puppet.py::test_puppet_lint"
