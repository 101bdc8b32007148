"""Git capture: commit, branch, remote without credentials, diff, untracked files; real git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import trackline
from _procs import wait_gone
from trackline import _gitinfo

TOKEN = "s3cr3tT0ken"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A work tree with one commit, a remote URL holding a token, a change and a new file."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "Test")
    git(root, "config", "commit.gpgsign", "false")
    (root / "tracked.txt").write_text("first line\n")
    git(root, "add", "tracked.txt")
    git(root, "commit", "-q", "-m", "first")
    git(root, "remote", "add", "origin", f"https://user:{TOKEN}@example.com/org/repo.git")
    (root / "tracked.txt").write_text("first line\nchanged line\n")
    (root / "new.txt").write_text("not committed\n")
    return root


def test_run_records_git_state_without_credentials(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    run = trackline.init(project="p")
    assert run._agent is not None
    run.log({"x": 1.0})
    run.finish()
    wait_gone(run._agent.pid)
    info = trackline.open_run(run.dir).git
    assert info is not None
    assert info.commit == git(repo, "rev-parse", "HEAD")
    assert info.branch == "main"
    assert info.remote == "https://example.com/org/repo.git"
    assert info.dirty is True
    assert info.untracked == ["new.txt"]
    assert Path(info.root or "").resolve() == repo.resolve()
    assert info.diff_file == "git.diff" and not info.diff_truncated
    diff = (run.dir / "git.diff").read_bytes()
    assert b"+changed line" in diff and info.diff_bytes == len(diff)
    files = [path for path in run.dir.rglob("*") if path.is_file()]
    assert {"main.tlog", "system.tlog", "git.diff", "agent.log"} <= {p.name for p in files}
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), path
    assert (run.dir / "agent.log").read_text() == ""


def test_diff_over_the_limit_is_truncated_and_flagged(repo: Path, tmp_path: Path) -> None:
    (repo / "tracked.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    full = subprocess.run(["git", "diff", "HEAD"], cwd=repo, capture_output=True, check=True).stdout
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    info = _gitinfo.capture(repo, run_dir, diff_limit=1000)
    assert info is not None and info.dirty
    assert info.diff_truncated and info.diff_bytes == 1000
    assert (run_dir / "git.diff").read_bytes() == full[:1000]
    info = _gitinfo.capture(repo, run_dir, diff_limit=len(full))
    assert info is not None and not info.diff_truncated
    assert (run_dir / "git.diff").read_bytes() == full


def test_clean_tree_detached_head(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "--", "tracked.txt")
    git(repo, "checkout", "-q", "--detach")
    (repo / "new.txt").unlink()
    (repo / "data").mkdir()
    for i in range(3):
        (repo / "data" / f"{i}.bin").write_bytes(b"x")
    info = _gitinfo.capture(repo / "data", tmp_path, diff_limit=1000)  # from a subdirectory
    assert info is not None
    assert info.commit == git(repo, "rev-parse", "HEAD") and info.branch is None
    assert not info.dirty and info.diff_file is None and info.diff_bytes == 0
    assert info.untracked == ["data/"]  # a new directory is listed once
    assert not (tmp_path / "git.diff").exists()


def test_repository_without_commits(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    info = _gitinfo.capture(root, tmp_path, diff_limit=1000)
    assert info is not None
    assert info.commit is None and info.branch == "main" and info.remote is None
    assert info.diff_file is None and info.untracked == ["a.txt"]


def test_remote_other_than_origin(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "remove", "origin")
    git(repo, "remote", "add", "upstream", f"https://{TOKEN}@example.com/org/repo.git")
    info = _gitinfo.capture(repo, tmp_path, diff_limit=1000)
    assert info is not None and info.remote == "https://example.com/org/repo.git"


def test_not_a_repository_gives_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _gitinfo.capture(plain, tmp_path, diff_limit=1000) is None
    assert list(tmp_path.glob("*.diff")) == []


def test_git_missing_gives_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _gitinfo.capture(repo, tmp_path, diff_limit=1000) is None


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:tok@example.com/org/repo.git", "https://example.com/org/repo.git"),
        ("https://tok@example.com/org/repo.git", "https://example.com/org/repo.git"),
        ("http://user:p@ss@example.com:8080/repo", "http://example.com:8080/repo"),
        ("ssh://git:tok@example.com:22/org/repo.git", "ssh://example.com:22/org/repo.git"),
        ("git+https://u:t@example.com/r", "git+https://example.com/r"),
        ("https://example.com/org/repo.git", "https://example.com/org/repo.git"),
        ("https://example.com/a@b/repo.git", "https://example.com/a@b/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_strip_credentials(url: str, clean: str) -> None:
    assert _gitinfo.strip_credentials(url) == clean
