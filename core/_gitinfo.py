"""The git state of the work tree a run starts in, captured once by the agent.

Every helper returns ``None`` when git is missing, the directory is not a work
tree, or a command fails or hangs: git information is a nicety, never a reason
to fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

from .records import GitInfo

#: Seconds one git command may take.
TIMEOUT = 10.0
#: Untracked paths listed at most (a whole untracked directory counts once).
MAX_UNTRACKED = 100
DIFF_FILE = "git.diff"

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def strip_credentials(url: str) -> str:
    """``url`` without its userinfo: ``https://user:token@host/x`` -> ``https://host/x``.

    The match runs to the last ``@`` before the path, so a password holding an
    ``@`` is removed whole. scp-like ``git@host:path`` names no secret and is kept.
    """
    return _USERINFO.sub(r"\1", url.strip())


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # No password prompt; no index.lock (a user's concurrent `git commit` must not fail
    # because of us); plain messages.
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return env


def _git(cwd: Path, *args: str) -> str | None:
    """The stripped output of a git command, or ``None`` if it failed."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8", "replace").strip()


def _remote(cwd: Path) -> str | None:
    names = (_git(cwd, "remote") or "").split()
    if not names:
        return None
    url = _git(cwd, "remote", "get-url", "origin" if "origin" in names else names[0])
    return strip_credentials(url) if url else None


def _untracked(root: Path) -> list[str]:
    # --directory lists an untracked directory once instead of every file in it.
    out = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--directory")
    return [name for name in (out or "").split("\0") if name][:MAX_UNTRACKED]


def save_diff(cwd: Path, target: Path, limit: int) -> tuple[int, bool] | None:
    """Write ``git diff HEAD`` to ``target``, at most ``limit`` bytes.

    Returns the bytes written and whether the diff was cut; ``None`` if git failed
    or the work tree has no changes (then nothing is written).
    """
    try:
        process = subprocess.Popen(
            ["git", "diff", "HEAD", "--no-color", "--no-ext-diff"],
            cwd=cwd,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    assert process.stdout is not None
    # Read only up to the limit, so a huge diff never sits in memory whole.
    timer = threading.Timer(TIMEOUT, process.kill)
    timer.start()
    try:
        data = process.stdout.read(limit + 1)
        truncated = len(data) > limit
        if truncated:
            process.kill()
        process.stdout.close()
        code = process.wait()
    finally:
        timer.cancel()
    if (code != 0 and not truncated) or not data:
        return None
    data = data[:limit]
    target.write_bytes(data)
    return len(data), truncated


def capture(cwd: Path, run_dir: Path, diff_limit: int) -> GitInfo | None:
    """Commit, branch, remote, dirty flag, diff (saved as ``git.diff``) and untracked files."""
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    root = Path(top)
    commit = _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD")  # None before the first commit
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    has_diff = commit is not None and diff_limit > 0
    diff = save_diff(cwd, run_dir / DIFF_FILE, diff_limit) if has_diff else None
    return GitInfo(
        commit=commit,
        branch=_git(cwd, "symbolic-ref", "--short", "--quiet", "HEAD"),  # None when detached
        remote=_remote(cwd),
        dirty=bool(status),
        diff_file=DIFF_FILE if diff else None,
        diff_bytes=diff[0] if diff else 0,
        diff_truncated=diff[1] if diff else False,
        untracked=_untracked(root),
        root=os.fspath(root),
    )
