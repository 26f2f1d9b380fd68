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

1. fetches `git_url` into a bare cache (as `build_user`) and resolves `git_ref` (branch, tag or
   commit) to a commit;
2. when the active slot already runs that commit and answers, does nothing;
3. otherwise builds the commit aside in `<base_dir>/releases/<commit>` as `build_user`:
   `git archive`, `npm ci` (skipped when the lock file is the active release's: its
   `node_modules` is copied), `npm run build`, with npm's cache kept in `cache_dir` and the
   system's trust store for TLS. A failed build changes nothing that runs;
4. points the idle slot at the release, starts it and checks `health_path` on its port; an
   unhealthy release is stopped and the deploy fails, the active slot still serving;
5. writes the idle slot's port into `upstream_file`, checks nginx's configuration and reloads
   it (graceful), waits until every nginx worker of the previous configuration has exited (they
   finish their requests first), then stops and disables the previous slot.

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
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CONFIG = "/etc/castelet/nodejs-app.json"
ENTRIES = ("build/index.js", "dist/server/entry.mjs", "server.js", "index.js")
BUILT = ".castelet-built"


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
            watch_files=tuple(str(f) for f in data.get("watch_files", [])))

    @property
    def state_file(self) -> Path:
        return self.base_dir / "state.json"

    @property
    def repo(self) -> Path:
        return self.cache_dir / "repo.git"

    def unit_of(self, slot: str) -> str:
        return f"{self.unit}{slot}.service"

    def slot_link(self, slot: str) -> Path:
        return self.base_dir / "slots" / slot

    def slot_env(self, slot: str) -> Path:
        return self.base_dir / "slots" / f"{slot}.env"


def log(message: str) -> None:
    print(f"castelet-node-deploy: {message}", flush=True)


def run(cmd: list[str], *, user: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: int | None = None, capture: bool = False) -> str:
    """Runs a command (as `user` when given); its output goes to ours unless captured."""
    kwargs: dict[str, object] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    try:
        done = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, check=False, text=True,
                              stdout=subprocess.PIPE if capture else None, **kwargs)  # type: ignore[call-overload]
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


def fetch(cfg: Config) -> str:
    """Fetches the repository into the cache and returns the commit `git_ref` names."""
    env = build_env(cfg)
    git = ["git", "--git-dir", str(cfg.repo)]
    if not (cfg.repo / "HEAD").exists():
        run(["git", "init", "--quiet", "--bare", str(cfg.repo)], user=cfg.build_user, env=env)
    run([*git, "fetch", "--quiet", "--prune", "--force", "--", cfg.git_url,
         "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
        user=cfg.build_user, env=env, timeout=600)
    for candidate in (f"refs/remotes/origin/{cfg.git_ref}", f"refs/tags/{cfg.git_ref}", cfg.git_ref):
        try:
            return run([*git, "rev-parse", "--quiet", "--verify", "--end-of-options", f"{candidate}^{{commit}}"],
                       user=cfg.build_user, env=env, capture=True).strip()
        except DeployError:
            continue
    raise DeployError(f"{cfg.git_url} has no branch, tag or commit {cfg.git_ref!r}")


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


def build(cfg: Config, commit: str, reuse_from: Path | None) -> Path:
    """Builds `commit` into `<base_dir>/releases/<commit>` (kept when it was already built)."""
    releases = cfg.base_dir / "releases"
    release = releases / commit
    if (release / BUILT).is_file():
        log(f"release {commit[:12]} already built")
        return release
    work = releases / f".build-{commit}"
    if work.exists():
        shutil.rmtree(work)
    if release.exists():
        shutil.rmtree(release)
    env = build_env(cfg)
    user = pwd.getpwnam(cfg.build_user)
    work.mkdir(mode=0o755)
    os.chown(work, user.pw_uid, user.pw_gid)
    log(f"building {commit[:12]} in {work}")
    archive = subprocess.Popen(["git", "--git-dir", str(cfg.repo), "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE, user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env)
    untar = subprocess.run(["tar", "-x", "-C", str(work)], stdin=archive.stdout, check=False,
                           user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env)
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
            filecmp.cmp(lock, reuse_from / "package-lock.json", shallow=False):
        log("package-lock.json unchanged: reusing the active release's node_modules")
        run(["cp", "-a", "--reflink=auto", str(reuse_from / "node_modules"), str(work / "node_modules")],
            user=cfg.build_user, env=env, timeout=cfg.build_timeout)
    else:
        run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"], user=cfg.build_user, env=env,
            cwd=work, timeout=cfg.build_timeout)
    run(["npm", "run", "build"], user=cfg.build_user, env=env, cwd=work, timeout=cfg.build_timeout)
    entry_of(cfg, work)
    (work / BUILT).write_text(commit + "\n")
    os.replace(work, release)
    return release


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
    releases = cfg.base_dir / "releases"
    built = sorted((p for p in releases.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for path in built[cfg.keep_releases:]:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in releases.glob(".build-*"):
        shutil.rmtree(path, ignore_errors=True)


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
    parser.add_argument("command", choices=["deploy", "is-current", "status"])
    args = parser.parse_args(argv)
    cfg = Config.load(args.config)
    os.umask(0o022)
    with open(cfg.base_dir / "deploy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
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
