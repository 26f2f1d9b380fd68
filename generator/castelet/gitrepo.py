"""A rendered deployment is a git repository: its render is the first commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Used only when the user has no git identity of their own.
_IDENTITY = {"GIT_AUTHOR_NAME": "castelet", "GIT_AUTHOR_EMAIL": "castelet@localhost",
             "GIT_COMMITTER_NAME": "castelet", "GIT_COMMITTER_EMAIL": "castelet@localhost"}


class GitError(RuntimeError):
    pass


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ)
    configured = subprocess.run(["git", "config", "user.email"], cwd=repo, capture_output=True, text=True,
                                check=False)
    if not configured.stdout.strip():
        env.update(_IDENTITY)
    proc = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def available() -> bool:
    return shutil.which("git") is not None


def init(repo: Path, message: str) -> bool:
    """``git init`` and commit everything (``.gitignore`` keeps state and plans out). False when git
    is not installed: the deployment is still complete, only without history."""
    if not available():
        return False
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--no-verify", "-m", message)
    return True


def is_repo(path: Path) -> bool:
    return (path / ".git").exists()


def commit_paths(repo: Path, paths: list[str], message: str) -> bool:
    """Commit exactly ``paths`` (written or deleted by a re-render), nothing else the user staged."""
    if not available() or not is_repo(repo) or not paths:
        return False
    _git(repo, "add", "-A", "--", *paths)
    if not _git(repo, "diff", "--cached", "--name-only", "--", *paths).strip():
        return False
    _git(repo, "commit", "-q", "--no-verify", "-m", message, "--", *paths)
    return True
