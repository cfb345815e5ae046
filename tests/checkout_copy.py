"""Test helper: a copy of the checkout under test (its tracked and not-ignored files), as a fresh git repository.

Commands that must leave a clone clean, or a build that must work from the sources alone, run on such a copy,
so that the tests never write into the checkout itself.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout_files(root: Path = ROOT) -> list[str]:
    """Paths (relative to ``root``) of the files git tracks or would track (untracked, not ignored)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p and (root / p).is_file()]


def copy_checkout(dest: Path, root: Path = ROOT, commit: bool = False) -> Path:
    """Copy the checkout's files into ``dest``; with ``commit`` make it a git repository with one commit."""
    for rel in checkout_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if commit:
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
        subprocess.run(git + ["init", "-q"], cwd=dest, check=True)
        subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
        subprocess.run(git + ["commit", "-q", "-m", "copy"], cwd=dest, check=True)
    return dest


def git_status(repo: Path) -> str:
    """``git status --porcelain`` of ``repo`` (empty when nothing changed)."""
    return subprocess.run(["git", "status", "--porcelain"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout
