"""What every Castelet instance guarantees, whatever the blueprint."""

import castelet_checks as checks


def test_bootstrap_succeeded(host):
    checks.check_bootstrap_succeeded(host)


def test_ssh_is_key_only_without_root(host):
    checks.check_ssh_hardened(host)


def test_unattended_upgrades_enabled(host):
    checks.check_unattended_upgrades(host)


def test_declared_services_listen(host, role):
    checks.check_services_listening(host, role)


def test_health_checks_answer(host, role):
    checks.check_health(host, role)
