"""``vpd_lite.method.decompose``: the VPD training loop (its settings are ``vpd_lite.method.config.DecomposeConfig``).

One training step (after a faithfulness-only warm-up):

1. run the untouched target once under ``no_grad``: its output (the reconstruction reference: logits for a
   language model) and each decomposed layer's input (what the CI functions read);
2. causal importances g (lower-leaky for masks, upper-leaky for the minimality loss);
3. stochastic reconstruction: masks g + (1-g) u with uniform-k-subset routing -> KL(target || masked) for a
   language model, or the mean squared error of the outputs (``DecomposeConfig.recon_loss``);
4. adversarial reconstruction: masks g + (1-g) s with persistent PGD sources s (and their own routing);
   the same backward pass that trains the components leaves dL/ds in the sources, which then take one Adam
   *ascent* step -- no separate attack pass;
5. optionally (``coeff_ci_masked > 0``) a pass with masks = CI on every matrix and position, the reference's
   "CI-masked reconstruction" term: it trains exactly the masks that the rounded-CI evaluation uses;
6. importance minimality (p annealed 2 -> p_end) and faithfulness;
7. clip gradients, Adam step with cosine learning rate.

A *targeted* decomposition (tPD, ``DecomposeConfig.capability`` set; ``targeted_step``) decomposes only what one
capability's data uses: each step takes a capability batch through steps 1-6 above (the remainder W - sum U V^T
masked like a component, no faithfulness loss) and a batch of the rest of the data with the remainder pinned on
(stochastic reconstruction and minimality only, the minimality weighted ``rest_minimality_ratio``), with no
warm-up, so that whatever only the rest of the data uses stays in the remainder.

To keep memory low, each reconstruction pass is backpropagated as soon as its loss exists, into detached
copies of the CI; the CI functions get the accumulated gradient in one final backward. A masked pass stops at
the model's final hidden states: ``losses.head_reconstruction_kl`` applies the output head and the KL a block
of rows at a time, so the (B, T, vocab) logits of a masked pass are never held in memory (models whose logits
are not a plain linear head of those states fall back to full logits).

Any ``nn.Module`` can be decomposed: ``decompose(model, batches, config, adapter=...)`` with a
``components.ModelAdapter`` saying how to run it on a batch (transformers causal LMs are recognised; a module
whose ``model(batch)`` returns a tensor needs nothing). "Positions" are the leading dims of the decomposed
layers' inputs: (B, T) tokens of a language model, (B,) samples of a vector model (see
``vpd_lite.models.toy_models``).

Resuming (``decompose(..., resume_from=folder)``; ``python -m vpd_lite.decompose --out DIR --resume``): a
checkpoint's ``training_state.pt`` is one atomically written, checksummed file holding everything the next step
reads -- the component and CI tensors, the AdamW and persistent-PGD states, the run's generator and the global
torch RNG, the history, the step, the clock of the time budget, the configuration, the torch thread count, the
target's weight fingerprint, and for each data stream how many batches it has handed out and a digest of the
last one. A resumed run skips that many batches of the (deterministic) streams it is given and checks the
digest, so it continues bit-identically: the same tensors, to the bit, as the run that was never stopped (with
the same thread count and device; a time budget is wall-clock and is the one exception). ``resume_state``
refuses, before any step, a missing, truncated or corrupted state, or one made with another configuration
(naming each field that differs; only where the run writes and logs may change, ``RESUME_MAY_CHANGE``), and
``decompose`` one made for other target weights or fed other batches. With ``config.checkpoint_dir`` set, a
SIGINT or SIGTERM lets the step in progress finish, writes a checkpoint and raises ``TrainingInterrupted`` (a
second signal stops at once); without it (a notebook's live run) a Ctrl-C or the stop button raises
``TrainingStopped``, whose message says the run cannot continue and why. The pieces shared with the target's training (``vpd_lite.models.target``) are in
``vpd_lite.method.resumable``.

Run ``python -m vpd_lite.decompose [--quick] [--out DIR] [--minutes N] [--capability LANG]`` to decompose the
shipped target (``--capability de``: a targeted decomposition of German).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.profiler import record_function
from tqdm.auto import tqdm

from vpd_lite.method.checkpoint import (
    STATE_FILE,
    component_tensors,
    copy_component_tensors,
    load_decomposition,
    read_metadata,
    save_decomposition,
    target_fingerprint,
)
from vpd_lite.method.components import ComponentModel, ModelAdapter
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.devices import autocast, resolve_device
from vpd_lite.method.losses import (
    annealed_p,
    faithfulness_loss,
    head_reconstruction_kl,
    importance_minimality_loss,
    recon_loss,
    recon_target,
)
from vpd_lite.method.masks import (
    delta_stochastic_masks,
    stochastic_masks,
    uniform_k_subset_routing,
)
from vpd_lite.method.pgd import PersistentPGD
from vpd_lite.method.resumable import (
    DataStream,
    TrainingInterrupted,
    deferred_signals,
    open_training_state,
    recipe_differences,
    stopped_without_checkpoints,
)
from vpd_lite.method.sharding import (
    Shard,
    average_gradients,
    max_across_ranks,
    sum_across_ranks,
)


def keep_freed_memory() -> bool:
    """Process-wide speed-up for CPU runs (glibc only; returns False and does nothing elsewhere).

    By default glibc serves every large tensor (> 32 MB at most) with a fresh ``mmap`` and returns it to the
    OS on free, so each new vocab-sized tensor costs thousands of page faults -- on a small VM this can cost
    more than the arithmetic. This switches large allocations to the heap and keeps freed memory for reuse
    (``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, 2**31 - 1)``). Peak RSS is unchanged; RSS simply
    does not shrink after the peak. Used by the CLI and the benchmark; call it once at the start of a process.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def build_component_model(model: nn.Module, config: DecomposeConfig,
                          adapter: ModelAdapter | None = None) -> ComponentModel:
    """Wrap ``model`` (frozen) with components and CI functions as the config says (``adapter``: how to run
    it; default ``components.default_adapter(model)``)."""
    return ComponentModel(model, config.targets, ci_type=config.ci_type, ci_hidden=config.ci_hidden,
                          use_delta=config.use_delta, seed=config.seed, adapter=adapter,
                          ci_global_hidden=config.ci_global_hidden, ci_global_d_model=config.ci_global_d_model,
                          ci_global_blocks=config.ci_global_blocks, ci_global_heads=config.ci_global_heads,
                          ci_global_mlp_ratio=config.ci_global_mlp_ratio)


def _lr_factor(frac: float, config: DecomposeConfig) -> float:
    if config.lr_warmup_frac > 0 and frac < config.lr_warmup_frac:
        return max(frac / config.lr_warmup_frac, 1e-3)
    t = (frac - config.lr_warmup_frac) / max(1 - config.lr_warmup_frac, 1e-12)
    t = min(max(t, 0.0), 1.0)
    f = config.lr_final_frac
    return f + (1 - f) * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def init_read_directions_from_data(cm: ComponentModel, batch: Tensor, generator: torch.Generator) -> None:
    """Point every component's read direction V_c along the layer input at one random position of ``batch``
    (positions whose input is zero are skipped), keeping the column norms of the random init; U is left as it
    is and the faithfulness warm-up then fits sum_c U_c V_c^T to W.

    A random V_c reads every input direction a little, and in a small model the components that end up alive
    are often the ones that started reading two features at once: an initial mixture that training does not
    undo. Starting each V_c on a direction the data actually takes (for sparse features: usually one feature)
    removes most of those mixtures. The positions are drawn without replacement with ``generator``.

    Raises ValueError when the batch has fewer non-zero positions than a matrix has components."""
    _, inputs = cm.target_output_and_inputs(batch)
    for name in cm.module_names:
        comp = cm.components[name]
        x = inputs[name].reshape(-1, inputs[name].shape[-1]).to(comp.V.dtype)
        x = x[x.norm(dim=1) > 0]
        if x.shape[0] < comp.C:
            raise ValueError(f"component_init='data' needs at least {comp.C} non-zero inputs to {name} in the "
                             f"first batch, got {x.shape[0]}")
        pick = torch.randperm(x.shape[0], generator=generator)[: comp.C].to(x.device)
        directions = x[pick] / x[pick].norm(dim=1, keepdim=True)  # (C, d_in)
        comp.V.copy_(directions.T * comp.V.norm(dim=0, keepdim=True))


def faithfulness_warmup(cm: ComponentModel, config: DecomposeConfig) -> float:
    """Fit only sum_c U_c V_c^T ~ W (no data needed); returns the final faithfulness loss."""
    params = [p for comp in cm.components.values() for p in (comp.U, comp.V)]
    if config.faithfulness_warmup_steps <= 0:
        return float(faithfulness_loss(cm.components.values(), config.faithfulness_reduction))
    if config.faithfulness_warmup_weight_decay > 0:
        opt = torch.optim.AdamW(params, lr=config.faithfulness_warmup_lr,
                                weight_decay=config.faithfulness_warmup_weight_decay)
    else:  # plain Adam, as the shipped decomposition was warmed up
        opt = torch.optim.Adam(params, lr=config.faithfulness_warmup_lr)
    loss = torch.zeros(())
    for _ in range(config.faithfulness_warmup_steps):
        opt.zero_grad(set_to_none=True)
        loss = faithfulness_loss(cm.components.values(), config.faithfulness_reduction)
        loss.backward()
        opt.step()
    return float(loss.detach())


def train_step(
    cm: ComponentModel,
    input_ids: Tensor,
    config: DecomposeConfig,
    p: float,
    ppgd: PersistentPGD | None,
    generator: torch.Generator,
    shard: Shard = Shard(),
    remainder_on: bool = False,
    minimality_weight: float = 1.0,
) -> dict[str, float]:
    """Forward + backward of one VPD step (gradients are left in the parameters and PGD sources; the caller
    steps the optimisers with ``update``). input_ids: the batch (B, T) token ids for a language model; any
    batch the model's adapter takes otherwise. Returns the loss terms and the mean L0 as floats.

    A targeted decomposition (``config.targeted``) calls this twice per step (``targeted_step``): on the
    capability's batch as it stands but without the faithfulness loss, and on a rest batch with
    ``remainder_on=True`` (the delta component's mask pinned to 1), ``ppgd=None`` (no adversarial pass) and
    ``minimality_weight=config.rest_minimality_ratio``.

    In a data-parallel run (``shard.world > 1``) ``input_ids`` are this rank's B rows of a global batch of
    ``world * B``: random draws are made for the global batch and sliced, and the minimality loss uses the
    global firing sums (see ``vpd_lite.method.sharding``); the caller averages the gradients across ranks.
    """
    names = cm.module_names
    device = input_ids.device
    amp = autocast(device, config.bf16_autocast)
    kind = config.recon_kind(cm)

    with amp, record_function("vpd: target pass"):
        target_out, inputs = cm.target_output_and_inputs(input_ids)
    inputs = {n: x.float() if x.dtype in (torch.bfloat16, torch.float16) else x for n, x in inputs.items()}
    positions = tuple(next(iter(inputs.values())).shape[:-1])  # (B, T) for a language model, (B,) for a vector
    B = positions[0]
    gB, rows = B * shard.world, shard.local_rows(B * shard.world)
    gP = (gB, *positions[1:])

    def local(draws: dict[str, Tensor]) -> dict[str, Tensor]:
        return draws if not shard.active else {n: t[rows] for n, t in draws.items()}

    with record_function("vpd: causal importance"):
        ci_lower, ci_upper = cm.causal_importance(inputs, config.ci_alpha)
    ci_leaf = {n: g.detach().requires_grad_(True) for n, g in ci_lower.items()}
    target = recon_target(kind, target_out)
    del target_out  # p (in ``target``) is all the KLs need
    head = cm.output_head() if kind == "kl" else None  # None: full outputs (not a plain LM head, or MSE)
    out: dict[str, float] = {}

    def recon(label: str, masks, dmasks, coeff: float, subset: bool) -> float:
        routing = local(uniform_k_subset_routing(names, gP, generator, device)) if subset else None
        with amp, record_function(f"vpd: {label} pass, forward"):
            if head is not None:  # the (B, T, V) logits are made and consumed a block of rows at a time
                loss = head_reconstruction_kl(cm.final_hidden_with_masks(input_ids, masks, routing, dmasks),
                                              head, target)
            else:
                loss = recon_loss(kind, cm.forward_with_masks(input_ids, masks, routing, dmasks), target)
        with record_function(f"vpd: {label} pass, backward"):
            (coeff * loss).backward()  # frees this pass's graph right away
        return float(loss.detach())

    # the remainder's mask: u on the capability's (or any full decomposition's) batches; on the rest of the data
    # pinned to 1 (``remainder_on``), the components still masked
    dmasks = local(delta_stochastic_masks(names, gP, generator, device, remainder_on)) if cm.use_delta else None
    stoch = stochastic_masks(ci_leaf, generator, global_rows=gB, rows=rows)
    out["stochastic_recon"] = recon("stochastic", stoch, dmasks, config.coeff_stochastic, config.subset_routing)
    if config.coeff_ci_masked > 0:
        out["ci_masked_recon"] = recon("CI-masked", ci_leaf, None, config.coeff_ci_masked, False)
    if ppgd is not None:
        adv_masks, adv_dmasks = ppgd.masks(ci_leaf, row_offset=rows.start)
        out["adversarial_recon"] = recon("adversarial", adv_masks, adv_dmasks, config.coeff_adversarial,
                                          config.subset_routing and config.adversarial_routing == "subset")
    with record_function("vpd: minimality, faithfulness and CI backward"):
        reduce = (lambda t: sum_across_ranks(t, shard)) if shard.active else None
        l_min = importance_minimality_loss(ci_upper, p, config.beta, config.eps, reduce=reduce)
        ci_list = [ci_lower[n] for n in names if ci_leaf[n].grad is not None]
        grads = [ci_leaf[n].grad for n in names if ci_leaf[n].grad is not None]
        others = config.coeff_minimality * minimality_weight * l_min
        if not config.targeted:  # a targeted run has no faithfulness loss: its remainder must stay non-zero
            l_faith = faithfulness_loss(cm.components.values(), config.faithfulness_reduction)
            others = others + config.coeff_faithfulness * l_faith
            out["faithfulness"] = float(l_faith.detach())
        torch.autograd.backward([others] + ci_list, [torch.ones_like(others)] + grads)
    out["minimality"] = float(l_min.detach())
    with torch.no_grad():
        l0 = [float((ci_lower[n] > 0).float().sum(-1).mean()) for n in names]
    out["l0_mean"] = sum(l0) / len(l0)
    out["l0_total"] = sum(l0)
    return out


def targeted_step(
    cm: ComponentModel,
    capability_ids: Tensor,
    rest_ids: Tensor,
    config: DecomposeConfig,
    p: float,
    ppgd: PersistentPGD | None,
    generator: torch.Generator,
    shard: Shard = Shard(),
) -> dict[str, float]:
    """Forward + backward of one step of a targeted decomposition (tPD): both passes' gradients are left for
    one ``update``. Returns the capability pass's terms and the rest pass's, prefixed ``rest_``.

    * capability batch (``capability_ids``): the ordinary VPD step -- stochastic and adversarial
      reconstruction with the remainder W - sum_c U_c V_c^T masked like a component (its mask drawn, or chosen
      by the adversary), so the components alone must carry what the capability needs; importance minimality.
    * rest batch (``rest_ids``): the remainder's mask pinned to 1, the components' masks still stochastic;
      stochastic reconstruction only (the adversarial pass is left out there); importance minimality weighted
      ``config.rest_minimality_ratio``, so what only the rest of the data uses drifts into the remainder.
    * no faithfulness loss and no warm-up: both would push the remainder to zero, and the method needs it.

    Source: "Targeted Recovery of Weight-Space Mechanisms From Neural Networks" (arXiv 2607.13047) and its
    public port in goodfire-ai/param-decomp (``param_decomp_lab/targeted.py``: the nontarget pass drops the
    persistent-PGD and unmasked losses, runs with the delta forced on, and scales the minimality coefficient)."""
    terms = train_step(cm, capability_ids, config, p, ppgd, generator, shard)
    rest = train_step(cm, rest_ids, config, p, None, generator, shard, remainder_on=True,
                      minimality_weight=config.rest_minimality_ratio)
    return terms | {f"rest_{k}": v for k, v in rest.items()}


def update(params: list[nn.Parameter], opt: torch.optim.Optimizer, ppgd: PersistentPGD | None,
           grad_clip: float) -> float:
    """The end of a training step, after ``train_step`` (and any averaging across ranks): clip the gradients
    of ``params`` to norm ``grad_clip``, step ``opt``, and take the PGD sources' ascent step. Returns the
    gradient norm before clipping."""
    with record_function("vpd: clip and AdamW"):
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
        opt.step()
    if ppgd is not None:
        with record_function("vpd: PGD ascent"):
            ppgd.ascent_step()
    return grad_norm


def _mean_over_ranks(terms: dict[str, float], shard: Shard) -> dict[str, float]:
    """Average logged per-rank loss terms over the ranks (the minimality loss is already global)."""
    keys = sorted(k for k in terms if k != "minimality")
    vals = sum_across_ranks(torch.tensor([terms[k] for k in keys], dtype=torch.float64), shard) / shard.world
    return {**terms, **{k: float(v) for k, v in zip(keys, vals)}}


#: Configuration fields a resumed run may change: where it writes and how often it logs and saves, and where it
#: computes (another device gives other floats). Every other field must equal the checkpoint's.
RESUME_MAY_CHANGE: tuple[str, ...] = ("checkpoint_dir", "checkpoint_every", "log_every", "device")


#: The layout of ``training_state.pt`` that ``decompose`` writes (states without a ``"format"`` are older).
STATE_FORMAT = 2


def resume_state(folder: str | Path, config: DecomposeConfig) -> dict[str, Any]:
    """The training state of the unfinished run in ``folder`` (its ``training_state.pt``), checked against the
    ``config`` it is to continue with; nothing is changed.

    Raises:
        FileNotFoundError: ``folder`` or its ``training_state.pt`` does not exist.
        ValueError: the state is truncated or corrupted (its bytes do not match its sha256), or the run was made
            with another configuration (every differing field is named, with both values; only the fields in
            ``RESUME_MAY_CHANGE`` may differ), or the state holds no step.
    """
    folder = Path(folder)
    state = open_training_state(folder)
    recorded = state.get("config")
    if recorded is None:  # a state of the first format: the configuration is in decomposition.json
        recorded = read_metadata(folder).get("config") or {}
    # a field the record lacks (written before the field existed) counts as its default, which keeps the old behaviour
    recorded = {**json.loads(json.dumps(dataclasses.asdict(DecomposeConfig()), default=list)), **recorded}
    said = recipe_differences(recorded, dataclasses.asdict(config), RESUME_MAY_CHANGE)
    if said:
        raise ValueError(f"the run in {folder} was made with another configuration ({said}): a resumed run must keep "
                         "its recipe; give the same settings, or start a new run in another folder")
    return state


def decompose(
    model: nn.Module,
    batches: Iterable[Tensor],
    config: DecomposeConfig = DecomposeConfig(),
    cm: ComponentModel | None = None,
    resume_from: str | Path | None = None,
    progress: bool = True,
    shard: Shard = Shard(),
    adapter: ModelAdapter | None = None,
    rest_batches: Iterable[Tensor] | None = None,
) -> tuple[ComponentModel, list[dict[str, float]]]:
    """Decompose the frozen ``model`` on ``batches`` (cycled if re-iterable): LongTensor (B, T) token ids for a
    causal LM, or whatever ``adapter`` (a ``components.ModelAdapter``; default: recognised from the model)
    feeds the model, e.g. (B, n_features) float tensors for a toy model of superposition.

    Targeted decomposition (``config.capability`` set): ``batches`` hold the capability's data and
    ``rest_batches`` (required then, refused otherwise) the rest of the data, in the same form. Each step
    takes one batch of each (see ``targeted_step``); there is no faithfulness warm-up or loss.

    Raises ValueError before any training if the first batch cannot be used (a causal LM's sequences longer
    than its position limit, or not (B, T) integer ids).

    Returns (ComponentModel, history); history is a list of dicts (step, progress, lr, p, loss terms, L0,
    elapsed seconds), one per ``log_every`` steps. With ``config.time_budget_minutes`` the run stops when the
    budget is spent and the LR / p schedules follow ``max(step / steps, elapsed / budget)``. With
    ``config.checkpoint_dir`` a checkpoint (with the whole training state) is written every ``checkpoint_every``
    steps, at the end, and on a SIGINT or SIGTERM (after the step in progress; then ``TrainingInterrupted`` is
    raised). ``resume_from`` continues from such a folder bit-identically, given the same ``config`` (up to
    ``RESUME_MAY_CHANGE``), model and batches (the streams are advanced past the batches already used); a run
    whose checkpoint is at its last step returns at once.

    Raises (before any step) ``FileNotFoundError`` for a ``resume_from`` without a training state, and
    ``ValueError`` for a truncated or corrupted one, another configuration (``resume_state``), other target
    weights, or batches other than the run's.

    Data-parallel (``vpd_lite.method.sharding``; started by ``python -m vpd_lite.distributed``): every rank
    passes the same global batches and its ``shard``; it trains on its rows, gradients are averaged across
    ranks, only rank 0 writes checkpoints, and the logged losses are averaged across ranks.
    """

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    start_step, elapsed_before = 0, 0.0
    state = None
    if config.targeted and rest_batches is None:
        raise ValueError(f"a targeted decomposition (capability {config.capability!r}) needs rest_batches: "
                         "the data without that capability")
    if not config.targeted and rest_batches is not None:
        raise ValueError("rest_batches are for a targeted decomposition: set config.capability")
    if resume_from is not None:
        state = resume_state(resume_from, config)
        if "components" in state:  # one file holds the whole state: build the model and fill it from there
            if state.get("target_fingerprint") is not None:
                names = list(state["components_modules"])
                if target_fingerprint(model, names) != state["target_fingerprint"]:
                    raise ValueError(f"the run in {resume_from} was made for a different target model: its weight "
                                     "fingerprint differs")
            cm = build_component_model(model, config, adapter) if cm is None else cm
            copy_component_tensors(cm, state["components"], str(Path(resume_from) / STATE_FILE))
        else:  # first format: the tensors are in components.safetensors
            cm = load_decomposition(resume_from, model, adapter=adapter)
    if cm is None:
        cm = build_component_model(model, config, adapter)
    config.recon_kind(cm)  # validates the choice early
    stream = DataStream(batches, "batches", check=cm.check_batch)
    rest_stream = None if rest_batches is None else DataStream(rest_batches, "rest_batches", check=cm.check_batch)
    if state is not None:  # skip what the run has already trained on
        positions = state.get("streams") or {}
        stream.skip_to(positions.get("batches", {"consumed": int(state["step"])}))
        if rest_stream is not None:
            rest_stream.skip_to(positions.get("rest_batches", {"consumed": int(state["step"])}))
    device = resolve_device(config.device)
    cm.to(device)  # moves the wrapped target model too
    if state is None:
        if config.component_init == "data":
            init_read_directions_from_data(cm, stream.first.to(device), gen)
        if not config.targeted:  # a targeted run keeps its remainder: no warm-up pulls it to zero
            warm = faithfulness_warmup(cm, config)
            history.append({"step": 0, "faithfulness_after_warmup": warm})
    params = cm.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    ppgd = None
    if config.adversarial:
        ppgd = PersistentPGD(cm.C_per_module, config.pgd_n_sets, cm.use_delta, config.pgd_lr,
                             tuple(config.pgd_betas), config.pgd_init, gen, device=device)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        if ppgd is not None and state.get("ppgd") is not None:
            ppgd.load_state_dict(state["ppgd"])
        start_step, elapsed_before = int(state["step"]), float(state["elapsed_s"])
        history = list(state.get("history", []))
        gen.set_state(state["generator"])
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    budget_s = None if config.time_budget_minutes is None else 60.0 * config.time_budget_minutes
    t0 = time.perf_counter() - elapsed_before

    def elapsed() -> float:
        """Seconds since the start; in a data-parallel run the largest over the ranks, so that every rank
        sees the same schedule and stops at the same step (each rank's own clock may start late)."""
        t = time.perf_counter() - t0
        if shard.active and budget_s:
            return float(max_across_ranks(torch.tensor(t, dtype=torch.float64), shard))
        return t

    def frac_done(step: int) -> float:
        f = step / max(config.steps, 1)
        if budget_s:
            f = max(f, elapsed() / budget_s)
        return min(f, 1.0)

    def checkpoint(step: int) -> None:
        if config.checkpoint_dir is None or shard.rank != 0:
            return
        streams = {"batches": stream.position()}
        if rest_stream is not None:
            streams["rest_batches"] = rest_stream.position()
        save_decomposition(cm, config.checkpoint_dir, config, history=history, training_state={
            "format": STATE_FORMAT, "step": step, "elapsed_s": time.perf_counter() - t0,
            "config": dataclasses.asdict(config), "components": component_tensors(cm),
            "components_modules": list(cm.module_names),
            "target_fingerprint": target_fingerprint(cm.model, cm.module_names),
            "optimizer": opt.state_dict(), "ppgd": None if ppgd is None else ppgd.state_dict(),
            "history": history, "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
            "streams": streams, "threads": torch.get_num_threads(),
        })

    def stop_signal(received: list[int]) -> int | None:
        """The signal that asks every rank to stop after this step (agreed across ranks), or None."""
        if not shard.active:
            return received[0] if received else None
        agreed = max_across_ranks(torch.tensor(float(received[0] if received else 0), dtype=torch.float64), shard)
        return int(agreed) or None

    bar = tqdm(total=config.steps, initial=start_step, disable=not progress, desc="VPD", dynamic_ncols=True,
               leave=False)
    step = start_step
    cm.train()
    with deferred_signals(config.checkpoint_dir is not None) as received, stopped_without_checkpoints(
            config.checkpoint_dir is None, lambda: step, config.steps, lambda: (bar.close(), cm.eval())):
        while step < config.steps:
            frac = frac_done(step)
            if budget_s and frac >= 1.0:
                break
            lr = config.lr * _lr_factor(frac, config)
            for group in opt.param_groups:
                group["lr"] = lr
            p = annealed_p(frac, config.p_start, config.p_end, config.p_anneal_start_frac,
                           config.p_anneal_end_frac)
            ids = stream.next()
            ids = ids[shard.local_rows(ids.shape[0])].to(device)
            opt.zero_grad(set_to_none=True)
            if config.targeted:
                rest_ids = rest_stream.next()
                rest_ids = rest_ids[shard.local_rows(rest_ids.shape[0])].to(device)
                terms = targeted_step(cm, ids, rest_ids, config, p, ppgd, gen, shard)
            else:
                terms = train_step(cm, ids, config, p, ppgd, gen, shard)
            if shard.active:
                average_gradients(params + ([] if ppgd is None else ppgd.leaves()), shard)
                terms = _mean_over_ranks(terms, shard)
            grad_norm = update(params, opt, ppgd, config.grad_clip)
            step += 1
            last = step >= config.steps or (bool(budget_s) and frac_done(step) >= 1.0)
            if step % config.log_every == 0 or last or step == 1:  # the same rows whether resumed or not
                row = {"step": step, "progress": frac, "lr": lr, "p": p, "grad_norm": grad_norm, **terms,
                       "elapsed_s": time.perf_counter() - t0}
                history.append(row)
            if step == start_step + 1 or step % config.log_every == 0 or last:
                bar.set_postfix(stoch=f"{terms['stochastic_recon']:.3f}",
                                adv=f"{terms.get('adversarial_recon', float('nan')):.3f}",
                                l0=f"{terms['l0_mean']:.1f}",
                                **({"rest_l0": f"{terms['rest_l0_mean']:.1f}"} if config.targeted
                                   else {"faith": f"{terms['faithfulness']:.1e}"}))
            bar.update(1)
            saved = bool(config.checkpoint_every) and step % config.checkpoint_every == 0
            if saved:
                checkpoint(step)
            signum = None if config.checkpoint_dir is None else stop_signal(received)
            if signum is not None:
                bar.close()
                cm.eval()
                if not saved:
                    checkpoint(step)
                raise TrainingInterrupted(step, config.steps, str(config.checkpoint_dir), signum)
    bar.close()
    cm.eval()
    checkpoint(step)
    return cm, history
