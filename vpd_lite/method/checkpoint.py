"""Save and load a decomposition: safetensors (component factors + CI weights) + JSON (everything else).

A checkpoint folder holds

    components.safetensors   "comps.<module>.V|U" tensors, and "cis.<module>.<param>" (a per-matrix CI type)
                             or "global_ci.<param>" (a global one) tensors
    decomposition.json       format version, module names, C per module, CI type, config, versions,
                             the sha256 of components.safetensors and a fingerprint of the target weights
    metrics.json             (optional) evaluation metrics
    history.json             (optional) the training-metrics history (list of dicts)
    training_state.pt        (optional) everything a run needs to continue bit-identically (see
                             ``vpd_lite.method.decompose``), with a sha256 of its own bytes

Every file is written atomically (temp file in the same folder, then ``os.replace``). Loading refuses, with a
clear error, a missing folder or file, a file whose bytes changed (corruption), and a different target model
(fingerprint mismatch: sha256 over the decomposed matrices' names, shapes and float32 bytes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

import vpd_lite
from vpd_lite.method.components import ComponentModel, ModelAdapter, linear_weight

FORMAT_VERSION = 1


TENSORS_FILE = "components.safetensors"


META_FILE = "decomposition.json"


METRICS_FILE = "metrics.json"


HISTORY_FILE = "history.json"


STATE_FILE = "training_state.pt"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artefacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """JSON (indent 2, sorted keys) written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (Path,)):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"cannot store {type(o).__name__} in JSON")


def target_fingerprint(model: nn.Module, module_names: list[str]) -> str:
    """sha256 over each decomposed module's name, weight shape and float32 weight/bias bytes (sorted by name)."""
    modules = dict(model.named_modules())
    h = hashlib.sha256()
    for name in sorted(module_names):
        if name not in modules:
            raise ValueError(f"the model has no module named {name!r}")
        w, b = linear_weight(modules[name])
        h.update(name.encode())
        h.update(str(tuple(w.shape)).encode())
        h.update(w.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
        if b is not None:
            h.update(b.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import transformers

    return {"vpd_lite": vpd_lite.__version__, "torch": torch.__version__, "transformers": transformers.__version__}


def component_tensors(cm: ComponentModel) -> dict[str, torch.Tensor]:
    """CPU copies of every trainable tensor of ``cm``: ``"comps.<module>.V|U"`` and the CI weights under
    ``ComponentModel.ci_named_parameters``' keys (what ``components.safetensors`` holds)."""
    out = {}
    for name in cm.module_names:
        comp = cm.components[name]
        out[f"comps.{name}.V"] = comp.V.detach().contiguous().cpu()
        out[f"comps.{name}.U"] = comp.U.detach().contiguous().cpu()
    for key, p in cm.ci_named_parameters():
        out[key] = p.detach().contiguous().cpu()
    return out


def save_decomposition(
    cm: ComponentModel,
    path: str | Path,
    config: Any = None,
    metrics: Mapping[str, Any] | None = None,
    history: list[dict] | None = None,
    training_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write the decomposition ``cm`` to folder ``path`` (created if needed); returns the folder.

    ``config`` (a dataclass or dict) is stored in the JSON; ``metrics``/``history`` go to their own JSON files;
    ``training_state`` (optimiser/PGD state dicts, step) to ``training_state.pt`` for resuming.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    blob = st_save(component_tensors(cm), metadata={"format": "vpd-lite", "format_version": str(FORMAT_VERSION)})
    meta = {
        "format": "vpd-lite decomposition",
        "format_version": FORMAT_VERSION,
        "module_names": cm.module_names,
        "C_per_module": cm.C_per_module,
        "ci_type": cm.ci_type,
        "ci_hidden": cm.ci_hidden,
        **({"ci_global": cm.ci_global_sizes} if cm.global_ci_type else {}),
        "use_delta": cm.use_delta,
        "model_class": type(cm.model).__name__,
        "adapter": cm.adapter.name,
        "target_fingerprint": target_fingerprint(cm.model, cm.module_names),
        "tensors_file": TENSORS_FILE,
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
        "versions": _versions(),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_bytes(path / TENSORS_FILE, blob)
    if metrics is not None:
        atomic_write_json(path / METRICS_FILE, dict(metrics))
    if history is not None:
        atomic_write_json(path / HISTORY_FILE, list(history))
    if training_state is not None:
        write_training_state(path, training_state)
    atomic_write_json(path / META_FILE, meta)  # last: a folder with a valid JSON is complete
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The parsed ``decomposition.json`` of a checkpoint folder (clear errors if missing or unreadable)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"decomposition folder not found: {path}")
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} is missing: {path} is not a vpd-lite decomposition")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta_path} is corrupted (not valid JSON: {e})") from e
    for key in ("format_version", "module_names", "C_per_module", "target_fingerprint", "tensors_sha256"):
        if key not in meta:
            raise ValueError(f"{meta_path} is corrupted or not a vpd-lite decomposition (no {key!r})")
    if meta["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{meta_path} has format_version {meta['format_version']}; this vpd-lite reads {FORMAT_VERSION}")
    return meta


def recorded_capability(meta: Mapping[str, Any]) -> str | None:
    """The capability a saved decomposition was targeted at (``DecomposeConfig.capability``, e.g. "de"), from
    its parsed ``decomposition.json`` (``read_metadata``); None for a full decomposition."""
    return (meta.get("config") or {}).get("capability")


def check_fits_target(path: str | Path, meta: dict[str, Any], model: nn.Module) -> None:
    """Raise ``ValueError`` when the decomposition in ``path`` (``meta``: its ``read_metadata``) was not made on
    ``model``'s weights: a decomposed module the model lacks or cannot read, or another weight fingerprint."""
    try:
        fingerprint = target_fingerprint(model, list(meta["module_names"]))
    except (ValueError, TypeError) as e:
        raise ValueError(f"the decomposition in {path} does not fit this model: {e}") from e
    if fingerprint != meta["target_fingerprint"]:
        raise ValueError(
            f"the decomposition in {path} was made for a different target model: weight fingerprint "
            f"{fingerprint[:12]}... != stored {meta['target_fingerprint'][:12]}..."
        )


def load_decomposition(path: str | Path, model: nn.Module, adapter: ModelAdapter | None = None) -> ComponentModel:
    """Rebuild the ``ComponentModel`` stored in folder ``path`` around ``model`` (a transformers causal LM, or
    any module with ``adapter`` saying how to run it; default ``components.default_adapter(model)``).

    The factors are loaded in the dtype the model's weights call for (float32 for a float32 or bfloat16
    target, float64 for a float64 one). Raises FileNotFoundError (missing folder/file), ValueError (corrupted file, or a model whose decomposed
    weights do not match the fingerprint the decomposition was made on). The result's ``metadata`` attribute
    holds the parsed JSON (config included)."""
    path = Path(path)
    meta, tensors = read_component_tensors(path)
    names = list(meta["module_names"])
    check_fits_target(path, meta, model)
    cm = ComponentModel(
        model,
        [("re:" + re.escape(n), int(meta["C_per_module"][n])) for n in names],
        ci_type=meta.get("ci_type", "shared_mlp"),
        ci_hidden=int(meta.get("ci_hidden", 64)),
        use_delta=bool(meta.get("use_delta", True)),
        adapter=adapter,
        **{k: int(v) for k, v in (meta.get("ci_global") or {}).items()},
    )
    copy_component_tensors(cm, tensors, str(path / meta.get("tensors_file", TENSORS_FILE)))
    cm.metadata = meta
    return cm


def read_component_tensors(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(metadata, tensors) of the decomposition folder ``path``, without a model: every saved tensor by its name
    (``comps.<module>.V`` of shape (d_in, C), ``comps.<module>.U`` of shape (C, d_out), the CI function's
    parameters), read only after the file's sha256 matched the one in its metadata.

    Raises FileNotFoundError (missing folder or file) and ValueError (corrupted file)."""
    path = Path(path)
    meta = read_metadata(path)
    tensors_path = path / meta.get("tensors_file", TENSORS_FILE)
    if not tensors_path.is_file():
        raise FileNotFoundError(f"{tensors_path} is missing")
    blob = tensors_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["tensors_sha256"]:
        raise ValueError(f"{tensors_path} is corrupted: its sha256 does not match the one in {META_FILE}")
    try:
        tensors = st_load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{tensors_path} is corrupted: {e}") from e
    return meta, tensors


def copy_component_tensors(cm: ComponentModel, tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy ``tensors`` (keys and shapes as ``component_tensors(cm)`` gives them) into ``cm``'s parameters, in
    their dtype. Raises ``ValueError`` naming ``where`` (the file they came from) for a missing or unexpected key
    or a shape that differs."""
    expected = component_tensors(cm)
    if set(tensors) != set(expected):
        kinds = {_ci_kind(keys) for keys in (tensors, expected)}
        if len(kinds) == 2 and None not in kinds:
            raise ValueError(f"{where} holds the weights of a {_ci_kind(tensors)} CI function but its metadata says "
                             f"ci_type {cm.ci_type!r} ({_ci_kind(expected)}): the folder is inconsistent")
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise ValueError(f"{where} does not match its metadata (ci_type {cm.ci_type!r}): missing {missing[:5]}, "
                         f"unexpected {extra[:5]}")
    params = [(f"comps.{n}.{f}", getattr(cm.components[n], f)) for n in cm.module_names for f in ("V", "U")]
    with torch.no_grad():
        for key, param in params + cm.ci_named_parameters():
            t = tensors[key]
            if t.shape != param.shape:
                raise ValueError(f"{where}: {key} has shape {tuple(t.shape)}, expected {tuple(param.shape)}")
            param.copy_(t.to(param.dtype))


def _ci_kind(keys: Mapping[str, Any]) -> str | None:
    """"global" / "per-matrix" by the CI tensor keys present (None if neither or both)."""
    has_global = any(k.startswith("global_ci.") for k in keys)
    has_cis = any(k.startswith("cis.") for k in keys)
    return None if has_global == has_cis else "global" if has_global else "per-matrix"


def write_training_state(path: str | Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` atomically to ``path/training_state.pt``, sealed with the sha256 of its bytes (what
    ``load_training_state`` checks)."""
    atomic_write_bytes(Path(path) / STATE_FILE, _sealed(state))


def _sealed(state: Mapping[str, Any]) -> bytes:
    """``state`` as ``torch.save`` bytes, wrapped with the sha256 of those bytes (torch.load alone does not
    notice a changed byte inside a tensor)."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    payload = buf.getvalue()
    out = io.BytesIO()
    torch.save({"sealed_state": payload, "sha256": hashlib.sha256(payload).hexdigest()}, out)
    return out.getvalue()


def load_training_state(path: str | Path) -> dict[str, Any] | None:
    """The ``training_state.pt`` of a checkpoint folder, or None if there is none.

    Raises ``ValueError`` for a file that is truncated or whose bytes changed (sha256 mismatch)."""
    p = Path(path) / STATE_FILE
    if not p.is_file():
        return None
    try:
        state = torch.load(p, weights_only=False)
        if isinstance(state, dict) and "sealed_state" in state:
            payload = state["sealed_state"]
            if hashlib.sha256(payload).hexdigest() != state.get("sha256"):
                raise ValueError("its sha256 does not match the one stored with it")
            state = torch.load(io.BytesIO(payload), weights_only=False)
    except Exception as e:
        raise ValueError(f"{p} is corrupted or truncated: {' '.join(str(e).split())}") from e
    if not isinstance(state, dict):
        raise ValueError(f"{p} is corrupted: it holds a {type(state).__name__}, not a training state")
    return state
