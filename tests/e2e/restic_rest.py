"""A restic REST repository server on the host's LXD bridge address, for the backup tests.

`rclone serve restic DIR --addr ADDRESS:PORT --htpasswd FILE` (Debian's rclone) speaks restic's
REST protocol: each path under it is one repository (`rest:http://ADDRESS:PORT/<deployment>`).
The instances reach it on the bridge; HTTP basic authentication comes from an htpasswd file made
here (apr1 hash of a random password). `stop()` makes the repository unreachable (restic then
fails at once with "connection refused"), `start()` brings it back on the same port with the same
data, as an object store that was down for a while. With `append_only`, rclone's `--append-only`
refuses every deletion but of locks: what an instance is given so that its credentials cannot
erase its backups; `root` lets a second server serve the same repositories (the full-access one).
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port(address: str) -> int:
    """A TCP port free on ``address`` now (the server keeps it for the whole session)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass
class ResticRest:
    """rclone's restic REST server: `start()`, `stop()`, `url(repository)`."""

    workdir: Path
    address: str
    port: int = 0
    username: str = ""
    password: str = ""
    append_only: bool = False
    root: Path | None = None
    _server: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.username = self.username or f"e2e-{secrets.token_hex(8)}"
        self.password = self.password or secrets.token_urlsafe(24)
        self.port = self.port or free_port(self.address)

    @property
    def data(self) -> Path:
        """Where the repositories are stored on the host."""
        return self.root or self.workdir / "repositories"

    def url(self, repository: str) -> str:
        """The restic repository string an instance is given (no credentials in it)."""
        return f"rest:http://{self.address}:{self.port}/{repository}"

    @property
    def environment(self) -> dict[str, str]:
        """restic's variables for the REST credentials (what `nox -s backup-credentials` reads)."""
        return {"RESTIC_REST_USERNAME": self.username, "RESTIC_REST_PASSWORD": self.password}

    def start(self) -> None:
        if shutil.which("rclone") is None:
            raise RuntimeError("rclone is missing: run `sudo bash .ci/setup --system`")
        self.data.mkdir(parents=True, exist_ok=True)
        hashed = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=self.password, text=True,
                                capture_output=True, check=True).stdout.strip()
        htpasswd = self.workdir / "htpasswd"
        htpasswd.write_text(f"{self.username}:{hashed}\n")
        htpasswd.chmod(0o600)
        log = (self.workdir / "rclone.log").open("ab")
        self._server = subprocess.Popen(
            ["rclone", "serve", "restic", str(self.data), "--addr", f"{self.address}:{self.port}",
             "--htpasswd", str(htpasswd), "--config", str(self.workdir / "rclone.conf"),
             *(["--append-only"] if self.append_only else [])],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self.reachable():
            if self._server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rclone serve restic did not start:\n{(self.workdir / 'rclone.log').read_text()}")
            time.sleep(0.2)

    def reachable(self) -> bool:
        try:
            with socket.create_connection((self.address, self.port), timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            self._server.wait(10)
        self._server = None
        deadline = time.monotonic() + 10
        while self.reachable() and time.monotonic() < deadline:
            time.sleep(0.2)
