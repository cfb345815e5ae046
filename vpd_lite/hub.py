"""Models and tokenizers named by a local folder or a Hugging Face hub id: a clear line when that fails.

``from_pretrained`` takes a folder or a hub id (``gpt2``, ``EleutherAI/pythia-70m``). A folder that does not
exist (``./my-model``) is sent to the hub as a repository id, and the answer is "Repo id must be ...";
:func:`model_source` says that the folder does not exist instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpd_lite.cli import UserError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ModelNotFoundError", "looks_like_path", "model_source", "load_pretrained"]


class ModelNotFoundError(UserError, FileNotFoundError):
    """A model or tokenizer named by a path that does not exist."""


def looks_like_path(name: str) -> bool:
    """True when ``name`` can only be a local path, never a hub id (``name`` or ``namespace/name``): it starts
    with '.', '/' or '~', holds a backslash or more than one '/', or ends with '/'."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")


def model_source(name: str | os.PathLike, what: str = "model") -> tuple[str, bool]:
    """``(name for from_pretrained, whether it is a local folder)``: an existing path is local; a ``PathLike``
    or a name that :func:`looks_like_path` must exist; anything else is a hub id.

    Raises:
        ModelNotFoundError: ``name`` is a path that does not exist (the message names it).
    """
    text = os.path.expanduser(os.fspath(name))
    if Path(text).exists():
        return text, True
    if isinstance(name, os.PathLike) or looks_like_path(os.fspath(name)):
        raise ModelNotFoundError(f"{what} folder {os.fspath(name)} does not exist")
    return text, False


def load_pretrained(model: str | os.PathLike, tokenizer: str | os.PathLike | None = None) -> tuple[nn.Module, Any]:
    """``(causal LM in eval mode, its tokenizer)`` from a folder or hub id each (``tokenizer``: default
    ``model``). A missing folder is one clear error before anything is loaded."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_name, model_local = model_source(model, "model")
    tok_name, tok_local = model_source(model if tokenizer is None else tokenizer, "tokenizer")
    lm = AutoModelForCausalLM.from_pretrained(model_name, local_files_only=model_local).eval()
    return lm, AutoTokenizer.from_pretrained(tok_name, local_files_only=tok_local)
