"""The package's layers are enforced: ``lint-imports`` (the contracts in pyproject.toml's ``[tool.importlinter]``)
passes on the package, and fails when a lower layer imports a higher one or a command imports the tutorial."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "vpd_lite", tmp_path / "vpd_lite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    masks = tmp_path / "vpd_lite" / "method" / "masks.py"
    masks.write_text(masks.read_text() + "\nfrom vpd_lite.commands import cli  # noqa: E402,F401\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and "vpd_lite.method.masks -> vpd_lite.commands.cli" in proc.stdout


def test_a_command_importing_the_tutorial_breaks_the_contract(tmp_path):
    """The commands (and the headless job) call the erase layer's pipelines and figures, never ``vpd_lite.tutorial``,
    although the layers alone would allow it."""
    shutil.copytree(ROOT / "vpd_lite", tmp_path / "vpd_lite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    command = tmp_path / "vpd_lite" / "commands" / "reproduce.py"
    command.write_text(command.read_text() + "\nfrom vpd_lite.tutorial import edit_plots  # noqa: E402,F401\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and "vpd_lite.commands.reproduce -> vpd_lite.tutorial.edit_plots" in proc.stdout
