"""Catalogs compiled by long-running Puppet processes (`puppet_compiler.rb`) instead of one
`puppet catalog find` per catalog: the unit suite compiles about sixty, and each new process
spends more CPU starting Ruby and loading Puppet than compiling (7 s against 1.5 s for a lamp
node). `test_puppet.py::test_compile_server_gives_the_catalog_puppet_catalog_find_gives` keeps
the two equal.

A caller takes an idle server from the pool or starts one (threads compile in parallel, each
on its own process) and gives it back; the pool is closed when the test process ends.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("puppet_compiler.rb")


def ruby_of(puppet_bin: str) -> str:
    """The interpreter `puppet_bin` runs with (its `#!` line): the same Ruby and Puppet."""
    path = shutil.which(puppet_bin) or puppet_bin
    first = Path(path).read_text(errors="replace").splitlines()[0]
    if first.startswith("#!"):
        words = first[2:].split()
        if words and Path(words[0]).name == "env" and len(words) > 1:
            return shutil.which(words[1]) or words[1]
        if words:
            return words[0]
    return shutil.which("ruby") or "ruby"


class CompileServer:
    """One `puppet_compiler.rb` process: a request per line in, an answer per line out."""

    def __init__(self, ruby: str, basemodulepath: Path) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="castelet-compiler-"))
        self.log = self.scratch / "stderr.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACTER_")}
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                [ruby, str(SCRIPT), str(basemodulepath), str(self.scratch / "puppet")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
            )  # fmt: skip

    def compile(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Puppet compile server stopped:\n{self.log.read_text()[-4000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)


_idle: list[CompileServer] = []
_all: list[CompileServer] = []
_lock = threading.Lock()


def compile_catalog(puppet_bin: str, basemodulepath: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Compile on an idle server (a new one when all are busy); see `puppet_compiler.rb`."""
    with _lock:
        server = _idle.pop() if _idle else None
    if server is None:
        server = CompileServer(ruby_of(puppet_bin), basemodulepath)
        with _lock:
            _all.append(server)
    try:
        answer = server.compile(request)
    except BaseException:
        with _lock:
            _all.remove(server)
        server.close()
        raise
    with _lock:
        _idle.append(server)
    return answer


@atexit.register
def _close_all() -> None:
    with _lock:
        servers = list(_all)
        _all.clear()
        _idle.clear()
    for server in servers:
        server.close()
