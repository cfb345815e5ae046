"""The erase protocol: erase German with one scalar on one component, against more scalars and LoRA.

Its vocabulary and settings: the methods (``RULE_METHODS``, ``SCALAR_METHODS``, ``ALL_METHODS``), the
objectives (``OBJECTIVES``, ``PRIMARY_OBJECTIVE``, ``OBJECTIVE_NOTE``), the published claim's thresholds
(``CLAIM``), ``EraseConfig`` (budgets, seeds, fits, scan) and ``EraseSetup`` (the model, the chosen components
and the training / held-out blocks). Its steps, on the artefacts of ``vpd_lite.erase.rebuild``:

1. **Choose, on training text only** (:func:`choose_components`): the edit scan (``vpd_lite.erase.edit_scan``)
   measures what each candidate component's scalar edit does to every language's training CE over a grid of
   prefactors s; three selection rules (``vpd_lite.erase.selection``) pick the German component — by the scan
   (primary), by where components fire (the earlier rule) and by the labeller — and the scan fixes each one's
   search range of s.
2. **Fit, on training text only** (:func:`fit_all`): for every German-token budget and seed, the single scalar
   (global 1-D search), the top-16 scalars (Adam with restarts) and three ``peft`` LoRA baselines
   (``vpd_lite.erase.baselines``; learning rate chosen per budget from a sweep by the training objective), each
   with both objectives (``OBJECTIVES``).
3. **Measure, on held-out text** (:func:`evaluate_fits`, :func:`run_sweep`): CE per language before/after; the
   seed table (:func:`summarise`), the published claim on seed means (:func:`check_claim`; thresholds fixed in
   ``CLAIM``) and on every seed (:func:`claim_per_seed`), and the same protocol erasing each of the five
   languages (:func:`erase_any_language`).

"Target" in this layer: ``target_ce`` drives German CE to a target value (ln V), ``select_target_tokens`` picks
the next tokens to predict, the off-target languages (``OFF_TARGET``) are those not erased, and LoRA's target
modules are the decomposed matrices. The
language to erase is ``lang`` / ``erase_lang`` in parameters; only recorded names keep "target" for it
(``ScanConfig.target_langs`` in ``edit_scan.json``, the ``target`` column of the scan's best table).
The tables, CSVs and the rule text are written by ``vpd_lite.erase.report``; ``vpd_lite.erase.pipeline`` runs it
all, called by ``python -m vpd_lite.reproduce`` (``vpd_lite.commands.reproduce``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from torch import Tensor, nn
from tqdm.auto import tqdm

from vpd_lite.erase.baselines import LORA_METHODS, LoraTrainConfig, TrainedLora, train_lora_lr_sweep
from vpd_lite.erase.edit_scan import (
    EditScan,
    ScanConfig,
    edit_curve,
    residual_cache,
    run_edit_scan,
    start_layer,
)
from vpd_lite.erase.edits import (
    Direction,
    FitConfig,
    SearchConfig,
    component_directions,
    fit_single_scalar,
    objective_on_all,
    select_target_tokens,
    train_scalar_edit_restarts,
    uniform_level,
)
from vpd_lite.erase.selection import (
    pick_by_edit,
    pick_by_firing,
    pick_by_label,
    search_range,
)
from vpd_lite.erase.workers import can_fork, fork_map
from vpd_lite.interpret.harvest import HarvestPlan
from vpd_lite.interpret.ids import ComponentId, component_key
from vpd_lite.interpret.statistics import (
    ComponentStats,
    language_specificity,
    live_components,
)
from vpd_lite.method.cross_entropy import language_ce
from vpd_lite.method.devices import torch_threads

OFF_TARGET = ("en", "fr", "es", "it")


#: Single-scalar methods, one per selection rule (primary first): how the component is chosen.
RULE_METHODS = {
    "scalar_edit": "one scalar, component chosen by the edit scan (training text)",
    "scalar_firing": "one scalar, component chosen by where it fires (earlier rule)",
    "scalar_label": "one scalar, the labeller's most German-only component",
}


SCALAR_METHODS = tuple(RULE_METHODS) + ("scalar_top16",)


ALL_METHODS = SCALAR_METHODS + tuple(LORA_METHODS)


#: The published claim we test (numbers in nats/token): the single scalar at 4 German tokens.
CLAIM = {"budget": 4, "min_fraction": 0.8, "max_d_en": 0.05, "max_d_other": 0.1}


STATS_FILE = "component_stats.safetensors"


#: Training objectives, primary first (see ``vpd_lite.erase.edits``).
OBJECTIVES = ("target_ce", "uniform_ce")


PRIMARY_OBJECTIVE = "target_ce"


#: Which objective is primary and why, in words; written before any held-out number of this protocol existed.
OBJECTIVE_NOTE = (
    "Objectives. Primary: target_ce = (ln V - CE)^2 on the budgeted German tokens, CE being their next-token "
    "cross-entropy. It is primary because it asks for exactly what the claim measures (German CE at the uniform "
    "level ln V) and no further: overshooting ln V costs as much as falling short, so a fit has no reason to "
    "push harder and damage the other languages more. Second: uniform_ce = CE from the uniform distribution to "
    "the model's prediction (= KL(uniform || model) + ln V), the objective used before. The single scalar is "
    "fitted by a global 1-D grid search with refinement inside the search range (ties: the s closest to 1); "
    "the 16 scalars of the top-16 edit by Adam with restarts; LoRA by Adam, its learning rate chosen per budget "
    "and objective from a small sweep by the training objective on the budgeted tokens."
)


#: Printed before and after a quick run, so that nobody mistakes its numbers for the experiment's.
QUICK_NOTICE = ("Quick mode: a smoke test on little text with one seed and short fits. Its numbers only show that "
                "everything runs; they are not the results (the full run's are in results/).")


@dataclass
class EraseConfig:
    """Settings of the erasure protocol. Defaults = the full reproduction; ``quick()`` for tests and notebooks.

    ``objectives`` are all run at the claim's budget (``CLAIM['budget']``); ``every_budget_objectives`` also at
    every other budget of ``budgets``. ``lora_lrs``: the learning-rate sweep of each LoRA, per budget and
    objective; ``lora_sweep_seeds``: how many seeds the sweep trains at every lr (the chosen lr then also trains
    the remaining seeds). ``any_language``: also erase each of the five languages (claim budget, primary
    objective, primary rule)."""

    budgets: tuple[int, ...] = (4, 16, 64, 1024)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = ALL_METHODS
    objectives: tuple[str, ...] = OBJECTIVES
    every_budget_objectives: tuple[str, ...] = (PRIMARY_OBJECTIVE,)
    search: SearchConfig = field(default_factory=SearchConfig)
    top_fit: FitConfig = field(default_factory=lambda: FitConfig(steps=100, lr=0.1, batch_rows=1))
    top_restarts: int = 2
    lora_fit: LoraTrainConfig = field(default_factory=lambda: LoraTrainConfig(steps=100, lr=2e-3, batch_rows=1))
    lora_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    lora_sweep_seeds: int = 1
    scan: ScanConfig = field(default_factory=lambda: ScanConfig(n_candidates=8, threads=1))
    any_language: bool = True
    n_top: int = 16  # components in the "top-16" multi-component edit
    min_german_share: float = 0.8  # the earlier rule: German share of firing rate at least this
    seq_len: int = 128
    eval_blocks_per_lang: int | None = 24  # held-out blocks per language (None = all)
    train_blocks: int | None = 64  # training blocks per language the budgets are drawn from
    harvest_blocks_per_lang: int = HarvestPlan.harvest_blocks  # no matching stats shipped: blocks to harvest
    threads: int | None = 1  # torch threads during fits and evaluation (the scan uses scan.threads, also 1)
    # processes that fit and evaluate the sweep's (method, objective, budget) items side by side, each on
    # ``threads`` threads; every item is seeded on its own, so the numbers do not depend on this (Linux only:
    # elsewhere, or with 1, the sweep runs in this process)
    workers: int = 1

    @classmethod
    def quick(cls, **overrides: Any) -> "EraseConfig":
        """Two budgets, one seed, short fits, a coarse scan, few evaluation blocks (well under a minute)."""
        base: dict[str, Any] = dict(
            budgets=(4, 64), seeds=(0,), search=SearchConfig(n_grid=41, n_refine=11, n_rounds=2),
            top_fit=FitConfig(steps=25, lr=0.1), top_restarts=1, lora_fit=LoraTrainConfig(steps=25, lr=2e-3),
            lora_lrs=(3e-3, 1e-2), scan=ScanConfig.quick(), seq_len=64, eval_blocks_per_lang=4, train_blocks=8,
            harvest_blocks_per_lang=HarvestPlan.quick_harvest_blocks,
        )
        base.update(overrides)
        return cls(**base)

    def runs(self) -> list[tuple[str, str, int]]:
        """(method, objective, budget) combinations the sweep fits, in order."""
        out = []
        for b in self.budgets:
            for o in self.objectives:
                if b == CLAIM["budget"] or o in self.every_budget_objectives:
                    out += [(m, o, b) for m in self.methods]
        return out


@dataclass
class EraseSetup:
    """Everything the protocol needs. All choices (components, search ranges) come from training text:
    ``scan`` and the component statistics; ``heldout`` is only read by :func:`evaluate_fits`."""

    model: nn.Module
    modules: list[str]  # all decomposed matrices (LoRA targets)
    rules: dict[str, Direction]  # {single-scalar method: its component}
    why: dict[str, str]  # {single-scalar method: how its component was chosen}
    ranges: dict[str, tuple[float, float]]  # {single-scalar method: search range of s}
    top: list[Direction]  # the top-n German-specific components
    train: dict[str, Tensor]  # {lang: (N, T)} training blocks the budgets are drawn from
    heldout: Mapping[str, Tensor]  # {lang: (N, T)} held-out blocks, for evaluation only
    vocab_size: int
    scan: EditScan
    any_language: dict[str, tuple[Direction, str, tuple[float, float]]] = field(default_factory=dict)
    tokenizer: Any = None

    @property
    def german(self) -> Direction:
        """The primary rule's German component."""
        return self.rules["scalar_edit"]

    @property
    def choice(self) -> str:
        return self.why["scalar_edit"]

    @property
    def train_de(self) -> Tensor:
        return self.train["de"]


def top_german_components(stats: ComponentStats, n: int = 16, lang: str = "de") -> list[ComponentId]:
    """The ``n`` most German-specific components (``language_specificity`` order)."""
    return [cid for cid, _ in language_specificity(stats, lang)[:n]]


def choose_components(cm: nn.Module, stats: ComponentStats, labels: Sequence[Any] | None, train: Mapping[str, Tensor],
                      config: EraseConfig, progress: bool = True) -> dict[str, Any]:
    """Run the edit scan on the training blocks ``train`` and apply the three selection rules; no held-out text
    is an argument. Returns {"scan", "rules", "why", "ranges", "top", "any_language"}."""

    live = live_components(stats)
    live_keys = {component_key(c) for c in live}
    model = cm.model
    picks = {"scalar_firing": pick_by_firing(stats, config.min_german_share),
             "scalar_label": pick_by_label(labels, stats)}
    langs = list(config.scan.target_langs) if config.any_language else ["de"]
    always: dict[str, list[str]] = {t: [] for t in langs}
    always["de"] = [component_key(c) for c, _ in picks.values() if component_key(c) in live_keys]
    scan_blocks = {lang: b[: config.scan.blocks_per_lang] for lang, b in train.items()}
    scan_cfg = replace(config.scan, target_langs=tuple(langs))
    scan = run_edit_scan(model, component_directions(cm, live), scan_blocks, scan_cfg, always=always,
                         max_d_en=CLAIM["max_d_en"], max_d_other=CLAIM["max_d_other"], progress=progress,
                         workers=config.workers)
    picks = {"scalar_edit": pick_by_edit(scan, "de"), **picks}
    rules, why, ranges = {}, {}, {}
    for m, (cid, text) in picks.items():
        rules[m] = component_directions(cm, [cid])[0]
        why[m] = text
        key = component_key(cid)
        ranges[m] = search_range(scan, key, "de") if key in set(scan.best_for("de")["component"]) else \
            (min(config.scan.s_grid), max(config.scan.s_grid))
    anyl = {}
    for t in langs:
        cid, text = pick_by_edit(scan, t)
        anyl[t] = (component_directions(cm, [cid])[0], text, search_range(scan, cid, t))
    top = component_directions(cm, top_german_components(stats, config.n_top))
    return {"scan": scan, "rules": rules, "why": why, "ranges": ranges, "top": top, "any_language": anyl}


# ------------------------------------------------------------------------------------------ fitting
def sweep_plan(config: EraseConfig) -> list[tuple[str, str, int]]:
    """The (method, objective, budget) items of ``config.runs()`` that :func:`fit_all` fits, in order."""
    return [(m, o, b) for (m, o, b) in config.runs() if m in ALL_METHODS]


def fit_all(setup: EraseSetup, config: EraseConfig, progress: bool = True,
            plan: Sequence[tuple[str, str, int]] | None = None) -> list[dict[str, Any]]:
    """Fit every method at every (objective, budget) of ``plan`` (default :func:`sweep_plan`) and seed, on
    training text only.

    Single scalars: :func:`vpd_lite.erase.edits.fit_single_scalar` inside the method's search range. Top-16:
    Adam with restarts. LoRA: :func:`vpd_lite.erase.baselines.train_lora_lr_sweep` (lr by the training objective).
    Returns one dict per fit (``method, objective, budget, seed, component, s, lr, n_params,
    train_objective`` and the fitted ``edit``, or for LoRA its adapters as ``lora``, a
    :class:`vpd_lite.erase.baselines.TrainedLora`); never reads ``setup.heldout``."""
    fits: list[dict[str, Any]] = []
    plan = sweep_plan(config) if plan is None else plan
    unknown = [m for m in config.methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {ALL_METHODS}")
    with torch_threads(config.threads):
        for method, objective, budget in tqdm(plan, desc="fit", disable=not progress, leave=False):
            sets = [select_target_tokens(setup.train["de"], budget, seed=s) for s in config.seeds]
            base = {"method": method, "objective": objective, "budget": budget}
            if method in RULE_METHODS:
                d = setup.rules[method]
                lo, hi = setup.ranges[method]
                for seed, (tokens, mask) in zip(config.seeds, sets):
                    s, val = fit_single_scalar(setup.model, d, tokens, mask, objective, lo, hi, config.search)
                    fits.append({**base, "seed": seed, "component": component_key(d.component), "s": s,
                                 "lr": float("nan"), "n_params": 1, "train_objective": val, "direction": d})
            elif method == "scalar_top16":
                for seed, (tokens, mask) in zip(config.seeds, sets):
                    edit, _, val = train_scalar_edit_restarts(
                        setup.model, setup.top, tokens, mask,
                        replace(config.top_fit, seed=seed, objective=objective), restarts=config.top_restarts)
                    fits.append({**base, "seed": seed, "component": f"top {len(setup.top)}", "s": float("nan"),
                                 "lr": config.top_fit.lr, "n_params": len(setup.top), "train_objective": val,
                                 "edit": edit})
            else:
                spec = LORA_METHODS[method]
                k = max(1, min(config.lora_sweep_seeds, len(sets)))
                lr, _, models = train_lora_lr_sweep(
                    setup.model, spec, setup.modules, sets[:k], config.lora_lrs, edited_module=setup.german.module,
                    seeds=config.seeds[:k], config=replace(config.lora_fit, objective=objective))
                if len(sets) > k:
                    _, _, more = train_lora_lr_sweep(
                        setup.model, spec, setup.modules, sets[k:], [lr], edited_module=setup.german.module,
                        seeds=config.seeds[k:], config=replace(config.lora_fit, objective=objective))
                    models = models + more
                for seed, (tokens, mask), pm in zip(config.seeds, sets, models):
                    fits.append({**base, "seed": seed, "component": "", "s": float("nan"), "lr": lr,
                                 "n_params": sum(p.numel() for n, p in pm.named_parameters() if "lora_" in n),
                                 "train_objective": objective_on_all(pm, tokens, mask, objective),
                                 "lora": TrainedLora.of(pm)})  # its adapters, not the PeftModel's model copy
                del models
    return fits


def _scalar_heldout(model: nn.Module, groups: Mapping[str, tuple[Direction, list[float]]],
                    heldout: Mapping[str, Tensor]) -> dict[tuple[str, float], dict[str, float]]:
    """Held-out CE per language for single-scalar edits: {(component key, s): {lang: CE}} (batched)."""
    out: dict[tuple[str, float], dict[str, float]] = {}
    caches: dict[int, dict[str, Tensor]] = {}
    for key, (d, values) in groups.items():
        layer = start_layer(model, d.module)
        if layer > 0 and layer not in caches:
            caches[layer] = {lang: residual_cache(model, b, layer) for lang, b in heldout.items()}
        df = edit_curve(model, d, sorted(set(values)), heldout, caches.get(layer))
        for _, r in df.iterrows():
            out[(key, float(r["s"]))] = {lang: float(r[f"ce_{lang}"]) for lang in heldout}
    return out


def evaluate_fits(setup: EraseSetup, fits: Sequence[Mapping[str, Any]], config: EraseConfig,
                  progress: bool = True, before: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Held-out CE per language before and after every fit: one row per fit (``ce_before_<lang>``,
    ``ce_after_<lang>``, ``uniform``), without the fitted objects. ``before``: the unedited model's held-out
    CE per language if already measured."""
    with torch_threads(config.threads):
        before = language_ce(setup.model, setup.heldout) if before is None else before
        groups: dict[str, tuple[Direction, list[float]]] = {}
        for f in fits:
            if "direction" in f:
                groups.setdefault(f["component"], (f["direction"], []))[1].append(f["s"])
        scalar = _scalar_heldout(setup.model, groups, setup.heldout)
        rows = []
        for f in tqdm(fits, desc="held-out CE", disable=not progress, leave=False):
            row = {k: v for k, v in f.items() if k not in ("direction", "edit", "lora")}
            if "direction" in f:
                after = scalar[(f["component"], float(f["s"]))]
            elif "edit" in f:
                with f["edit"]:
                    after = language_ce(setup.model, setup.heldout)
            else:  # one LoRA model at a time: its adapters on a fresh copy of the model
                after = language_ce(f["lora"].wrap(setup.model), setup.heldout)
            row.update({f"ce_before_{lang}": v for lang, v in before.items()})
            row.update({f"ce_after_{lang}": v for lang, v in after.items()})
            rows.append(row)
    df = pd.DataFrame(rows)
    df["uniform"] = uniform_level(setup.vocab_size)
    return df


def _sweep_item(shared: tuple[EraseSetup, EraseConfig, Mapping[str, float]],
                item: tuple[str, str, int]) -> pd.DataFrame:
    """One (method, objective, budget) item of the sweep, fitted and measured (a ``fork_map`` job)."""
    setup, config, before = shared
    return evaluate_fits(setup, fit_all(setup, config, progress=False, plan=[item]), config, False, before)


def run_sweep(setup: EraseSetup, config: EraseConfig, progress: bool = True) -> pd.DataFrame:
    """:func:`fit_all` (training text) then :func:`evaluate_fits` (held-out text): one row per run, in the
    order of :func:`sweep_plan`.

    With ``config.workers > 1`` on Linux, the items run in that many forked processes at once (each on
    ``config.threads`` threads) and the rows are put back in plan order: the same numbers, since every fit is
    seeded on its own and evaluated alone."""
    if config.workers <= 1 or not can_fork():
        return evaluate_fits(setup, fit_all(setup, config, progress), config, progress)
    plan = sweep_plan(config)
    with torch_threads(config.threads):
        before = language_ce(setup.model, setup.heldout)
    # Longest items first (LoRA, larger budgets), so that no long item starts last.
    order = sorted(range(len(plan)), key=lambda i: (plan[i][0] in LORA_METHODS, plan[i][2]), reverse=True)
    parts = fork_map(_sweep_item, plan, (setup, config, before), config.workers, config.threads or 1, order,
                     desc="fit and measure", progress=progress)
    return pd.concat(parts, ignore_index=True)


def _erase_one_language(shared: tuple[EraseSetup, EraseConfig, Mapping[str, float]],
                        lang: str) -> list[dict[str, Any]]:
    """:func:`erase_any_language`'s rows for one erased language (a ``fork_map`` job)."""
    setup, config, before = shared
    d, _, (lo, hi) = setup.any_language[lang]
    b = CLAIM["budget"]
    fits = []
    for seed in config.seeds:
        tokens, mask = select_target_tokens(setup.train[lang], b, seed=seed)
        s, val = fit_single_scalar(setup.model, d, tokens, mask, PRIMARY_OBJECTIVE, lo, hi, config.search)
        fits.append({"erased": lang, "seed": seed, "component": component_key(d.component), "s": s,
                     "train_objective": val, "direction": d})
    after = _scalar_heldout(setup.model, {component_key(d.component): (d, [f["s"] for f in fits])}, setup.heldout)
    level = uniform_level(setup.vocab_size)
    rows = []
    for f in fits:
        a = after[(f["component"], float(f["s"]))]
        row = {k: v for k, v in f.items() if k != "direction"}
        row["frac_to_uniform"] = (a[lang] - before[lang]) / (level - before[lang])
        row.update({f"d_{other}": a[other] - before[other] for other in setup.heldout})
        rows.append(row)
    return rows


def erase_any_language(setup: EraseSetup, config: EraseConfig, progress: bool = True) -> pd.DataFrame:
    """Erase each language in turn with the primary protocol (edit-scan rule, its search range, primary
    objective, claim budget, every seed). One row per (erased language, seed): ``erased``, ``seed``,
    ``component``, ``s``, ``frac_to_uniform`` of the erased language and ``d_<lang>`` held-out ΔCE for all.
    The languages run in ``config.workers`` processes side by side (the same numbers)."""
    with torch_threads(config.threads):
        before = language_ce(setup.model, setup.heldout)
        parts = fork_map(_erase_one_language, list(setup.any_language), (setup, config, before), config.workers,
                         config.threads or 1, desc="erase any language", progress=progress)
    return pd.DataFrame([row for rows in parts for row in rows])


# ------------------------------------------------------------------------------------------ tables
def _with_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    df = runs.copy()
    langs = [c.removeprefix("ce_after_") for c in df.columns if c.startswith("ce_after_")]
    for lang in langs:
        df[f"d_{lang}"] = df[f"ce_after_{lang}"] - df[f"ce_before_{lang}"]
    df["frac_to_uniform"] = df["d_de"] / (df["uniform"] - df["ce_before_de"])
    others = [f"d_{lang}" for lang in ("fr", "es", "it") if lang in langs]
    df["d_worst_other"] = df[others].max(axis=1) if others else 0.0
    return df


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Seed statistics per (method, objective, budget): German CE before/after, fraction of the way to
    ln(vocab) (mean, median, min, max over seeds), ΔCE per off-target language (seed means), mean s, lr."""
    df = _with_deltas(runs)
    if "objective" not in df.columns:
        df["objective"] = PRIMARY_OBJECTIVE
    langs = [lang for lang in OFF_TARGET if f"d_{lang}" in df.columns]
    keys = ["method", "objective", "budget"]
    g = df.groupby(keys, sort=False)
    out = g.agg(n_seeds=("seed", "count"), de_before=("ce_before_de", "mean"), de_after=("ce_after_de", "mean"),
                de_after_std=("ce_after_de", "std"), frac_to_uniform=("frac_to_uniform", "mean"),
                frac_median=("frac_to_uniform", "median"), frac_min=("frac_to_uniform", "min"),
                frac_max=("frac_to_uniform", "max"), uniform=("uniform", "first"),
                train_objective=("train_objective" if "train_objective" in df else "objective_end", "mean"),
                s=("s", "mean"), lr=("lr", "first") if "lr" in df else ("s", "first"),
                **{f"d_{lang}": (f"d_{lang}", "mean") for lang in langs},
                d_worst_other_seed=("d_worst_other", "max")).reset_index()
    morder = {m: i for i, m in enumerate(ALL_METHODS)}
    oorder = {o: i for i, o in enumerate(OBJECTIVES)}
    out = out.sort_values(["budget", "objective", "method"],
                          key=lambda s: s.map(morder) if s.name == "method" else
                          (s.map(oorder) if s.name == "objective" else s))
    return out.reset_index(drop=True)


def format_number(value: float, spec: str) -> str:
    """``format(value, spec)`` without a negative zero: a value that rounds to zero at this precision prints as
    zero ("0%", "+0.000"), never "-0%"."""
    text = format(value, spec)
    if text.startswith("-") and "inf" not in text and not any(ch in "123456789" for ch in text):
        return format(0.0, spec)
    return text


def _as_shown(value: float, spec: str) -> float:
    """The number ``format_number(value, spec)`` prints (a percentage in percent): claims compare what they print."""
    return float(format_number(value, spec).rstrip("%"))


def check_claim(summary: pd.DataFrame, claim: Mapping[str, float] = CLAIM, method: str = "scalar_edit",
                objective: str = PRIMARY_OBJECTIVE) -> dict[str, Any]:
    """Test the published claim on our numbers (thresholds fixed in ``CLAIM``; never adapted to results) for
    one single-scalar ``method`` and ``objective``, on seed means.

    The scalar edit at ``claim['budget']`` tokens passes if it reaches >= ``min_fraction`` of the way from base
    German CE to ln(vocab) with English ΔCE <= ``max_d_en`` and every other language's ΔCE <= ``max_d_other``.
    A LoRA (same objective and budget) counts as *worse on the trade-off* unless it is at least as good on all
    three axes (German fraction at least as high, English ΔCE and the worst fr/es/it ΔCE no higher). The axes are
    compared as printed (whole percent, three decimals), so a difference too small to show is a tie, not "worse".
    """
    b = claim["budget"]
    at = summary[summary["budget"] == b]
    if "objective" in at.columns:
        at = at[at["objective"] == objective]
    at = at.set_index("method")
    if method not in at.index:
        return {"budget": b, "available": False, "method": method, "objective": objective,
                "text": f"no {method} run with objective {objective} at budget {b}"}
    others = [c for c in ("d_fr", "d_es", "d_it") if c in at.columns]

    def axes(m: str) -> tuple[float, float, float]:
        r = at.loc[m]
        return float(r["frac_to_uniform"]), float(r["d_en"]), float(max(r[c] for c in others))

    def shown(m: str) -> tuple[float, float, float]:
        f, e, o = axes(m)
        return _as_shown(f, ".0%"), _as_shown(e, "+.3f"), _as_shown(o, "+.3f")

    frac, d_en, d_oth = axes(method)
    scalar_ok = frac >= claim["min_fraction"] and d_en <= claim["max_d_en"] and d_oth <= claim["max_d_other"]
    lora, verdict = {}, {}
    for m in (m for m in LORA_METHODS if m in at.index):
        (f2, e2, o2), (f1, e1, o1) = shown(m), shown(method)
        lora[m] = not (f2 >= f1 and e2 <= e1 and o2 <= o1)  # True = worse than the scalar edit
        verdict[m] = ("worse than the scalar edit" if lora[m] else "as good as the scalar edit (equal as printed)"
                      if (f2, e2, o2) == (f1, e1, o1) else "NOT worse than the scalar edit")
    lines = [
        f"{method} ({objective}) on {b} German tokens: German CE {float(at.loc[method, 'de_before']):.3f} -> "
        f"{float(at.loc[method, 'de_after']):.3f} nats/token (ln vocab = {float(at.loc[method, 'uniform']):.3f}),"
        f" {format_number(frac, '.0%')} of the way (goal >= {claim['min_fraction']:.0%}); English ΔCE {d_en:+.3f} "
        f"(goal <= {claim['max_d_en']}); worst fr/es/it ΔCE {d_oth:+.3f} (goal <= {claim['max_d_other']}): "
        + ("REPRODUCED" if scalar_ok else "NOT reproduced"),
    ]
    for m in lora:
        f2, e2, o2 = axes(m)
        lines.append(f"  {m} on {b} tokens: {format_number(f2, '.0%')} of the way, English ΔCE {e2:+.3f}, "
                     f"worst fr/es/it ΔCE {o2:+.3f} -> {verdict[m]}")
    all_worse = bool(lora) and all(lora.values())
    lines.append("  Every LoRA at this budget is worse on the trade-off: " + ("yes" if all_worse else "no"))
    return {"budget": b, "available": True, "method": method, "objective": objective, "scalar_meets_goal": scalar_ok,
            "fraction": frac, "d_en": d_en, "d_other_max": d_oth, "lora_worse": lora, "all_lora_worse": all_worse,
            "reproduced": scalar_ok and all_worse, "text": "\n".join(lines)}


def claim_per_seed(runs: pd.DataFrame, method: str, objective: str, claim: Mapping[str, float] = CLAIM) -> pd.DataFrame:
    """The scalar part of the claim checked on every seed on its own: one row per seed with
    ``frac_to_uniform``, ``d_en``, ``d_worst_other`` and ``meets_goal``."""
    df = _with_deltas(runs)
    if "objective" in df.columns:
        df = df[df["objective"] == objective]
    df = df[(df["method"] == method) & (df["budget"] == claim["budget"])]
    out = df[["seed", "s", "frac_to_uniform", "d_en", "d_worst_other"]].copy()
    out["meets_goal"] = ((out["frac_to_uniform"] >= claim["min_fraction"]) & (out["d_en"] <= claim["max_d_en"])
                         & (out["d_worst_other"] <= claim["max_d_other"]))
    return out.reset_index(drop=True)
