#!/usr/bin/python3
"""castelet-site-deploy: publish the static site in releases, switched atomically.

Written by Puppet (castelet::profile::static_site) as /usr/local/sbin/castelet-site-deploy. It
reads its settings from /etc/castelet/site.json (written by Puppet from typed parameters), never
from the command line, and runs every program with an argument list (no shell). It runs as the
site's owner (the deploy account), never as root.

<site_dir>/releases/<name>/   one published version of the site each
<site_dir>/current            symbolic link to the release nginx serves, replaced atomically
                              (rename(2) of a new link over it): a visitor gets the old site or
                              the new one, never a mix. The newest `keep_releases` are kept.
<site_dir>/.castelet-build.json   the last build (url, ref, commit); <site_dir>/.lock
<state_dir>/repo.git          the fetched repository (a cache: fetched again after a rebuild)

  castelet-site-deploy init     publish a placeholder page if nothing is published yet.
  castelet-site-deploy rsync    the deploy account's forced SSH command: accept one rsync
                                upload (through Debian's rrsync: write only, links munged) into a
                                copy of the current release, then publish it. Anything else the
                                client asks for (a shell, a command, scp, sftp) is refused.
  castelet-site-deploy build    fetch `git_ref` of `git_url`, build it with Jekyll (--safe) and
                                publish it, unless that commit is already the last build.
  castelet-site-deploy built    exit 0 when the last build was of the configured url and ref
                                (Puppet's test: a changed answer builds again).
  castelet-site-deploy status   print the state (JSON): current release, last build.
"""

from __future__ import annotations

import datetime
import fcntl
import html
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/castelet/site.json")
RRSYNC = "/usr/bin/rrsync"
USAGE = ("This account only accepts an upload of the built site with rsync, e.g.\n"
         "  rsync -rlt --delete _site/ deploy@HOST:\n")


class DeployError(Exception):
    """A refusal or failure, said to the person deploying (stderr) with exit status 1."""


def load_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(CONFIG.read_text(encoding="utf-8"))
    for key in ("site_dir", "state_dir", "deployment", "domain", "git_url", "git_ref"):
        if not isinstance(config.get(key), str):
            raise DeployError(f"{CONFIG}: missing or invalid '{key}'")
    if not isinstance(config.get("keep_releases"), int) or config["keep_releases"] < 1:
        raise DeployError(f"{CONFIG}: missing or invalid 'keep_releases'")
    return config


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def say(message: str) -> None:
    """To the client's terminal: stdout carries rsync's protocol and must stay clean."""
    print(f"castelet-site-deploy: {message}", file=sys.stderr, flush=True)


class Site:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.root = Path(config["site_dir"])
        self.releases = self.root / "releases"
        self.current = self.root / "current"
        self.state_dir = Path(config["state_dir"])

    # --- releases ----------------------------------------------------------------------
    def lock(self) -> int:
        """One publication at a time (an upload and a build never interleave)."""
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DeployError("another publication of the site is running: try again in a moment") from None
        return fd

    def current_release(self) -> Path | None:
        if not self.current.is_symlink():
            return None
        target = self.root / os.readlink(self.current)
        return target if target.is_dir() else None

    def new_release(self, kind: str, seed: bool) -> Path:
        """A fresh release directory: a copy of the current one when `seed` (rsync then only
        sends what changed), else empty."""
        self.releases.mkdir(parents=True, exist_ok=True)
        name = f"{now().strftime('%Y%m%dT%H%M%S.%fZ')}-{kind}"
        release = self.releases / name
        current = self.current_release()
        if seed and current is not None:
            # A real copy, not hard links: an upload with --inplace must not change a served file.
            subprocess.run(["cp", "-a", "--", str(current), str(release)], check=True)
        else:
            release.mkdir()
        os.chmod(release, 0o755)
        return release

    def publish(self, release: Path) -> None:
        """Make `release` readable by the web server, then switch `current` to it atomically."""
        normalise_modes(release)
        link = self.root / ".current.new"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("releases") / release.name)
        os.replace(link, self.current)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.prune()

    def prune(self) -> None:
        keep = int(self.config["keep_releases"])
        served = self.current_release()
        releases = sorted((p for p in self.releases.iterdir() if p.is_dir() and not p.is_symlink()),
                          key=lambda p: p.name, reverse=True)
        for old in releases[keep:]:
            if served is not None and old.resolve() == served.resolve():
                continue
            shutil.rmtree(old, ignore_errors=True)

    def discard(self, release: Path) -> None:
        shutil.rmtree(release, ignore_errors=True)


def normalise_modes(tree: Path) -> None:
    """Directories 0755, files 0644 (0755 if executable): whatever the uploader's umask, the web
    server can read everything and nobody else can write."""
    for directory, _dirs, files in os.walk(tree):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory) / name
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            os.chmod(path, 0o755 if mode & 0o100 else 0o644)


# --- init ----------------------------------------------------------------------------------
PLACEHOLDER = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{domain}</title>
</head>
<body>
<main>
<h1>{domain}</h1>
<p>This site ({deployment}) is ready: nothing has been published yet.</p>
<p>castelet-static-site: placeholder</p>
</main>
</body>
</html>
"""


def cmd_init(site: Site) -> int:
    fd = site.lock()
    try:
        if site.current_release() is not None:
            return 0
        release = site.new_release("placeholder", seed=False)
        (release / "index.html").write_text(PLACEHOLDER.format(
            domain=html.escape(site.config["domain"]), deployment=html.escape(site.config["deployment"])),
            encoding="utf-8")
        site.publish(release)
        say(f"published a placeholder page ({release.name})")
        return 0
    finally:
        os.close(fd)


# --- rsync (forced SSH command) ---------------------------------------------------------------
def rsync_argv(original: str) -> list[str]:
    """The client's command if it is an rsync upload (`rsync --server ...` without
    `--sender`), else a refusal."""
    try:
        argv = shlex.split(original)
    except ValueError:
        raise DeployError("refused: not an rsync upload\n" + USAGE) from None
    if len(argv) < 2 or argv[0] != "rsync" or argv[1] != "--server":
        raise DeployError("refused: this account has no shell and runs no command\n" + USAGE)
    if "--sender" in argv:
        raise DeployError("refused: the site can be uploaded, not downloaded\n" + USAGE)
    return argv


def dry_run(argv: list[str]) -> bool:
    """Whether the client asked for a dry run: `--dry-run`, or `n` in its short options (the
    cluster before `e.`, which carries protocol capabilities, not options)."""
    for arg in argv[2:]:
        if arg == "--dry-run":
            return True
        if arg.startswith("-") and not arg.startswith("--") and "n" in arg[1:].split("e.", 1)[0]:
            return True
    return False


def cmd_rsync(site: Site) -> int:
    argv = rsync_argv(os.environ.get("SSH_ORIGINAL_COMMAND", ""))
    fd = site.lock()
    try:
        release = site.new_release("rsync", seed=True)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME", "USER", "LOGNAME")}
        env["SSH_ORIGINAL_COMMAND"] = shlex.join(argv)
        # rrsync confines every path of the client's command to `release`; -wo refuses
        # downloads, -munge neutralises uploaded symbolic links, -no-lock: we hold our own lock.
        result = subprocess.run([RRSYNC, "-wo", "-munge", "-no-lock", str(release)], env=env, check=False)
        if result.returncode != 0:
            site.discard(release)
            say(f"upload failed (rsync exit {result.returncode}): the site was not changed")
            return result.returncode
        if dry_run(argv):
            site.discard(release)
            say("dry run: nothing published")
            return 0
        site.publish(release)
        say(f"published {release.name}")
        return 0
    finally:
        os.close(fd)


# --- git + Jekyll build -------------------------------------------------------------------------
def git(repo: Path, *args: str, capture: bool = False) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "LANG": "C.UTF-8",
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(["git", f"--git-dir={repo}", *args], env=env, check=False, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise DeployError(f"git {args[0]} failed (exit {result.returncode})")
    return result.stdout.strip() if capture else ""


def state_file(site: Site) -> Path:
    """On the data volume with the site: a rebuilt or restored instance knows what it serves
    was built, and does not publish the same commit again."""
    return site.root / ".castelet-build.json"


def read_state(site: Site) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(state_file(site).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def write_state(site: Site, data: dict[str, Any]) -> None:
    path = state_file(site)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def fetch(site: Site) -> tuple[Path, str]:
    """Fetch the configured ref into a bare repository; return it and the ref's commit."""
    url, ref = site.config["git_url"], site.config["git_ref"]
    repo = site.state_dir / "repo.git"
    if not (repo / "HEAD").exists():
        shutil.rmtree(repo, ignore_errors=True)
        git(repo, "init", "--quiet", "--bare")
    git(repo, "fetch", "--quiet", "--force", "--prune", "--no-tags", "--", url,
        "+refs/heads/*:refs/remotes/site/heads/*", "+refs/tags/*:refs/remotes/site/tags/*")
    for candidate in (f"refs/remotes/site/heads/{ref}", f"refs/remotes/site/tags/{ref}", ref):
        result = subprocess.run(["git", f"--git-dir={repo}", "rev-parse", "--quiet", "--verify",
                                 "--end-of-options", f"{candidate}^{{commit}}"],
                                check=False, text=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
        if result.returncode == 0:
            return repo, result.stdout.strip()
    raise DeployError(f"{url} has no branch, tag or commit '{ref}'")


def cmd_build(site: Site) -> int:
    url, ref = site.config["git_url"], site.config["git_ref"]
    if not url:
        raise DeployError("no git_url configured: nothing to build")
    site.state_dir.mkdir(parents=True, exist_ok=True)
    repo, commit = fetch(site)
    state = read_state(site)
    if state.get("url") == url and state.get("ref") == ref and state.get("commit") == commit:
        say(f"{ref} is still {commit[:12]}: already built")
        return 0
    fd = site.lock()
    source = site.state_dir / "source"
    release: Path | None = None
    try:
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir()
        archive = subprocess.run(["git", f"--git-dir={repo}", "archive", "--format=tar", commit],
                                 check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
        subprocess.run(["tar", "-x", "--no-same-owner", "--no-same-permissions", "-C", str(source)],
                       input=archive.stdout, check=True)
        release = site.new_release("build", seed=False)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(site.state_dir), "LANG": "C.UTF-8",
               "JEKYLL_ENV": "production", "JEKYLL_NO_BUNDLER_REQUIRE": "true"}
        result = subprocess.run(["jekyll", "build", "--safe", "--disable-disk-cache", "--source", str(source),
                                 "--destination", str(release)], env=env, cwd=site.state_dir, check=False)
        if result.returncode != 0:
            raise DeployError(f"jekyll build of {commit[:12]} failed (exit {result.returncode}): "
                              "the site was not changed")
        site.publish(release)
        release = None
        write_state(site, {"url": url, "ref": ref, "commit": commit, "built": now().isoformat(timespec="seconds")})
        say(f"built {ref} ({commit[:12]}) and published it")
        return 0
    finally:
        if release is not None:
            site.discard(release)
        shutil.rmtree(source, ignore_errors=True)
        os.close(fd)


def cmd_built(site: Site) -> int:
    state = read_state(site)
    same = state.get("url") == site.config["git_url"] and state.get("ref") == site.config["git_ref"]
    return 0 if same and site.current_release() is not None else 1


def cmd_status(site: Site) -> int:
    current = site.current_release()
    print(json.dumps({"current": current.name if current else None, "build": read_state(site)}, indent=2))
    return 0


COMMANDS = {"init": cmd_init, "rsync": cmd_rsync, "build": cmd_build, "built": cmd_built, "status": cmd_status}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print(f"usage: castelet-site-deploy {{{'|'.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    try:
        os.umask(0o022)
        return COMMANDS[argv[1]](Site(load_config()))
    except DeployError as exc:
        say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
