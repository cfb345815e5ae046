"""Where the shipped, offline artefacts live: the corpus, the target model, its decomposition and labels.

The data folder is looked up in this order (:func:`data_dir`):

1. ``$VPD_LITE_DATA``, when set: a folder laid out like the repository's ``data/``;
2. the ``data/`` folder of the clone this package is imported from (``pip install -e .`` or ``PYTHONPATH``);
3. the copy packaged into the installed wheel (``vpd_lite/_data``, made by ``pip install .``).

If none exists, :func:`require_data` raises :class:`DataNotFoundError` with one message saying what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from vpd_lite.errors import UserError

#: Repository root (the folder holding ``data/``, ``notebooks/`` and ``vpd_lite/``) when imported from a clone;
#: the ``site-packages`` folder after a plain ``pip install``.
REPO_ROOT = Path(__file__).resolve().parents[2]


#: Where ``pip install .`` puts the copy of ``data/`` (see ``setup.py``).
PACKAGED_DATA = Path(__file__).resolve().parents[1] / "_data"


#: The environment variable that names a data folder explicitly.
DATA_ENV = "VPD_LITE_DATA"


#: What a complete data folder holds (checked by :func:`require_data`).
REQUIRED = {
    "corpus": ("corpus/de/train.txt", "corpus/de/heldout.txt"),
    "target": ("target/model.safetensors", "target/tokenizer.json", "target/config.json"),
    "decomposition": ("decomposition/components.safetensors", "decomposition/decomposition.json"),
}


REPO_URL = "https://github.com/vpd-lite/vpd-lite"


class DataNotFoundError(UserError, FileNotFoundError):
    """The shipped data (corpus, target model, decomposition) cannot be found. The message says what to do."""


def _clone_data() -> Path | None:
    """``<repo>/data`` when this package is imported from a clone of the repository (not from site-packages)."""
    folder = REPO_ROOT / "data"
    if (REPO_ROOT / "pyproject.toml").is_file() and folder.is_dir():
        return folder
    return None


def data_source() -> str:
    """Which lookup found the data folder: ``"VPD_LITE_DATA"``, ``"clone"``, ``"package"`` or ``"missing"``."""
    if os.environ.get(DATA_ENV):
        return DATA_ENV
    if _clone_data() is not None:
        return "clone"
    if PACKAGED_DATA.is_dir():
        return "package"
    return "missing"


def data_dir() -> Path:
    """The data folder: ``$VPD_LITE_DATA``, else the clone's ``data/``, else the packaged copy.

    Never raises: when nothing is found it returns ``<repo>/data`` (which does not exist), so that a
    caller's own "file not found" names a sensible path. Call :func:`require_data` for a clear error.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    clone = _clone_data()
    if clone is not None:
        return clone
    if PACKAGED_DATA.is_dir():
        return PACKAGED_DATA
    return REPO_ROOT / "data"


def require_data(parts: tuple[str, ...] = ("corpus", "target", "decomposition"), verbose: bool = False) -> Path:
    """Check that the data folder holds ``parts`` (keys of :data:`REQUIRED`) and return it.

    Meant for the first cell of a notebook and the start of a command: with the package installed but the
    data missing, the user gets one message saying where it was looked for and what to do, instead of a
    traceback from deep inside ``transformers``. ``verbose`` prints one line naming the folder in use.

    Raises:
        DataNotFoundError: a part is missing (the message lists the missing files and the fix).
        KeyError: an unknown part name.
    """
    folder = data_dir()
    missing = [rel for part in parts for rel in REQUIRED[part] if not (folder / rel).is_file()]
    if missing:
        source = data_source()
        if source == DATA_ENV:
            where = f"{DATA_ENV}={os.environ[DATA_ENV]} (set in your environment)"
            fix = f"point {DATA_ENV} at the data/ folder of a clone of {REPO_URL}, or unset it"
        else:
            where = f"{folder} ({'this clone' if source == 'clone' else 'no clone, no packaged copy'})"
            fix = (f"install from a clone (git clone {REPO_URL} && pip install ./vpd-lite), "
                   f"or set {DATA_ENV} to the data/ folder of a clone")
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise DataNotFoundError(f"vpd-lite's shipped data is not where it looked: {where} lacks {shown}. "
                                f"To fix it, {fix}.")
    if verbose:
        names = {DATA_ENV: f"from ${DATA_ENV}", "clone": "the clone's data/", "package": "packaged with vpd-lite"}
        print(f"vpd-lite data: {folder} ({names.get(data_source(), data_source())})")
    return folder


def corpus_dir() -> Path:
    """``data/corpus``: one sub-folder per language with ``train.txt`` and ``heldout.txt``."""
    return data_dir() / "corpus"


def target_dir() -> Path:
    """``data/target``: the trained target model and tokenizer (``from_pretrained`` format)."""
    return data_dir() / "target"


def decomposition_dir() -> Path:
    """``data/decomposition``: the shipped decomposition of the target model."""
    return data_dir() / "decomposition"


def labels_path() -> Path:
    """``data/labels.json``: component labels produced by the offline labeller."""
    return data_dir() / "labels.json"


def results_dir() -> Path:
    """``results/`` of the clone: the shipped tables and figures (written only when a command is told to)."""
    return REPO_ROOT / "results"


def new_or_empty_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path when it does not exist yet or is an empty folder (not created here).

    Every command that writes a set of files into a folder it is given (the atlas, the student copy, the slide
    figures) refuses any other, before any work. Raises ``UserError`` (one line) for a file, or for a folder that
    holds files, naming up to three of them."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; name a new or empty folder")
    if folder.is_dir():
        held = sorted(p.name for p in folder.iterdir())
        if held:
            shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise UserError(f"{folder} already holds {len(held)} file(s) ({shown}); name a new or empty folder, "
                            "so that no one's work is overwritten")
    return folder
