"""``DecomposeConfig``: every setting of a decomposition run (targets, C per matrix, CI type, loss coefficients,
PGD, schedule), and ``override_config`` for ``--set FIELD=VALUE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vpd_lite.method.causal_importance import CI_TYPES
from vpd_lite.method.components import ComponentModel
from vpd_lite.method.losses import FAITHFULNESS_REDUCTIONS, RECON_LOSSES


def _default_targets() -> dict[str, int]:
    return {
        "*.self_attn.q_proj": 128,
        "*.self_attn.k_proj": 128,
        "*.self_attn.v_proj": 128,
        "*.self_attn.o_proj": 128,
        "*.mlp.gate_proj": 256,
        "*.mlp.up_proj": 256,
        "*.mlp.down_proj": 256,
    }


@dataclass
class DecomposeConfig:
    """Everything that defines a decomposition run. Defaults fit the shipped 2-layer Llama target
    (hidden 128, MLP 512, vocab 4096): q/k/v/o and gate/up/down of every layer, 14 matrices.

    ``targets`` is {module-name pattern: C}, the matrices to decompose (not the target *model*, which is the
    model passed to ``decompose``); the field keeps the name recorded in ``decomposition.json``.

    ``capability`` switches to a *targeted* decomposition (tPD): instead of everything the model does, only
    what one capability's data uses is decomposed -- the batches passed to ``decompose`` are that capability's
    data, ``rest_batches`` the rest of the data, and the remainder W - sum_c U_c V_c^T of each matrix absorbs
    everything else (see ``vpd_lite.method.decompose``). Its value names the capability (for the language
    model: a language code such as "de") and is recorded with the decomposition. ``targeted_recipe`` gives
    the recipe's defaults."""

    targets: dict[str, int] = field(default_factory=_default_targets)  # module pattern -> C
    # per matrix: "shared_mlp" | "mlp" | "vector_mlp"; global (one network over all matrices): "global_mlp" |
    # "global_transformer" (see causal_importance). The global transformer, as in the VPD paper: chosen over the
    # per-matrix shared MLP by a rule on training text written before the comparison's verdicts
    # (results/ci_comparison_rule.md, results/ci_comparison.md)
    ci_type: str = "global_transformer"
    ci_hidden: int = 64  # hidden width of a per-matrix CI function
    # global CI sizes, for the shipped 2-layer d-128 target by the paper's rule (causal_importance docstring): a
    # transformer wider than the target (2 x 128) and as deep (1/2-2x its layers); the tPD paper's 512-hidden MLP
    ci_global_hidden: int = 512  # "global_mlp": hidden width
    ci_global_d_model: int = 256  # "global_transformer": residual width
    ci_global_blocks: int = 2  # "global_transformer": transformer blocks
    ci_global_heads: int = 4  # "global_transformer": attention heads (head dim d_model / heads, even)
    ci_global_mlp_ratio: int = 4  # "global_transformer": block MLP width / d_model
    ci_alpha: float = 0.01  # leak of the hard sigmoids
    use_delta: bool = True
    # data / optimisation
    steps: int = 5400
    batch_size: int = 8
    seq_len: int = 128
    lr: float = 3e-3
    lr_final_frac: float = 0.1  # cosine decay to lr * lr_final_frac
    lr_warmup_frac: float = 0.02
    grad_clip: float = 1.0
    faithfulness_warmup_steps: int = 400
    faithfulness_warmup_lr: float = 1e-2
    faithfulness_warmup_weight_decay: float = 0.0  # AdamW weight decay of U, V during the warm-up only
    # "random" (default): random read directions V_c; "data": each V_c starts along the input of one random
    # position of the first batch (see init_read_directions_from_data)
    component_init: str = "random"
    # loss coefficients
    coeff_faithfulness: float = 1e5
    # "matrix_means": sum over matrices of each one's mean squared residual (each matrix weighs the same; the
    # shipped decomposition's form); "mean": one mean over all entries (see losses.faithfulness_loss)
    faithfulness_reduction: str = "matrix_means"
    # "auto": KL between next-token distributions for a causal LM, MSE for any other model; or "kl" / "mse"
    recon_loss: str = "auto"
    coeff_stochastic: float = 1.0
    coeff_adversarial: float = 5.0
    coeff_ci_masked: float = 0.0  # optional: KL with masks = CI on every matrix (no noise, no delta, no routing)
    coeff_minimality: float = 4.5e-3
    p_start: float = 2.0
    p_end: float = 0.4
    p_anneal_start_frac: float = 0.0
    p_anneal_end_frac: float = 0.7
    beta: float = 0.1  # frequency-term weight in the minimality loss
    eps: float = 1e-12
    # targeted decomposition (tPD): None = a full decomposition; else the name of the capability decomposed
    capability: str | None = None
    # importance minimality on the rest batches, relative to the capability batches (2 in every config of the
    # tPD paper, arXiv 2607.13047; the goodfire-ai/param-decomp port defaults to 1)
    rest_minimality_ratio: float = 2.0
    # routing and adversary
    subset_routing: bool = True
    adversarial: bool = True
    # "subset": the adversarial pass uses uniform-k-subset routing like the stochastic one; "all": every
    # matrix is masked at every position in the adversarial pass (what the fresh-PGD evaluation attacks)
    adversarial_routing: str = "all"
    pgd_n_sets: int = 8
    pgd_lr: float = 0.1
    pgd_betas: tuple[float, float] = (0.9, 0.99)
    pgd_init: str = "random"
    # where to compute: "auto" = CUDA if available, else CPU; bf16 autocast of the model passes on CUDA only
    device: str = "auto"
    bf16_autocast: bool = True
    # bookkeeping
    seed: int = 0
    time_budget_minutes: float | None = None  # stop (and finish the schedules) by this wall-clock budget
    checkpoint_every: int = 250  # steps; 0 = only at the end (needs checkpoint_dir)
    checkpoint_dir: str | None = None
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.ci_type not in CI_TYPES:
            raise ValueError(f"ci_type must be one of {', '.join(CI_TYPES)}; got {self.ci_type!r}")
        if self.adversarial_routing not in ("subset", "all"):
            raise ValueError(f"adversarial_routing must be 'subset' or 'all', got {self.adversarial_routing!r}")
        if self.faithfulness_reduction not in FAITHFULNESS_REDUCTIONS:
            raise ValueError(f"faithfulness_reduction must be one of {FAITHFULNESS_REDUCTIONS}, "
                             f"got {self.faithfulness_reduction!r}")
        if self.component_init not in ("random", "data"):
            raise ValueError(f"component_init must be 'random' or 'data', got {self.component_init!r}")
        if self.recon_loss not in ("auto",) + RECON_LOSSES:
            raise ValueError(f"recon_loss must be 'auto', 'kl' or 'mse', got {self.recon_loss!r}")
        if self.capability is not None and not self.use_delta:
            raise ValueError("a targeted decomposition (capability set) needs use_delta=True: its remainder is the "
                             "delta component")
        if self.rest_minimality_ratio < 0:
            raise ValueError(f"rest_minimality_ratio must be >= 0, got {self.rest_minimality_ratio}")

    @property
    def targeted(self) -> bool:
        """True for a targeted decomposition (``capability`` set)."""
        return self.capability is not None

    def recon_kind(self, cm: ComponentModel) -> str:
        """The reconstruction loss this config uses on ``cm``: ``recon_loss``, or for "auto" the adapter's
        default (KL for a causal LM, MSE otherwise)."""
        return cm.adapter.default_recon_loss if self.recon_loss == "auto" else self.recon_loss

    @classmethod
    def targeted_recipe(cls, capability: str, **overrides) -> "DecomposeConfig":
        """The targeted decomposition (tPD) of one capability of the shipped target: C = 32 per matrix (a
        capability uses a fraction of what the model holds; the tPD paper's toy needed about 5 slots for 3
        features), 800 steps, one capability batch and one rest batch of 8 x 128 tokens per step, no
        faithfulness warm-up, and the per-matrix shared-MLP CI function; the other settings are the full recipe's.

        The CI function stays per matrix although the full recipe's is the global transformer: the recipe's
        budget is five minutes on two CPU cores (4.1 min measured with the shared MLP), and the global
        transformer's step costs 22 % more (1,294 against 1,057 ms on the full recipe,
        ``benchmarks/bench_decompose.py --set ci_type=KIND``), which would put the run at the budget's edge. Its
        five comparison runs with each CI function are in ``results/ci_comparison.md``."""
        base = dict(targets={k: 32 for k in _default_targets()}, capability=capability, steps=800,
                    faithfulness_warmup_steps=0, checkpoint_every=100, ci_type="shared_mlp")
        base.update(overrides)
        return cls(**base)

    @classmethod
    def targeted_quick(cls, capability: str, **overrides) -> "DecomposeConfig":
        """Quick mode of ``targeted_recipe``: its settings with the quick full run's sizes (``QUICK_TARGETED``:
        40 steps of 4 x 64 tokens per stream), for tests and notebooks in quick mode (well under a minute)."""
        return cls.targeted_recipe(capability, **{**QUICK_TARGETED, **overrides})

    @classmethod
    def quick(cls, **overrides) -> "DecomposeConfig":
        """A few dozen steps with small batches and a smaller global CI transformer (width 64, one block): for tests
        and notebooks in quick mode (well under a minute)."""
        base = dict(steps=40, batch_size=4, seq_len=64, faithfulness_warmup_steps=50, checkpoint_every=0,
                    log_every=5, ci_global_d_model=64, ci_global_blocks=1)
        base.update(overrides)
        return cls(**base)


#: Quick mode of a targeted decomposition (``DecomposeConfig.targeted_quick``): the quick full run's sizes.
QUICK_TARGETED = dict(steps=40, batch_size=4, seq_len=64, checkpoint_every=0, log_every=5)


def override_config(config: DecomposeConfig, assignments: Iterable[str]) -> DecomposeConfig:
    """A copy of ``config`` with ``FIELD=VALUE`` overrides of its scalar fields (int, float, str, bool).

    Raises ``ValueError`` (one sentence naming the field) for an unknown field, a value of the wrong type or
    a field that cannot be set this way."""
    import dataclasses

    annotations = {f.name: str(f.type) for f in dataclasses.fields(DecomposeConfig)}
    changes: dict[str, object] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        if key not in annotations:
            import difflib

            near = difflib.get_close_matches(key, annotations, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ValueError(f"--set {key}: DecomposeConfig has no field {key!r}{hint}")
        current = getattr(config, key)
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {key}: expected true/false, got {raw!r}")
            changes[key] = raw.lower() in ("true", "1")
            continue
        if isinstance(current, (int, float, str)):
            kind: type = type(current)
        elif current is None:  # an optional field left unset: its annotation says what it holds
            if raw.lower() == "none":
                changes[key] = None
                continue
            kind = float if "float" in annotations[key] else int if "int" in annotations[key] else str
        else:
            raise ValueError(f"--set cannot override {key} (a {type(current).__name__}); edit DecomposeConfig")
        try:
            changes[key] = kind(raw)
        except ValueError:
            noun = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
            raise ValueError(f"--set {key}: expected {noun}, got {raw!r}") from None
    return dataclasses.replace(config, **changes)
