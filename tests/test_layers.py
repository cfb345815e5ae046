"""The package's layers are enforced: ``lint-imports`` (the contracts in pyproject.toml's ``[tool.importlinter]``)
passes on the package, and fails when a lower layer imports a higher one or a command imports the tutorial."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.watch import run_watched

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.is_file() else [sys.executable, "-m", "importlinter.cli"]
    return run_watched([*command, "--no-cache"], "lint-imports", cwd=cwd, env=env)


def test_layers_contract_is_kept():
    proc = _lint_imports(ROOT)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


# (a module, the import added to it, the broken import lint-imports must name)
BREAKS = [
    # a lower layer importing a higher one
    ("method/masks.py", "from vpd_lite.commands import cli", "vpd_lite.method.masks -> vpd_lite.commands.cli"),
    # a command importing the tutorial: the layers alone would allow it, but the commands (and the headless job)
    # call the erase layer's pipelines and figures, never vpd_lite.tutorial
    ("commands/reproduce.py", "from vpd_lite.tutorial import edit_plots",
     "vpd_lite.commands.reproduce -> vpd_lite.tutorial.edit_plots"),
]


@pytest.mark.parametrize("module,line,named", BREAKS, ids=["lower imports higher", "command imports tutorial"])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, named):
    shutil.copytree(ROOT / "vpd_lite", tmp_path / "vpd_lite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "vpd_lite" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402,F401\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and named in proc.stdout
