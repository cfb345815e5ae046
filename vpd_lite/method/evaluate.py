"""Evaluate a decomposition: CE / KL under several masks, L0, dead components, faithfulness residual.

Masks compared (all on the components only -- the delta component is OFF except in ``all_ones_delta``):

* ``ci_rounded``   m = 1[g > threshold]       (default threshold 0: with the hard sigmoid, CI is exactly 0
                                               for most components; this is the reference's choice, and the
                                               same components are the ones L0 counts)
* ``ci``           m = g                      (unrounded CI)
* ``stochastic``   m = g + (1 - g) u
* ``pgd``          m = g + (1 - g) s, s from fresh PGD maximising the KL (default 20 steps of size 0.1,
                   random init, one source shared across the batch, all matrices routed)
* ``all_ones``     m = 1 (sum of all components, no delta)
* ``all_ones_delta`` m = 1 plus the delta component (reproduces the target exactly)

CE is next-token cross-entropy (nats/token); KL is KL(target || masked) per token (nats). For a model that is not
a causal LM (e.g. ``vpd_lite.models.toy_models``) CE is not defined: the metrics report the reconstruction loss
under each mask instead (mean squared error to the target's output by default). L0 of a matrix is the mean
number of its components with g > threshold per token; a component is dead if g <= threshold on every evaluated
token. ``python -m vpd_lite.evaluate DIR`` (``vpd_lite.commands.evaluate``) prints the metrics table of a
checkpoint folder; :func:`plot_history` / :func:`plot_recon_curves` draw a run's loss curves.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from vpd_lite.method.checkpoint import atomic_write_bytes
from vpd_lite.method.components import ComponentModel
from vpd_lite.method.cross_entropy import next_token_ce
from vpd_lite.method.losses import RECON_LOSSES, recon_loss, recon_target
from vpd_lite.method.masks import mask_from_sources, stochastic_masks
from vpd_lite.method.pgd import PGDConfig, fresh_pgd_sources

MASK_KINDS = ("ci_rounded", "ci", "stochastic", "pgd", "all_ones", "all_ones_delta")


#: The quality targets the shipped decomposition was held to.
QUALITY_TARGETS = {
    "ce_gap_ci_rounded_max": 0.15,
    "ce_gap_pgd_max": 0.5,
    "l0_frac_of_C_max": 0.10,
    "dead_frac_max": 0.5,  # strictly fewer than half
    "faithfulness_residual_max": 1e-3,
}


#: The gates a targeted decomposition of the shipped target is held to, fixed before its runs: on the
#: capability's held-out text the full decomposition's CE gaps, a mean L0 of at most 10 per matrix (the full
#: per-matrix decomposition's was 9.8 when these gates were written; the shipped one's is 9.0), fewer than half the
#: components dead; on the rest of the held-out text, with the remainder on
#: and the components masked by their CI, a CE gap of at most 0.05 nats/token.
TARGETED_QUALITY_TARGETS = {
    "ce_gap_ci_rounded_max": 0.15,
    "ce_gap_pgd_max": 0.5,
    "l0_mean_max": 10.0,
    "dead_frac_max": 0.5,
    "rest_ce_gap_max": 0.05,
}


def targeted_targets_met(metrics: Mapping[str, Any]) -> dict[str, bool]:
    """{gate: met} of ``TARGETED_QUALITY_TARGETS`` for the metrics of a targeted decomposition
    (``evaluate_decomposition`` on the capability's text, with ``evaluate_rest``'s result under ``"rest"``)."""
    t = TARGETED_QUALITY_TARGETS
    return {
        "ce_gap_ci_rounded <= 0.15": metrics["ce_gap"]["ci_rounded"] <= t["ce_gap_ci_rounded_max"],
        "ce_gap_pgd <= 0.5": metrics["ce_gap"]["pgd"] <= t["ce_gap_pgd_max"],
        "mean L0 <= 10": metrics["l0_mean"] <= t["l0_mean_max"],
        "dead < half": metrics["dead_frac"] < t["dead_frac_max"],
        "rest: CI gap with the remainder on <= 0.05": metrics["rest"]["ce_gap"]["ci_rounded_remainder"]
        <= t["rest_ce_gap_max"],
    }


def evaluate_decomposition(
    cm: ComponentModel,
    batches: Iterable[Tensor],
    threshold: float = 0.0,
    pgd: PGDConfig = PGDConfig(),
    seed: int = 0,
    progress: bool = True,
    recon: str | None = None,
) -> dict[str, Any]:
    """Metrics of ``cm`` on ``batches``, weighted by positions over batches.

    Batches are what ``cm``'s adapter feeds the model: LongTensor (B, T) token ids for a causal LM (T >= 2:
    a length-1 sequence has nothing to predict), e.g. (B, n_features) inputs for a toy model. ``recon``: the
    reconstruction loss reported under every mask, "kl" (nats per position) or "mse" (None: the adapter's
    default, KL for causal LMs, MSE otherwise); PGD maximises it.

    Returns a JSON-ready dict. For a causal LM: ``ce`` / ``kl`` / ``ce_gap`` {mask kind: float} (``ce["target"]``
    is the target's CE, nats/token), and ``targets_met`` {quality target: bool}. For other models: ``recon_loss``
    (its name) and {name: {mask kind: float}}, e.g. ``mse``. Always: ``l0`` and ``l0_frac_of_C`` {module: float},
    ``dead`` {module: int}, ``dead_total``, ``dead_frac``, ``faithfulness_residual`` {module: float} and
    ``..._max``. Raises ValueError for no batches or batches the model cannot take."""
    lm = cm.adapter.causal_lm
    kind = cm.adapter.default_recon_loss if recon is None else recon
    if kind not in RECON_LOSSES:
        raise ValueError(f"unknown reconstruction loss {kind!r}; expected one of {RECON_LOSSES}")
    gen = torch.Generator().manual_seed(seed)
    names = cm.module_names
    sums: dict[str, float] = {f"ce_{k}": 0.0 for k in MASK_KINDS} | {f"rec_{k}": 0.0 for k in MASK_KINDS}
    sums["ce_target"] = 0.0
    l0_sum = {n: 0.0 for n in names}
    alive = {n: torch.zeros(cm.C_per_module[n], dtype=torch.bool) for n in names}
    n_tok = n_ce_tok = 0
    was_training = cm.training
    cm.eval()
    device = next(cm.parameters()).device
    for ids in tqdm(list(batches), desc="evaluate", disable=not progress, leave=False):
        ids = ids.to(device)
        cm.check_batch(ids, need_targets=True)
        target_logits, inputs = cm.target_output_and_inputs(ids)
        with torch.no_grad():
            ci, _ = cm.causal_importance(inputs)
        ci = {n: g.detach() for n, g in ci.items()}
        positions = tuple(next(iter(ci.values())).shape[:-1])  # (B, T) for a language model
        n_pos = math.prod(positions)
        ones_d = {n: torch.ones(positions, device=ids.device) for n in names} if cm.use_delta else None
        masks = {
            "ci_rounded": {n: (g > threshold).float() for n, g in ci.items()},
            "ci": ci,
            "stochastic": stochastic_masks(ci, gen),
            "all_ones": {n: torch.ones_like(g) for n, g in ci.items()},
        }
        src, _ = fresh_pgd_sources(cm, ids, ci, target_logits, pgd, routing=None, with_delta=False, generator=gen,
                                   recon=kind)
        masks["pgd"] = {n: mask_from_sources(g, src[n]) for n, g in ci.items()}
        with torch.no_grad():
            target = recon_target(kind, target_logits)
            for mk in MASK_KINDS:
                if mk == "all_ones_delta":
                    if ones_d is None:
                        continue
                    out = cm.forward_with_masks(ids, masks["all_ones"], delta_masks=ones_d)
                else:
                    out = cm.forward_with_masks(ids, masks[mk])
                if lm:
                    sums[f"ce_{mk}"] += float(next_token_ce(out, ids)) * ids.shape[0] * (ids.shape[1] - 1)
                sums[f"rec_{mk}"] += float(recon_loss(kind, out, target)) * n_pos
            if lm:
                sums["ce_target"] += float(next_token_ce(target_logits, ids)) * ids.shape[0] * (ids.shape[1] - 1)
            for n, g in ci.items():
                on = g > threshold
                l0_sum[n] += float(on.float().sum(-1).sum())
                alive[n] |= on.reshape(-1, on.shape[-1]).any(0).cpu()
        n_tok += n_pos
        if lm:
            n_ce_tok += ids.shape[0] * (ids.shape[1] - 1)
    cm.train(was_training)
    if n_tok == 0:
        raise ValueError("evaluate_decomposition got no batches")
    kinds = [k for k in MASK_KINDS if k != "all_ones_delta" or cm.use_delta]
    rec = {k: sums[f"rec_{k}"] / n_tok for k in kinds}
    l0 = {n: l0_sum[n] / n_tok for n in names}
    l0_frac = {n: l0[n] / cm.C_per_module[n] for n in names}
    dead = {n: int((~alive[n]).sum()) for n in names}
    total_C = sum(cm.C_per_module.values())
    resid = cm.faithfulness_residual()
    metrics: dict[str, Any] = {"n_tokens": n_tok, "threshold": threshold, "pgd": dataclasses.asdict(pgd)}
    if lm:
        ce = {"target": sums["ce_target"] / n_ce_tok} | {k: sums[f"ce_{k}"] / n_ce_tok for k in kinds}
        metrics |= {"ce": ce, "ce_gap": {k: ce[k] - ce["target"] for k in kinds}}
    if not lm or kind != "kl":
        metrics["recon_loss"] = kind
    metrics[kind] = rec
    metrics |= {
        "C": dict(cm.C_per_module),
        "l0": l0,
        "l0_frac_of_C": l0_frac,
        "l0_mean": sum(l0.values()) / len(l0),
        "dead": dead,
        "dead_total": sum(dead.values()),
        "dead_frac": sum(dead.values()) / total_C,
        "faithfulness_residual": resid,
        "faithfulness_residual_max": max(resid.values()),
    }
    if lm:
        metrics["targets_met"] = {
            "ce_gap_ci_rounded <= 0.15": metrics["ce_gap"]["ci_rounded"] <= QUALITY_TARGETS["ce_gap_ci_rounded_max"],
            "ce_gap_pgd <= 0.5": metrics["ce_gap"]["pgd"] <= QUALITY_TARGETS["ce_gap_pgd_max"],
            "l0 <= 10% of C in every matrix": max(l0_frac.values()) <= QUALITY_TARGETS["l0_frac_of_C_max"],
            "dead < half": metrics["dead_frac"] < QUALITY_TARGETS["dead_frac_max"],
            "faithfulness residual < 1e-3":
                metrics["faithfulness_residual_max"] < QUALITY_TARGETS["faithfulness_residual_max"],
        }
    return metrics


@torch.no_grad()
def evaluate_rest(cm: ComponentModel, batches: Iterable[Tensor], threshold: float = 0.0,
                  progress: bool = True) -> dict[str, Any]:
    """How a targeted decomposition leaves the rest of the data (the text without its capability): the model
    with every component masked by its causal importance and the remainder W - sum_c U_c V_c^T switched on, as
    it trained on rest batches, against the target. Batches: LongTensor (B, T) token ids of a causal LM.

    Masks: ``ci_remainder`` m = g and ``ci_rounded_remainder`` m = 1[g > threshold], each with the delta mask 1.
    Returns {"n_tokens", "ce": {"target", mask kind: float}, "ce_gap": {mask kind: float} (nats/token), "l0_mean"
    (components with g > threshold per matrix and token, mean over matrices)}. Raises ValueError for no batches
    or a decomposition without a delta component."""
    if not cm.use_delta:
        raise ValueError("evaluate_rest needs a decomposition with a delta component (its remainder)")
    names = cm.module_names
    sums = {"target": 0.0, "ci_remainder": 0.0, "ci_rounded_remainder": 0.0}
    n_ce = n_pos = 0
    l0 = 0.0
    was_training = cm.training
    cm.eval()
    device = next(cm.parameters()).device
    for ids in tqdm(list(batches), desc="evaluate rest", disable=not progress, leave=False):
        ids = ids.to(device)
        cm.check_batch(ids, need_targets=True)
        target_logits, inputs = cm.target_output_and_inputs(ids)
        ci, _ = cm.causal_importance(inputs)
        positions = tuple(next(iter(ci.values())).shape[:-1])
        on = {n: torch.ones(positions, device=device) for n in names}
        k = ids.shape[0] * (ids.shape[1] - 1)
        sums["target"] += float(next_token_ce(target_logits, ids)) * k
        sums["ci_remainder"] += float(next_token_ce(cm.forward_with_masks(ids, ci, delta_masks=on), ids)) * k
        rounded = {n: (g > threshold).float() for n, g in ci.items()}
        sums["ci_rounded_remainder"] += float(next_token_ce(cm.forward_with_masks(ids, rounded, delta_masks=on),
                                                            ids)) * k
        l0 += sum(float((g > threshold).float().sum(-1).sum()) for g in ci.values()) / len(names)
        n_ce += k
        n_pos += math.prod(positions)
    cm.train(was_training)
    if n_ce == 0:
        raise ValueError("evaluate_rest got no batches")
    ce = {key: v / n_ce for key, v in sums.items()}
    return {"n_tokens": n_pos, "ce": ce, "ce_gap": {key: ce[key] - ce["target"] for key in ce if key != "target"},
            "l0_mean": l0 / n_pos}


def evaluate_targeted(cm: ComponentModel, capability_batches: Iterable[Tensor], rest_batches: Iterable[Tensor],
                      threshold: float = 0.0, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """The metrics of a targeted decomposition: ``evaluate_decomposition`` on the capability's held-out batches
    (the remainder off: the components alone), ``evaluate_rest`` on the rest's under ``"rest"`` (the remainder
    on), and ``targets_met`` against ``TARGETED_QUALITY_TARGETS``. Batches: LongTensor (B, T) token ids."""
    metrics = evaluate_decomposition(cm, capability_batches, threshold=threshold, seed=seed, progress=progress)
    metrics["rest"] = evaluate_rest(cm, rest_batches, threshold=threshold, progress=progress)
    metrics["targets_met"] = targeted_targets_met(metrics)
    return metrics


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """A plain-text table of ``evaluate_decomposition``'s output (language models: CE and KL; other models:
    their reconstruction loss)."""
    if "ce" in metrics:
        rec_name = metrics.get("recon_loss", "kl")
        lines = [f"held-out tokens: {metrics['n_tokens']}   CI threshold: {metrics['threshold']}",
                 f"{'masks':<16}{'CE (nats/tok)':>14}{'CE - target':>13}{'KL (nats)' if rec_name == 'kl' else rec_name.upper():>11}",
                 f"{'target':<16}{metrics['ce']['target']:>14.4f}{0.0:>13.4f}{0.0:>11.4f}"]
        kinds = [k for k in MASK_KINDS if k in metrics["ce_gap"]]  # fixed order (JSON files sort their keys)
        for k in kinds:
            gap = metrics["ce_gap"][k]
            lines.append(f"{k:<16}{metrics['ce'][k]:>14.4f}{gap:>13.4f}{metrics[rec_name][k]:>11.4f}")
    else:
        rec_name = metrics["recon_loss"]
        lines = [f"positions: {metrics['n_tokens']}   CI threshold: {metrics['threshold']}",
                 f"{'masks':<16}{rec_name.upper() + ' to target':>16}"]
        for k in [k for k in MASK_KINDS if k in metrics[rec_name]]:
            lines.append(f"{k:<16}{metrics[rec_name][k]:>16.3e}")
    lines.append("")
    lines.append(f"{'matrix':<34}{'C':>6}{'L0':>8}{'L0/C':>8}{'dead':>6}{'resid':>10}")
    for n in metrics["l0"]:
        lines.append(f"{n:<34}{metrics['C'][n]:>6}{metrics['l0'][n]:>8.2f}{metrics['l0_frac_of_C'][n]:>8.3f}"
                     f"{metrics['dead'][n]:>6}{metrics['faithfulness_residual'][n]:>10.2e}")
    lines.append(f"mean L0 {metrics['l0_mean']:.2f}; dead {metrics['dead_total']} "
                 f"({100 * metrics['dead_frac']:.1f}% of components); max residual "
                 f"{metrics['faithfulness_residual_max']:.2e}")
    if "rest" in metrics:
        rest = metrics["rest"]
        lines.append("")
        lines.append(f"the rest of the held-out text ({rest['n_tokens']} tokens), remainder on:")
        lines.append(f"{'masks':<24}{'CE (nats/tok)':>14}{'CE - target':>13}")
        lines.append(f"{'target':<24}{rest['ce']['target']:>14.4f}{0.0:>13.4f}")
        for k, gap in rest["ce_gap"].items():
            lines.append(f"{k:<24}{rest['ce'][k]:>14.4f}{gap:>13.4f}")
        lines.append(f"mean L0 there {rest['l0_mean']:.2f}")
    lines.append("")
    for k, ok in metrics.get("targets_met", {}).items():
        lines.append(f"[{'x' if ok else ' '}] {k}")
    return "\n".join(lines)


def plot_recon_curves(ax: Any, history: list[dict], labels: Mapping[str, str]) -> tuple[list[dict], list[int]]:
    """Draw the training history's reconstruction losses on ``ax`` (matplotlib axes), one line per key of
    ``labels`` ({history key: legend label}) that the logged rows hold. Returns the logged rows (those with a
    ``stochastic_recon``) and their steps, for the other panels."""
    rows = [r for r in history if "stochastic_recon" in r]
    steps = [r["step"] for r in rows]
    for key, label in labels.items():
        if rows and key in rows[0]:
            ax.plot(steps, [r[key] for r in rows], label=label)
    return rows, steps


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Loss curves (reconstruction KLs, minimality, faithfulness, L0) to a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    rows, steps = plot_recon_curves(axes[0], history, {"stochastic_recon": "stochastic",
                                                       "adversarial_recon": "adversarial (persistent PGD)",
                                                       "rest_stochastic_recon": "rest batches, remainder on"})
    axes[0].set(title="Reconstruction KL to the target", xlabel="step", ylabel="KL (nats/token)", yscale="log")
    axes[0].legend()
    axes[1].plot(steps, [r["minimality"] for r in rows])
    axes[1].set(title="Importance minimality (p annealed)", xlabel="step", ylabel="loss")
    if rows and "faithfulness" in rows[0]:
        axes[2].plot(steps, [r["faithfulness"] for r in rows])
        axes[2].set(title="Faithfulness (mean sq. residual)", xlabel="step", ylabel="sum of MSEs", yscale="log")
    else:  # a targeted decomposition keeps a remainder on purpose: the rest batches' minimality instead
        axes[2].plot(steps, [r.get("rest_minimality", float("nan")) for r in rows])
        axes[2].set(title="Importance minimality, rest batches", xlabel="step", ylabel="loss")
    targeted = bool(rows) and "rest_l0_mean" in rows[0]
    axes[3].plot(steps, [r["l0_mean"] for r in rows], label="capability batch" if targeted else None)
    if targeted:
        axes[3].plot(steps, [r["rest_l0_mean"] for r in rows], label="rest batch")
        axes[3].legend()
    axes[3].set(title="Mean L0 per matrix (training batch)", xlabel="step", ylabel="components / token")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
