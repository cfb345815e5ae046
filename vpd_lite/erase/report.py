"""Reports of the erase experiment: the tables (Markdown), CSVs and the selection rule's text that
``python -m vpd_lite.reproduce`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vpd_lite.erase.baselines import LORA_METHODS
from vpd_lite.erase.edits import uniform_level
from vpd_lite.erase.protocol import (
    CLAIM,
    OBJECTIVE_NOTE,
    OBJECTIVES,
    PRIMARY_OBJECTIVE,
    RULE_METHODS,
    EraseConfig,
    EraseSetup,
    check_claim,
    claim_per_seed,
    format_number,
)
from vpd_lite.erase.selection import EDIT_RULE
from vpd_lite.interpret.ids import component_key
from vpd_lite.method.checkpoint import atomic_write_bytes


def claim_report(runs: pd.DataFrame, summary: pd.DataFrame, methods: Sequence[str] = tuple(RULE_METHODS),
                 objectives: Sequence[str] = OBJECTIVES) -> dict[str, Any]:
    """The claim for every selection rule × objective: {"checks": [check_claim ...], "text": ...}; the text
    gives seed-mean verdicts and every seed's numbers."""
    checks, lines = [], []
    for o in objectives:
        for m in methods:
            c = check_claim(summary, method=m, objective=o)
            if not c["available"]:
                continue
            checks.append(c)
            lines.append(c["text"])
            per = claim_per_seed(runs, m, o)
            for _, r in per.iterrows():
                way = format_number(r["frac_to_uniform"], ".0%")
                lines.append(f"    seed {int(r['seed'])}: s = {r['s']:+.3f}, {way} of the way, "
                             f"English ΔCE {r['d_en']:+.3f}, worst fr/es/it ΔCE {r['d_worst_other']:+.3f} -> "
                             + ("meets" if r["meets_goal"] else "misses") + " the goal")
            if len(per):
                way = per["frac_to_uniform"]
                median, low, high = (format_number(v, ".0%") for v in (way.median(), way.min(), way.max()))
                lines.append(f"    seeds: median {median}, range {low} to {high} of the way")
    primary = next((c for c in checks if c["method"] == "scalar_edit" and c["objective"] == PRIMARY_OBJECTIVE), None)
    return {"checks": checks, "primary": primary, "text": "\n".join(lines),
            "reproduced": bool(primary and primary["reproduced"])}


#: How far the numbers move between machines, measured (the same command and data on an Intel Xeon and an AMD
#: EPYC CPU, with the per-matrix-CI decomposition shipped before); written into the report because a reader rerunning it elsewhere should know which rows to expect
#: to match.
MACHINE_NOTE = (
    "Run twice in separate processes on one machine, this command writes the same bytes. Across machines the "
    "float sums inside the matrix libraries differ (an Intel Xeon and an AMD EPYC CPU take different code paths), "
    "and fits that train hard amplify the difference. Measured with the same command on both kinds of CPU, with "
    "the decomposition shipped before the current one (the same recipe with a causal-importance MLP per matrix; "
    "not measured again since): the primary rows (one scalar chosen by the edit scan, target_ce, every budget and seed), the top-16 "
    "edit and the erase-any-language table are identical, and every verdict is the same. Six other single-scalar "
    "runs (mostly uniform_ce) move s by at most 0.016 and a language's CE by at most 0.002 nats/token. The LoRA rows "
    "move, although each run picks the same learning rate: at 4 German tokens LoRA rank 4 on all matrices "
    "(target_ce) goes 142 % of the way with English +4.69 on the Intel CPU that wrote the shipped results/ and "
    "130 % with English +3.96 on the AMD one; every other LoRA row moves by at most 3 points of the way and "
    "0.52 nats/token of English ΔCE (rank 4 at 16 tokens: English +4.64 against +5.16)."
)

_COLS = {"method": "method", "objective": "objective", "budget": "German tokens", "n_seeds": "seeds",
         "de_before": "de CE before", "de_after": "de CE after", "frac_to_uniform": "way to ln V (mean)",
         "frac_median": "median", "frac_min": "min", "frac_max": "max", "d_en": "ΔCE en", "d_fr": "ΔCE fr",
         "d_es": "ΔCE es", "d_it": "ΔCE it", "train_objective": "train objective", "s": "s (mean)", "lr": "lr"}


def _cell(col: str, v: Any) -> str:
    if col.startswith("frac"):
        return format_number(100 * v, ".0f") + "%"
    if col.startswith("d_"):
        return f"{v:+.3f}"
    if col == "s":
        return "" if v != v else f"{v:+.2f}"
    if col == "lr":
        return "" if v != v else f"{v:g}"
    if col == "train_objective":
        return f"{v:.4f}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (nats/token; ΔCE = after − before on held-out text, seed means; the way
    to ln V as mean, median, min and max over seeds; "train objective" = the fit's objective on its budgeted
    tokens, seed mean)."""
    keep = [c for c in _COLS if c in summary.columns]
    lines = ["| " + " | ".join(_COLS[c] for c in keep) + " |", "|" + "|".join("---" for _ in keep) + "|"]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join(_cell(c, r[c]) for c in keep) + " |")
    return "\n".join(lines)


def any_language_table(any_runs: pd.DataFrame) -> pd.DataFrame:
    """The 5×5 table: one row per erased language (seed means): component, mean s, way to ln V of the erased
    language, and held-out ΔCE of every language."""
    langs = [c for c in any_runs.columns if c.startswith("d_")]
    g = any_runs.groupby("erased", sort=False)
    out = g.agg(component=("component", "first"), n_seeds=("seed", "count"), s=("s", "mean"),
                frac_to_uniform=("frac_to_uniform", "mean"), frac_min=("frac_to_uniform", "min"),
                frac_max=("frac_to_uniform", "max"), **{c: (c, "mean") for c in langs})
    return out.reset_index()


def format_any_language(table: pd.DataFrame) -> str:
    """Markdown of :func:`any_language_table` (held-out ΔCE in nats/token; the diagonal is the erased language)."""
    langs = [c.removeprefix("d_") for c in table.columns if c.startswith("d_")]
    head = ["erased", "component", "s (mean)", "way to ln V (mean, min-max)"] + [f"ΔCE {lang}" for lang in langs]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, r in table.iterrows():
        cells = [r["erased"], f"`{r['component']}`", f"{r['s']:+.2f}",
                 f"{format_number(100 * r['frac_to_uniform'], '.0f')}% ({format_number(100 * r['frac_min'], '.0f')}-"
                 f"{format_number(100 * r['frac_max'], '.0f')}%)"]
        cells += [(f"**{r[f'd_{lang}']:+.3f}**" if lang == r["erased"] else f"{r[f'd_{lang}']:+.3f}") for lang in langs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_bytes(df: pd.DataFrame, digits: int = 3) -> bytes:
    """A CSV rounded to ``digits`` decimals (the printed precision), so reruns give the same bytes."""
    return df.to_csv(index=False, float_format=f"%.{digits}f").encode("utf-8")


def selection_rule_text() -> str:
    """The selection rule and the objectives, as written before held-out numbers (``results/selection_rule.md``)."""
    return "\n".join([
        "# How the component, the search range and the fit are chosen",
        "",
        "Written before any held-out number of this protocol was computed; nothing here reads held-out text.",
        "",
        EDIT_RULE,
        "",
        "Second row: the earlier rule. Among components whose share of firing rate on German is at least 80%, the "
        "one that fires on the most German training tokens. Third row: the offline labeller's most German-only "
        "component (category German, highest share of its firing rate on German). Both get the same search "
        "range rule (their own admissible range in the same scan) and the same fits.",
        "",
        OBJECTIVE_NOTE,
        "",
    ])


def save_results(runs: pd.DataFrame, summary: pd.DataFrame, claim: Mapping[str, Any], setup: EraseSetup,
                 out_dir: Path, command: str, config: EraseConfig,
                 any_runs: pd.DataFrame | None = None) -> list[Path]:
    """Write the per-run CSV, the summary CSV, the markdown report, the selection rule, the German edit scan
    and (when given) the erase-any-language table, rounded to the printed precision (atomically)."""
    out_dir = Path(out_dir)
    runs_out = runs.drop(columns=[c for c in ("direction", "edit", "lora") if c in runs.columns])
    written = {"erase_german_runs.csv": csv_bytes(runs_out), "erase_german.csv": csv_bytes(summary)}
    scan = setup.scan
    written["edit_scan_best.csv"] = csv_bytes(scan.best)
    written["edit_scan_curves.csv"] = csv_bytes(scan.curves)
    pre = scan.prescreen.copy()
    written["edit_scan_prescreen.csv"] = csv_bytes(pre, 4)
    written["selection_rule.md"] = selection_rule_text().encode("utf-8")
    ranges = "; ".join(f"{m}: [{lo:g}, {hi:g}]" for m, (lo, hi) in setup.ranges.items())
    lr_rows = summary[summary["method"].isin(list(LORA_METHODS))]
    lrs = "; ".join(f"{r['method']} {r['objective']} {int(r['budget'])}: {r['lr']:g}" for _, r in lr_rows.iterrows())
    md = [
        "# Erasing German with one scalar vs LoRA",
        "",
        f"Command: `{command}`  ",
        *[f"{RULE_METHODS[m]}: {setup.why[m]}  " for m in RULE_METHODS if m in setup.why],
        f"Search ranges of s (training-text scan): {ranges}  ",
        f"Top-{len(setup.top)} edit: {', '.join(component_key(d.component) for d in setup.top)}  ",
        f"LoRA learning rates chosen (from {list(config.lora_lrs)}, by the training objective): {lrs}  ",
        f"Held-out CE in nats/token on {', '.join(f'{k} {v.numel()}' for k, v in setup.heldout.items())} tokens; "
        f"ln(vocab) = {uniform_level(setup.vocab_size):.3f}; seeds {list(config.seeds)}. Edit scan: "
        f"{len(scan.prescreen)} live components prescreened, {scan.curves['component'].nunique()} scanned "
        f"({config.scan.n_candidates} candidates per language to erase, plus the other rules' picks) on "
        f"{config.scan.blocks_per_lang} training blocks of {setup.train['de'].shape[1]} tokens per language.",
        "",
        "## The rule, written before the held-out numbers",
        "",
        selection_rule_text().split("\n", 2)[2].strip(),
        "",
        "## Results (held-out text)",
        "",
        format_table(summary),
        "",
        "## The published claim on our model, for each selection rule and objective",
        "",
        "```",
        claim["text"],
        "```",
        "",
        "## Which numbers depend on the machine",
        "",
        MACHINE_NOTE,
        "",
    ]
    if any_runs is not None and len(any_runs):
        table = any_language_table(any_runs)
        written["erase_any_language_runs.csv"] = csv_bytes(any_runs)
        written["erase_any_language.csv"] = csv_bytes(table)
        any_md = ["# Erase any language with one scalar", "",
                  f"Command: `{command}`  ",
                  f"Each row: the language erased, the component the edit-scan rule picks for it, the single scalar "
                  f"fitted on {CLAIM['budget']} tokens of that language (primary objective, inside its search range), "
                  f"held-out ΔCE per language (nats/token, mean of seeds {list(config.seeds)}).", "",
                  format_any_language(table), ""]
        written["erase_any_language.md"] = "\n".join(any_md).encode("utf-8")
        md += ["## Erase any language (claim budget, primary rule and objective)", "", format_any_language(table), ""]
    written["erase_german.md"] = "\n".join(md).encode("utf-8")
    paths = []
    for name, data in written.items():
        atomic_write_bytes(out_dir / name, data)
        paths.append(out_dir / name)
    return paths
