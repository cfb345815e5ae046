"""Test helper: a copy of the checkout under test (its tracked and not-ignored files).

A build that must work from the sources alone runs on such a copy, so that the tests never write into the checkout
itself. (That the README's two commands leave a clone clean is checked by ``.ci/run`` on a fresh clone, after the
main job at full scale.)
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


def copy_checkout(dest: Path, root: Path = ROOT) -> Path:
    """Copy the checkout's files into ``dest``."""
    for rel in checkout_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return dest
