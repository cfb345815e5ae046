"""Toy models of superposition (TMS) whose true features are known: the first test of any decomposition.

A TMS model (Elhage et al. 2022, "Toy Models of Superposition"; the SPD paper's first experiment, Bushnaq et
al. 2025, arXiv 2506.20790) squeezes n sparse features through m < n hidden dimensions and back:

    h = W x            W: (m, n), x: (B, n)     ``linear1`` (nn.Linear, no bias, weight W)
    x_hat = ReLU(W^T h + b)                     ``linear2`` (nn.Linear, weight W^T, bias b)

trained to reconstruct x (mean squared error) on sparse inputs: each feature is present independently with
probability p (default 0.05) and then takes a value uniform in [0, 1] (``sparse_features``). The weights are
tied (linear2's weight is linear1's transposed) while training. TMS 5-2 (5 features in 2 dims) learns a
pentagon: the five columns W_i of W point to the corners of a regular pentagon. TMS 40-10 packs 40 features
into 10 dims.

The ground truth: feature i is written into the hidden space along W_i (column i of W) and read back along
W_i. So a faithful, minimal decomposition of linear1 has one rank-1 component per feature, U_c ~ W_i (write)
and V_c ~ e_i (read), and of linear2 one with V_c ~ W_i (read) and U_c ~ e_i (write); every other component is
dead (causal importance 0 on every input). ``feature_match`` measures exactly this.

The command ``python -m vpd_lite.toy_models --seeds 0 1 2`` (``vpd_lite.commands.toy_models``) trains TMS 5-2
and TMS 40-10 for each seed, decomposes them with ``tms_decompose_config`` (TMS 5-2: best of 5 runs per matrix
by training loss, ``decompose_tms``) and prints how many components are live and how many true features they
match."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vpd_lite.method.causal_importance import GLOBAL_CI_TYPES
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose
from vpd_lite.method.evaluate import plot_recon_curves
from vpd_lite.method.losses import importance_minimality_loss, reconstruction_mse
from vpd_lite.method.masks import delta_stochastic_masks, stochastic_masks


@dataclass
class TMSConfig:
    """A toy model of superposition and its training (defaults: TMS 5-2 as in the SPD paper)."""

    n_features: int = 5
    n_hidden: int = 2
    feature_prob: float = 0.05  # each feature present independently with this probability
    batch_size: int = 1024
    steps: int = 5000
    lr: float = 5e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.n_hidden <= self.n_features:
            raise ValueError(f"need 0 < n_hidden <= n_features, got {self.n_hidden} and {self.n_features}")
        if not 0 < self.feature_prob <= 1:
            raise ValueError(f"feature_prob must be in (0, 1], got {self.feature_prob}")


TMS_5_2 = TMSConfig(n_features=5, n_hidden=2)


TMS_40_10 = TMSConfig(n_features=40, n_hidden=10, batch_size=2048, steps=5000)


#: Decomposition settings for TMS 40-10 that differ from ``tms_decompose_config``'s (as in the public reference's
#: 40-10 run: a much smaller minimality coefficient with p = 2). With 5-2's 3e-3 and p = 1, seed 0 kept only 13
#: live components per matrix, matching 3 and 2 of the 40 features.
TMS_40_10_OVERRIDES: dict[str, Any] = {"coeff_minimality": 1e-4, "p_start": 2.0, "p_end": 2.0}


class TMSModel(nn.Module):
    """x (..., n) -> ReLU(W^T W x + b) (..., n), as two ``nn.Linear`` layers that a decomposition can target:
    ``linear1`` (weight W (m, n), no bias) and ``linear2`` (weight (n, m) = W^T after training, bias b)."""

    def __init__(self, n_features: int = 5, n_hidden: int = 2) -> None:
        super().__init__()
        self.n_features, self.n_hidden = n_features, n_hidden
        self.linear1 = nn.Linear(n_features, n_hidden, bias=False)
        self.linear2 = nn.Linear(n_hidden, n_features, bias=True)
        # Xavier-normal W and a zero bias: with nn.Linear's default (small uniform) init, training often ends
        # with some features never learned (seeds 1 and 2 of TMS 5-2 kept 1 and 4 of the 5 features)
        nn.init.xavier_normal_(self.linear1.weight)
        nn.init.zeros_(self.linear2.bias)
        self.tie_weights_()

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.linear2(self.linear1(x)))

    def tied_forward(self, x: Tensor) -> Tensor:
        """The forward pass with linear2's weight taken as linear1's transpose (used while training)."""
        return torch.relu(nn.functional.linear(self.linear1(x), self.linear1.weight.T, self.linear2.bias))

    @torch.no_grad()
    def tie_weights_(self) -> "TMSModel":
        """Set linear2's weight to linear1's transpose."""
        self.linear2.weight.copy_(self.linear1.weight.T)
        return self


def sparse_features(batch_size: int, n_features: int, feature_prob: float,
                    generator: torch.Generator | None = None) -> Tensor:
    """(batch_size, n_features) float32: each entry is present with probability ``feature_prob`` (independently)
    and then uniform in [0, 1]; absent entries are 0 (the SPD paper's TMS data)."""
    present = torch.rand(batch_size, n_features, generator=generator) < feature_prob
    values = torch.rand(batch_size, n_features, generator=generator)
    return values * present


def feature_batches(n_features: int, feature_prob: float, batch_size: int, seed: int = 0) -> Iterator[Tensor]:
    """An endless, seeded stream of ``sparse_features`` batches."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield sparse_features(batch_size, n_features, feature_prob, gen)


def one_feature_inputs(n_features: int, value: float = 1.0) -> Tensor:
    """(n_features, n_features): row i has feature i at ``value`` and every other feature at 0."""
    return torch.eye(n_features) * value


def train_tms(config: TMSConfig = TMS_5_2, progress: bool = False) -> tuple[TMSModel, list[float]]:
    """Train a TMS model (tied weights, AdamW, constant LR, MSE to the input) and return it with its loss
    curve (one mean squared error per 100 steps). Seeded and deterministic on CPU."""
    torch.manual_seed(config.seed)
    model = TMSModel(config.n_features, config.n_hidden)
    params = [model.linear1.weight, model.linear2.bias]
    opt = torch.optim.AdamW(params, lr=config.lr)
    losses: list[float] = []
    data = feature_batches(config.n_features, config.feature_prob, config.batch_size, config.seed + 10_000)
    for step in tqdm(range(config.steps), desc="train TMS", disable=not progress, leave=False):
        x = next(data)
        loss = (model.tied_forward(x) - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == config.steps - 1:
            losses.append(float(loss.detach()))
    model.tie_weights_()
    return model.eval(), losses


def true_feature_directions(model: TMSModel) -> Tensor:
    """(n_hidden, n_features): column i is W_i, the hidden-space direction of feature i (linear1's weight)."""
    return model.linear1.weight.detach().clone()


def tms_decompose_config(n_features: int = 5, n_hidden: int = 2, C: int | None = None, steps: int = 4000,
                         seed: int = 0, **overrides: Any):
    """The ``DecomposeConfig`` for a TMS model: both matrices (linear1, linear2) with C components each
    (default 2 x n_features), per-component scalar CI MLPs (hidden 16), MSE reconstruction, stochastic plus
    persistent-PGD adversarial masks, subset routing, importance minimality with p = 1 and no frequency term,
    and read directions started on data (``component_init="data"``).

    These follow the public reference's TMS runs (C = 20 per matrix there; MLP CI with 16 hidden units;
    minimality coefficient 3e-3 with p = 1 and no frequency term; a faithfulness warm-up with weight decay 0.1;
    cosine LR decay to 0; batch 4096 for 10k-40k steps), shortened for a CPU: batch 1024, 4,000 steps at lr 3e-3.

    With C = 10 instead of 20 the optimisation often ends in a local minimum: a live component reads two
    features at once (with the same sign, so its causal importance cannot tell them apart) and a spare component
    that could have taken one of them over is already dead. Starting training from an exact solution stays exact
    and has a lower training loss (stochastic MSE + minimality), so the objective is right and the search is not.
    How the settings were chosen, on seeds 3-10 only (seeds 0, 1, 2 are the reported ones, run once after):
    random read directions recovered every feature of both matrices in 0 of 6 runs; read directions started on
    the data in 8 of 16 (two draws of the starting positions). Other settings, each on 2-4 of these seeds:
    C = 20 (2 of 4), a per-component CI reading the whole input (1 of 4; 1 of 8 with data starts), a
    shared-MLP CI (0 of 8), lr 1e-3 (0 of 4), the reference's batch 4096, lr 1e-3 and 10,000 steps (0 of 2),
    CI leak 0.1 (1 of 4), PGD step 1, p annealed 2 -> 1, minimality 1e-3 or ramped in over the first quarter,
    no adversary, no warm-up weight decay (0 of 4 each), 8,000 steps with data starts (1 of 4).
    Since about half the runs still end in such a minimum, ``decompose_tms(..., restarts=K)`` keeps per matrix
    the run with the lowest training loss. On seeds 3, 4, 5, 7 and 9 (the ones whose first run failed), 3 runs
    each held an exact run for 7 of the 10 matrices, and the loss picked it all 7 times; the CLI uses 5 runs.

    A global CI (``ci_type="global_mlp"`` / ``"global_transformer"``, one network over both matrices' inputs) with
    these settings and 4,000 steps has not recovered TMS 5-2 exactly on seeds 0-2 (|cos| >= 0.99; global MLP of 64
    and of 512 hidden on seeds 0-2, a transformer of d_model 32, 1 block, 2 heads on seeds 0-1): linear1 was exact
    in 2 of these 8 runs, linear2 in none -- it ends with 2-4 live components for 5 features. Neither minimality
    1e-3 nor leaving out the RMS norm of the inputs changed that. Settings that recover it are still to be found.
    """

    C = 2 * n_features if C is None else C
    base = dict(
        targets={"linear1": C, "linear2": C}, ci_type="mlp", ci_hidden=16, recon_loss="mse",
        steps=steps, batch_size=1024, seq_len=1, lr=3e-3, lr_final_frac=0.0, lr_warmup_frac=0.0,
        faithfulness_warmup_steps=200, faithfulness_warmup_lr=1e-2, faithfulness_warmup_weight_decay=0.1,
        coeff_faithfulness=1.0,
        coeff_stochastic=1.0, coeff_adversarial=1.0, coeff_minimality=3e-3, p_start=1.0, p_end=1.0, beta=0.0,
        adversarial_routing="subset", pgd_lr=0.1, component_init="data", device="cpu", checkpoint_every=0,
        log_every=100, seed=seed,
    )
    base.update(overrides)
    return DecomposeConfig(**base)


def decompose_tms(model: TMSModel, config=None, feature_prob: float = 0.05, progress: bool = False,
                  restarts: int = 1):
    """Decompose a trained TMS model on its own data distribution: (ComponentModel, history).

    ``restarts`` > 1 runs the decomposition that many times, from the starting seeds ``config.seed + 1000 k``
    (k = 0 .. restarts - 1; the data stream is the same), and keeps for each matrix the components and CI
    function of the run with the lowest ``matrix_objectives`` (training loss on fresh samples of the training
    distribution; no ground truth is read). Each matrix has its own components, CI function and minimality
    term, and each run trains every matrix alone as well as together (subset routing), so a matrix can be taken
    from one run and the other from another. The history is the first run's, plus a last row with every run's
    objectives and the chosen run per matrix.

    Raises ValueError if ``restarts`` < 1, or > 1 with a global CI type (one CI function over all matrices
    cannot be taken per matrix)."""
    import dataclasses as dc

    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    if config is None:
        config = tms_decompose_config(model.n_features, model.n_hidden)
    if restarts > 1 and config.ci_type in GLOBAL_CI_TYPES:
        raise ValueError(f"restarts pick the best run per matrix, which needs a CI function per matrix; ci_type "
                         f"{config.ci_type!r} has one over all matrices: use restarts=1")
    runs = []
    for k in range(restarts):
        run_config = dc.replace(config, seed=config.seed + 1000 * k)
        batches = feature_batches(model.n_features, feature_prob, config.batch_size, config.seed + 20_000)
        runs.append(decompose(model, batches, run_config, progress=progress))
    if restarts == 1:
        return runs[0]
    objectives = [matrix_objectives(cm, config, feature_prob) for cm, _ in runs]
    cm, history = runs[0]
    chosen = {}
    for name in cm.module_names:
        k = min(range(restarts), key=lambda i: objectives[i][name])
        chosen[name] = k
        cm.components[name].load_state_dict(runs[k][0].components[name].state_dict())
        cm.ci_fns[name].load_state_dict(runs[k][0].ci_fns[name].state_dict())
    history = history + [{"step": config.steps, "restart_objectives": objectives, "chosen_restart": chosen}]
    return cm, history


@torch.no_grad()
def matrix_objectives(cm, config, feature_prob: float = 0.05, n_samples: int = 50_000, mask_draws: int = 8,
                      seed: int = 12_345) -> dict[str, float]:
    """{module: training objective of that matrix alone}, on ``n_samples`` fresh inputs from the training
    distribution (a fixed seed, so runs are compared on the same inputs):

        L_m = mean over ``mask_draws`` stochastic masks of MSE(model with only m through its masked components,
              target)  +  coeff_minimality * importance minimality of m (p = config.p_end, frequency weight beta)

    Units: squared output units (the MSE) plus the weighted minimality; lower is better. Used by
    ``decompose_tms`` to pick, per matrix, the best of several restarts."""

    gen = torch.Generator().manual_seed(seed)
    x = sparse_features(n_samples, cm.model.n_features, feature_prob, gen)  # cm.model: the wrapped TMSModel
    target, inputs = cm.target_output_and_inputs(x)
    ci_lower, ci_upper = cm.causal_importance(inputs, config.ci_alpha)
    out = {}
    for name in cm.module_names:
        route = {n: torch.full((n_samples,), n == name) for n in cm.module_names}
        mse = 0.0
        for _ in range(mask_draws):
            masks = stochastic_masks(ci_lower, gen)
            dmasks = delta_stochastic_masks(cm.module_names, (n_samples,), gen) if cm.use_delta else None
            mse += float(reconstruction_mse(target, cm.forward_with_masks(x, masks, route, dmasks))) / mask_draws
        minimality = float(importance_minimality_loss({name: ci_upper[name]}, config.p_end, config.beta, config.eps))
        out[name] = mse + config.coeff_minimality * minimality
    return out


@torch.no_grad()
def component_ci_on_data(cm, x: Tensor) -> dict[str, Tensor]:
    """Causal importance (lower-leaky, as the masks use it) of every component on inputs x (B, n_features):
    {module: (B, C)}."""
    _, inputs = cm.target_output_and_inputs(x)
    ci, _ = cm.causal_importance(inputs)
    return {n: g.detach() for n, g in ci.items()}


def _unit(t: Tensor, dim: int) -> Tensor:
    return t / t.norm(dim=dim, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def component_feature_cosines(cm, model: TMSModel) -> dict[str, Tensor]:
    """{module: (C, n_features)}: |cosine| between each component's hidden-space direction and each true
    feature direction W_i. The hidden-space side of a linear1 component is its write direction U_c; of a
    linear2 component its read direction V_c."""
    W = _unit(true_feature_directions(model).float(), dim=0)  # (m, n) unit columns
    out = {}
    for name, comp in cm.components.items():
        if comp.d_out == model.n_hidden:  # linear1: (m, n), writes into the hidden space
            side = comp.U.detach().float()  # (C, m)
        elif comp.d_in == model.n_hidden:  # linear2: (n, m), reads from it
            side = comp.V.detach().float().T  # (C, m)
        else:
            raise ValueError(f"{name} is neither of the TMS model's two matrices")
        out[name] = (_unit(side, dim=1) @ W).abs()  # (C, n)
    return out


@torch.no_grad()
def component_rank1_cosines(cm, model: TMSModel) -> dict[str, Tensor]:
    """{module: (C, n_features)}: |cosine| between each component's rank-1 matrix U_c V_c^T and feature i's
    true rank-1 piece (W_i e_i^T in linear1, e_i W_i^T in linear2), i.e. the product of the write-side and the
    read-side |cosines|. Stricter than ``component_feature_cosines``: it also checks the feature side."""
    W = _unit(true_feature_directions(model).float(), dim=0)  # (m, n)
    eye = torch.eye(model.n_features)
    out = {}
    for name, comp in cm.components.items():
        U, V = _unit(comp.U.detach().float(), dim=1), _unit(comp.V.detach().float(), dim=0)  # (C, d_out), (d_in, C)
        if comp.d_out == model.n_hidden:  # linear1: write W_i, read e_i
            out[name] = (U @ W).abs() * (V.T @ eye).abs()
        else:  # linear2: read W_i, write e_i
            out[name] = (V.T @ W).abs() * (U @ eye).abs()
    return out


@torch.no_grad()
def feature_match(cm, model: TMSModel, feature_prob: float = 0.05, n_samples: int = 20_000,
                  live_threshold: float = 0.1, cos_threshold: float = 0.95, seed: int = 1) -> dict[str, Any]:
    """How well the decomposition recovered the true features, per decomposed matrix.

    A component is *live* if its causal importance exceeds ``live_threshold`` (0.1, the SPD reference's
    "alive" threshold) on at least one of ``n_samples`` inputs from the training distribution or one of the
    one-feature inputs; *dead* otherwise. Each live component is matched to the feature whose direction it
    is closest to (``component_feature_cosines``); a feature is *matched* when some live component has
    |cos| >= ``cos_threshold`` to it. ``exact`` says: as many live components as features, each matched to a
    different feature, all dead ones dead.

    Returns {module: {"live": int, "dead": int, "live_components": [c...], "best_feature": [i...],
    "best_cos": [float...], "rank1_cos": [float...] (``component_rank1_cosines`` to that feature),
    "features_matched": int, "distinct": bool, "exact": bool}}."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.cat([sparse_features(n_samples, model.n_features, feature_prob, gen),
                   one_feature_inputs(model.n_features)])
    ci = component_ci_on_data(cm, x)
    cos = component_feature_cosines(cm, model)
    rank1 = component_rank1_cosines(cm, model)
    report = {}
    for name in cm.module_names:
        live = (ci[name] > live_threshold).any(0)  # (C,)
        live_idx = live.nonzero().squeeze(1).tolist()
        best_cos, best_feat = cos[name].max(dim=1)  # (C,)
        matched = {int(best_feat[c]) for c in live_idx if float(best_cos[c]) >= cos_threshold}
        good = [c for c in live_idx if float(best_cos[c]) >= cos_threshold]
        distinct = len({int(best_feat[c]) for c in good}) == len(good)
        report[name] = {
            "live": len(live_idx),
            "dead": int((~live).sum()),
            "live_components": live_idx,
            "best_feature": [int(best_feat[c]) for c in live_idx],
            "best_cos": [round(float(best_cos[c]), 4) for c in live_idx],
            "rank1_cos": [round(float(rank1[name][c, best_feat[c]]), 4) for c in live_idx],
            "features_matched": len(matched),
            "distinct": distinct,
            "exact": len(live_idx) == model.n_features and len(good) == len(live_idx) and distinct,
        }
    return report


# ------------------------------------------------------------------------------------ targeted decomposition
def feature_subset_batches(n_features: int, features: list[int], feature_prob: float, batch_size: int,
                           seed: int = 0) -> Iterator[Tensor]:
    """An endless, seeded stream of ``sparse_features`` batches in which only ``features`` can be present
    (every other feature is 0): the data of a capability that uses just those features."""
    keep = torch.zeros(n_features)
    keep[list(features)] = 1.0
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield sparse_features(batch_size, n_features, feature_prob, gen) * keep


def decompose_tms_targeted(model: TMSModel, features: list[int], C: int | None = None, steps: int = 4000,
                           seed: int = 0, feature_prob: float = 0.25, progress: bool = False, **overrides: Any):
    """A targeted decomposition of a TMS model whose capability is ``features``: (ComponentModel, history).

    The capability batches activate only ``features``, the rest batches only the other features (both with
    ``feature_prob``). Settings: ``tms_decompose_config``'s, targeted (``capability`` "features i,j,..."; no
    faithfulness warm-up), with C = len(features) + 1 per matrix, 4,000 steps at batch 256 and lr 1e-2.
    Chosen on seeds 0-2 of TMS 5-2 with features (0, 1), watching only whether each matrix ends with exactly one
    live component per capability feature. At ``tms_decompose_config``'s batch 1024, lr 3e-3 and feature
    probability 0.05, 4,000 steps left mixtures of the two features (C 3 or 4, minimality 3e-3 or 1e-2, rest
    ratio 1 or 2) and 8,000 steps at C = 3 separated them on seeds 0 and 1 (seed 2's second matrix reached
    rank-1 |cos| 0.985). Cheaper settings, each on seeds 0-2: 2,000 steps at batch 256 or 512, probability 0.15
    or 0.25, lr 3e-3 or 1e-2 (0 of 3 each); 3,000 steps at probability 0.1, lr 1e-2 (1 of 3); 4,000 steps at
    batch 256, probability 0.25, lr 1e-2 (3 of 3, and 3 of 3 on seeds 3-5 run after): the defaults here, an
    eighth of the 8,000-step run's samples (about 30 s on one thread)."""
    features = sorted(set(features))
    if not features or min(features) < 0 or max(features) >= model.n_features:
        raise ValueError(f"features must be indices in 0..{model.n_features - 1}, got {features}")
    rest = [i for i in range(model.n_features) if i not in features]
    if not rest:
        raise ValueError("a targeted decomposition needs features outside the capability for its rest batches")
    config = tms_decompose_config(model.n_features, model.n_hidden, C=C or len(features) + 1, steps=steps,
                                  seed=seed, capability="features " + ",".join(map(str, features)),
                                  faithfulness_warmup_steps=0, **{"batch_size": 256, "lr": 1e-2, **overrides})
    return decompose(model, feature_subset_batches(model.n_features, features, feature_prob, config.batch_size,
                                                   seed + 20_000),
                     config, progress=progress,
                     rest_batches=feature_subset_batches(model.n_features, rest, feature_prob, config.batch_size,
                                                         seed + 30_000))


@torch.no_grad()
def targeted_feature_match(cm, model: TMSModel, features: list[int], feature_prob: float = 0.05,
                           n_samples: int = 20_000, live_threshold: float = 0.1, seed: int = 1) -> dict[str, Any]:
    """How a targeted decomposition of ``features`` recovered them, per matrix.

    *Live*: causal importance above ``live_threshold`` on some capability input (``n_samples`` from the
    capability's distribution and its one-feature inputs). Each live component is matched to the feature of
    its largest rank-1 |cosine| (``component_rank1_cosines``). ``outside`` is, for every other feature i, how
    much of the matrix's own action on it the components hold: |sum_c U_c V_c^T| on feature i's column
    (linear1 reads feature i there) or row (linear2 writes it) over |W|'s, so 0 means feature i is left to the
    remainder entirely.

    Returns {module: {"live_components", "best_feature", "rank1_cos", "outside": {i: float}, "exact": bool}};
    ``exact``: one live component per capability feature, each with rank-1 |cos| >= 0.99 to a different one."""
    gen = torch.Generator().manual_seed(seed)
    keep = torch.zeros(model.n_features)
    keep[list(features)] = 1.0
    x = torch.cat([sparse_features(n_samples, model.n_features, feature_prob, gen) * keep,
                   one_feature_inputs(model.n_features)[list(features)]])
    ci = component_ci_on_data(cm, x)
    rank1 = component_rank1_cosines(cm, model)
    report = {}
    for name in cm.module_names:
        live = (ci[name] > live_threshold).any(0).nonzero().squeeze(1).tolist()
        best = [int(rank1[name][c].argmax()) for c in live]
        cos = [round(float(rank1[name][c].max()), 4) for c in live]
        comp = cm.components[name]
        held, whole = comp.component_weight(), comp.weight
        axis = 0 if comp.d_out == model.n_hidden else 1  # linear1: feature i is column i; linear2: row i
        outside = {i: round(float(held.select(1 - axis, i).norm() / whole.select(1 - axis, i).norm()), 4)
                   for i in range(model.n_features) if i not in features}
        report[name] = {"live_components": live, "best_feature": best, "rank1_cos": cos, "outside": outside,
                        "exact": len(live) == len(features) and sorted(best) == sorted(features)
                        and min(cos, default=0.0) >= 0.99}
    return report


# ------------------------------------------------------------------------------------------------ pictures
def component_order(cm, model: TMSModel, report: dict[str, Any]) -> dict[str, list[int]]:
    """{module: component indices}: live components sorted by their best-matching feature, then dead ones."""
    cos = component_feature_cosines(cm, model)
    order = {}
    for name in cm.module_names:
        live = report[name]["live_components"]
        best = cos[name].argmax(dim=1)
        dead = [c for c in range(cos[name].shape[0]) if c not in live]
        order[name] = sorted(live, key=lambda c: (int(best[c]), -float(cos[name][c].max()))) + dead
    return order


def plot_feature_directions(model: TMSModel, ax=None):
    """The columns W_i of a 2-hidden-dim TMS model as arrows from the origin (the pentagon of TMS 5-2)."""
    import matplotlib.pyplot as plt

    if model.n_hidden != 2:
        raise ValueError("plot_feature_directions draws 2-dimensional hidden spaces only")
    W = true_feature_directions(model).float()
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.6))
    lim = 1.25 * float(W.norm(dim=0).max())
    for i in range(W.shape[1]):
        x, y = float(W[0, i]), float(W[1, i])
        ax.annotate("", xy=(x, y), xytext=(0, 0), arrowprops=dict(arrowstyle="->", lw=2, color=f"C{i}"))
        ax.text(1.1 * x, 1.1 * y, f"feature {i}", ha="center", va="center", color=f"C{i}")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="hidden dim 1", ylabel="hidden dim 2",
           title="Feature directions W_i")
    ax.axhline(0, color="0.85", lw=0.8)
    ax.axvline(0, color="0.85", lw=0.8)
    return ax


def plot_training(history: list[dict[str, float]]):
    """Reconstruction MSE (stochastic and adversarial masks), importance minimality and mean L0 per step."""
    import matplotlib.pyplot as plt

    # 8.3 inches: JupyterLab's notebook column (848 px) shows it unscaled, tight-bbox padding included, so the fonts
    # keep their size (the notebooks' width, NOTEBOOK_WIDTH_IN of vpd_lite.erase.figures, a layer above this one)
    fig, axes = plt.subplots(1, 3, figsize=(8.3, 3.4))
    rows, steps = plot_recon_curves(axes[0], history, {"stochastic_recon": "stochastic",
                                                       "adversarial_recon": "adversarial"})
    axes[0].set(title="Reconstruction MSE", xlabel="step", yscale="log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False,
               title="masks")  # under the panels, never on a curve
    axes[1].plot(steps, [r["minimality"] for r in rows])
    axes[1].set(title="Importance minimality", xlabel="step")
    axes[2].plot(steps, [r["l0_mean"] for r in rows])
    axes[2].set(title="Mean L0 (CI > 0)", xlabel="step")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def plot_feature_cosines(cm, model: TMSModel, report: dict[str, Any]):
    """Per decomposed matrix, a heatmap of |cos| between each component's rank-1 matrix U_c V_c^T (rows: live
    ones sorted by their best-matching feature, then the dead ones) and each feature's true rank-1 piece
    (columns; ``component_rank1_cosines``): a bright diagonal when every live component is one feature."""
    import matplotlib.pyplot as plt

    cos = component_rank1_cosines(cm, model)
    order = component_order(cm, model, report)
    fig, axes = plt.subplots(1, len(cm.module_names), figsize=(min(8.3, 4.2 * len(cm.module_names)), 4.4),
                             squeeze=False)
    for ax, name in zip(axes[0], cm.module_names):
        rows = order[name]
        live = set(report[name]["live_components"])
        im = ax.imshow(cos[name][rows].numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_yticks(range(len(rows)), [f"c{c}" + ("" if c in live else " (dead)") for c in rows])
        ax.set_xticks(range(model.n_features), [str(i) for i in range(model.n_features)]
                      if model.n_features <= 10 else None)
        ax.set(xlabel="true feature", title=f"{name}: |cos| of U_c V_c\u1d40 to each feature")
        ax.axhline(len(live) - 0.5, color="white", lw=2)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_ci_one_feature(cm, model: TMSModel, report: dict[str, Any], value: float = 1.0):
    """Per decomposed matrix, the causal importance of every component (columns, same order as
    ``plot_feature_cosines``) on each one-feature input (rows: only feature i on, at ``value``)."""
    import matplotlib.pyplot as plt

    ci = component_ci_on_data(cm, one_feature_inputs(model.n_features, value))
    order = component_order(cm, model, report)
    fig, axes = plt.subplots(1, len(cm.module_names), figsize=(min(8.3, 4.6 * len(cm.module_names)), 3.4),
                             squeeze=False)
    for ax, name in zip(axes[0], cm.module_names):
        cols = order[name]
        im = ax.imshow(ci[name][:, cols].numpy(), vmin=0, vmax=1, cmap="magma", aspect="auto")
        ax.set_xticks(range(len(cols)), [f"c{c}" for c in cols], rotation=90)
        ax.set(ylabel="feature switched on", title=f"{name}: CI on one-feature inputs")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def run_experiment(tms: TMSConfig, seed: int, C: int | None = None, steps: int | None = None,
                   progress: bool = False, restarts: int = 1, **overrides: Any) -> dict[str, Any]:
    """Train one TMS model and decompose it (``restarts``: see ``decompose_tms``); returns the ``feature_match``
    report plus timings and settings."""
    t0 = time.perf_counter()
    model, losses = train_tms(dataclasses.replace(tms, seed=seed), progress=progress)
    t1 = time.perf_counter()
    kw = dict(overrides)
    if steps is not None:
        kw["steps"] = steps
    config = tms_decompose_config(tms.n_features, tms.n_hidden, C=C, seed=seed, **kw)
    cm, history = decompose_tms(model, config, tms.feature_prob, progress=progress, restarts=restarts)
    t2 = time.perf_counter()
    report = feature_match(cm, model, tms.feature_prob, cos_threshold=0.95 if tms.n_hidden == 2 else 0.9)
    last = [r for r in history if "stochastic_recon" in r][-1]
    return {
        "model": f"TMS {tms.n_features}-{tms.n_hidden}", "seed": seed, "C": config.targets["linear1"],
        "decompose_steps": config.steps, "restarts": restarts,
        "chosen_restart": history[-1].get("chosen_restart", {n: 0 for n in cm.module_names}),
        "restart_objectives": history[-1].get("restart_objectives"),  # per run: {matrix: matrix_objectives}
        "tms_final_mse": losses[-1],
        # the last logged training losses of the first run
        "final_losses": {k: last[k] for k in ("stochastic_recon", "adversarial_recon", "minimality", "faithfulness")
                         if k in last},
        "faithfulness_residual": cm.faithfulness_residual(),
        "train_s": round(t1 - t0, 1), "decompose_s": round(t2 - t1, 1), "match": report,
    }
