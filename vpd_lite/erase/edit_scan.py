"""``vpd_lite.erase.edit_scan``: what the scalar edit of each component does to every language, over a grid of
prefactors (the edit scan), and the admissible range of s for erasing a language.

For a component c of a decomposed matrix (read direction ``V_c``, write direction ``U_c``) the scalar edit is

    W' = W + (s - 1) U_c V_c^T          (s = 1: the model itself; s = 0: the component removed)

and it adds ``(s - 1) (V_c . x_t) U_c`` to the matrix's output at *every* token t, whether the component fires
there or not. So what the edit does to a language depends on how large ``V_c . x`` is on that language's text,
not on where the component's causal importance is high. The scan measures it directly: next-token CE
(nats/token) per language on **training-split** text, for every scanned component and every ``s`` of a grid.

Two steps, both on training text only:

1. :func:`prescreen` (every live component, one forward pass per language): the RMS of the activation
   ``V_c . x`` per language, and the first-order effect ``dCE_lang/ds`` at ``s = 1`` (one backward pass per
   language gives it for all components at once).
2. :func:`scan_curves` (the components the prescreen ranks highest, see :func:`candidates`): CE per language at
   every ``s`` of ``ScanConfig.s_grid``. Nothing below the edited matrix's decoder layer changes, so the
   residual stream entering that layer is computed once (:func:`residual_cache`) and only the layers from there
   on run, with several ``s`` values stacked along the batch dimension.

:func:`run_edit_scan` does both for a decomposition and returns an :class:`EditScan`;
:func:`best_admissible` / :func:`tolerances` turn the curves into a ranking for one language to erase
(``erase_lang``; ``ScanConfig.target_langs`` lists those scanned). Selection rules read the result
(``vpd_lite.erase.selection``); the command ``python -m vpd_lite.edit_scan`` (``vpd_lite.commands.edit_scan``)
runs it on the shipped decomposition and writes the tables.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vpd_lite.erase.edits import Direction, ScalarEdit, row_scaled_edit_hook
from vpd_lite.erase.workers import fork_map
from vpd_lite.interpret.ids import ComponentId, component_key
from vpd_lite.method.checkpoint import atomic_write_bytes, atomic_write_json
from vpd_lite.method.cross_entropy import LOGIT_POSITIONS, row_slices
from vpd_lite.method.devices import torch_threads
from vpd_lite.models.corpus import LANGS, lang_token_blocks

#: The coarse grid of prefactors every scanned component gets (21 values, -30 ... 10, denser near 1; includes
#: s = 1, the unedited model, and s = 0, the component removed).
DEFAULT_S_GRID: tuple[float, ...] = (-30.0, -25.0, -20.0, -16.0, -13.0, -10.0, -8.0, -6.0, -5.0, -4.0, -3.0,
                                     -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0)


#: Quick mode's grid (9 values).
QUICK_S_GRID: tuple[float, ...] = (-30.0, -12.0, -6.0, -3.0, 0.0, 1.0, 3.0, 10.0)


@dataclass
class ScanConfig:
    """Settings of the edit scan. Defaults = the full scan; :meth:`quick` for tests and notebooks.

    ``blocks_per_lang``: training blocks of ``seq_len`` tokens per language the CE is measured on;
    ``n_candidates``: how many components get the full s-grid scan per language to erase (the rest of the live
    components are ranked by :func:`prescreen` only); ``target_langs``: the languages to erase, each ranked on
    its own ("target" here is the erased language, not the target model; the field keeps the name recorded in
    ``edit_scan.json``); ``rows_per_batch``: sequences (several s values of one component, stacked) whose CE
    is summed in one group; the model runs on a group in forward passes of at most
    ``vpd_lite.method.cross_entropy.LOGIT_POSITIONS`` positions (see :func:`edit_curve`).
    """

    s_grid: tuple[float, ...] = DEFAULT_S_GRID
    refine_step: float = 0.25  # step of the refinement at the edges of each best component's admissible range
    n_refine: int = 3  # components per language to erase whose admissible edges are refined
    blocks_per_lang: int = 2
    seq_len: int = 128
    n_candidates: int = 12
    target_langs: tuple[str, ...] = ("de", "en", "fr", "es", "it")
    rows_per_batch: int = 64
    threads: int | None = None  # torch threads during the scan (None: leave as is)

    @classmethod
    def quick(cls, **overrides: Any) -> "ScanConfig":
        """A coarse grid, 4 blocks of 64 tokens per language, 4 candidates per language to erase: seconds.

        As many tokens as the full scan (2 blocks of 128): on the shipped decomposition the German components
        of the two best edits move German by similar amounts (+3.60 and +3.15 nats/token at their edges on the
        full scan's text), and on less text the order flips. With 1 or 2 blocks of 64 tokens the quick scan
        picks ``model.layers.1.self_attn.v_proj:106``; with 4 it picks the full scan's
        ``model.layers.0.mlp.down_proj:113``, at the same s = -4 and +3.60, so quick mode tells the full run's
        story. It does so with 3, 4 or 5 candidates; 4 leaves one to spare."""
        base: dict[str, Any] = dict(s_grid=QUICK_S_GRID, refine_step=1.0, n_refine=1, blocks_per_lang=4,
                                    seq_len=64, n_candidates=4)
        base.update(overrides)
        return cls(**base)


# ------------------------------------------------------------------------------------------ running from a layer
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def module_layer(module: str) -> int | None:
    """The decoder-layer index in a module name (``model.layers.1.mlp.up_proj`` -> 1), or None."""
    m = _LAYER.search(module)
    return int(m.group(1)) if m else None


def _decoder(model: nn.Module) -> nn.Module | None:
    """The Llama-style decoder stack (``model.model`` with ``layers``, ``rotary_emb`` and ``embed_tokens``)
    that can be entered at any layer through ``inputs_embeds``; None for other architectures."""
    inner = getattr(model, "model", None)
    ok = inner is not None and all(hasattr(inner, a) for a in ("layers", "rotary_emb", "embed_tokens", "norm"))
    return inner if ok and not hasattr(inner, "embed_positions") else None


def start_layer(model: nn.Module, module: str) -> int:
    """The decoder layer a forward pass must start at to see an edit of ``module``: its own layer for a
    Llama-style model, else 0 (the full model from the token ids)."""
    layer = module_layer(module)
    return layer if (layer is not None and _decoder(model) is not None) else 0


@torch.no_grad()
def residual_cache(model: nn.Module, blocks: Tensor, layer: int, batch_size: int = 16) -> Tensor:
    """The residual stream entering decoder layer ``layer`` for token blocks (N, T): (N, T, d_model).

    ``layer = 0`` gives the token embeddings. Needs a Llama-style model (see :func:`start_layer`).
    """
    dec = _decoder(model)
    if dec is None:
        raise ValueError(f"{type(model).__name__} cannot be entered at a layer; use layer 0 (token ids)")
    if not 0 <= layer < len(dec.layers):
        raise IndexError(f"layer {layer} out of range: the model has {len(dec.layers)} decoder layers")
    out = []
    for i in range(0, blocks.shape[0], batch_size):
        x = blocks[i : i + batch_size]
        if layer == 0:
            out.append(dec.embed_tokens(x))
            continue
        got: list[Tensor] = []

        def grab(module: nn.Module, args: tuple, kwargs: dict) -> None:
            got.append((args[0] if args else kwargs["hidden_states"]).detach())
            raise _Stop

        h = dec.layers[layer].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            model(input_ids=x, use_cache=False)
        except _Stop:
            pass
        finally:
            h.remove()
        out.append(got[0])
    return torch.cat(out)


class _Stop(Exception):
    """Raised by the caching hook to end a forward pass early."""


@contextmanager
def _from_layer(model: nn.Module, layer: int) -> Iterator[None]:
    """Within the block, ``model(inputs_embeds=h)`` runs only decoder layers ``layer, layer+1, ...`` on ``h``."""
    if layer == 0:
        yield
        return
    dec = _decoder(model)
    full = dec.layers
    n = model.config.num_hidden_layers
    try:
        dec.layers = nn.ModuleList(list(full)[layer:])
        model.config.num_hidden_layers = n - layer
        yield
    finally:
        dec.layers = full
        model.config.num_hidden_layers = n


@torch.no_grad()
def _ce_per_position(model: nn.Module, inputs: Tensor, targets: Tensor, layer: int) -> Tensor:
    """Next-token CE at each position: inputs (R, T) ids (layer 0) or (R, T, d) residual; targets (R, T) ids
    whose positions 1..T-1 are the next tokens to predict. Returns (R, T-1). One forward pass: callers keep
    R x T small (:func:`vpd_lite.method.cross_entropy.row_slices`), since it holds R x T positions of logits."""
    with _from_layer(model, layer):
        if inputs.dtype == torch.long:
            logits = model(input_ids=inputs, use_cache=False).logits
        else:
            logits = model(inputs_embeds=inputs, use_cache=False).logits
    ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets[:, 1:].reshape(-1),
                         reduction="none")
    return ce.view(inputs.shape[0], -1)


@torch.no_grad()
def edit_curve(model: nn.Module, direction: Direction, s_values: Sequence[float], blocks: Mapping[str, Tensor],
               cache: Mapping[str, Tensor] | None = None, rows_per_batch: int = 64,
               max_positions: int = LOGIT_POSITIONS) -> pd.DataFrame:
    """Next-token CE (nats/token) per language of the scalar edit of one component at each ``s``.

    blocks: {lang: (N, T) token ids}; cache: {lang: residual entering the component's start layer (N, T, d)}
    from :func:`residual_cache` (computed here when None). The rows of several s values
    (``rows_per_batch // N`` of them, stacked along the batch) form one group whose per-position CE is summed
    together; the model runs on a group's rows in forward passes of at most ``max_positions`` positions
    (:func:`vpd_lite.method.cross_entropy.row_slices`), so at most that many positions of logits are held at once.
    Returns one row per s: columns ``s`` and ``ce_<lang>``. Same numbers as running the whole model with
    ``ScalarEdit`` at that s, up to float rounding.
    """
    layer = start_layer(model, direction.module)
    s_values = [float(s) for s in s_values]
    if not s_values:
        raise ValueError("need at least one s value")
    module = dict(model.named_modules())[direction.module]
    result = {"s": s_values}
    for lang, ids in blocks.items():
        if ids.ndim != 2 or ids.shape[1] < 2:
            raise ValueError(f"blocks of {lang!r} must be (N, T) with T >= 2, got {tuple(ids.shape)}")
        x = ids if layer == 0 else (cache[lang] if cache is not None else residual_cache(model, ids, layer))
        n, T = ids.shape
        per_pass = max(1, rows_per_batch // n)  # s values per group
        totals = []
        for i in range(0, len(s_values), per_pass):
            chunk = torch.tensor(s_values[i : i + per_pass])
            scale = (chunk - 1.0).repeat_interleave(n)  # (k * n,)
            xs = x.repeat(len(chunk), *([1] * (x.dim() - 1)))
            targets = ids.repeat(len(chunk), 1)
            ce = torch.empty(len(scale), T - 1, dtype=torch.float32)  # (k * n, T - 1): CE at every position of every row
            for rows in row_slices(len(scale), T, max_positions):
                handle = module.register_forward_hook(row_scaled_edit_hook(direction.v, direction.u, scale[rows]))
                try:
                    ce[rows] = _ce_per_position(model, xs[rows], targets[rows], layer)
                finally:
                    handle.remove()
            totals.append(ce.sum(1).view(len(chunk), n).sum(1))
        result[f"ce_{lang}"] = (torch.cat(totals) / (n * (ids.shape[1] - 1))).tolist()
    return pd.DataFrame(result)


# ------------------------------------------------------------------------------------------ prescreen
def _prescreen_language(shared: tuple[nn.Module, list[Direction], int], ids: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`prescreen`'s sums for one language: (mean square of V_c . x over its tokens, dCE/ds at s = 1),
    each (n_directions,) float64 (a ``fork_map`` job)."""
    model, directions, batch_size = shared
    edit = ScalarEdit(model, directions)
    groups = edit._groups  # {module: (direction indices, V (d_in, k), U (k, d_out))}
    modules = dict(model.named_modules())
    sq = torch.zeros(len(directions), dtype=torch.float64)
    grad = torch.zeros(len(directions), dtype=torch.float64)
    n_tok = 0
    for i in range(0, ids.shape[0], batch_size):
        x = ids[i : i + batch_size]
        handles = []
        for name, (idx, V, _) in groups.items():

            def grab(_m, args, _out, idx=idx, V=V) -> None:
                a = args[0].detach() @ V.to(args[0].dtype)  # (B, T, k)
                sq[idx] += a.double().pow(2).reshape(-1, a.shape[-1]).sum(0)

            handles.append(modules[name].register_forward_hook(grab))
        try:
            with edit:
                logits = model(input_ids=x, use_cache=False).logits
                ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                     x[:, 1:].reshape(-1), reduction="sum")
                (g,) = torch.autograd.grad(ce, edit.s)
        finally:
            for h in handles:
                h.remove()
        grad += g.double()
        n_tok += x.shape[0] * x.shape[1]
    return sq / n_tok, grad / (ids.shape[0] * (ids.shape[1] - 1))


def prescreen(model: nn.Module, directions: Sequence[Direction], blocks: Mapping[str, Tensor],
              batch_size: int = 8, progress: bool = False, workers: int = 1) -> pd.DataFrame:
    """Cheap statistics of every component's scalar edit, per language, on the given (training) blocks.

    One forward and backward pass per language for all ``directions`` together (the languages in ``workers``
    processes side by side, the same numbers):

    * ``rms_<lang>``: root mean square of the activation ``V_c . x`` over the language's tokens (the edit adds
      ``(s - 1) (V_c . x) U_c``, so this is how strongly the edit reaches that language's text);
    * ``grad_<lang>``: ``dCE_lang/ds`` at ``s = 1`` (nats/token per unit of s), the first-order effect.

    Returns one row per direction: ``component`` ("module:index"), ``module``, ``c``, ``layer`` and the columns
    above.
    """
    directions = list(directions)
    if not directions:
        raise ValueError("prescreen needs at least one component")
    was_training = model.training
    model.eval()
    try:
        sums = fork_map(_prescreen_language, list(blocks.values()), (model, directions, batch_size), workers,
                        torch.get_num_threads(), desc="prescreen", progress=progress)
    finally:
        model.train(was_training)
    rows: dict[str, Any] = {
        "component": [component_key(d.component) for d in directions],
        "module": [d.module for d in directions],
        "c": [d.c for d in directions],
        "layer": [module_layer(d.module) for d in directions],
    }
    for lang, (sq, _) in zip(blocks, sums):
        rows[f"rms_{lang}"] = sq.sqrt().tolist()
    for lang, (_, grad) in zip(blocks, sums):
        rows[f"grad_{lang}"] = grad.tolist()
    return pd.DataFrame(rows)


def candidates(pre: pd.DataFrame, lang: str, n: int, always: Sequence[str] = ()) -> list[str]:
    """The components (keys) that get the full scan for erasing ``lang``, from :func:`prescreen` numbers.

    Three quarters of ``n`` (rounded up) by the activation ratio ``rms_lang / max(rms of every other
    language)`` (how much more the edit reaches ``lang`` text than any other language's), the rest by the
    first-order ratio
    ``|grad_lang| / max(|grad| of every other language)``, skipping ones already taken; then ``always`` (e.g.
    the components other selection rules pick). Order: as listed; no duplicates.
    """
    others = [c.removeprefix("rms_") for c in pre.columns if c.startswith("rms_") and c != f"rms_{lang}"]
    if f"rms_{lang}" not in pre.columns:
        raise KeyError(f"no prescreen numbers for language {lang!r}")
    rms_ratio = pre[f"rms_{lang}"] / pre[[f"rms_{o}" for o in others]].max(axis=1).clip(lower=1e-12)
    grad_ratio = pre[f"grad_{lang}"].abs() / pre[[f"grad_{o}" for o in others]].abs().max(axis=1).clip(lower=1e-12)
    keys = pre["component"].tolist()
    by_rms = [keys[i] for i in np.lexsort((keys, -rms_ratio.to_numpy()))]
    by_grad = [keys[i] for i in np.lexsort((keys, -grad_ratio.to_numpy()))]
    chosen: list[str] = []
    for k in by_rms[: -(-3 * n // 4)]:
        chosen.append(k)
    for k in by_grad:
        if len(chosen) >= n:
            break
        if k not in chosen:
            chosen.append(k)
    for k in always:
        if k not in chosen:
            chosen.append(k)
    return chosen


# ------------------------------------------------------------------------------------------ curves
def _curve(shared: tuple[nn.Module, Mapping[str, Tensor], Any, int, Mapping[int, Mapping[str, Tensor]]],
           d: Direction) -> pd.DataFrame:
    """One direction's rows of :func:`scan_curves` (a ``fork_map`` job)."""
    model, blocks, s_grid, rows_per_batch, caches = shared
    key = component_key(d.component)
    grid = s_grid[key] if isinstance(s_grid, Mapping) else s_grid
    values = sorted({float(s) for s in grid} | {1.0})
    df = edit_curve(model, d, values, blocks, caches.get(start_layer(model, d.module)), rows_per_batch)
    base = df.loc[df["s"] == 1.0].iloc[0]
    for lang in blocks:
        df[f"d_{lang}"] = df[f"ce_{lang}"] - base[f"ce_{lang}"]
    df.insert(0, "layer", module_layer(d.module))
    df.insert(0, "c", d.c)
    df.insert(0, "module", d.module)
    df.insert(0, "component", key)
    return df


def scan_curves(model: nn.Module, directions: Sequence[Direction], blocks: Mapping[str, Tensor],
                s_grid: Sequence[float] | Mapping[str, Sequence[float]], rows_per_batch: int = 64,
                progress: bool = False, workers: int = 1) -> pd.DataFrame:
    """CE per language of every direction's scalar edit at every ``s`` (s = 1 always included).

    blocks: {lang: (N, T) token ids} (training text, for choosing); ``s_grid``: one grid for all, or
    {component key: grid}. The residual stream entering each start layer is cached once per language.
    ``workers`` > 1: that many processes compute the directions' curves side by side (one thread each on a
    Linux machine; the same numbers, see ``vpd_lite.erase.workers``).
    Returns one row per (component, s), sorted by component order then s, with columns ``component``,
    ``module``, ``c``, ``layer``, ``s``, ``ce_<lang>`` and ``d_<lang>`` (ΔCE = CE at s − CE at s = 1; nats/token).
    """
    directions = list(directions)
    if not directions:
        raise ValueError("scan_curves needs at least one component")
    layers = sorted({start_layer(model, d.module) for d in directions} - {0})
    caches = {layer: {lang: residual_cache(model, ids, layer) for lang, ids in blocks.items()} for layer in layers}
    frames = fork_map(_curve, directions, (model, blocks, s_grid, rows_per_batch, caches), workers,
                      torch.get_num_threads(), desc="edit scan", progress=progress)
    return pd.concat(frames, ignore_index=True)


def tolerances(erase_lang: str, langs: Sequence[str], max_d_en: float = 0.05,
               max_d_other: float = 0.1) -> dict[str, float]:
    """Largest allowed ΔCE (nats/token) of every language but ``erase_lang`` (the language being erased):
    English ``max_d_en``, every other language ``max_d_other`` (the published claim's tolerances, as in
    ``vpd_lite.erase.protocol.CLAIM``)."""
    return {lang: (max_d_en if lang == "en" else max_d_other) for lang in langs if lang != erase_lang}


def admissible_range(curve: pd.DataFrame, erase_lang: str, tol: Mapping[str, float]) -> tuple[float, float]:
    """(s_lo, s_hi): the widest run of grid values around s = 1 of one component's curve (rows of
    :func:`scan_curves`) where every other language's ΔCE stays within ``tol`` (s = 1 itself always does).
    ``erase_lang``, the language being erased, is not read: ``tol`` (from :func:`tolerances`) already leaves
    it out."""
    g = curve.sort_values("s").reset_index(drop=True)
    ok = np.ones(len(g), dtype=bool)
    for lang, t in tol.items():
        ok &= (g[f"d_{lang}"] <= t).to_numpy()
    s = g["s"].to_numpy()
    i1 = int(np.flatnonzero(s == 1.0)[0])
    lo = hi = i1
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(g) - 1 and ok[hi + 1]:
        hi += 1
    return float(s[lo]), float(s[hi])


def best_admissible(curves: pd.DataFrame, erase_lang: str, tol: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per component: the largest ΔCE of ``erase_lang`` (the language being erased) over its admissible range
    (:func:`admissible_range`).

    ``tol`` defaults to :func:`tolerances` of ``erase_lang``. Returns one row per component, best first (ties:
    the s closest to 1, then the component key): ``component``, ``module``, ``c``, ``layer``, ``target`` (the
    erased language; the column keeps its recorded name), ``s_best``, ``gain`` (ΔCE of the erased language at
    ``s_best``), ``worst_other`` (largest ΔCE of the other languages there), ``worst_other_lang``, ``d_<lang>``
    for every language at ``s_best``, ``s_lo``, ``s_hi``, and ``max_gain`` (the erased language's largest ΔCE
    anywhere on the grid, admissible or not).
    """
    langs = [c.removeprefix("d_") for c in curves.columns if c.startswith("d_")]
    if erase_lang not in langs:
        raise KeyError(f"the scan has no language {erase_lang!r}; it has {langs}")
    tol = dict(tol) if tol is not None else tolerances(erase_lang, langs)
    rows = []
    for key, g in curves.groupby("component", sort=False):
        lo, hi = admissible_range(g, erase_lang, tol)
        inside = g[(g["s"] >= lo) & (g["s"] <= hi)]
        order = np.lexsort(((inside["s"] - 1.0).abs().to_numpy(), -inside[f"d_{erase_lang}"].to_numpy()))
        r = inside.iloc[order[0]]
        others = {lang: float(r[f"d_{lang}"]) for lang in langs if lang != erase_lang}
        worst = max(others, key=lambda k: others[k]) if others else ""
        rows.append({"component": key, "module": r["module"], "c": int(r["c"]), "layer": r["layer"],
                     "target": erase_lang, "s_best": float(r["s"]), "gain": float(r[f"d_{erase_lang}"]),
                     "worst_other": others.get(worst, 0.0), "worst_other_lang": worst,
                     **{f"d_{lang}": float(r[f"d_{lang}"]) for lang in langs}, "s_lo": lo, "s_hi": hi,
                     "max_gain": float(g[f"d_{erase_lang}"].max())})
    out = pd.DataFrame(rows)
    out = out.iloc[np.lexsort((out["component"].to_numpy(), (out["s_best"] - 1.0).abs().to_numpy(),
                               -out["gain"].to_numpy()))]
    return out.reset_index(drop=True)


def edge_grid(curve: pd.DataFrame, erase_lang: str, tol: Mapping[str, float], step: float) -> list[float]:
    """Extra s values at ``step`` spacing inside the two grid intervals just beyond one component's admissible
    range for erasing ``erase_lang`` (where the admissible edge lies), for a finer estimate of it."""
    lo, hi = admissible_range(curve, erase_lang, tol)
    s = np.sort(curve["s"].unique())
    extra: list[float] = []
    below, above = s[s < lo], s[s > hi]
    if below.size:
        extra += [float(x) for x in np.arange(lo - step, below.max() + step / 2, -step)]
    if above.size:
        extra += [float(x) for x in np.arange(hi + step, above.min() - step / 2, step)]
    return sorted(round(x, 6) for x in extra if x not in set(s.tolist()))


# ------------------------------------------------------------------------------------------ the whole scan
@dataclass
class EditScan:
    """Result of :func:`run_edit_scan` (all numbers on training text, nats/token).

    ``prescreen``: :func:`prescreen` of every live component; ``candidates``: {language to erase: component keys
    that got the full scan}; ``curves``: :func:`scan_curves` rows of every scanned component (coarse grid plus
    edge refinements); ``best``: :func:`best_admissible` for every language to erase (``config.target_langs``),
    stacked (column ``target``: the erased language);
    ``base_ce``: {lang: CE of the unedited model on the scan's text}; ``seconds``: wall time.
    """

    prescreen: pd.DataFrame
    candidates: dict[str, list[str]]
    curves: pd.DataFrame
    best: pd.DataFrame
    base_ce: dict[str, float]
    config: ScanConfig
    seconds: float = 0.0

    def best_for(self, erase_lang: str) -> pd.DataFrame:
        """:func:`best_admissible` rows for erasing ``erase_lang``, best first."""
        out = self.best[self.best["target"] == erase_lang]
        if out.empty:
            raise KeyError(f"the scan has no target language {erase_lang!r}; "
                           f"it has {sorted(set(self.best['target']))}")
        return out.reset_index(drop=True)

    def curve(self, component: str | ComponentId) -> pd.DataFrame:
        """The dose-response rows (one per s, sorted) of one scanned component."""
        key = component if isinstance(component, str) else component_key(component)
        out = self.curves[self.curves["component"] == key]
        if out.empty:
            raise KeyError(f"component {key} was not scanned")
        return out.sort_values("s").reset_index(drop=True)

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``edit_scan_prescreen.csv``, ``edit_scan_curves.csv``, ``edit_scan_best.csv`` and
        ``edit_scan.json`` into ``folder`` (created), rounded to 5 decimals. Returns the paths."""

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in (("prescreen", self.prescreen), ("curves", self.curves), ("best", self.best)):
            p = folder / f"edit_scan_{name}.csv"
            atomic_write_bytes(p, df.to_csv(index=False, float_format="%.5f").encode("utf-8"))
            paths.append(p)
        meta = {"config": asdict(self.config), "candidates": self.candidates,
                "base_ce": {k: round(v, 5) for k, v in self.base_ce.items()}, "seconds": round(self.seconds, 1)}
        atomic_write_json(folder / "edit_scan.json", meta)
        return paths + [folder / "edit_scan.json"]

    @classmethod
    def load(cls, folder: str | Path) -> "EditScan":
        """Read what :meth:`save` wrote."""
        import json

        folder = Path(folder)
        if not (folder / "edit_scan.json").is_file():
            raise FileNotFoundError(f"no edit scan in {folder} (edit_scan.json missing); run python -m vpd_lite.edit_scan")
        meta = json.loads((folder / "edit_scan.json").read_text())
        cfg = meta["config"]
        config = ScanConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
        read = {n: pd.read_csv(folder / f"edit_scan_{n}.csv") for n in ("prescreen", "curves", "best")}
        return cls(read["prescreen"], meta["candidates"], read["curves"], read["best"], meta["base_ce"], config,
                   meta.get("seconds", 0.0))


def run_edit_scan(model: nn.Module, directions: Sequence[Direction], blocks: Mapping[str, Tensor],
                  config: ScanConfig | None = None, always: Mapping[str, Sequence[str]] | None = None,
                  max_d_en: float = 0.05, max_d_other: float = 0.1, progress: bool = True,
                  workers: int = 1) -> EditScan:
    """The edit scan on training ``blocks`` ({lang: (N, T)}; use training-split text only).

    1. :func:`prescreen` every direction (all live components);
    2. for each language of ``config.target_langs`` pick ``config.n_candidates`` by :func:`candidates`, plus
       ``always[lang]`` (component keys other selection rules pick, so that they are on the same footing);
    3. :func:`scan_curves` of the union on ``config.s_grid``;
    4. for each language to erase, the ``config.n_refine`` best components by :func:`best_admissible` get
       ``config.refine_step`` steps at the edges of their admissible range (:func:`edge_grid`); then
       :func:`best_admissible` again on the merged curves.

    Tolerances: :func:`tolerances` with ``max_d_en`` / ``max_d_other``. Runs with ``config.threads`` torch
    threads (restored afterwards); ``workers`` > 1 computes the curves in that many processes side by side
    (:func:`scan_curves`; the same numbers).
    """

    config = config or ScanConfig()
    always = always or {}
    t0 = time.perf_counter()
    blocks = {lang: ids for lang, ids in blocks.items()}
    langs = list(blocks)
    missing = [t for t in config.target_langs if t not in langs]
    if missing:
        raise KeyError(f"target language(s) {missing} have no blocks; blocks hold {langs}")
    by_key = {component_key(d.component): d for d in directions}
    with torch_threads(config.threads):
        pre = prescreen(model, directions, blocks, progress=progress, workers=workers)
        cands = {t: candidates(pre, t, config.n_candidates, [k for k in always.get(t, ()) if k in by_key])
                 for t in config.target_langs}
        unknown = [k for t in always for k in always[t] if k not in by_key]
        if unknown:
            raise KeyError(f"components {unknown} are not among the scanned directions (not live?)")
        union = list(dict.fromkeys(k for t in config.target_langs for k in cands[t]))
        curves = scan_curves(model, [by_key[k] for k in union], blocks, config.s_grid, config.rows_per_batch,
                             progress=progress, workers=workers)
        extra: dict[str, set[float]] = {}
        for t in config.target_langs:
            tol = tolerances(t, langs, max_d_en, max_d_other)
            best = best_admissible(curves[curves["component"].isin(cands[t])], t, tol)
            for key in best["component"].head(config.n_refine):
                extra.setdefault(key, set()).update(edge_grid(curves[curves["component"] == key], t, tol,
                                                              config.refine_step))
        extra = {k: v for k, v in extra.items() if v}
        if extra:
            more = scan_curves(model, [by_key[k] for k in extra], blocks, {k: sorted(v) for k, v in extra.items()},
                               config.rows_per_batch, progress=progress, workers=workers)
            more = more[more["s"] != 1.0]
            # ΔCE of the extra rows against the same s = 1 rows as the coarse curves (identical numbers)
            curves = pd.concat([curves, more], ignore_index=True)
            order = {k: i for i, k in enumerate(union)}
            curves = curves.sort_values(["component", "s"], key=lambda col: col.map(order) if col.name == "component"
                                        else col).reset_index(drop=True)
        best_all = pd.concat([best_admissible(curves[curves["component"].isin(cands[t])], t,
                                              tolerances(t, langs, max_d_en, max_d_other))
                              for t in config.target_langs], ignore_index=True)
        first = curves[curves["s"] == 1.0].iloc[0]
    base = {lang: float(first[f"ce_{lang}"]) for lang in langs}
    return EditScan(pre, cands, curves, best_all, base, config, time.perf_counter() - t0)


def scan_blocks(tokenizer: Any, corpus: Mapping[str, Any], config: ScanConfig,
                langs: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The scan's text: the first ``config.blocks_per_lang`` blocks of ``config.seq_len`` tokens of each
    language's **training** split (never held-out text)."""

    langs = list(langs) if langs is not None else [lang for lang in LANGS if lang in corpus]
    return lang_token_blocks(tokenizer, {k: corpus[k] for k in langs}, "train", config.seq_len,
                             config.blocks_per_lang)
