#!/usr/bin/python3
"""castelet-node-deploy: builds a Node.js application from git and switches to it without downtime.

Usage: castelet-node-deploy [--config FILE] deploy | is-current | status

Configuration (JSON, written by castelet::profile::nodejs_app, no secrets):
  git_url, git_ref, base_dir, cache_dir, build_user, slots ({name: port}), health_path,
  health_host, upstream_file, unit (systemd template name, e.g. castelet-nodejs-app@),
  entry (path of the server's entry point in a built release, "" to detect), keep_releases,
  build_timeout, ca_file.

Two slots (blue and green) each run one release as `<unit><slot>.service` on their own port on
loopback; nginx proxies to the active slot through `upstream_file`. `deploy`:

1. fetches `git_url` into a bare cache and resolves `git_ref` (branch, tag or commit) to a commit;
2. when the active slot already runs that commit and answers, does nothing;
3. otherwise has the build user build the commit in `<base_dir>/builds/<commit>`, a directory it
   creates itself: `git archive`, `npm ci` (skipped when the lock file is the active release's:
   its `node_modules` is copied), `npm run build`, with npm's cache kept in `cache_dir` and the
   system's trust store for TLS. Root then moves that directory into `<base_dir>/releases`
   (root's own) by `renameat` between the two directories' descriptors and keeps it only when it
   is a directory of the build user. A failed build changes nothing that runs;
4. points the idle slot at the release, starts it and checks `health_path` on its port; an
   unhealthy release is stopped and the deploy fails, the active slot still serving;
5. writes the idle slot's port into `upstream_file`, checks nginx's configuration and reloads
   it (graceful), waits until every nginx worker of the previous configuration has exited (they
   finish their requests first), then stops and disables the previous slot.

Everything the build user runs (git, npm, the application's build scripts: `fetch-step`,
`build-step`, `clean-step` of this program) runs in a transient systemd service (`systemd-run`
with `User=`, `ProtectSystem=strict` writable only where it builds and caches, `PrivateTmp`,
`NoNewPrivileges`, no capabilities): whatever it starts is killed when the step ends. Root never
writes, reads or changes the owner of anything under a directory the build user controls; it
only renames whole directories between directory descriptors (a release into `releases/`, a
pruned one back into `builds/`, which the build user then empties).

`is-current` exits 0 when the active slot runs the commit `git_ref` names and is running (Puppet's
`unless`), 1 otherwise.
"""

from __future__ import annotations

import argparse
import fcntl
import filecmp
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CONFIG = "/etc/castelet/nodejs-app.json"
ENTRIES = ("build/index.js", "dist/server/entry.mjs", "server.js", "index.js")
# A commit name (SHA-1 or SHA-256): the only form of the build user's output root uses as a path.
COMMIT = re.compile(r"\A(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
# The steps the build user runs, each in its own transient systemd service.
STEPS = ("fetch-step", "build-step", "clean-step")
PROGRAM = os.path.realpath(__file__)
PYTHON = sys.executable or "/usr/bin/python3"


class DeployError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    git_url: str
    git_ref: str
    base_dir: Path
    cache_dir: Path
    build_user: str
    slots: dict[str, int]
    health_path: str
    health_host: str
    upstream_file: Path
    unit: str
    entry: str
    keep_releases: int
    build_timeout: int
    health_timeout: int
    ca_file: str
    watch_files: tuple[str, ...]
    source: str

    @classmethod
    def load(cls, path: str) -> Config:
        data = json.loads(Path(path).read_text())
        return cls(
            git_url=str(data["git_url"]), git_ref=str(data["git_ref"]), base_dir=Path(data["base_dir"]),
            cache_dir=Path(data["cache_dir"]), build_user=str(data["build_user"]),
            slots={str(k): int(v) for k, v in data["slots"].items()}, health_path=str(data["health_path"]),
            health_host=str(data["health_host"]), upstream_file=Path(data["upstream_file"]),
            unit=str(data["unit"]), entry=str(data.get("entry", "")),
            keep_releases=int(data.get("keep_releases", 3)), build_timeout=int(data.get("build_timeout", 1800)),
            health_timeout=int(data.get("health_timeout", 90)), ca_file=str(data.get("ca_file", "")),
            watch_files=tuple(str(f) for f in data.get("watch_files", [])), source=os.path.abspath(path))

    @property
    def state_file(self) -> Path:
        return self.base_dir / "state.json"

    @property
    def repo(self) -> Path:
        return self.cache_dir / "repo.git"

    @property
    def releases(self) -> Path:
        """Built releases: root's directory (the build user cannot add, replace or remove one)."""
        return self.base_dir / "releases"

    @property
    def builds(self) -> Path:
        """The build user's own directory, where it builds (and empties what root hands back)."""
        return self.base_dir / "builds"

    def unit_of(self, slot: str) -> str:
        return f"{self.unit}{slot}.service"

    def slot_link(self, slot: str) -> Path:
        return self.base_dir / "slots" / slot

    def slot_env(self, slot: str) -> Path:
        return self.base_dir / "slots" / f"{slot}.env"


def log(message: str) -> None:
    print(f"castelet-node-deploy: {message}", flush=True)


def run(cmd: list[str], *, cwd: Path | None = None, timeout: int | None = None, capture: bool = False) -> str:
    """Runs a command as ourselves; its output goes to ours unless captured."""
    try:
        done = subprocess.run(cmd, cwd=cwd, timeout=timeout, check=False, text=True,
                              stdout=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired as err:
        raise DeployError(f"{' '.join(cmd[:3])} did not finish within {timeout} s") from err
    if done.returncode != 0:
        raise DeployError(f"{' '.join(cmd[:3])} failed (exit {done.returncode})")
    return done.stdout or "" if capture else ""


def build_env(cfg: Config) -> dict[str, str]:
    """The build's environment: the build user's home, npm's cache, the system's trust store."""
    home = cfg.cache_dir / "home"
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "npm_config_cache": str(cfg.cache_dir / "npm"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_progress": "false",
    }
    if cfg.ca_file:
        env["npm_config_cafile"] = cfg.ca_file
        env["NODE_EXTRA_CA_CERTS"] = cfg.ca_file
        env["GIT_SSL_CAINFO"] = cfg.ca_file
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def read_state(cfg: Config) -> dict[str, object]:
    try:
        state = json.loads(cfg.state_file.read_text())
    except (OSError, ValueError):
        return {"active": None, "slots": {}}
    return state if isinstance(state, dict) else {"active": None, "slots": {}}


def write_state(cfg: Config, state: dict[str, object]) -> None:
    tmp = cfg.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, cfg.state_file)


def active(state: dict[str, object]) -> tuple[str | None, str | None, str | None]:
    """The active slot, its commit and the digest of the settings it was started with."""
    slot = state.get("active")
    slots = state.get("slots")
    if not isinstance(slot, str) or not isinstance(slots, dict):
        return None, None, None
    info = slots.get(slot)
    if not isinstance(info, dict):
        return slot, None, None
    commit, digest = info.get("commit"), info.get("digest")
    return slot, commit if isinstance(commit, str) else None, digest if isinstance(digest, str) else None


def settings_digest(cfg: Config) -> str:
    """SHA-256 over the files a running release depends on (unit, environment, configuration)."""
    digest = hashlib.sha256()
    for name in cfg.watch_files:
        digest.update(name.encode() + b"\0")
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"\0missing")
    return digest.hexdigest()


# --- the build user's side: each step runs in its own transient systemd service ---------------


def confined(cfg: Config, argv: list[str], *, name: str, writable: Sequence[Path], seconds: int) -> list[str]:
    """The command that runs `argv` as the build user in the transient service `name`.

    `systemd-run --wait` returns once the service is gone: the service ends when `argv` exits,
    and systemd then kills every process left in its control group (a daemon a build script
    started, a double fork, `setsid`), so nothing the build user starts outlives its step. The
    file system is read-only but for `writable`; `/tmp` is the service's own; no setuid program,
    capability or new privilege; at most `seconds` of run time.
    """
    properties = [
        f"User={cfg.build_user}", f"Group={cfg.build_user}",
        "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=strict", "ProtectHome=yes",
        *(f"ReadWritePaths={path}" for path in writable),
        "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
        "ProtectControlGroups=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes", "RestrictRealtime=yes",
        "CapabilityBoundingSet=", "UMask=0022", "KillMode=control-group", "SendSIGKILL=yes",
        "TimeoutStopSec=10", f"RuntimeMaxSec={seconds}",
    ]
    return ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--service-type=exec", f"--unit={name}",
            f"--description=castelet-node-deploy: {name} as {cfg.build_user}",
            *(f"--property={prop}" for prop in properties),
            *(f"--setenv={key}={value}" for key, value in sorted(build_env(cfg).items())),
            "--", *argv]


def as_build_user(cfg: Config, step: list[str], *, writable: Sequence[Path], seconds: int,
                  capture: bool = False) -> str:
    """Runs one step of this program as the build user (`confined`); its standard output when
    `capture` (its errors then end the DeployError's message), else its output goes to ours."""
    name = f"castelet-node-{step[0].removesuffix('-step')}-{os.getpid()}"
    argv = [PYTHON, PROGRAM, "--config", cfg.source, *step]
    pipe = subprocess.PIPE if capture else None
    try:
        done = subprocess.run(confined(cfg, argv, name=name, writable=writable, seconds=seconds),
                              env=build_env(cfg), stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe,
                              text=True, check=False, timeout=seconds + 60)
    except subprocess.TimeoutExpired as err:
        subprocess.run(["systemctl", "stop", f"{name}.service"], check=False, capture_output=True)
        raise DeployError(f"{step[0]} as {cfg.build_user} did not finish within {seconds} s") from err
    if done.stderr:
        sys.stderr.write(done.stderr)  # git's own messages: the Puppet run shows them
    if done.returncode != 0:
        errors = (done.stderr or "").strip().splitlines()
        reason = f": {errors[-1].removeprefix('castelet-node-deploy: ')}" if errors else ""
        raise DeployError(f"{step[0]} as {cfg.build_user} failed (exit {done.returncode}){reason}")
    return done.stdout or ""


def fetch(cfg: Config) -> str:
    """Has the build user fetch the repository into the cache; returns the commit `git_ref` names."""
    out = as_build_user(cfg, ["fetch-step"], writable=[cfg.cache_dir], seconds=900, capture=True).split()
    if not out or not COMMIT.match(out[-1]):
        raise DeployError(f"fetching {cfg.git_url} named no commit")
    return out[-1]


def check_build_user(cfg: Config) -> None:
    """A step runs only as the build user, never as root in its place."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    if me != cfg.build_user:
        raise DeployError(f"the steps run only as {cfg.build_user} (started by castelet-node-deploy "
                          f"through systemd-run), not as {me}")


def own_directories(cfg: Config) -> None:
    """The build user's home and npm's cache, made by the build user itself."""
    for path in (cfg.cache_dir / "home", cfg.cache_dir / "npm"):
        path.mkdir(mode=0o750, exist_ok=True)


def fetch_step(cfg: Config) -> str:
    check_build_user(cfg)
    own_directories(cfg)
    git = ["git", "--git-dir", str(cfg.repo)]
    if not (cfg.repo / "HEAD").exists():
        run(["git", "init", "--quiet", "--bare", str(cfg.repo)])
    run([*git, "fetch", "--quiet", "--prune", "--force", "--", cfg.git_url,
         "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"], timeout=600)
    for candidate in (f"refs/remotes/origin/{cfg.git_ref}", f"refs/tags/{cfg.git_ref}", cfg.git_ref):
        try:
            return run([*git, "rev-parse", "--quiet", "--verify", "--end-of-options", f"{candidate}^{{commit}}"],
                       capture=True).strip()
        except DeployError:
            continue
    raise DeployError(f"{cfg.git_url} has no branch, tag or commit {cfg.git_ref!r}")


def wipe(path: Path) -> None:
    """Removes a file or a tree of the build user's (npm leaves read-only directories behind)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    path.chmod(0o700)
    for top, dirs, _files in os.walk(path):
        for name in dirs:
            if not os.path.islink(os.path.join(top, name)):
                os.chmod(os.path.join(top, name), 0o700)
    shutil.rmtree(path)


def clean_step(cfg: Config) -> None:
    """Empties `builds/`: failed builds and the releases root pruned."""
    check_build_user(cfg)
    for path in sorted(cfg.builds.iterdir()):
        try:
            wipe(path)
        except OSError as err:
            log(f"could not remove {path}: {err}")


def build_step(cfg: Config, commit: str, reuse_from: Path | None) -> None:
    """Builds `commit` into `builds/<commit>`, a directory the build user creates."""
    check_build_user(cfg)
    if not COMMIT.match(commit):
        raise DeployError(f"not a commit: {commit!r}")
    own_directories(cfg)
    clean_step(cfg)
    work = cfg.builds / commit
    work.mkdir(mode=0o755)
    archive = subprocess.Popen(["git", "--git-dir", str(cfg.repo), "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(work)], stdin=archive.stdout, check=False)
    if archive.stdout is not None:
        archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise DeployError(f"could not extract commit {commit[:12]}")
    if not (work / "package.json").is_file():
        raise DeployError(f"commit {commit[:12]} has no package.json at its root")
    lock = work / "package-lock.json"
    if not lock.is_file():
        raise DeployError(f"commit {commit[:12]} has no package-lock.json: `npm ci` needs one (commit it)")
    if reuse_from is not None and (reuse_from / "node_modules").is_dir() and \
            (reuse_from / "package-lock.json").is_file() and \
            filecmp.cmp(lock, reuse_from / "package-lock.json", shallow=False):
        log("package-lock.json unchanged: reusing the active release's node_modules")
        run(["cp", "-a", "--reflink=auto", str(reuse_from / "node_modules"), str(work / "node_modules")],
            timeout=cfg.build_timeout)
    else:
        run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"], cwd=work, timeout=cfg.build_timeout)
    run(["npm", "run", "build"], cwd=work, timeout=cfg.build_timeout)
    entry_of(cfg, work)


# --- root's side ------------------------------------------------------------------------------


def unit_active(cfg: Config, slot: str) -> bool:
    return subprocess.run(["systemctl", "is-active", "--quiet", cfg.unit_of(slot)], check=False).returncode == 0


def healthy(cfg: Config, port: int, timeout: int) -> bool:
    """Whether the release on `port` answers `health_path` with a 2xx or 3xx status in time."""
    url = f"http://127.0.0.1:{port}{cfg.health_path}"
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(NoRedirect)
    while True:
        request = urllib.request.Request(url, headers={"Host": cfg.health_host,
                                                       "X-Forwarded-Proto": "https"})
        try:
            with opener.open(request, timeout=10) as answer:
                if 200 <= answer.status < 400:
                    return True
        except urllib.error.HTTPError as err:
            if 300 <= err.code < 400:
                return True
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def entry_of(cfg: Config, release: Path) -> str:
    if cfg.entry:
        if not (release / cfg.entry).is_file():
            raise DeployError(f"the build has no {cfg.entry} (the configured entry point)")
        return cfg.entry
    for entry in ENTRIES:
        if (release / entry).is_file():
            return entry
    raise DeployError(f"the build has none of {', '.join(ENTRIES)}: set the entry point "
                      "(castelet::profile::nodejs_app::entry)")


def directory_fd(path: Path) -> int:
    """A descriptor of the directory `path` (never of what a symbolic link there names)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def build(cfg: Config, commit: str, reuse_from: Path | None) -> Path:
    """Has the build user build `commit`, then moves it to `releases/<commit>` (kept when it was
    already built: only root puts a directory there, and only a finished build)."""
    if not COMMIT.match(commit):
        raise DeployError(f"not a commit: {commit!r}")
    release = cfg.releases / commit
    try:
        kind = os.lstat(release).st_mode
    except FileNotFoundError:
        kind = None
    if kind is not None and stat.S_ISDIR(kind):
        log(f"release {commit[:12]} already built")
        return release
    if kind is not None:
        release.unlink()  # not a release (left by an older layout, where the build user owned releases/)
    log(f"building {commit[:12]} in {cfg.builds / commit} as {cfg.build_user}")
    step = ["build-step", commit, *(["--reuse", str(reuse_from)] if reuse_from is not None else [])]
    as_build_user(cfg, step, writable=[cfg.builds, cfg.cache_dir], seconds=2 * cfg.build_timeout + 300)
    builder = pwd.getpwnam(cfg.build_user).pw_uid
    builds, releases = directory_fd(cfg.builds), directory_fd(cfg.releases)
    try:
        try:
            os.rename(commit, commit, src_dir_fd=builds, dst_dir_fd=releases)
        except FileNotFoundError as err:
            raise DeployError(f"the build of {commit[:12]} left no {cfg.builds / commit}") from err
        moved = os.stat(commit, dir_fd=releases, follow_symlinks=False)
        if not stat.S_ISDIR(moved.st_mode):
            os.unlink(commit, dir_fd=releases)
        elif moved.st_uid != builder:
            os.rename(commit, commit, src_dir_fd=releases, dst_dir_fd=builds)
        else:
            return release
        raise DeployError(f"the build of {commit[:12]} left something other than a directory of "
                          f"{cfg.build_user}'s: refused")
    finally:
        os.close(builds)
        os.close(releases)


def nginx_workers() -> set[int]:
    """PIDs of nginx's worker processes (children of its master)."""
    try:
        master = int(Path("/run/nginx.pid").read_text().strip())
    except (OSError, ValueError):
        return set()
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True, check=False)
    return {int(pid) for pid in out.stdout.split()}


def switch_upstream(cfg: Config, port: int) -> None:
    """Points nginx at `port` and returns once no worker of the previous configuration is left."""
    old = nginx_workers()
    tmp = cfg.upstream_file.with_suffix(".tmp")
    previous = cfg.upstream_file.read_text() if cfg.upstream_file.exists() else None
    tmp.write_text("# Written by castelet-node-deploy: the active release's port.\n"
                   f"server 127.0.0.1:{port};\n")
    os.replace(tmp, cfg.upstream_file)
    try:
        run(["nginx", "-t", "-q"])
    except DeployError:
        if previous is not None:
            cfg.upstream_file.write_text(previous)
        raise
    run(["systemctl", "reload", "nginx"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = nginx_workers()
        if old and not (old & now) and now:
            return
        if not old:
            time.sleep(2)
            return
        time.sleep(0.5)
    log("nginx's previous workers are still finishing requests after 120 s; switching anyway")


def prune(cfg: Config, keep: set[str]) -> None:
    """Hands releases beyond the newest `keep_releases` (and leftovers of the older layout's
    builds) back to the build user's `builds/`, which the build user then empties."""
    with os.scandir(cfg.releases) as scan:
        entries = list(scan)
    built = sorted((e for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")),
                   key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    doomed = [e.name for e in built[cfg.keep_releases:] if e.name not in keep]
    doomed += [e.name for e in entries if e.name.startswith(".build-") and e.is_dir(follow_symlinks=False)]
    if not doomed:
        return
    builds, releases = directory_fd(cfg.builds), directory_fd(cfg.releases)
    try:
        for name in doomed:
            try:
                os.rename(name, f".pruned-{name.lstrip('.')}", src_dir_fd=releases, dst_dir_fd=builds)
            except OSError as err:
                log(f"could not prune release {name}: {err}")
    finally:
        os.close(builds)
        os.close(releases)
    as_build_user(cfg, ["clean-step"], writable=[cfg.builds], seconds=600)


def deploy(cfg: Config) -> int:
    state = read_state(cfg)
    commit = fetch(cfg)
    digest = settings_digest(cfg)
    current_slot, current_commit, current_digest = active(state)
    same = current_slot is not None and current_commit == commit and current_digest == digest
    if same and current_slot and unit_active(cfg, current_slot):
        log(f"{cfg.git_ref} ({commit[:12]}) already runs in slot {current_slot}")
        return 0
    if same and current_slot:
        # The right release, stopped (e.g. killed): start it where it was.
        run(["systemctl", "enable", "--now", cfg.unit_of(current_slot)])
        if not healthy(cfg, cfg.slots[current_slot], cfg.health_timeout):
            raise DeployError(f"release {commit[:12]} does not answer {cfg.health_path} on slot {current_slot}")
        log(f"started slot {current_slot} again ({commit[:12]})")
        return 0

    reuse = cfg.slot_link(current_slot).resolve() if current_slot else None
    release = build(cfg, commit, reuse)
    entry = entry_of(cfg, release)
    idle = next(s for s in sorted(cfg.slots) if s != current_slot)
    port = cfg.slots[idle]

    run(["systemctl", "stop", cfg.unit_of(idle)])
    link, tmp_link = cfg.slot_link(idle), cfg.slot_link(idle).with_name(f".{idle}.tmp")
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(release)
    os.replace(tmp_link, link)
    cfg.slot_env(idle).write_text(f"PORT={port}\nCASTELET_ENTRY={entry}\nCASTELET_RELEASE={commit}\n")
    run(["systemctl", "start", cfg.unit_of(idle)])
    if not healthy(cfg, port, cfg.health_timeout):
        subprocess.run(["journalctl", "--no-pager", "-n", "30", "-u", cfg.unit_of(idle)], check=False)
        subprocess.run(["systemctl", "stop", cfg.unit_of(idle)], check=False)
        raise DeployError(f"release {commit[:12]} did not answer {cfg.health_path} on port {port} within "
                          f"{cfg.health_timeout} s; the running release stays")
    log(f"release {commit[:12]} answers on slot {idle} (port {port})")
    run(["systemctl", "enable", "--quiet", cfg.unit_of(idle)])
    switch_upstream(cfg, port)
    state["slots"] = {**(state.get("slots") or {}), idle: {"commit": commit, "digest": digest}}  # type: ignore[dict-item]
    state["active"] = idle
    write_state(cfg, state)
    if current_slot:
        run(["systemctl", "disable", "--quiet", "--now", cfg.unit_of(current_slot)])
    log(f"{cfg.git_ref} ({commit[:12]}) serves from slot {idle}")
    prune(cfg, {commit, current_commit or ""})
    return 0


def is_current(cfg: Config) -> int:
    slot, commit, digest = active(read_state(cfg))
    if not slot or not unit_active(cfg, slot) or digest != settings_digest(cfg):
        return 1
    return 0 if fetch(cfg) == commit else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="castelet-node-deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("command", choices=["deploy", "is-current", "status", *STEPS])
    parser.add_argument("commit", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--reuse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cfg = Config.load(args.config)
    os.umask(0o022)
    try:
        if args.command in STEPS:
            # The build user's side, in its transient service: no lock (root holds it).
            if args.command == "fetch-step":
                print(fetch_step(cfg))
            elif args.command == "build-step":
                build_step(cfg, str(args.commit or ""), args.reuse)
            else:
                clean_step(cfg)
            return 0
        with open(cfg.base_dir / "deploy.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if args.command == "deploy":
                return deploy(cfg)
            if args.command == "is-current":
                return is_current(cfg)
            print(json.dumps(read_state(cfg), indent=2))
            return 0
    except DeployError as err:
        print(f"castelet-node-deploy: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
