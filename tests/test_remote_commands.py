"""Commands sent to instances (ssh, lxc exec, testinfra) or through a local shell keep every value
one literal argument: hostile host names, addresses, paths and snapshot ids run nothing.

Each builder's output is handed to a real shell here, with `printf` in place of the program, the
way the remote (or local) shell would see it: the words printed must be the values given, and the
marker file a `touch` would create must not exist."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from castelet import lifecycle, verify
from castelet.local.image import apt_proxy_detect_script
from castelet.render import new
from helpers import REPO_ROOT


def hostile_values(marker: Path) -> list[str]:
    return [f"'; touch {marker} #", f"$(touch {marker})", f"`touch {marker}`", f'"; touch {marker}; "',
            f"x && touch {marker}", "a b\tc\nd", "*", "-oProxyCommand=touch " + str(marker), "$(id)"]


def shell_words(line: str, cwd: Path) -> list[str]:
    """The words a shell makes of ``line`` (run as printf's arguments, NUL-separated)."""
    proc = subprocess.run(["bash", "-c", "printf '%s\\0' " + line], cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=10)
    return proc.stdout.split("\0")[:-1]


def remote_line(argv: list[str], target: str) -> str:
    """What ssh sends for the remote shell: the arguments after the target, joined with spaces."""
    assert argv[0] == "ssh"
    position = argv.index(target)
    assert argv[position - 1] == "--", f"the target is not protected from option parsing: {argv}"
    return " ".join(argv[position + 1:])


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def noxfile(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    deployment = new(REPO_ROOT / "blueprints" / "lamp", {"cloud": "lxd", "project_slug": "rc"},
                     tmp_path_factory.mktemp("remote"))
    return load(deployment / "noxfile.py", "remote_commands_noxfile")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def test_ssh_commands_reach_the_remote_shell_as_literal_arguments(
        noxfile: ModuleType, tmp_path: Path, marker: Path) -> None:
    for value in hostile_values(marker):
        command = ["/usr/local/sbin/castelet-backup", "restore", "--snapshot", value]
        argv = noxfile._on_instance({"testinfra_url": "ssh://debian@203.0.113.5"}, command, tmp_path / "known")
        assert shell_words(remote_line(argv, "debian@203.0.113.5"), tmp_path) == ["sudo", "-n", "--", *command]
    assert not marker.exists()


def test_a_hostile_ssh_target_is_never_an_option(noxfile: ModuleType, tmp_path: Path, marker: Path) -> None:
    target = f"-oProxyCommand=touch {marker}"
    argv = noxfile._on_instance({"testinfra_url": f"ssh://{target}"}, ["true"], tmp_path / "known")
    assert argv[argv.index(target) - 1] == "--"
    assert all(not a.startswith("-oProxyCommand") for a in argv[:argv.index("--")])


def test_lxc_exec_gets_an_argument_list(noxfile: ModuleType, marker: Path) -> None:
    for value in hostile_values(marker):
        command = ["/usr/local/sbin/castelet-backup", "restore", "--snapshot", value]
        argv = noxfile._on_instance({"testinfra_url": "lxc://rc-web1"}, command)
        assert argv == ["lxc", "exec", "rc-web1", "--", *command]


def test_keyscan_through_a_jump_host_quotes_the_address(noxfile: ModuleType, tmp_path: Path, marker: Path) -> None:
    for value in hostile_values(marker):
        entry: dict[str, Any] = {"address": value, "ssh_user": "debian", "bastion": "198.51.100.7"}
        argv = noxfile._keyscan_argv(entry, tmp_path / "known")
        assert shell_words(remote_line(argv, "debian@198.51.100.7"), tmp_path) == [
            "ssh-keyscan", "-T", "10", "-t", "ed25519", "--", value]
        direct = noxfile._keyscan_argv({**entry, "bastion": None}, tmp_path / "known")
        assert direct == ["ssh-keyscan", "-T", "10", "-t", "ed25519", "--", value]
    assert not marker.exists()


class RecordingHost:
    """A testinfra host that records the command lines it is asked to run."""

    def __init__(self, stdout: str = "") -> None:
        self.commands: list[str] = []
        self.stdout = stdout

    def run(self, command: str) -> Any:
        self.commands.append(command)
        return SimpleNamespace(rc=0, stdout=self.stdout, stderr="")


def test_verify_health_and_curl_commands_quote_urls(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, marker: Path) -> None:
    for value in hostile_values(marker):
        service = {"role": "web", "port": 8080, "protocol": "tcp", "health": {"path": f"/{value}", "status": 200}}
        monkeypatch.setattr(verify, "services_of", lambda role, service=service: [service])
        host = RecordingHost("200")
        verify.check_health(host, "web")
        words = shell_words(host.commands[-1], tmp_path)
        assert words == ["curl", "-s", "-o", "/tmp/castelet-health", "-w", "%{http_code}",
                         f"http://127.0.0.1:8080/{value}"]
        verify._curl(host, value, f"https://{value}/")
        assert shell_words(host.commands[-1], tmp_path)[-1] == f"https://{value}/"
        assert f"{value}:443:127.0.0.1" in shell_words(host.commands[-1], tmp_path)
    assert not marker.exists()


def test_the_idempotence_check_runs_one_quoted_puppet_command(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host = RecordingHost()
    monkeypatch.setattr(lifecycle, "_host", lambda entry: host)
    lifecycle.check_idempotent({"web1": {"testinfra_url": "ssh://debian@203.0.113.5"}})
    assert shell_words(host.commands[0], tmp_path) == [
        "sudo", "-n", "--", "puppet", "apply", "--detailed-exitcodes", "--color=false", lifecycle.SITE_PP]


def test_testinfra_ssh_options_quote_the_known_hosts_path(tmp_path: Path, marker: Path) -> None:
    import testinfra

    conftest = load(REPO_ROOT / "generator/castelet/skeleton/tests/conftest.py", "skeleton_conftest")
    for value in hostile_values(marker):
        known_hosts = f"{tmp_path}/{value}/known_hosts".replace("\n", " ")
        backend = testinfra.get_host("ssh://debian@203.0.113.5",
                                     ssh_extra_args=conftest.ssh_extra_args(known_hosts)).backend
        parts, args = backend._build_ssh_command("true")
        line = backend.quote(" ".join(parts), *args)
        assert line.startswith("ssh ")
        words = shell_words(line.removeprefix("ssh "), tmp_path)
        assert words[:4] == ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"]
        assert words[-2:] == ["203.0.113.5", "true"]
    assert not marker.exists()


@pytest.mark.parametrize("cache", ["10.0.3.1';touch /tmp/pwned #:3142", "$(id):3142", "10.0.3.1:31 42",
                                   "-x:3142", "10.0.3.1:$(id)"])
def test_the_apt_proxy_hook_takes_only_a_plain_address(cache: str) -> None:
    with pytest.raises(ValueError, match="apt cache address"):
        apt_proxy_detect_script(cache)


def test_the_apt_proxy_hook_still_takes_the_bridge_address() -> None:
    assert "/dev/tcp/10.0.3.1/3142" in apt_proxy_detect_script("10.0.3.1:3142")


LOSSY_LXC = """#!/bin/sh
# Stands in for `lxc exec NAME --mode=non-interactive -- /bin/sh -c CMD`: counts its calls and,
# like LXD 5.0.2 under load (canonical/lxd#11422), returns nothing with exit 0 the first N times.
calls=$(( $(cat "$0.calls" 2>/dev/null || echo 0) + 1 ))
echo "$calls" > "$0.calls"
[ "$calls" -le "$(cat "$0.lose")" ] && exit 0
shift 6
exec /bin/sh -c "$1"
"""


@pytest.mark.parametrize(("lost", "expected_calls", "expected"), [
    (0, 1, '{"domain": "example.org"}\n'),  # nothing lost: one call
    (2, 3, '{"domain": "example.org"}\n'),  # lost twice: read again, twice
    (9, 3, ""),  # never answers: three calls, then the empty result goes to the check
])
def test_verify_on_the_local_cloud_reads_again_what_lxc_exec_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: int, expected_calls: int, expected: str) -> None:
    """`nox -s verify` reads an instance's files through `lxc exec`; an output LXD dropped is read
    again instead of failing a check on an empty file (the e2e lost /etc/castelet/tls.json so)."""
    conftest = load(REPO_ROOT / "generator/castelet/skeleton/tests/conftest.py", "skeleton_conftest_lxc")
    fake = tmp_path / "bin" / "lxc"
    fake.parent.mkdir()
    fake.write_text(LOSSY_LXC)
    fake.chmod(0o755)
    (tmp_path / "bin" / "lxc.lose").write_text(f"{lost}\n")
    (tmp_path / "tls.json").write_text('{"domain": "example.org"}\n')
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    host = conftest.host.__wrapped__(("web1", {"testinfra_url": "lxc://e2e-web1", "role": "web"}))
    result = host.run(f"cat {tmp_path / 'tls.json'}")
    assert (result.rc, result.stdout) == (0, expected)
    assert int((tmp_path / "bin" / "lxc.calls").read_text()) == expected_calls
