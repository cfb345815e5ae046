"""A plain (not editable) install finds the shipped data, and a missing data folder gets one clear message.

The wheel is built offline from a copy of the checkout, installed with ``--no-deps`` into a fresh virtual
environment that sees the packages of the interpreter running the tests (torch, transformers, ...: wherever they
are installed, a virtual environment, a conda environment or the system's Python), and the main job runs in
quick mode from a folder that is not the clone, with no ``PYTHONPATH``: only the wheel's copy of ``vpd_lite``
and of the data can be used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout_copy import ROOT, copy_checkout
from tests.watch import run_watched

from vpd_lite.models import paths


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    assert paths.data_source() == "clone" and paths.data_dir() == ROOT / "data"
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path))
    assert paths.data_source() == paths.DATA_ENV and paths.data_dir() == tmp_path
    assert paths.corpus_dir() == tmp_path / "corpus"


def test_require_data_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    assert paths.require_data(verbose=True) == ROOT / "data"
    assert "the clone's data/" in capsys.readouterr().out
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "empty"))
    with pytest.raises(paths.DataNotFoundError) as err:
        paths.require_data()
    message = str(err.value)
    assert "VPD_LITE_DATA" in message and "target/model.safetensors" in message and "\n" not in message
    assert isinstance(err.value, FileNotFoundError)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VPD_LITE_DATA", "VPD_LITE_RUNS", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(VPD_LITE_QUICK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1", **extra)
    return env


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    proc = run_watched(cmd, cwd=cwd, env=_clean_env(**env))
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def dependency_folders() -> list[str]:
    """The folders this interpreter imports installed packages from: its environment's site-packages (a venv's,
    a conda environment's or the system's) and the user site. A ``.pth`` file that lists them gives a fresh venv
    the same dependencies without ``--system-site-packages``, which would only see the *base* interpreter's
    packages. Folders listed in a ``.pth`` file are added as they are, without running the ``.pth`` files inside
    them, so an editable install of ``vpd_lite`` in this environment stays invisible to the venv."""
    import site
    import sysconfig

    scheme = sysconfig.get_paths()  # not `paths`: that name is the vpd_lite.models.paths module here
    found = [scheme["purelib"], scheme["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    return [p for p in dict.fromkeys(found) if Path(p).is_dir() and Path(p).resolve() != ROOT.resolve()]


def test_the_wheel_venv_sees_where_this_environment_installed_its_packages():
    """Wherever torch and transformers are installed (venv, conda, system), the wheel's venv is given that folder."""
    import torch
    import transformers

    folders = {Path(p).resolve() for p in dependency_folders()}
    for module in (torch, transformers, pytest):
        assert Path(module.__file__).resolve().parent.parent in folders, f"{module.__name__} is not visible"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Python of a fresh venv holding only the built wheel (dependencies come from this interpreter's environment,
    see :func:`dependency_folders`)."""
    base = tmp_path_factory.mktemp("wheel")
    src = copy_checkout(base / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(base / "dist"), str(src)], cwd=base)
    (wheel,) = (base / "dist").glob("vpd_lite-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], cwd=base)
    python = base / "venv" / "bin" / "python"
    venv_site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base)
    (Path(venv_site.stdout.strip()) / "dependencies.pth").write_text("\n".join(dependency_folders()) + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=base)
    return python


def test_wheel_carries_the_data_and_finds_it(installed, tmp_path):
    venv = installed.parent.parent
    probe = ("import vpd_lite, vpd_lite.models.paths as p; from vpd_lite.models.target import load_target; load_target(); "
             "print(vpd_lite.__file__); print(p.data_source()); print(p.require_data())")
    out = _run([str(installed), "-c", probe], cwd=tmp_path).stdout.split("\n")
    module_file, source, folder = out[-4], out[-3], out[-2]
    assert Path(module_file).resolve().is_relative_to(venv.resolve()), f"imported {module_file}, not the wheel's"
    assert source == "package" and Path(folder).resolve().is_relative_to(venv.resolve())


def test_installed_but_no_data_gives_one_clear_message(installed, tmp_path):
    probe = "import vpd_lite.models.paths as p; p.require_data()"
    proc = run_watched([str(installed), "-c", probe], cwd=tmp_path, env=_clean_env(VPD_LITE_DATA=str(tmp_path / "nowhere")))
    assert proc.returncode != 0 and "DataNotFoundError" in proc.stderr and "VPD_LITE_DATA" in proc.stderr


def test_wheel_runs_the_main_job_from_another_folder(installed, tmp_path):
    """The README's main job in quick mode, run by the installed package from an unrelated folder."""
    venv = installed.parent.parent
    before = sorted(p for p in venv.rglob("*") if p.is_file())
    _run([str(installed), "-m", "vpd_lite.reproduce", "--quick"], cwd=tmp_path)
    (run,) = (tmp_path / "runs").iterdir()  # the results land in the user's folder
    assert run.name.startswith("reproduce-") and any(run.glob("*.csv")), sorted(run.iterdir())
    assert sorted(p for p in venv.rglob("*") if p.is_file() and "__pycache__" not in p.parts) == \
        [p for p in before if "__pycache__" not in p.parts], "the main job wrote into the installed package"


def test_wheel_carries_the_notebooks_for_the_teachers_commands(installed, tmp_path):
    """From an unrelated folder, the installed package writes a student copy from its own copy of the notebooks
    and resets an exercise in it."""
    _run([str(installed), "-m", "vpd_lite.course", "student-copy", "lab"], cwd=tmp_path)
    shipped = sorted(p.name for p in (ROOT / "notebooks").glob("0*.ipynb"))
    assert sorted(p.name for p in (tmp_path / "lab").iterdir()) == shipped
    said = _run([str(installed), "-m", "vpd_lite.course", "reset", "lab/01_decompose.ipynb", "--exercise", "1"],
                cwd=tmp_path).stdout
    assert "exercise 1 (Exercise 1 (predict, then run)) reset" in said
