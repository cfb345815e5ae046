"""Headless reproduction of the German edit: ``python -m vpd_lite.reproduce`` (the README's main command).

On the shipped artefacts (``data/target``, ``data/decomposition``, ``data/labels.json`` or component stats,
``data/corpus``) it

1. picks the German component (:func:`pick_german_component`, from statistics of *training* text only) and the
   top-16 German-specific components;
2. for every German-token budget (4, 16, 64, 256, 1024) and seed, trains the single-scalar edit, the top-16
   scalar edit and the three ``peft`` LoRA baselines on the same German tokens toward uniform predictions
   (:func:`run_sweep`);
3. measures held-out CE per language before/after, prints the seed-mean table (:func:`summarise`), checks the
   published claim without bending it (:func:`check_claim`), and writes ``results/erase_german.csv``,
   ``results/erase_german.md``, the per-run CSV and the figures as PNG.

``--from-scratch`` first rebuilds every artefact into a work folder (train the target with
``vpd_lite.target``, decompose with ``vpd_lite.decompose``, harvest + label), then erases.
``--quick`` (also ``VPD_LITE_QUICK=1``) runs fewer budgets, one seed and short fits: for tests and notebooks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vpd_lite.analysis import ComponentId, ComponentStats, HarvestPlan, component_key, language_specificity
from vpd_lite.baselines import LORA_METHODS, LoraTrainConfig, train_lora
from vpd_lite.checkpoint import atomic_write_bytes
from vpd_lite.corpus import LANGS
from vpd_lite.devices import torch_threads
from vpd_lite.edits import (
    Direction,
    FitConfig,
    component_directions,
    language_ce,
    select_target_tokens,
    train_scalar_edit,
    uniform_level,
)

OFF_TARGET = ("en", "fr", "es", "it")
SCALAR_METHODS = ("scalar", "scalar_top16")
ALL_METHODS = SCALAR_METHODS + tuple(LORA_METHODS)
#: The published claim we test (numbers in nats/token): the single scalar at 4 German tokens.
CLAIM = {"budget": 4, "min_fraction": 0.8, "max_d_en": 0.05, "max_d_other": 0.1}
STATS_FILE = "component_stats.safetensors"


@dataclass
class EraseConfig:
    """Settings of the German-erasure sweep. Defaults = the full reproduction; ``quick()`` for tests."""

    budgets: tuple[int, ...] = (4, 16, 64, 256, 1024)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = ALL_METHODS
    scalar_fit: FitConfig = field(default_factory=lambda: FitConfig(steps=100, lr=0.1, batch_rows=1))
    lora_fit: LoraTrainConfig = field(default_factory=lambda: LoraTrainConfig(steps=100, lr=2e-3, batch_rows=1))
    n_top: int = 16  # components in the "top-16" multi-component edit
    min_german_share: float = 0.8  # the German component: German share of firing rate at least this
    seq_len: int = 128
    eval_blocks_per_lang: int | None = 24  # held-out blocks per language (None = all)
    train_blocks_de: int | None = 64  # German training blocks the budgets are drawn from
    harvest_blocks_per_lang: int = HarvestPlan.harvest_blocks  # no matching stats shipped: blocks to harvest
    threads: int | None = 1  # torch threads during the sweep (1 is fastest for this small model); None = leave

    @classmethod
    def quick(cls, **overrides: Any) -> "EraseConfig":
        """Two budgets, one seed, short fits, few evaluation blocks (well under a minute on a tiny model)."""
        base: dict[str, Any] = dict(
            budgets=(4, 64), seeds=(0,), scalar_fit=FitConfig(steps=25, lr=0.1),
            lora_fit=LoraTrainConfig(steps=25, lr=2e-3), seq_len=64, eval_blocks_per_lang=4, train_blocks_de=8,
            harvest_blocks_per_lang=HarvestPlan.quick_harvest_blocks,
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class EraseSetup:
    """Everything the sweep needs: the target, the chosen directions and the token blocks."""

    model: nn.Module
    modules: list[str]  # all decomposed matrices (LoRA targets)
    german: Direction  # the single German component
    top: list[Direction]  # the top-n German-specific components
    train_de: Tensor  # (N, T) German training blocks the budgets are drawn from
    heldout: dict[str, Tensor]  # {lang: (N, T)} held-out blocks for evaluation
    vocab_size: int
    tokenizer: Any = None
    choice: str = ""  # how the German component was chosen


# ------------------------------------------------------------------------------------------ choosing
def pick_german_component(stats: ComponentStats, min_share: float = 0.8, lang: str = "de") -> tuple[ComponentId, str]:
    """The German component: among components whose share of firing rate on German is >= ``min_share``
    (the labeller's "German-only"), the one that fires on the most German tokens. Falls back to the top of
    ``language_specificity`` when none qualifies. Returns (component, a sentence saying why)."""
    ranked = language_specificity(stats, lang)
    li = stats.langs.index(lang)
    qualified = [(cid, s) for cid, s in ranked if s >= min_share]
    if qualified:
        best = max(qualified, key=lambda cs: (float(stats.firing_rate(cs[0][0])[li, cs[0][1]]), cs[1]))
        rate = float(stats.firing_rate(best[0][0])[li, best[0][1]])
        return best[0], (f"{component_key(best[0])}: {best[1]:.0%} of its firing rate on German (>= "
                         f"{min_share:.0%}), fires on {rate:.1%} of German training tokens, the most of "
                         f"{len(qualified)} such components")
    cid, score = ranked[0]
    return cid, f"{component_key(cid)}: no component is >= {min_share:.0%} German; most German-specific ({score:.0%})"


def top_german_components(stats: ComponentStats, n: int = 16, lang: str = "de") -> list[ComponentId]:
    """The ``n`` most German-specific components (``language_specificity`` order)."""
    return [cid for cid, _ in language_specificity(stats, lang)[:n]]


# ------------------------------------------------------------------------------------------ the sweep
def _run_one(setup: EraseSetup, method: str, budget: int, seed: int, config: EraseConfig) -> dict[str, Any]:
    tokens, mask = select_target_tokens(setup.train_de, budget, seed=seed)
    row: dict[str, Any] = {"method": method, "budget": budget, "seed": seed}
    if method in SCALAR_METHODS:
        dirs = [setup.german] if method == "scalar" else setup.top
        edit, hist = train_scalar_edit(setup.model, dirs, tokens, mask, replace(config.scalar_fit, seed=seed))
        with edit:
            after = language_ce(setup.model, setup.heldout)
        row["s"] = float(edit.s.detach()[0]) if len(dirs) == 1 else float("nan")
        row["n_params"] = len(dirs)
    elif method in LORA_METHODS:
        spec = LORA_METHODS[method]
        peft_model, hist = train_lora(setup.model, spec, setup.modules, tokens, mask,
                                      edited_module=setup.german.module, seed=seed,
                                      config=replace(config.lora_fit, seed=seed))
        after = language_ce(peft_model, setup.heldout)
        row["s"] = float("nan")
        row["n_params"] = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    else:
        raise ValueError(f"unknown method {method!r}; choose from {ALL_METHODS}")
    row["objective_start"], row["objective_end"] = hist[0], hist[-1]
    row.update({f"ce_after_{lang}": v for lang, v in after.items()})
    return row


def run_sweep(setup: EraseSetup, config: EraseConfig, progress: bool = True) -> pd.DataFrame:
    """Train every method at every budget and seed; one row per run with held-out CE before and after.

    Runs with ``config.threads`` torch threads (restored afterwards)."""
    with torch_threads(config.threads):
        before = language_ce(setup.model, setup.heldout)
        runs = [(m, b, s) for b in config.budgets for m in config.methods for s in config.seeds]
        rows = []
        for method, budget, seed in tqdm(runs, desc="erase German", disable=not progress):
            row = _run_one(setup, method, budget, seed, config)
            row.update({f"ce_before_{lang}": v for lang, v in before.items()})
            rows.append(row)
    df = pd.DataFrame(rows)
    df["uniform"] = uniform_level(setup.vocab_size)
    return df


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean table: German CE before/after, fraction of the way to ln(vocab), ΔCE per off-target language."""
    df = runs.copy()
    langs = [c.removeprefix("ce_after_") for c in df.columns if c.startswith("ce_after_")]
    for lang in langs:
        df[f"d_{lang}"] = df[f"ce_after_{lang}"] - df[f"ce_before_{lang}"]
    df["frac_to_uniform"] = df["d_de"] / (df["uniform"] - df["ce_before_de"])
    agg: dict[str, Any] = {"seed": "count", "ce_before_de": "mean", "ce_after_de": ["mean", "std"],
                           "frac_to_uniform": "mean", "uniform": "first", "objective_end": "mean", "s": "mean"}
    agg.update({f"d_{lang}": "mean" for lang in OFF_TARGET if lang in langs})
    out = df.groupby(["method", "budget"], sort=False).agg(agg)
    out.columns = ["n_seeds", "de_before", "de_after", "de_after_std", "frac_to_uniform", "uniform",
                   "train_objective", "s"] + [f"d_{lang}" for lang in OFF_TARGET if lang in langs]
    out = out.reset_index()
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    out = out.sort_values(["budget", "method"], key=lambda s: s.map(order) if s.name == "method" else s)
    return out.reset_index(drop=True)


def check_claim(summary: pd.DataFrame, claim: Mapping[str, float] = CLAIM) -> dict[str, Any]:
    """Test the published claim on our numbers (thresholds fixed in ``CLAIM``; never adapted to results).

    The scalar edit at ``claim['budget']`` tokens passes if it reaches >= ``min_fraction`` of the way from base
    German CE to ln(vocab) with English ΔCE <= ``max_d_en`` and every other language's ΔCE <= ``max_d_other``.
    A LoRA counts as *worse on the trade-off* unless it is at least as good on all three axes (German fraction
    at least as high, English ΔCE and the worst fr/es/it ΔCE no higher).
    """
    b = claim["budget"]
    at = summary[summary["budget"] == b].set_index("method")
    if "scalar" not in at.index:
        return {"budget": b, "available": False, "text": f"no scalar-edit run at budget {b}"}
    others = [c for c in ("d_fr", "d_es", "d_it") if c in at.columns]

    def axes(m: str) -> tuple[float, float, float]:
        r = at.loc[m]
        return float(r["frac_to_uniform"]), float(r["d_en"]), float(max(r[c] for c in others))

    frac, d_en, d_oth = axes("scalar")
    scalar_ok = frac >= claim["min_fraction"] and d_en <= claim["max_d_en"] and d_oth <= claim["max_d_other"]
    lora = {}
    for m in (m for m in LORA_METHODS if m in at.index):
        f2, e2, o2 = axes(m)
        lora[m] = not (f2 >= frac and e2 <= d_en and o2 <= d_oth)  # True = worse than the scalar edit
    lines = [
        f"Scalar edit on {b} German tokens: German CE {float(at.loc['scalar', 'de_before']):.3f} -> "
        f"{float(at.loc['scalar', 'de_after']):.3f} nats/token (ln vocab = {float(at.loc['scalar', 'uniform']):.3f}),"
        f" {frac:.0%} of the way (goal >= {claim['min_fraction']:.0%}); English ΔCE {d_en:+.3f} (goal <= "
        f"{claim['max_d_en']}); worst fr/es/it ΔCE {d_oth:+.3f} (goal <= {claim['max_d_other']}): "
        + ("REPRODUCED" if scalar_ok else "NOT reproduced"),
    ]
    for m, worse in lora.items():
        f2, e2, o2 = axes(m)
        lines.append(f"{m} on {b} tokens: {f2:.0%} of the way, English ΔCE {e2:+.3f}, worst fr/es/it ΔCE "
                     f"{o2:+.3f} -> {'worse than' if worse else 'NOT worse than'} the scalar edit")
    all_worse = bool(lora) and all(lora.values())
    lines.append("Every LoRA at this budget is worse on the trade-off: " + ("yes" if all_worse else "no"))
    return {"budget": b, "available": True, "scalar_meets_goal": scalar_ok, "fraction": frac, "d_en": d_en,
            "d_other_max": d_oth, "lora_worse": lora, "all_lora_worse": all_worse,
            "reproduced": scalar_ok and all_worse, "text": "\n".join(lines)}


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (nats/token; ΔCE = after − before, seed means; "train objective" = the
    uniform-prediction objective on the budget's German tokens at the last step, ln(vocab) at best)."""
    cols = {"method": "method", "budget": "German tokens", "n_seeds": "seeds", "de_before": "de CE before",
            "de_after": "de CE after", "frac_to_uniform": "way to ln V", "d_en": "ΔCE en", "d_fr": "ΔCE fr",
            "d_es": "ΔCE es", "d_it": "ΔCE it", "train_objective": "train objective", "s": "s (mean)"}
    keep = [c for c in cols if c in summary.columns]

    def cell(col: str, v: Any) -> str:
        if col == "frac_to_uniform":
            return f"{100 * v:.0f}%"
        if col.startswith("d_"):
            return f"{v:+.3f}"
        if col == "s":
            return "" if v != v else f"{v:+.2f}"  # NaN (not a single-scalar method) -> empty
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols[c] for c in keep) + " |", "|" + "|".join("---" for _ in keep) + "|"]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join(cell(c, r[c]) for c in keep) + " |")
    return "\n".join(lines)


def save_results(runs: pd.DataFrame, summary: pd.DataFrame, claim: Mapping[str, Any], setup: EraseSetup,
                 out_dir: Path, command: str, config: EraseConfig) -> list[Path]:
    """Write the per-run CSV, the summary CSV and a markdown report (atomically). Returns the paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / "erase_german_runs.csv", out_dir / "erase_german.csv", out_dir / "erase_german.md"]
    atomic_write_bytes(paths[0], runs.to_csv(index=False, float_format="%.5f").encode("utf-8"))
    atomic_write_bytes(paths[1], summary.to_csv(index=False, float_format="%.5f").encode("utf-8"))
    md = [
        "# Erasing German with one scalar vs LoRA",
        "",
        f"Command: `{command}`  ",
        f"German component: {setup.choice}  ",
        f"Top-{len(setup.top)} edit: {', '.join(component_key(d.component) for d in setup.top)}  ",
        f"Objective: CE from the uniform distribution to the model's next-token distribution "
        f"(= KL(uniform || model) + ln V) on the budgeted German positions; scalar fits: Adam lr "
        f"{config.scalar_fit.lr}, {config.scalar_fit.steps} steps; LoRA fits: Adam lr {config.lora_fit.lr}, "
        f"{config.lora_fit.steps} steps, alpha = rank; at most {config.scalar_fit.batch_rows} snippet(s) of "
        f"<= {config.seq_len} tokens per step.  ",
        f"Held-out CE in nats/token on {', '.join(f'{k} {v.numel()}' for k, v in setup.heldout.items())} tokens; "
        f"ln(vocab) = {uniform_level(setup.vocab_size):.3f}; seeds {list(config.seeds)}.",
        "",
        format_table(summary),
        "",
        "## The published claim on our model",
        "",
        "```",
        claim["text"],
        "```",
        "",
    ]
    atomic_write_bytes(paths[2], "\n".join(md).encode("utf-8"))
    return paths


# ------------------------------------------------------------------------------------------ artefacts
@dataclass
class Artefacts:
    """Where the inputs of the erasure live (the shipped ``data/`` by default)."""

    target: Path
    decomposition: Path
    corpus: Path
    stats: Path  # component stats; harvested from training text when the file is absent

    @classmethod
    def in_folder(cls, data: str | os.PathLike) -> "Artefacts":
        data = Path(data)
        return cls(data / "target", data / "decomposition", data / "corpus", data / STATS_FILE)

    def check(self) -> None:
        """Raise ``FileNotFoundError`` naming the first missing artefact and the command that builds it."""
        needs = [
            (self.target / "config.json", "the target model", "python -m vpd_lite.target train"),
            (self.decomposition / "decomposition.json", "the decomposition", "python -m vpd_lite.decompose"),
            (self.corpus, "the corpus", "python scripts/build_corpus.py"),
        ]
        for path, what, cmd in needs:
            if not path.exists():
                raise FileNotFoundError(f"{what} is missing: {path} does not exist. Build it with `{cmd}`, "
                                        "or run `python -m vpd_lite.reproduce --from-scratch`.")


def load_stats_or_harvest(cm: nn.Module, tokenizer: Any, corpus: Mapping[str, Any], path: Path,
                          config: EraseConfig, progress: bool = True) -> tuple[ComponentStats, str]:
    """(stats, description): the stats at ``path`` if they were harvested from this decomposition (same
    fingerprint), else harvested now on the first ``config.harvest_blocks_per_lang`` training blocks per language."""
    from vpd_lite.analysis import load_or_harvest
    from vpd_lite.corpus import lang_token_blocks

    seq_len = min(config.seq_len, int(getattr(cm.model.config, "max_position_embeddings", config.seq_len)))
    blocks = lang_token_blocks(tokenizer, corpus, "train", seq_len, config.harvest_blocks_per_lang)
    return load_or_harvest(cm, blocks, path=path, progress=progress)


def build_setup(cm: nn.Module, tokenizer: Any, corpus: Mapping[str, Any], stats: ComponentStats,
                config: EraseConfig) -> EraseSetup:
    """Choose the German component(s) from ``stats`` and cut the token blocks of ``corpus``."""
    from vpd_lite.corpus import lang_token_blocks

    german, why = pick_german_component(stats, config.min_german_share)
    top = top_german_components(stats, config.n_top)
    model = cm.model
    seq_len = min(config.seq_len, int(getattr(model.config, "max_position_embeddings", config.seq_len)))
    heldout = lang_token_blocks(tokenizer, {k: corpus[k] for k in LANGS if k in corpus}, "heldout",
                                seq_len, config.eval_blocks_per_lang)
    train_de = lang_token_blocks(tokenizer, {"de": corpus["de"]}, "train", seq_len, config.train_blocks_de)["de"]
    return EraseSetup(model=model, modules=list(cm.module_names), german=component_directions(cm, [german])[0],
                      top=component_directions(cm, top), train_de=train_de, heldout=heldout,
                      vocab_size=int(model.config.vocab_size), tokenizer=tokenizer, choice=why)


def rebuild_artefacts(work: Path, quick: bool, corpus_dir: Path, progress: bool = True,
                      recorded: Path | None = None) -> Artefacts:
    """``--from-scratch``: train the target, decompose it, harvest stats and labels, all into ``work``.

    Repeats how the shipped artefacts were made, whatever thread count the caller set: the target's config,
    seed and thread count come from ``<recorded>/target/training_config.json`` (shipped: seed 0, 1 torch
    thread), the decomposition's config, seed and thread count from ``<recorded>/decomposition`` (shipped:
    seed 0, 2 torch threads, CPU); the statistics are harvested on the decomposition's thread count.
    ``recorded`` defaults to the data folder holding ``corpus_dir`` when it has those records, else the
    shipped data. Float sums depend on the thread count, so pinning it is what makes a rebuild give what ships
    (on the same CPU and library versions). ``quick`` uses the tiny configs with the same seeds and threads.
    A full rebuild ends by saying whether the target and decomposition are identical to the recorded ones.
    """
    import hashlib

    from vpd_lite import paths
    from vpd_lite import target as target_mod
    from vpd_lite.analysis import decomposition_fingerprint, harvest
    from vpd_lite.checkpoint import read_metadata, save_decomposition
    from vpd_lite.corpus import lang_token_blocks, load_corpus, train_batches
    from vpd_lite.decompose import DecomposeConfig, decompose, recorded_decomposition
    from vpd_lite.labelling import label_components, save_labels

    work = Path(work)
    if recorded is None:
        parent = Path(corpus_dir).parent
        has_records = (parent / "target" / "training_config.json").is_file() and \
            (parent / "decomposition" / "decomposition.json").is_file()
        recorded = parent if has_records else paths.data_dir()
    recorded = Path(recorded)
    tconfig, tseed = target_mod.recorded_training(recorded / "target")
    dconfig, dthreads = recorded_decomposition(recorded / "decomposition")
    if quick:
        tconfig = replace(target_mod.TargetConfig.quick(), num_threads=tconfig.num_threads)
        dconfig = DecomposeConfig.quick(seed=dconfig.seed, device=dconfig.device)
    print(f"[from scratch] pinned as recorded in {recorded}: target seed {tseed} on {tconfig.num_threads} torch "
          f"thread(s); decomposition seed {dconfig.seed} on {dthreads} torch thread(s), {dconfig.device}", flush=True)

    arte = Artefacts(work / "target", work / "decomposition", Path(corpus_dir), work / STATS_FILE)
    corpus = load_corpus(corpus_dir)
    print(f"[from scratch] training the target into {arte.target}", flush=True)
    target_mod.train_target(tconfig, corpus=corpus, out_dir=arte.target, seed=tseed, progress=progress)
    model, tokenizer = target_mod.load_target(arte.target)
    dconfig.seq_len = min(dconfig.seq_len, int(model.config.max_position_embeddings))
    print(f"[from scratch] decomposing into {arte.decomposition}", flush=True)
    batches = train_batches(tokenizer, corpus, seq_len=dconfig.seq_len, batch_size=dconfig.batch_size,
                            seed=dconfig.seed)
    with torch_threads(dthreads):
        cm, history = decompose(model, batches, dconfig, progress=progress)
        save_decomposition(cm, arte.decomposition, dconfig, history=history)
        print("[from scratch] harvesting component statistics and labels", flush=True)
        n = HarvestPlan.quick_harvest_blocks if quick else HarvestPlan.harvest_blocks
        stats = harvest(cm, lang_token_blocks(tokenizer, corpus, "train", dconfig.seq_len, n), progress=progress,
                        meta={"decomposition_fingerprint": decomposition_fingerprint(cm)})
    stats.save(arte.stats)
    save_labels(label_components(stats, tokenizer), work / "labels.json",
                provenance={"command": "python -m vpd_lite.reproduce --from-scratch"})
    if not quick:
        def sha(path: Path) -> str:
            return hashlib.sha256(path.read_bytes()).hexdigest()

        shipped_meta = read_metadata(recorded / "decomposition")
        same_target = sha(arte.target / "model.safetensors") == sha(recorded / "target" / "model.safetensors")
        same_dec = read_metadata(arte.decomposition)["tensors_sha256"] == shipped_meta.get("tensors_sha256")
        print(f"[from scratch] target {'identical to' if same_target else 'DIFFERENT from'} the recorded one; "
              f"decomposition {'identical to' if same_dec else 'DIFFERENT from'} the recorded one", flush=True)
        if not (same_target and same_dec):
            was = shipped_meta.get("versions", {})
            now = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
            print(f"[from scratch] the seeds and thread counts were the recorded ones, so the difference comes from "
                  f"the CPU or library versions (recorded {was}, here {now}): their floating-point rounding "
                  "differs, and every number downstream moves with it", flush=True)
    return arte


# ------------------------------------------------------------------------------------------ CLI
def erase_german(arte: Artefacts, config: EraseConfig, out_dir: Path, command: str,
                 figures: bool = True, progress: bool = True) -> dict[str, Any]:
    """Load the artefacts, run the sweep, print and save the table (and figures). Returns what it made."""
    from vpd_lite.checkpoint import load_decomposition
    from vpd_lite.corpus import load_corpus
    from vpd_lite.target import load_target

    arte.check()
    model, tokenizer = load_target(arte.target)
    cm = load_decomposition(arte.decomposition, model)
    corpus = load_corpus(arte.corpus)
    stats, how = load_stats_or_harvest(cm, tokenizer, corpus, arte.stats, config, progress)
    setup = build_setup(cm, tokenizer, corpus, stats, config)
    print(f"Component statistics: {how}\nGerman component: {setup.choice}", flush=True)
    runs = run_sweep(setup, config, progress=progress)
    summary = summarise(runs)
    claim = check_claim(summary)
    print(format_table(summary))
    print(claim["text"])
    written = save_results(runs, summary, claim, setup, out_dir, command, config)
    if figures:
        from vpd_lite.edit_plots import save_figures

        written += save_figures(summary, out_dir)
    return {"setup": setup, "runs": runs, "summary": summary, "claim": claim, "written": written}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vpd_lite.reproduce [--quick] [--from-scratch] [--data DIR] [--out DIR]``."""
    import vpd_lite
    from vpd_lite import paths

    ap = argparse.ArgumentParser(prog="python -m vpd_lite.reproduce",
                                 description="Erase German with one scalar vs LoRA; print and save the table.")
    ap.add_argument("--quick", action="store_true", help="fewer budgets, one seed (also VPD_LITE_QUICK=1)")
    ap.add_argument("--from-scratch", action="store_true",
                    help="first rebuild target, decomposition, stats and labels into --work")
    ap.add_argument("--data", default=None, help="folder with target/, decomposition/, corpus/ (default: data/)")
    ap.add_argument("--out", default=None, help="where tables and figures go (default: results/)")
    ap.add_argument("--work", default=None, help="--from-scratch work folder (default: a new temp folder)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; quick 1)")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: fastest for this small model, and it never "
                         "stalls when the cores are shared)")
    args = ap.parse_args(argv)

    quick = args.quick or vpd_lite.quick_mode()
    config = EraseConfig.quick() if quick else EraseConfig()
    if args.seeds is not None:
        config = replace(config, seeds=tuple(range(args.seeds)))
    config = replace(config, threads=args.threads)
    torch.set_num_threads(args.threads)
    data = Path(args.data) if args.data else paths.data_dir()
    out = Path(args.out) if args.out else paths.results_dir()
    command = "python -m vpd_lite.reproduce " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.time()
    try:
        if args.from_scratch:
            work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vpd-lite-scratch-"))
            arte = rebuild_artefacts(work, quick, data / "corpus")
        else:
            arte = Artefacts.in_folder(data)
        erase_german(arte, config, out, command.strip(), figures=not args.no_figures)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.time() - t0:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
