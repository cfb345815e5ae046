"""Packaging step that pyproject.toml cannot express: copy the shipped ``data/`` and ``notebooks/`` into the wheel.

``pip install .`` (or a wheel built from this folder) then carries the corpus, target model, decomposition and
labels as ``vpd_lite/_data``, which ``vpd_lite.models.paths.data_dir()`` finds when there is no clone to read from,
and the notebooks as ``vpd_lite/_notebooks``, from which ``python -m vpd_lite.course`` writes a student copy and
resets one. An editable install (``pip install -e .``) copies nothing: it reads the clone's folders directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_data(build_py):
    """``build_py`` that also copies ``data/`` to ``<build>/vpd_lite/_data`` and the notebooks to
    ``<build>/vpd_lite/_notebooks`` (skipped for editable installs)."""

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
        notebooks = Path(self.build_lib) / "vpd_lite" / "_notebooks"
        if notebooks.exists():
            shutil.rmtree(notebooks)
        notebooks.mkdir(parents=True)
        for notebook in sorted((HERE / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            shutil.copy2(notebook, notebooks / notebook.name)


setup(cmdclass={"build_py": build_py_with_data})
