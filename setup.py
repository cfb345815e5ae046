"""Packaging step that pyproject.toml cannot express: copy the shipped ``data/`` into the wheel.

``pip install .`` (or a wheel built from this folder) then carries the corpus, target model, decomposition and
labels as ``vpd_lite/_data``, which ``vpd_lite.models.paths.data_dir()`` finds when there is no clone to read from.
An editable install (``pip install -e .``) copies nothing: it reads the clone's ``data/`` directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_data(build_py):
    """``build_py`` that also copies ``data/`` to ``<build>/vpd_lite/_data`` (skipped for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = HERE / "data"
        if not source.is_dir():
            raise SystemExit(f"cannot package the shipped data: {source} is missing")
        dest = Path(self.build_lib) / "vpd_lite" / "_data"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": build_py_with_data})
