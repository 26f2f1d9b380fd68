"""Castelet's apt provider (puppet/modules/castelet/lib/puppet/provider/package/castelet_apt.rb)
in a real Puppet transaction, apt-get replaced by a record of its calls
(`castelet_apt_transaction.rb`): what it installs at once, what it never installs early, and
that every package still reports its own change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from puppet_compile_server import ruby_of

pytestmark = pytest.mark.puppet

REPO_ROOT = Path(__file__).resolve().parents[1]
LIB = REPO_ROOT / "puppet" / "modules" / "castelet" / "lib"
SCRIPT = Path(__file__).with_name("castelet_apt_transaction.rb")

MANIFEST = """
Package { provider => 'castelet_apt' }
exec { 'fails': command => '/bin/false' }
exec { 'succeeds': command => '/bin/true' }
package { ['first', 'second']: ensure => installed }
package { 'after-a-failure': ensure => installed, require => Exec['fails'] }
package { 'after-first': ensure => installed, require => Package['first'] }
package { 'after-success': ensure => installed, require => Exec['succeeds'] }
package { 'pinned': ensure => '1.2' }
exec { 'refreshed-by-second': command => '/bin/true', refreshonly => true, subscribe => Package['second'] }
class grouped {
  package { ['in-a-class', 'also-in-a-class']: ensure => installed }
}
include grouped
package { ['with-a-broken-neighbour', 'broken']: ensure => installed, require => Exec['succeeds'] }
"""


def run_transaction(puppet_bin: str, tmp_path: Path, manifest: str, failing: str = "") -> dict[str, Any]:
    proc = subprocess.run(
        [ruby_of(puppet_bin), str(SCRIPT), str(LIB), str(tmp_path / "puppet"), manifest, failing],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_free_packages_are_installed_at_once_and_nothing_before_its_prerequisites(
    puppet_bin: str, tmp_path: Path
) -> None:
    run = run_transaction(puppet_bin, tmp_path, MANIFEST, failing="broken")
    calls: list[list[str]] = run["calls"]
    statuses: dict[str, dict[str, Any]] = run["statuses"]

    # Packages free at the same moment go in one call, whatever class declares them.
    together = next(call for call in calls if "first" in call)
    assert {"first", "second", "in-a-class", "also-in-a-class"} <= set(together), calls
    # Nothing that waits for another resource joins an earlier call.
    assert "after-first" not in together and "after-success" not in together
    assert calls.index(together) < next(i for i, call in enumerate(calls) if "after-first" in call)
    # A package whose prerequisite failed is never installed, as Puppet skips it.
    assert not any("after-a-failure" in call for call in calls), calls
    assert statuses["Package[after-a-failure]"]["skipped"]
    # Anything but ensure => installed is installed alone, as Puppet's apt provider does.
    assert ["pinned"] in calls

    # Installed ahead, each package still reports its installation at its own turn, and what
    # subscribes to it is refreshed.
    assert statuses["Package[second]"]["changed"] and not statuses["Package[second]"]["failed"]
    assert "package_installed" in statuses["Package[second]"]["events"]
    assert statuses["Exec[refreshed-by-second]"]["changed"]

    # A call that fails installs the package Puppet asked for alone; the others wait their own
    # turn, each alone.
    failed_call = next(call for call in calls if "broken" in call)
    assert {"with-a-broken-neighbour", "broken"} < set(failed_call), calls
    assert calls.count(["with-a-broken-neighbour"]) == 1 and calls.count(["broken"]) == 1, calls
    assert sum("broken" in call for call in calls) == 2, calls
    assert statuses["Package[with-a-broken-neighbour]"]["changed"]
    assert statuses["Package[broken]"]["failed"]
    assert "broken" not in run["installed"]


def test_the_environment_sets_the_provider_for_every_package() -> None:
    site = (REPO_ROOT / "puppet" / "manifests" / "site.pp").read_text()
    assert "Package {\n  provider => 'castelet_apt',\n}" in site
