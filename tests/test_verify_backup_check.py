"""The weekly repository check in `nox -s verify` (castelet.verify, issue 21 point 3): the check runs
in the blueprints' `test_backups_did_not_fail_and_are_recent`; it fails when the last `restic check
--read-data-subset` failed, and when none succeeded for more than BACKUP_CHECK_MAX_AGE_DAYS (since
the timer was installed while none has run yet). The instance's answers are castelet-backup's
status as that program prints it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from castelet import verify
from test_verify_host_baseline import FakeHost

NOW = 1_760_000_000
DAY = 86400
SKELETON_TESTS = Path(verify.__file__).parent / "skeleton" / "tests" / "test_base.py"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def instance(status: dict[str, Any] | None, failed: bool = False, timer_installed: float = NOW - DAY) -> FakeHost:
    answers: dict[str, Any] = {
        "castelet-backup status": (0, json.dumps({"repository": "rest:http://10.0.3.1:8000/x", **(status or {})})),
        "systemctl is-failed castelet-backup-check.service": (0 if failed else 1, "failed\n" if failed else "active\n"),
        "journalctl -u castelet-backup-check.service *": (0, "Fatal: repository contains errors\n"),
        f"stat -c %Y {verify.BACKUP_CHECK_TIMER}": (0, f"{int(timer_installed)}\n"),
        "date +%s": (0, f"{NOW}\n"),
    }
    files = {"/etc/castelet/backup.json": "{}"} if status is not None else {}
    return FakeHost(answers, files=files)


def test_a_recent_good_check_passes_and_backups_off_pass() -> None:
    verify.check_backup_repository_checked(instance({"last_check_result": "success",
                                                     "last_check_success": iso(NOW - 3 * DAY)}))
    verify.check_backup_repository_checked(instance(None))


def test_a_failed_check_fails_verify_naming_it() -> None:
    status = {"last_check_result": "failure", "last_check_subset": "3/10", "last_check_success": iso(NOW - 8 * DAY),
              "last_check_error": "restic check --read-data-subset=3/10 found the repository damaged (restic exit 1): "
                                  "repository contains errors"}
    with pytest.raises(AssertionError, match=r"backup check: .*read-data-subset=3/10.* failed .*damaged"):
        verify.check_backup_repository_checked(instance(status))
    with pytest.raises(AssertionError, match="backup check"):  # the unit failed, whatever the status says
        verify.check_backup_repository_checked(instance({"last_check_success": iso(NOW - DAY)}, failed=True))


def test_no_good_check_for_too_long_fails() -> None:
    with pytest.raises(AssertionError, match=r"last checked 12\.0 days ago"):
        verify.check_backup_repository_checked(instance({"last_check_result": "success",
                                                         "last_check_success": iso(NOW - 12 * DAY)}))
    # never checked: fine while the timer is younger than the limit, not after
    verify.check_backup_repository_checked(instance({}, timer_installed=NOW - 2 * DAY))
    with pytest.raises(AssertionError, match="never been checked in 20 days"):
        verify.check_backup_repository_checked(instance({"last_check_result": "no repository"},
                                                        timer_installed=NOW - 20 * DAY))


def test_every_blueprint_runs_the_check_with_the_other_backup_checks() -> None:
    text = SKELETON_TESTS.read_text()
    test = text[text.index("def test_backups_did_not_fail_and_are_recent"):]
    assert "checks.check_backup_repository_checked(host)" in test.split("\n\n")[0]
