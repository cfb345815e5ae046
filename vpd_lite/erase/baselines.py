"""LoRA baselines for the German edit, built with ``peft``: same German tokens, same objective.

Three methods (``LORA_METHODS``), as in the published comparison:
  ``lora_r1_all``   rank-1 LoRA on every decomposed matrix,
  ``lora_r4_all``   rank-4 LoRA on every decomposed matrix,
  ``lora_r1_local`` rank-1 LoRA on the one matrix that holds the edited component.
Each is trained with ``vpd_lite.erase.edits.fit_objective`` (Adam; the objective is ``config.objective``, the same
objectives as the scalar edit) on the masked German positions from ``vpd_lite.erase.edits.select_target_tokens``;
only the LoRA A/B matrices train. The base model is never modified: every run wraps a deep copy. A trained
baseline is kept as :class:`TrainedLora` (its LoRA tensors only), not as the ``PeftModel`` with its copy of the model.

The learning rate is chosen per budget from a small sweep (:func:`train_lora_lr_sweep`) by the *training*
objective on the budgeted tokens, never by held-out text.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import Tensor, nn

from vpd_lite.erase.edits import FitConfig, fit_objective, objective_on_all


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA baseline: its rank and whether it covers all decomposed matrices or only the edited one."""

    name: str
    rank: int
    local: bool


LORA_METHODS: dict[str, LoraSpec] = {
    s.name: s
    for s in (LoraSpec("lora_r1_all", 1, False), LoraSpec("lora_r4_all", 4, False),
              LoraSpec("lora_r1_local", 1, True))
}


@dataclass
class LoraTrainConfig(FitConfig):
    """LoRA fit: ``alpha = rank`` (scale 1), no dropout; Adam at ``lr`` for ``steps`` steps, ``batch_rows``
    snippets per step (as ``vpd_lite.erase.edits.FitConfig``)."""

    lr: float = 2e-3


def lora_model(model: nn.Module, target_modules: Sequence[str], rank: int, seed: int = 0) -> PeftModel:
    """Wrap a deep copy of ``model`` with LoRA adapters of ``rank`` on the named ``nn.Linear`` modules
    (or GPT-2 ``Conv1D`` modules, whose transposed weight layout peft handles with ``fan_in_fan_out``).

    Names are full module paths (e.g. ``model.layers.0.mlp.up_proj``). B starts at zero, so the wrapped
    model starts equal to ``model``; ``seed`` draws A. Only LoRA parameters require grad.
    """
    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {rank}")
    names = dict(model.named_modules())
    conv1d = [type(names.get(t)).__name__ == "Conv1D" for t in target_modules]
    missing = [t for t, c in zip(target_modules, conv1d) if not (c or isinstance(names.get(t), nn.Linear))]
    if missing or not target_modules:
        raise KeyError(f"LoRA targets must be nn.Linear or Conv1D modules of the model; bad: {missing or 'none given'}")
    if any(conv1d) and not all(conv1d):
        raise ValueError("LoRA targets mix nn.Linear and Conv1D modules; peft needs one weight layout per adapter")
    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, bias="none",
                        target_modules=list(target_modules), fan_in_fan_out=all(conv1d))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(seed)  # peft draws A from the global RNG; keep it local and seeded
        # peft 0.21 calls a transformers attribute that transformers 5 deprecates; not our concern here
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(copy.deepcopy(model), config)
    return peft_model


def lora_parameters(peft_model: nn.Module) -> list[Tensor]:
    """The trainable LoRA tensors (``lora_A`` / ``lora_B`` weights)."""
    return [p for n, p in peft_model.named_parameters() if "lora_" in n]


@dataclass
class TrainedLora:
    """A trained LoRA baseline without its copy of the model: the wrapped modules, the rank and the LoRA tensors.

    :meth:`wrap` puts them on a fresh copy of the base model (:func:`lora_model`), which computes exactly what
    the trained ``PeftModel`` did. Keeping this instead of the ``PeftModel`` keeps one set of adapters per fit
    in memory instead of a copy of the whole model (4 MB each for the shipped model; the full sweep keeps 45)."""

    targets: list[str]
    rank: int
    lora: dict[str, Tensor]  # {parameter name in the PeftModel: LoRA tensor}

    @classmethod
    def of(cls, peft_model: PeftModel) -> "TrainedLora":
        """The adapters of a ``PeftModel`` made by :func:`lora_model` (detached copies)."""
        config = peft_model.peft_config["default"]
        return cls(sorted(config.target_modules), int(config.r),
                   {n: p.detach().clone() for n, p in peft_model.named_parameters() if "lora_" in n})

    @property
    def n_params(self) -> int:
        return sum(t.numel() for t in self.lora.values())

    def wrap(self, model: nn.Module) -> PeftModel:
        """A ``PeftModel`` of a deep copy of ``model`` carrying these adapters (``model`` is not modified)."""
        peft_model = lora_model(model, self.targets, self.rank)
        params = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
        if {n: p.shape for n, p in params.items()} != {n: t.shape for n, t in self.lora.items()}:
            raise ValueError("these LoRA tensors do not fit the model's LoRA layers")
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.lora[n])
        return peft_model


def train_lora(model: nn.Module, spec: LoraSpec, modules: Sequence[str], tokens: Tensor, mask: Tensor,
               edited_module: str | None = None, seed: int = 0,
               config: LoraTrainConfig | None = None) -> tuple[PeftModel, list[float]]:
    """Train one LoRA baseline on the masked German positions of ``tokens`` (n, T).

    ``modules``: all decomposed matrices; a ``local`` spec uses only ``edited_module``. Returns the trained
    ``PeftModel`` (a separate copy; call it like the base model) and the objective history.
    """
    config = config or LoraTrainConfig()
    if spec.local:
        if edited_module is None:
            raise ValueError(f"{spec.name} needs edited_module (the matrix of the chosen component)")
        targets = [edited_module]
    else:
        targets = list(modules)
    peft_model = lora_model(model, targets, spec.rank, seed=seed)
    history = fit_objective(peft_model, lora_parameters(peft_model), tokens, mask, config)
    return peft_model, history


def train_lora_lr_sweep(model: nn.Module, spec: LoraSpec, modules: Sequence[str],
                        token_sets: Sequence[tuple[Tensor, Tensor]], lrs: Sequence[float],
                        edited_module: str | None = None, seeds: Sequence[int] | None = None,
                        config: LoraTrainConfig | None = None) -> tuple[float, dict[float, float], list[PeftModel]]:
    """Train one LoRA baseline at every learning rate of ``lrs`` on every (tokens, mask) of ``token_sets``
    (one per seed, ``seeds[i]`` seeding A and the batches; default 0, 1, ...) and keep the lr whose mean final
    training objective (:func:`vpd_lite.erase.edits.objective_on_all` on the budgeted tokens) is lowest (ties: the
    smaller lr). Returns (chosen lr, {lr: mean training objective}, the trained models at the chosen lr, one per
    token set). Held-out text plays no part."""
    config = config or LoraTrainConfig()
    if not lrs:
        raise ValueError("need at least one learning rate")
    seeds = list(seeds) if seeds is not None else list(range(len(token_sets)))
    scores: dict[float, float] = {}
    best_lr, best_models = None, []
    for lr in sorted(lrs):
        models, vals = [], []
        for (tokens, mask), seed in zip(token_sets, seeds):
            m, _ = train_lora(model, spec, modules, tokens, mask, edited_module=edited_module, seed=seed,
                              config=replace(config, lr=lr, seed=seed))
            vals.append(objective_on_all(m, tokens, mask, config.objective))
            models.append(m)
        scores[lr] = sum(vals) / len(vals)
        if best_lr is None or scores[lr] < scores[best_lr]:
            best_lr, best_models = lr, models
    return float(best_lr), scores, best_models
