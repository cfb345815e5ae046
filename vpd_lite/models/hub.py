"""Models, tokenizers and corpora named by a local folder or a Hugging Face hub id: a clear line when that fails.

``from_pretrained`` and ``datasets.load_dataset`` take a folder or a hub id (``gpt2``, ``EleutherAI/pythia-70m``).
Two of their failures are hard to read, and this module says what is wrong instead:

- a folder that does not exist (``./my-model``) is sent to the hub as a repository id, and the answer is
  "Repo id must be ..."; :func:`model_source` says that the folder does not exist;
- on a machine without network the hub libraries retry every file for most of a minute before they give up;
  :func:`require_hub` tries one connection with a short timeout first and stops at once.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from torch import nn

from vpd_lite.errors import UserError

#: Seconds to wait for the hub's host to accept a connection before calling the hub unreachable.
HUB_TIMEOUT_S = 3.0


class ModelNotFoundError(UserError, FileNotFoundError):
    """A model or tokenizer named by a path that does not exist."""


class HubUnreachableError(UserError, ConnectionError):
    """Something has to come from the Hugging Face hub, and this machine cannot reach the hub."""


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


def hub_offline() -> bool:
    """True when the user switched the hub off (``HF_HUB_OFFLINE=1`` or ``TRANSFORMERS_OFFLINE=1``): the hub
    libraries then read only the local cache, and fail at once when something is not there."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_url() -> tuple[str, str, int]:
    """(scheme, host, port) of the hub (``HF_ENDPOINT``, by default https://huggingface.co)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    return url.scheme, url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether the hub's host accepts a TCP connection within ``timeout`` seconds (nothing is sent). Behind a
    proxy (``HTTPS_PROXY``) the answer is True: only the proxy knows, and the hub libraries go through it."""
    scheme, host, port = _hub_url()
    if urllib.request.getproxies().get(scheme) and not urllib.request.proxy_bypass(host):
        return True
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(name: str, what: str = "model") -> None:
    """Stop at once when ``name`` (a hub id) would be downloaded and the hub cannot be reached.

    In offline mode (:func:`hub_offline`) nothing is checked: the libraries then use only the local cache.

    Raises:
        HubUnreachableError: one line saying what could not be fetched and the three ways out.
    """
    if hub_offline() or hub_reachable():
        return
    host = _hub_url()[1]
    raise HubUnreachableError(
        f"{what} {name!r} is not a local folder, so it would come from the Hugging Face hub, and {host} cannot "
        f"be reached from this machine; connect to the internet, name a local copy instead, or set "
        f"HF_HUB_OFFLINE=1 to use a copy in your Hugging Face cache")


def load_pretrained(model: str | os.PathLike, tokenizer: str | os.PathLike | None = None) -> tuple[nn.Module, Any]:
    """``(causal LM in eval mode, its tokenizer)`` from a folder or hub id each (``tokenizer``: default
    ``model``). A missing folder or an unreachable hub is one clear error before anything is loaded."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_name, model_local = model_source(model, "model")
    tok_name, tok_local = model_source(model if tokenizer is None else tokenizer, "tokenizer")
    if not model_local:
        require_hub(model_name, "model")
    elif not tok_local:
        require_hub(tok_name, "tokenizer")
    lm = AutoModelForCausalLM.from_pretrained(model_name, local_files_only=model_local).eval()
    return lm, AutoTokenizer.from_pretrained(tok_name, local_files_only=tok_local)


def quiet_model_loading() -> None:
    """Hide ``transformers``' per-load "Loading weights" progress bar: noise under a command's output and, in a
    notebook, a bar left in the output of every cell that loads the model. Download bars of the hub are not
    affected; ``transformers.utils.logging.enable_progress_bar()`` turns it back on."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
