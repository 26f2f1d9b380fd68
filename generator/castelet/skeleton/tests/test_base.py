"""What every Castelet instance guarantees, whatever the blueprint."""

import castelet_checks as checks


def test_bootstrap_succeeded(host):
    checks.check_bootstrap_succeeded(host)


def test_ssh_is_key_only_without_root(host):
    checks.check_ssh_hardened(host)


def test_fail2ban_watches_logins(host):
    checks.check_fail2ban(host)


def test_unattended_upgrades_enabled(host):
    checks.check_unattended_upgrades(host)


def test_only_declared_ports_listen(host, role):
    checks.check_only_declared_ports_listen(host, role)


def test_declared_services_listen(host, role):
    checks.check_services_listening(host, role)


def test_health_checks_answer(host, role):
    checks.check_health(host, role)


def test_https_redirect_hsts_and_headers(host, role):
    checks.check_https(host, role)


def test_web_roots_not_writable_by_the_web_server(host, role):
    checks.check_web_roots_not_writable(host, role)


def test_tls_certificate(host, role, node):
    checks.check_tls_certificate(host, role, node[1]["address"])


def test_state_lives_on_the_data_volumes(host):
    checks.check_state_on_volumes(host)


def test_backups_did_not_fail_and_are_recent(host):
    checks.check_backups(host)
    checks.check_backup_repository_checked(host)
